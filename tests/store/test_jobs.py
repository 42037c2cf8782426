"""The store on SQLite and on a real PostgreSQL (started by `make test`): lifecycle, atomicity, restart."""


import pytest
from sqlalchemy import text

from zhisuan.model import JobState, parse_job_spec
from zhisuan.store import JobStore, connect, migrate

SPEC = parse_job_spec("name: j\ntenant: acme\nresources: {accelerators: a100:2}\nrun: echo hi")


@pytest.fixture
def store(db_url):
    engine = connect(db_url)
    migrate(engine)
    migrate(engine)  # idempotent
    yield JobStore(engine)
    engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_lifecycle_with_timestamped_transitions(store):
    job = store.submit(SPEC, now=1.0)
    store.transition(job, JobState.SCHEDULED, 2.0, "placed", center="shanghai", pool="a100", nodes=(0,),
                     devices_per_node=2)
    store.transition(job, JobState.RUNNING, 3.0, engine_handle="pid:123")
    rec = store.transition(job, JobState.SUCCEEDED, 9.0, exit_code=0)
    assert rec.state is JobState.SUCCEEDED and rec.nodes == (0,) and rec.spec == SPEC and rec.updated_at == 9.0
    assert [(t.from_state, t.to_state, t.at) for t in store.transitions(job)] == [
        (None, JobState.PENDING, 1.0), (JobState.PENDING, JobState.SCHEDULED, 2.0),
        (JobState.SCHEDULED, JobState.RUNNING, 3.0), (JobState.RUNNING, JobState.SUCCEEDED, 9.0)]


def test_illegal_transition_changes_nothing(store):
    job = store.submit(SPEC, now=1.0)
    with pytest.raises(ValueError, match="cannot become succeeded"):
        store.transition(job, JobState.SUCCEEDED, 2.0, exit_code=0)
    with pytest.raises(ValueError, match="cannot set"):
        store.transition(job, JobState.SCHEDULED, 2.0, tenant="evil")
    rec = store.get(job)
    assert rec.state is JobState.PENDING and rec.exit_code is None and len(store.transitions(job)) == 1
    with pytest.raises(KeyError):
        store.transition("j-missing", JobState.SCHEDULED, 2.0)


def test_list_filters_and_survives_a_new_engine(store, db_url):
    a = store.submit(SPEC, now=1.0)
    b = store.submit(SPEC.model_copy(update={"tenant": "lab"}), now=2.0)
    store.transition(b, JobState.CANCELLED, 3.0, "by tenant")
    assert [r.id for r in store.find(tenant="acme")] == [a]
    assert [r.id for r in store.find(states={JobState.CANCELLED})] == [b]
    engine = connect(db_url)
    assert {r.id for r in JobStore(engine).find()} == {a, b}
    engine.dispose()


def test_tokens_are_stored_hashed(db_url):
    from zhisuan.store import TokenStore

    engine = connect(db_url)
    migrate(engine)
    tokens = TokenStore(engine)
    token = tokens.issue("acme", 0.0)
    assert tokens.principal(token).tenant == "acme" and tokens.principal(token + "x") is None
    with engine.connect() as c:
        stored = c.execute(text("SELECT token_hash FROM tokens")).scalar()
    assert token not in stored and len(stored) == 64
    engine.dispose()


def test_feed_delivers_each_transition_once_and_waits_for_gaps(tmp_path):
    from zhisuan.store.feed import TransitionFeed
    from zhisuan.store.schema import TransitionRow

    engine = connect(f"sqlite:///{tmp_path / 'f.db'}")
    migrate(engine)
    store = JobStore(engine)
    spec = parse_job_spec("name: a\ntenant: t\nresources: {accelerators: a100:1}\nrun: x")
    a = store.submit(spec, 1.0)
    feed = TransitionFeed(store, store.last_transition_id(), gap_wait=10.0)
    b = store.submit(spec, 2.0)
    with engine.begin() as conn:  # an id taken by a transaction that commits late (PostgreSQL's sequences)
        conn.execute(TransitionRow.__table__.insert(), {"id": 5, "job_id": a, "from_state": "pending",
                                                         "to_state": "cancelled", "at": 3.0, "reason": "late"})
    assert [(t.job_id, t.to_state.value) for t in feed.read(100.0)] == [(b, "pending"), (a, "cancelled")]
    assert feed.floor == 2  # ids 3 and 4 are missing: held until they appear or time out
    with engine.begin() as conn:
        conn.execute(TransitionRow.__table__.insert(), {"id": 3, "job_id": b, "from_state": "pending",
                                                         "to_state": "cancelled", "at": 4.0, "reason": "slow"})
    assert [t.id for t in feed.read(101.0)] == [3]
    assert feed.read(105.0) == [] and feed.floor == 3
    assert feed.read(111.0) == [] and feed.floor == 5  # id 4 never came (a rollback): passed after gap_wait


def test_waits_and_fields_only_for_jobs_still_in_that_state(db_url):
    engine = connect(db_url)
    migrate(engine)
    store = JobStore(engine)
    spec = parse_job_spec("name: a\ntenant: t\nresources: {accelerators: a100:1}\nrun: x")
    a, b = store.submit(spec, 1.0), store.submit(spec, 1.0)
    store.transition(b, JobState.CANCELLED, 2.0)
    store.set_waits([(a, "no room", 50.0), (b, "no room", 60.0)])
    assert (store.get(a).wait_reason, store.get(a).expected_start) == ("no room", 50.0)
    assert store.get(b).wait_reason is None
    assert not store.set_fields(b, JobState.SCHEDULED, engine_handle="h")
    store.transition(a, JobState.SCHEDULED, 3.0, center="c", pool="p", nodes=(0,), devices_per_node=1)
    assert store.get(a).wait_reason is None  # a new state clears the old wait
    assert store.set_fields(a, JobState.SCHEDULED, engine_handle="h") and store.get(a).engine_handle == "h"


def test_find_naming_reads_only_jobs_whose_spec_mentions_a_word_and_escapes_wildcards(store):
    replica = store.submit(SPEC.model_copy(update={"env": {"ZHISUAN_SERVICE": "s-1a_b%"}}), now=1.0)
    other = store.submit(SPEC.model_copy(update={"env": {"ZHISUAN_SERVICE": "s-1aXbY"}}), now=2.0)
    store.submit(SPEC, now=3.0)
    ended = store.submit(SPEC.model_copy(update={"env": {"ZHISUAN_SERVICE": "s-1a_b%"}}), now=4.0)
    store.transition(ended, JobState.CANCELLED, 5.0, "by tenant")
    active = {JobState.PENDING, JobState.RUNNING}
    assert [r.id for r in store.find_naming(["s-1a_b%"], active)] == [replica]  # `_` and `%` are not wildcards
    assert [r.id for r in store.find_naming(["s-1a_b%", "s-1aXbY"], active)] == [replica, other]
    assert store.find_naming([], active) == []


def test_a_cancel_committed_between_a_transitions_read_and_write_is_never_overwritten(store, db_url, monkeypatch):
    """The API cancels while the loop places the same job: one wins, the other sees it (no cancelled job is
    placed). The cancel is made to land, from another connection, between the placement's read and its write."""
    import contextlib
    import threading
    from itertools import pairwise

    from zhisuan.store import jobs as jobs_module

    job = store.submit(SPEC, now=1.0)
    engine = connect(db_url)
    api = JobStore(engine)
    real, box = jobs_module.check_transition, {}

    def cancel() -> None:
        try:
            api.transition(job, JobState.CANCELLED, 2.0, "by tenant", actor="acme")
        except ValueError as e:  # the placement won and made the cancel illegal: fine too
            box["refused"] = str(e)

    def racing(current: JobState, target: JobState) -> None:
        if target is JobState.SCHEDULED and "cancel" not in box:
            box["cancel"] = threading.Thread(target=cancel)
            box["cancel"].start()
            box["cancel"].join(1.0)  # unguarded, the cancel commits now: after the read, before the write
        real(current, target)

    monkeypatch.setattr(jobs_module, "check_transition", racing)
    with contextlib.suppress(ValueError):  # the cancel won: the placement is refused
        store.transition(job, JobState.SCHEDULED, 3.0, "placed", center="c", pool="p", nodes=(0,),
                         devices_per_node=2)
    box["cancel"].join(10)
    engine.dispose()
    chain = [(t.from_state, t.to_state) for t in store.transitions(job)]
    assert all(a[1] == b[0] for a, b in pairwise(chain)), chain  # each move starts where the last one left it
    assert store.get(job).state is JobState.CANCELLED  # cancelled first, or placed then cancelled
