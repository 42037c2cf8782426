"""One replica's part in the control plane. Every replica serves the API; the one holding the store's lease
(store/lease.py) also runs the control loop, moves data and talks to the centers. The others follow: they
refresh the picture their API reads (queue, placements) from the store every few seconds, and wait for the
lease to lapse.

A leader that can no longer renew its lease (another took it, or it has not reached the database for most of
the lease) stops leading at once: its control loop stops, the store refuses its writes (fencing), and the
process exits so its supervisor starts it again as a follower — the backup `slurmctld` model, with the
lease in the database instead of a shared StateSave directory.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from zhisuan.store.lease import Lease, fence

log = logging.getLogger("zhisuan.server")
SELF_FENCE = 0.8  # of the lease: a leader that has not renewed for this long stops before another may lead
FOLLOW_EVERY = 3.0  # seconds between a follower's refreshes of what its API shows (at least)
FOLLOW_SHARE = 0.2  # of one core, at most, a follower spends refreshing (a long refresh waits longer)
TAKE_EVERY = 1.0  # seconds between a follower's tries for the lease (at most): failover ≈ the lease + this
DEPOSED = 75  # the process's exit status when it stopped leading (EX_TEMPFAIL: start it again)
HARD_EXIT = 8.0  # seconds a deposed replica has to stop gracefully


class Leadership:
    def __init__(self, lease: Lease, engine: Engine, on_lead: Callable[[int], None],
                 follow: Callable[[], None] = lambda: None, on_deposed: Callable[[str], None] | None = None,
                 candidate: bool = True, picture: Callable[[], None] = lambda: None) -> None:
        self.lease, self.engine = lease, engine
        self.picture = picture  # rebuilds what a follower's API reads (queue, placements): see fresh()
        self._fresh_until = 0.0
        self.candidate = candidate  # False: an API worker (serve/workers.py), which follows and never leads
        self.on_lead, self.follow = on_lead, follow
        self.on_deposed = on_deposed or exit_deposed
        self.leading = False
        self.epoch: int | None = None
        self.renewed = time.monotonic()
        self.stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()  # a follower's refresh ends before the same replica starts leading

    def start(self) -> None:
        self._round()  # a lone replica leads before it serves its first request
        self._thread = threading.Thread(target=self._run, name="zhisuan-lease", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """A clean stop: the lease is let go, so another replica leads without waiting for it to lapse."""
        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.leading and time.monotonic() - self.renewed < SELF_FENCE * self.lease.ttl:
            try:
                self.lease.release()
            except SQLAlchemyError as e:
                log.warning("could not let the lease go (it lapses by itself): %s", e)

    def _run(self) -> None:
        threading.Thread(target=self._watch, name="zhisuan-lease-watch", daemon=True).start()
        threading.Thread(target=self._follow, name="zhisuan-follow", daemon=True).start()
        while not self.stop.wait(self.lease.ttl / 3 if self.leading else min(self.lease.ttl / 3, TAKE_EVERY)):
            self._round()

    def _follow(self) -> None:
        """A follower's refresh, in a thread of its own so that a long one never delays taking the lease;
        spaced so that it costs at most FOLLOW_SHARE of a core however large the store grows."""
        wait = FOLLOW_EVERY
        while not self.stop.wait(wait):
            started = time.monotonic()
            with self._refreshing:
                if self.leading:
                    continue
                try:
                    self.follow()
                except Exception:  # the picture is refreshed again next time
                    log.exception("follower refresh failed")
            wait = _pace(time.monotonic() - started)

    def fresh(self) -> None:
        """A follower's picture brought up to date for a reader: rebuilt from the store when it is read, at most
        every FOLLOW_EVERY seconds and FOLLOW_SHARE of a core; a leader's is the loop's, always current. Rebuilt
        only when read, not on a timer: under a stream of submits alone, no rebuild of a long queue competes
        with the requests (it was the API's p99, on followers and API workers)."""
        if self.leading or time.monotonic() < self._fresh_until:
            return
        with self._refreshing:
            if self.leading or time.monotonic() < self._fresh_until:
                return  # it leads now, or another reader has just rebuilt it
            started = time.monotonic()
            try:
                self.picture()
            except Exception:  # the reader gets the picture as it was; the next one tries again
                log.exception("follower refresh failed")
            took = time.monotonic() - started
            self._fresh_until = started + _pace(took)

    def _watch(self) -> None:
        """A leader whose renewals stopped (its database cut off: the renewal itself may hang) stops leading
        before the lease could lapse, whatever its other threads are waiting on."""
        while not self.stop.wait(0.2):
            silent = time.monotonic() - self.renewed
            if self.leading and silent > SELF_FENCE * self.lease.ttl:
                self.depose(f"no renewal of the lease for {silent:.1f} s (the database does not answer)")

    def _round(self) -> None:
        if not self.candidate:
            return
        try:
            epoch = self.lease.acquire()
        except SQLAlchemyError as e:
            silent = time.monotonic() - self.renewed
            if self.leading and silent > SELF_FENCE * self.lease.ttl:
                self.depose(f"the database has not answered for {silent:.1f} s ({str(e)[:200]})")
            else:
                log.warning("lease: the database did not answer: %s", str(e)[:200])
            return
        if epoch is None:
            if self.leading:
                self.depose("another replica holds the lease")
            return
        self.renewed = time.monotonic()
        if not self.leading:
            fence(self.engine, epoch)  # from now on every write of this process checks the lease first
            with self._refreshing:
                self.leading, self.epoch = True, epoch
            log.info("leading", extra={"fields": {"epoch": epoch, "holder": self.lease.holder}})
            self.on_lead(epoch)

    def depose(self, why: str) -> None:
        with self._lock:
            if not self.leading:
                return
            self.leading = False
        log.error("stopped leading", extra={"fields": {"epoch": self.epoch, "why": why}})
        self.on_deposed(why)


def _pace(took: float) -> float:
    """Seconds from one refresh's start to the next: FOLLOW_EVERY, or longer when a refresh costs more than
    FOLLOW_SHARE of a core."""
    return max(FOLLOW_EVERY, took / FOLLOW_SHARE)


def exit_deposed(why: str, stop_serving: Callable[[], None] | None = None) -> None:
    """The process ends (status DEPOSED): its server stops gracefully (`stop_serving`, else a SIGTERM), and
    no later than HARD_EXIT seconds whatever it waits on (a database that does not answer)."""
    global _exit_status
    _exit_status = DEPOSED
    if stop_serving is not None:
        stop_serving()
    else:
        os.kill(os.getpid(), signal.SIGTERM)
    hard = threading.Timer(HARD_EXIT, lambda: os._exit(DEPOSED))
    hard.daemon = True  # a process that ended by itself is not held back by it
    hard.start()


_exit_status = 0


def exit_status() -> int:
    return _exit_status
