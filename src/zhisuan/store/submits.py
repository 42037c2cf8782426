"""Group commit for the API's submits: the requests that arrive together are stored in one transaction.

Many clients at once made every submit its own transaction: on SQLite the writers queued on the database
lock (its busy handler sleeps, so a burst of 16 gave a p99 near a second), on PostgreSQL each paid a commit
and held a pooled connection. Here a request hands its validated spec to one writer thread and waits; the
writer takes everything queued, stores it in one transaction and wakes each request with its record — the
acknowledgement still follows the commit. A batch that fails on an idempotency key already used is stored
again one submit at a time, so each retry gets the job its key first made."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from zhisuan.model import JobSpec
from zhisuan.store.jobs import JobRecord, JobStore

MAX_BATCH = 256  # submits in one transaction at most
MAX_WAITING = 8192  # submits waiting for a batch at most: a flood is told to come back, memory stays bounded
WAIT = 60.0  # seconds a request waits for its batch before it gives up (the store is down)


class StoreBehind(RuntimeError):
    """The store is not keeping up (too many submits wait, or one waited too long): retry later. A submit
    that gave up waiting may still be stored: a retry with its idempotency key finds it."""


@dataclass
class _Submit:
    spec: JobSpec
    now: float
    actor: str
    key: str | None
    origin: str = ""  # the address the request came from (the audit trail's "from where")
    owner: str | None = None  # who of the project submitted it (jobs.owner)
    record: JobRecord | None = None
    error: BaseException | None = None
    stored: Callable[[], object] = lambda: None  # told from the writer thread once it is (or failed)


class SubmitBatcher:
    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[_Submit] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._turns = _turns(store)

    def submit(self, spec: JobSpec, now: float, actor: str, key: str | None = None, origin: str = "",
               owner: str | None = None) -> JobRecord:
        """Store one validated spec with whatever else is waiting; its record once committed."""
        done = threading.Event()
        item = self._enqueue(_Submit(spec, now, actor, key, origin, owner, stored=done.set))
        return _outcome(item, done.wait(WAIT))

    async def submit_async(self, spec: JobSpec, now: float, actor: str, key: str | None = None,
                           origin: str = "", owner: str | None = None) -> JobRecord:
        """`submit` for the event loop: it waits for the batch without holding a thread (a future the writer
        settles, and a timer: a request waits at most WAIT, and one that gave up is not told)."""
        loop = asyncio.get_running_loop()
        told: asyncio.Future[bool] = loop.create_future()

        def settle(answered: bool) -> None:
            if not told.done():
                told.set_result(answered)

        item = self._enqueue(_Submit(spec, now, actor, key, origin, owner,
                                     stored=lambda: loop.call_soon_threadsafe(settle, True)))
        timer = loop.call_later(WAIT, settle, False)
        try:
            return _outcome(item, await told)
        finally:
            timer.cancel()

    def _enqueue(self, item: _Submit) -> _Submit:
        if self._queue.qsize() >= MAX_WAITING:
            raise StoreBehind(f"{MAX_WAITING} submits are waiting for the store; retry shortly")
        self._start()
        self._queue.put(item)
        return item

    def _start(self) -> None:
        with self._lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._run, name="zhisuan-submits", daemon=True)
                self._writer.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[_Submit]) -> None:
        with self._turns():
            self._store(batch)

    def _store(self, batch: list[_Submit]) -> None:
        try:
            try:
                records = self.store.submit_many([(b.spec, b.now, b.actor, b.key, b.origin) for b in batch],
                                                 owners=[b.owner for b in batch])
                for b, rec in zip(batch, records, strict=True):
                    b.record = rec
            except IntegrityError:
                if len(batch) == 1 and batch[0].key is None:
                    raise
                for b in batch:  # a key used before (or twice in this batch): each on its own
                    try:
                        b.record = self.store.submit_record(b.spec, b.now, b.actor, b.key, b.origin, owner=b.owner)
                    except Exception as e:  # this one's error, not the others'
                        b.error = e
        except Exception as e:  # the store refused the batch: every request in it hears why
            for b in batch:
                b.error = b.error or e
        finally:
            for b in batch:
                b.stored()


def _turns(store: JobStore) -> Callable[[], AbstractContextManager[None]]:
    """On a SQLite file, the submit writers of every process on it (a server's API workers: serve/workers.py)
    take turns through a lock file beside it: one that waits is woken when the other's batch is committed,
    where SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries (two workers' p99 was ~500 ms).
    Elsewhere (PostgreSQL: row locks, no single writer) no turns are taken."""
    url = store.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return contextlib.nullcontext
    path = url.database + "-submits.lock"
    opened: list[int] = []  # the lock file, opened by the first batch (a store that never takes a submit: never)

    @contextlib.contextmanager
    def turn() -> Iterator[None]:
        if not opened:
            opened.append(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        fd = opened[0]
        fcntl.flock(fd, fcntl.LOCK_EX)  # the writer thread's, never the event loop's
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    return turn


def _outcome(item: _Submit, answered: bool) -> JobRecord:
    if not answered:
        raise StoreBehind(f"the store did not take the job within {WAIT:.0f} s; retry with the same idempotency key")
    if item.error is not None:
        raise item.error
    assert item.record is not None
    return item.record
