"""Moving datasets between centers' stores: a worker thread that carries out queued transfers, one rclone
copy each (capped at the link's rate: the WAN as the network file declares it), and keeps replicas honest.

- A transfer is retried (rclone skips objects already copied whole: a retry resumes) up to `ATTEMPTS`
  times with growing pauses; a copy whose objects do not match the dataset's checksums marks the replica
  bad and fails the transfer with the paths that differ.
- A server restart finds transfers that were running and queues them again: they resume, never duplicate.
- Removed datasets' objects are deleted from every store; replicas the network no longer needs are
  evicted least-recently-used when a center's store must make room (never one pinned by a rule, in use
  by a job that is staging or running there, or the last checked copy).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from zhisuan.agent.protocol import Move
from zhisuan.control.relay import Mover as AgentLink
from zhisuan.control.relay import Relay, relay_move
from zhisuan.engines.base import EngineDown
from zhisuan.model import Network
from zhisuan.model.links import link_between
from zhisuan.storage import Progress, S3Store, TransferCancelled, TransferFailed, copy, put, remove, verify
from zhisuan.storage.fetch import Mismatch, fetch, local_mismatches
from zhisuan.store.datasets import (
    ACTIVE_TRANSFERS,
    BAD,
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    READY,
    RUNNING,
    DatasetRecord,
    DatasetStore,
    TransferRecord,
)

log = logging.getLogger("zhisuan.data")
ATTEMPTS = 5
PAUSE = 2.0  # seconds before the first retry, doubling
PROGRESS_EVERY = 1.0  # seconds between progress writes
PARALLEL = 4  # transfers at once


def stores_of(network: Network) -> dict[str, S3Store]:
    """The S3 stores of centers the server reaches itself (`join: direct`), keys read from their files."""
    out = {}
    for c in network.centers:
        s = c.store
        if s is None or s.endpoint is None or c.join != "direct":
            continue
        keys: dict[str, str] = {}
        if s.credentials_file is not None:
            keys = json.loads(Path(s.credentials_file).read_text(encoding="utf-8"))
        out[c.name] = S3Store(c.name, s.endpoint, s.bucket, keys.get("access_key", ""), keys.get("secret_key", ""))
    return out


class Mover:
    """Carries out transfers in its own thread; `kick()` wakes it when one is queued."""

    def __init__(self, network: Network, datasets: DatasetStore, stores: dict[str, S3Store] | None = None,
                 clock: Callable[[], float] = time.time, agents: Mapping[str, AgentLink] | None = None,
                 relay: Relay | None = None) -> None:
        self.network, self.datasets, self.clock = network, datasets, clock
        self.stores = stores if stores is not None else stores_of(network)
        self.agents = dict(agents or {})  # centers whose stores only their agents reach: moves relayed there
        self.relay = relay or Relay()
        self.relay_root: Path | None = None  # the server's disk between a relay's two legs (a temp folder if unset)
        self._own_root: Path | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cancel: dict[int, threading.Event] = {}  # running transfer -> its cancel switch
        self._threads: dict[int, threading.Thread] = {}
        self._thread: threading.Thread | None = None
        self._retry_at: dict[int, float] = {}
        self._wanted: set[tuple[str, str]] = set()  # (dataset, center) to fetch into the center's cache
        self._later: list[Callable[[], object]] = []  # other slow work for this thread (a job's outputs)
        self.cache: Path | None = None  # where a direct center's jobs get their inputs from (set by the server)

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        for t in self.datasets.transfers(states=(RUNNING,)):  # a restart: they resume
            self.datasets.update_transfer(t.id, state=QUEUED, rate=0.0)
        self._thread = threading.Thread(target=self._run, name="zhisuan-mover", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the worker and every copy (rclone processes stopped and waited for); rows stay as they were."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for ev in list(self._cancel.values()):
            ev.set()
        for thread in list(self._threads.values()):
            thread.join(timeout=30)
        if self._own_root is not None:
            shutil.rmtree(self._own_root, ignore_errors=True)

    def kick(self) -> None:
        self._wake.set()

    def later(self, work: Callable[[], object]) -> None:
        """Run `work` on the mover's thread (slow I/O the control loop must not wait for)."""
        self._later.append(work)
        self._wake.set()

    def cancel_job(self, job_id: str, now: float) -> None:
        """Stop the transfers a job's staging began (their partial objects are removed)."""
        for t in self.datasets.transfers(job_id=job_id, states=ACTIVE_TRANSFERS):
            ev = self._cancel.get(t.id)
            if ev is not None:
                ev.set()
            else:
                self._ended(t, CANCELLED, "the job was cancelled", now)

    # ---- the worker ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._collect_removed()
                self._start_queued()
                self._fetch_wanted()
                while self._later:
                    self._later.pop(0)()
            except Exception:  # the worker outlives whatever one transfer meets
                log.exception("data mover")
            self._wake.wait(1.0)
            self._wake.clear()

    def _start_queued(self) -> None:
        """Each queued transfer in a thread of its own, up to `PARALLEL` at once (one link's cap is per copy)."""
        now = self.clock()
        queued = self.datasets.transfers(states=(QUEUED,))
        for t in sorted(queued, key=lambda t: (t.job_id is None, t.id)):  # jobs waiting for their data first
            if len(self._cancel) >= PARALLEL:
                return
            if t.id in self._cancel or self._retry_at.get(t.id, 0) > now:
                continue
            self._cancel[t.id] = threading.Event()
            thread = self._threads[t.id] = threading.Thread(target=self._carry_safely, args=(t,),
                                                            name=f"zhisuan-transfer-{t.id}", daemon=True)
            thread.start()

    def _carry_safely(self, t: TransferRecord) -> None:
        try:
            self._carry(t)
        except Exception:
            log.exception("transfer %s", t.id)
            self._failed(t, "unexpected error (logged)")
        finally:
            self._cancel.pop(t.id, None)
            self._threads.pop(t.id, None)
            self._wake.set()

    # ---- local copies for the center's jobs ----------------------------------------------------------

    def present(self, dataset_id: str, center: str) -> Path | None:
        """The dataset's checked copy on `center`'s disk, if there is one."""
        d = self.datasets.by_id(dataset_id)
        if self.cache is None or d is None:
            return None
        path = self._local_path(d, center)
        return path if path.is_dir() else None

    def local(self, dataset_id: str, center: str) -> Path | None:
        """The dataset's files at `center`'s cache folder once fetched and checked (None: not yet, or no cache);
        asks for the fetch if need be."""
        d = self.datasets.by_id(dataset_id)
        if self.cache is None or d is None:
            return None
        path = self._local_path(d, center)
        if path.is_dir():
            return path
        self._wanted.add((dataset_id, center))
        self._wake.set()
        return None

    def _fetch_wanted(self) -> None:
        for dataset_id, center in list(self._wanted):
            self._wanted.discard((dataset_id, center))
            d, store = self.datasets.by_id(dataset_id), self.stores.get(center)
            if d is None or store is None or self.cache is None:
                continue
            final = self._local_path(d, center)
            if final.is_dir():
                continue  # asked again while it was being fetched
            partial = final.with_name(f"{d.id}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True, mode=0o700)
            try:
                fetch(store, d.prefix, partial)
            except TransferFailed as e:
                log.warning("fetching %s at %s: %s", d.ref, center, e)
                shutil.rmtree(partial, ignore_errors=True)
                continue
            bad = local_mismatches(partial, self.datasets.files(d.id))
            if bad:
                log.warning("fetched %s at %s: checksums differ for %s", d.ref, center, bad[:5])
                shutil.rmtree(partial, ignore_errors=True)
                continue
            for f in partial.rglob("*"):
                f.chmod(0o444 if f.is_file() else 0o711)  # jobs read hard links of these; the cache root is 0o700
            partial.rename(final)

    def _carry(self, t: TransferRecord) -> None:
        d = self.datasets.by_id(t.dataset_id)
        cancel = self._cancel[t.id]
        src, dst = self.stores.get(t.source), self.stores.get(t.target)
        gone = next((c for c in (t.source, t.target) if c not in self.stores and c not in self.agents), None)
        if d is None or gone is not None:
            why = "the dataset is gone" if d is None else f"no store reachable at {gone}"
            self._ended(t, FAILED, why, self.clock())
            return
        rate = link_between(self.network.center(t.source), self.network.center(t.target),
                            self.network.links).bytes_per_s
        self.datasets.update_transfer(t.id, state=RUNNING, started_at=t.started_at or self.clock(),
                                      attempts=t.attempts + 1)
        last = [0.0, 0.0]  # when the last progress was written, and its bytes

        def progress(p: Progress) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY:
                rate = p.rate_bytes_per_s
                if not rate and last[0]:  # rclone's figure can lag behind: bytes since the last write
                    rate = (p.bytes_done - last[1]) / (now - last[0])
                last[0], last[1] = now, p.bytes_done
                self.datasets.update_transfer(t.id, bytes_done=min(int(p.bytes_done), t.bytes_total),
                                              rate=max(float(rate), 0.0))
        declared = self.datasets.files(d.id)
        try:
            if src is None or dst is None:
                self._relayed(t, d, src, dst, rate, progress, cancel)
            elif self.cache is not None:
                self._via_disk(t, d, src, dst, rate, progress, cancel)
            else:
                copy(src, d.prefix, dst, d.prefix, bwlimit_bytes_per_s=rate, on_progress=progress, cancel=cancel)
        except TransferCancelled:
            if self._stop.is_set():
                return  # the server is stopping: left `running`, the next start resumes it
            self._ended(t, CANCELLED, "cancelled", self.clock())
            shutil.rmtree(self._relay_folder() / str(t.id), ignore_errors=True)
            if not self._others_need(t):
                if dst is not None:
                    remove(dst, d.prefix)  # no partial replica is left behind (an agent drops its own)
                if self.cache is not None:
                    shutil.rmtree(self._local_path(d, t.target).with_suffix(".partial"), ignore_errors=True)
            return
        except Mismatch as e:
            self._mark_replica(t, BAD)
            self._ended(t, FAILED, f"checksum mismatch at {t.target}: {', '.join(e.paths[:5])}", self.clock())
            return
        except TransferFailed as e:
            self._failed(t, str(e))
            return
        bad = [] if dst is None else verify(dst, d.prefix, {p: m for p, (_, m) in declared.items()})
        if bad:
            self._mark_replica(t, BAD)
            self._ended(t, FAILED, f"checksum mismatch at {t.target}: {', '.join(bad[:5])}", self.clock())
            return
        self.datasets.update_transfer(t.id, bytes_done=t.bytes_total)
        self._mark_replica(t, READY)
        self._ended(t, DONE, None, self.clock())

    def _local_path(self, d: DatasetRecord, center: str) -> Path:
        assert self.cache is not None
        return self.cache / center / d.prefix  # the name it was made under, even once removed and renamed

    def _via_disk(self, t: TransferRecord, d: DatasetRecord, src: S3Store, dst: S3Store, rate: float,
                  progress: Callable[[Progress], None], cancel: threading.Event) -> None:
        """For a center whose jobs this server starts: the capped copy lands on the center's disk first (its
        jobs may start as soon as it is checked), then goes into the center's store at local speed."""
        final = self._local_path(d, t.target)
        partial = final.with_suffix(".partial")
        if not final.is_dir():
            partial.mkdir(parents=True, mode=0o700, exist_ok=True)  # kept across attempts: a retry resumes
            fetch(src, d.prefix, partial, bwlimit_bytes_per_s=rate, on_progress=progress, cancel=cancel)
            bad = local_mismatches(partial, self.datasets.files(d.id))
            if bad:
                shutil.rmtree(partial, ignore_errors=True)
                raise Mismatch(bad)
            for f in partial.rglob("*"):
                f.chmod(0o444 if f.is_file() else 0o711)  # jobs read hard links of these; the cache root is 0o700
            partial.rename(final)
        put(final, dst, d.prefix)

    def _relay_folder(self) -> Path:
        if self.relay_root is None:
            self.relay_root = self._own_root = Path(tempfile.mkdtemp(prefix="zhisuan-relay-"))
        return self.relay_root

    def _relayed(self, t: TransferRecord, d: DatasetRecord, src: S3Store | None, dst: S3Store | None, rate: float,
                 progress: Callable[[Progress], None], cancel: threading.Event) -> None:
        """A transfer to or from a center whose store only its agent reaches: through the server's disk (its
        agent gives the files there, or takes them from there), checked on the server between the legs."""
        files = self.datasets.files(d.id)
        here = self._relay_folder() / str(t.id)  # kept across attempts: files already whole are not asked again
        here.mkdir(parents=True, exist_ok=True, mode=0o700)
        legs = 2 if src is None and dst is None else 1
        if src is None:
            missing = {p: files[p] for p in local_mismatches(here, files)}
            if missing:
                relay_move(self.agents[t.source], self.relay, t.id, d.prefix, "take", here, missing, rate, cancel,
                           progress, (0.0, 1 / legs))
        else:
            fetch(src, d.prefix, here, cancel=cancel)  # the server and a store it reaches: not across the link
        bad = local_mismatches(here, files)
        if bad:
            shutil.rmtree(here, ignore_errors=True)
            raise Mismatch(bad)
        if dst is None:
            relay_move(self.agents[t.target], self.relay, t.id, d.prefix, "give", here, files, rate, cancel,
                       progress, ((legs - 1) / legs, 1 / legs))
            shutil.rmtree(here, ignore_errors=True)
            return
        final = self._local_path(d, t.target) if self.cache is not None else None
        if final is None or final.is_dir():
            put(here, dst, d.prefix)
            shutil.rmtree(here, ignore_errors=True)
            return
        for f in here.rglob("*"):
            f.chmod(0o444 if f.is_file() else 0o711)  # the center's jobs read hard links of these
        final.parent.mkdir(parents=True, exist_ok=True)
        here.rename(final)
        put(final, dst, d.prefix)

    def _failed(self, t: TransferRecord, why: str) -> None:
        if t.attempts + 1 >= ATTEMPTS:
            self._mark_replica(t, BAD)
            self._ended(t, FAILED, f"after {t.attempts + 1} attempts: {why}", self.clock())
            return
        self._retry_at[t.id] = self.clock() + PAUSE * 2 ** t.attempts
        self.datasets.update_transfer(t.id, state=QUEUED, error=why[:2000], rate=0.0)

    def _ended(self, t: TransferRecord, state: str, why: str | None, now: float) -> None:
        self._retry_at.pop(t.id, None)
        self.datasets.update_transfer(t.id, state=state, ended_at=now, rate=0.0,
                                      error=why[:2000] if why else None)
        if state in (FAILED, CANCELLED):
            self._mark_replica(t, None)

    def _mark_replica(self, t: TransferRecord, state: str | None) -> None:
        """The target's staging replica becomes `state` (None: dropped)."""
        now = self.clock()
        for r in self.datasets.replicas(t.dataset_id, t.target):
            if r.state in ("staging", BAD) or state == READY:
                if state is None:
                    self.datasets.drop_replica(r.id, now)
                else:
                    self.datasets.set_replica(r.id, now, state=state, last_used=now)

    def _others_need(self, t: TransferRecord) -> bool:
        return any(o.id != t.id for o in self.datasets.transfers(states=ACTIVE_TRANSFERS)
                   if o.dataset_id == t.dataset_id and o.target == t.target)

    def _collect_removed(self) -> None:
        for d, r in self.datasets.removed_with_replicas():
            store = self.stores.get(r.center)
            try:
                if store is not None:
                    remove(store, d.prefix)
                elif r.center in self.agents:
                    m = self.agents[r.center].move(Move(rid=1, op="remove", transfer=0, prefix=d.prefix))
                    if m.state != "done":
                        if m.state == "failed":
                            log.warning("removing %s from %s: %s", d.ref, r.center, m.error)
                        continue  # asked again next round: the agent removes it meanwhile
            except (TransferFailed, EngineDown) as e:
                log.warning("removing %s from %s: %s", d.ref, r.center, e)
                continue
            if self.cache is not None:
                shutil.rmtree(self._local_path(d, r.center), ignore_errors=True)
            self.datasets.drop_replica(r.id, self.clock())
