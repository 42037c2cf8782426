"""The control plane's lease: one holder at a time by the database's clock, a larger epoch for each new leader,
and a stale leader's writes refused (fencing) — on SQLite and on PostgreSQL. Migrations: made once, and a
database a newer zhisuan migrated is refused naming both revisions."""

import time

import pytest
from sqlalchemy import text

from zhisuan.model import parse_job_spec
from zhisuan.store import JobStore, connect, migrate
from zhisuan.store.db import NewerSchema, bound_transactions
from zhisuan.store.lease import Fenced, Lease, fence


def spec(name):
    return parse_job_spec(f"name: {name}\ntenant: acme\nresources: {{accelerators: 'a100:1'}}\nrun: 'true'\n")


def test_one_holder_at_a_time_and_each_new_leader_a_larger_epoch(db_url):
    engine = connect(db_url)
    migrate(engine)
    a, b = Lease(engine, "a", ttl=1.0), Lease(engine, "b", ttl=1.0)
    assert a.acquire() == 1 and b.acquire() is None
    assert a.acquire() == 1  # renewed
    held = b.current()
    assert held is not None and held.holder == "a" and 0 < held.expires_in <= 1.0
    time.sleep(1.2)
    assert b.acquire() == 2  # lapsed: b leads
    assert a.acquire() is None and a.epoch is None  # a lease lost is never renewed
    b.release()
    assert a.acquire() == 3  # let go: taken at once


def test_a_stale_leaders_writes_are_refused(db_url):
    engine = connect(db_url)
    migrate(engine)
    old = connect(db_url)  # the old leader's own connections
    a, b = Lease(engine, "a", ttl=0.5), Lease(engine, "b", ttl=0.5)
    assert a.acquire() == 1
    fence(old, 1)
    stale = JobStore(old)
    first = stale.submit(spec("one"), time.time())  # leading: written
    time.sleep(0.7)  # a paused: its lease lapses, b takes it
    assert b.acquire() == 2
    with pytest.raises(Fenced, match=r"epoch 2.*epoch 1"):
        stale.submit(spec("two"), time.time())
    with pytest.raises(Fenced):
        stale.transition(first, stale.get(first).state, time.time(), "a stale decision")
    names = [r.name for r in JobStore(engine).find()]
    assert names == ["one"]  # nothing of the stale leader's after b took over


def test_a_database_migrated_by_a_newer_zhisuan_is_refused(db_url):
    engine = connect(db_url)
    migrate(engine)
    migrate(engine)  # idempotent
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(NewerSchema, match=r"9999.*0023"):
        migrate(engine)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_leader_frozen_inside_a_transaction_does_not_hold_the_lease_past_its_bound(db_url):
    engine = connect(db_url)
    migrate(engine)
    frozen = connect(db_url)  # the old leader's connections: sessions idle in a transaction end after 0.5 s
    bound_transactions(frozen, 0.5)
    a, b = Lease(frozen, "a", ttl=1.0), Lease(engine, "b", ttl=1.0)
    assert a.acquire() == 1
    fence(frozen, 1)
    conn = frozen.connect()
    conn.begin()  # the fence's share lock on the lease row, then the process froze (SIGSTOP)
    time.sleep(1.2)
    t0 = time.monotonic()
    while b.acquire() is None and time.monotonic() - t0 < 5:  # each try gives up behind the lock after ttl/3
        time.sleep(0.1)
    assert b.epoch == 2 and time.monotonic() - t0 < 3
    with pytest.raises(Exception, match=r"idle-in-transaction|terminat|closed"):
        conn.execute(text("SELECT 1"))  # thawed: its session was ended, its locks with it
    conn.close()
    with pytest.raises(Fenced):
        JobStore(frozen).submit(spec("late"), time.time())
