"""The store on SQLite (PostgreSQL arrives with the control plane): lifecycle, atomicity, restart."""

import pytest
from sqlalchemy import text

from zhisuan.model import JobState, parse_job_spec
from zhisuan.store import JobStore, connect, migrate

SPEC = parse_job_spec("name: j\ntenant: acme\nresources: {accelerators: a100:2}\nrun: echo hi")


@pytest.fixture
def store(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(engine)
    migrate(engine)  # idempotent
    return JobStore(engine)


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


def test_list_filters_and_survives_a_new_engine(store, tmp_path):
    a = store.submit(SPEC, now=1.0)
    b = store.submit(SPEC.model_copy(update={"tenant": "lab"}), now=2.0)
    store.transition(b, JobState.CANCELLED, 3.0, "by tenant")
    assert [r.id for r in store.find(tenant="acme")] == [a]
    assert [r.id for r in store.find(states={JobState.CANCELLED})] == [b]
    reopened = JobStore(connect(f"sqlite:///{tmp_path / 'z.db'}"))
    assert {r.id for r in reopened.find()} == {a, b}
