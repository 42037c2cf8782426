"""The audit trail: token changes recorded with the change itself, job actions read from the transitions,
fields bounded, searches bounded and filtered."""

from zhisuan.model import JobState, parse_job_spec
from zhisuan.store import JobStore, TokenStore, connect, migrate
from zhisuan.store.audit import MAX_EVENTS, AuditLog, By
from zhisuan.store.tokens import token_id

SPEC = parse_job_spec("name: j\ntenant: acme\nresources: {accelerators: a100:2}\nrun: echo hi")


def test_token_changes_are_on_the_trail_with_who_and_from_where(db_url):
    engine = connect(db_url)
    migrate(engine)
    tokens = TokenStore(engine)
    ops = By("admin ops", "10.0.0.7")
    made = tokens.issue("acme", 100.0, label="ci", expires_at=200.0, by=ops)
    tokens.issue("lab", 101.0)  # issued by the server itself at start (the network file's tokens): not a person's act
    assert tokens.revoke(token_id(made), 150.0, by=ops) is not None
    assert tokens.revoke(token_id(made), 160.0, by=ops) is not None  # already revoked: nothing more happened
    events = tokens.audit.search()
    assert [(e.action, e.subject, e.actor, e.origin) for e in events] == [
        ("token.create", token_id(made), "admin ops", "10.0.0.7"),
        ("token.revoke", token_id(made), "admin ops", "10.0.0.7")]
    assert "for acme" in events[0].detail and "label ci" in events[0].detail
    assert [e.action for e in tokens.audit.search(since=120.0)] == ["token.revoke"]
    assert [e.action for e in tokens.audit.search(until=120.0)] == ["token.create"]
    assert tokens.audit.search(actor="acme") == []


def test_job_actions_come_from_the_transitions_without_a_second_write(db_url):
    engine = connect(db_url)
    migrate(engine)
    jobs, log = JobStore(engine), AuditLog(engine)
    rec = jobs.submit_record(SPEC, 1.0, actor="acme")
    jobs.transition(rec.id, JobState.CANCELLED, 2.0, "asked to", actor="admin ops")
    jobs.submit_record(SPEC, 3.0)  # the control plane's own (a requeue, a service's replica): not a person's act
    jobs.submit_record(SPEC, 3.5, actor="service s-1")  # a service's replica
    stopped = jobs.submit_record(SPEC, 3.6, actor="zhisuan", origin="10.0.0.9")  # a tenant named zhisuan, asking
    jobs.transition(stopped.id, JobState.CANCELLED, 3.7, "its service stopped", actor="admin zhisuan")
    acts = [(e.action, e.actor, e.subject) for e in log.search()]
    assert acts == [("job.pending", "acme", rec.id), ("job.cancelled", "admin ops", rec.id),
                    ("job.pending", "zhisuan", stopped.id)]
    assert [e.action for e in log.search(action="job.cancelled")] == ["job.cancelled"]
    assert log.search(action="token.create") == []


def test_fields_are_bounded_and_a_search_returns_the_newest_within_its_limit(db_url):
    engine = connect(db_url)
    migrate(engine)
    log = AuditLog(engine)
    log.record(By("x" * 500, "y" * 500), "z" * 500, "s" * 5000, 1.0, "d" * 100_000)
    e = log.search()[0]
    assert (len(e.actor), len(e.origin), len(e.action), len(e.subject), len(e.detail)) == (80, 64, 40, 200, 1000)
    for k in range(30):
        log.record(By("ops"), "sign-in", "ops", 10.0 + k)
    newest = log.search(actor="ops", limit=5)
    assert [e.at for e in newest] == [35.0, 36.0, 37.0, 38.0, 39.0]  # oldest first, the newest five
    assert len(log.search(limit=10 * MAX_EVENTS)) == 31  # a huge limit is capped, not an error
