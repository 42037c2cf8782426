"""Group commit of the API's submits (store/submits.py): submits that arrive together are stored in one
transaction, each acknowledged only once committed; a key used before, or twice in one batch, still names one
job; a batch the store refuses tells every request in it why and leaves nothing behind."""

import asyncio
import threading
import time

import pytest

from zhisuan.model import parse_job_spec
from zhisuan.store import JobStore, connect, migrate
from zhisuan.store.lease import Fenced, Lease, fence
from zhisuan.store.submits import SubmitBatcher


def spec(name):
    return parse_job_spec(f"name: {name}\ntenant: acme\nresources: {{accelerators: 'a100:1'}}\nrun: 'true'\n")


@pytest.fixture
def store(db_url):
    engine = connect(db_url)
    migrate(engine)
    yield JobStore(engine)
    engine.dispose()


def test_many_threads_at_once_each_key_one_job(store):
    batcher = SubmitBatcher(store)
    got: dict[int, str] = {}
    barrier = threading.Barrier(16)

    def client(k):
        barrier.wait()  # all at once: they share batches
        got[k] = batcher.submit(spec(f"j{k}"), time.time(), "acme", key=f"key-{k % 8}").id

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = {r.id: r for r in store.find()}
    assert len(stored) == 8, "eight keys, eight jobs: a key sent twice at once is one job"
    for k in range(16):
        assert got[k] == got[k % 8] and got[k] in stored
    assert sorted(r.name for r in stored.values()) == sorted({stored[got[k]].name for k in range(8)})


def test_a_key_used_before_does_not_fail_the_others_in_its_batch(store):
    batcher = SubmitBatcher(store)
    first = batcher.submit(spec("first"), time.time(), "acme", key="k1")
    items = [("again", "k1"), ("new1", "k2"), ("new2", None)]
    out = store.submit_many([(spec("seed"), time.time(), "acme", "k0", "")])  # the store's own batch path
    assert len(out) == 1
    results = {}

    def client(name, key):
        results[name] = batcher.submit(spec(name), time.time(), "acme", key=key)

    threads = [threading.Thread(target=client, args=item) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["again"].id == first.id and results["again"].name == "first"
    names = sorted(r.name for r in store.find())
    assert names == ["first", "new1", "new2", "seed"]


def test_a_batch_the_store_refuses_tells_every_request_and_leaves_nothing(db_url, store):
    stale = connect(db_url)
    Lease(store.engine, "a", ttl=60).acquire()
    fence(stale, 99)  # a replica that lost the lead: every transaction of it is refused
    batcher = SubmitBatcher(JobStore(stale))
    errors = []

    def client(k):
        try:
            batcher.submit(spec(f"j{k}"), time.time(), "acme")
        except Fenced as e:
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 6 and store.find() == []
    stale.dispose()


def test_from_the_event_loop_without_a_thread_each(store):
    batcher = SubmitBatcher(store)

    async def main():
        return await asyncio.gather(*(batcher.submit_async(spec(f"a{k}"), time.time(), "acme", key=f"a{k % 5}")
                                      for k in range(20)))

    before = threading.active_count()
    recs = asyncio.run(main())
    assert threading.active_count() <= before + 1  # the one writer thread, not one per request
    assert len({r.id for r in recs}) == 5 and len(store.find()) == 5


def test_a_servers_sqlite_wal_is_copied_back_by_its_own_thread_not_by_a_commit(tmp_path):
    from zhisuan.store.db import checkpoint_apart

    path = tmp_path / "z.db"
    engine = connect(f"sqlite:///{path}")
    migrate(engine)
    stop = threading.Event()
    assert checkpoint_apart(engine, stop, every=3600) is not None  # not yet: commits alone must not copy it
    store = JobStore(engine)
    start = path.stat().st_size
    store.submit_many([(spec(f"j{k}"), time.time(), "acme", None, "") for k in range(12000)])
    assert path.stat().st_size == start, "no commit copied the WAL back (auto-checkpoints are off)"
    stop.set()
    stop2 = threading.Event()
    checkpoint_apart(engine, stop2, every=0.05)
    end = time.monotonic() + 10
    while path.stat().st_size == start and time.monotonic() < end:
        time.sleep(0.05)
    stop2.set()
    assert path.stat().st_size > start, "the checkpoint thread copied it"
    assert len(store.find()) == 12000
    engine.dispose()


def test_a_flood_of_submits_is_told_to_come_back_and_memory_stays_bounded(store, monkeypatch):
    from zhisuan.store import submits
    from zhisuan.store.submits import StoreBehind

    monkeypatch.setattr(submits, "MAX_WAITING", 3)
    batcher = SubmitBatcher(store)
    monkeypatch.setattr(batcher, "_start", lambda: None)  # the writer is stuck: nothing is taken
    for k in range(3):
        batcher._enqueue(submits._Submit(spec(f"w{k}"), time.time(), "acme", None))
    with pytest.raises(StoreBehind, match="3 submits are waiting"):
        batcher.submit(spec("one-too-many"), time.time(), "acme")
    assert store.find() == []


def test_submit_writers_on_one_sqlite_file_take_turns_through_its_lock_file(tmp_path):
    """API workers are processes of their own on one SQLite file: a batch waits for the other writer's turn
    (held here through the lock file, as another process holds it) and is stored the moment it ends."""
    import fcntl
    import os

    engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(engine)
    batcher = SubmitBatcher(JobStore(engine))
    other = os.open(tmp_path / "z.db-submits.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(other, fcntl.LOCK_EX)
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(batcher.submit(spec("turn"), time.time(), "acme").id))
    waiter.start()
    waiter.join(0.5)
    assert got == [] and waiter.is_alive()  # its turn has not come
    fcntl.flock(other, fcntl.LOCK_UN)
    waiter.join(5)
    assert len(got) == 1 and JobStore(engine).get(got[0]).spec.name == "turn"
    os.close(other)
    engine.dispose()
