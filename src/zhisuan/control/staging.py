"""Staging, live: a placed job whose inputs are not yet at its center waits in `staging` — holding its
devices, as the scheduler counted — while the mover copies them there; then it starts.

- Inputs already on their way to that center (another job's staging, a `data replicate`) are waited
  for, not copied twice.
- Progress (bytes done / total, rate) is in the transfers the job's `show` lists.
- A transfer that fails for good fails the job with the reason (a checksum mismatch names the files);
  cancelling the job stops its transfers.
- When a replica lands, queued jobs that read it are resolved again: the data is nearer now.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from zhisuan.control.datasets import DataService
from zhisuan.control.jobs import JobInfo, Run
from zhisuan.control.outputs import publish, publish_through
from zhisuan.control.rules import keep_rules
from zhisuan.control.transfers import Mover, stores_of
from zhisuan.model import JobSpec, JobState, Network, SpecError, request_from_spec
from zhisuan.model.datasets import InputData, split_ref
from zhisuan.model.links import link_between
from zhisuan.store.datasets import (
    ACTIVE_TRANSFERS,
    EVICTING,
    READY,
    DatasetRecord,
    DatasetStore,
    TransferRecord,
)

if TYPE_CHECKING:
    from zhisuan.control.loop import ControlLoop

log = logging.getLogger("zhisuan.data")
RULES_EVERY = 5.0  # seconds between checks of the replication rules


def data_services(loop: ControlLoop, network: Network, datasets: DatasetStore) -> tuple[DataService, Mover | None]:
    """The data service, and — when the server reaches centers' stores itself — the mover that carries out
    transfers and the loop's stager (set on the loop) that stages placed jobs' inputs."""
    data = DataService(network, datasets, stores_of(network))
    agents = {name: link for name, link in loop.links.items() if link.remote and name in data.relayed}
    mover = Mover(network, datasets, data.stores, agents=agents) if data.stores or agents else None
    if mover is not None:
        loop.stager = Stager(loop, data, mover)
    return data, mover


@dataclass
class Staging:
    run: Run
    waits: dict[str, str] = field(default_factory=dict)  # dataset id -> its ref, until ready at the run's center


class Stager:
    def __init__(self, loop: ControlLoop, data: DataService, mover: Mover) -> None:
        self.loop, self.data, self.mover = loop, data, mover
        self.staging: dict[str, Staging] = {}  # job id -> what it waits for
        self._done = -1  # transfers done when queued jobs were last resolved
        self._rules_kept = float("-inf")

    def resolve(self, spec: JobSpec) -> tuple[InputData, ...]:
        return self.data.inputs_of(spec)

    def refresh(self, info: JobInfo) -> None:
        """The job's request with its inputs as they are now (replicas come and go)."""
        if info.spec.inputs:
            info.request = request_from_spec(info.spec, self.resolve(info.spec), info.duration / 3600.0)

    def recover(self, now: float) -> None:
        """After a restart: runs that were staging wait again for their inputs (transfers that were running
        resume in the mover); queued jobs are resolved again at the next step."""
        self._done = -1
        for run in self.loop.runs.values():
            rec = self.loop.store.get(run.job_id)
            info = self.loop.jobs.get(run.job_id)
            if rec is None or info is None or rec.state is not JobState.STAGING:
                continue
            waits = self._waits(run, info, now)
            self.staging[run.job_id] = Staging(run, waits)

    # ---- a placed job ------------------------------------------------------------------------------

    def begin(self, run: Run, info: JobInfo, now: float) -> bool:
        """True when the job must stage first (it is then `staging`); False: its inputs are there."""
        if not info.spec.inputs:
            return False
        waits = self._waits(run, info, now)
        if not waits:
            return False
        self.staging[run.job_id] = Staging(run, waits)
        total = sum(d.size_bytes for d in self._datasets(info) if d.id in waits)
        self.loop.store.transition(run.job_id, JobState.STAGING, now,
                                   f"staging {len(waits)} input(s), {total / 1e9:,.2f} GB, to {run.center}")
        self.mover.kick()
        return True

    def _waits(self, run: Run, info: JobInfo, now: float) -> dict[str, str]:
        """The job's datasets not yet usable at its center (their transfers queued if none is on its way)."""
        waits: dict[str, str] = {}
        for d in self._datasets(info):
            if self._usable(d.id, run.center):
                self.data.datasets.touch(d.id, run.center, now)
                continue
            if not self.data.datasets.replicas(d.id, run.center):
                self._queue(d, run, info, now)
            waits[d.id] = d.ref
        return waits

    def _datasets(self, info: JobInfo) -> list[DatasetRecord]:
        out = []
        for ref in info.spec.inputs.values():
            d = self.data.datasets.get(*split_ref(ref, info.tenant))
            if d is not None:  # removed since it was queued: refresh fails the job by name
                out.append(d)
        return out

    def _usable(self, dataset_id: str, center: str) -> bool:
        """Whether a job at `center` may read the dataset now: a checked replica there — and, for a center whose
        jobs this server starts, its checked copy on the center's disk (fetched from the replica if need be)."""
        ready = any(r.state == READY for r in self.data.datasets.replicas(dataset_id, center))
        if self.mover.cache is None or center not in self.mover.stores:
            return ready
        if self.mover.present(dataset_id, center) is not None:
            return True
        if ready:
            self.mover.local(dataset_id, center)  # the replica is there: copy it onto the center's disk
        return False

    def inputs_for(self, run: Run, info: JobInfo) -> dict[str, str]:
        """Mount -> the local folder its dataset's checked copy is in, for the engine to hand the job; at a
        center whose agent keeps its store, the dataset's key prefix there (the agent hands its own copy)."""
        out = {}
        for mount, ref in info.spec.inputs.items():
            d = self.data.datasets.get(*split_ref(ref, info.tenant))
            if d is not None and run.center in self.mover.agents:
                out[mount] = d.prefix
                continue
            path = self.mover.present(d.id, run.center) if d is not None else None
            if path is not None:
                out[mount] = str(path)
        return out

    def _queue(self, d: DatasetRecord, run: Run, info: JobInfo, now: float) -> None:
        self._make_room(run.center, d.size_bytes, now)
        source = self.data.nearest(d, run.center)
        link = link_between(self.data.network.center(source), self.data.network.center(run.center),
                            self.data.network.links)
        self.data.datasets.add_replica(d.id, run.center, "staging", d.size_bytes, now)
        self.data.datasets.queue_transfer(d.id, info.tenant, source, run.center, run.job_id, d.size_bytes,
                                          link.cny_per_gb, now)

    def _make_room(self, center: str, size: int, now: float) -> None:
        """Evict least-recently-used replicas at `center` until `size` more bytes fit its store: never one
        pinned by a rule, read by a job staging or running there, or the last checked copy of its dataset."""
        capacity = self.data.capacity_gb(center) * 1e9
        here = self.data.datasets.replicas(center=center)
        used = sum(r.size_bytes for r in here)
        if used + size <= capacity:
            return
        busy = {d.id for job_id, run in self.loop.runs.items() if run.center == center
                and (info := self.loop.jobs.get(job_id)) is not None for d in self._datasets(info)}
        for r in sorted((r for r in here if r.state == READY and not r.pinned and r.dataset_id not in busy),
                        key=lambda r: r.last_used):
            copies = [x for x in self.data.datasets.replicas(r.dataset_id) if x.state == READY]
            if len(copies) < 2:
                continue
            self.data.datasets.set_replica(r.id, now, state=EVICTING)
            used -= r.size_bytes
            log.info("evicted", extra={"fields": {"replica": r.id, "center": center, "bytes": r.size_bytes}})
            if used + size <= capacity:
                self.mover.kick()
                return
        raise SpecError([("inputs", f"{center}'s store cannot make room for {size / 1e9:,.2f} GB "
                                    f"({used / 1e9:,.2f} of {capacity / 1e9:,.2f} GB held by data in use)")])

    def succeeded(self, run: Run, info: JobInfo) -> None:
        """A job with `outputs` succeeded: its outputs become datasets at its center (on the mover's thread,
        or through the center's agent on a thread of their own: reading the job's folder and uploading are
        slow)."""
        agent = self.mover.agents.get(run.center)
        if info.spec.outputs and agent is not None and run.handle:
            handle, outputs = run.handle, dict(info.spec.outputs)
            threading.Thread(target=publish_through, args=(self.data, agent, info.tenant, run.center, handle,
                                                            outputs), name="zhisuan-outputs", daemon=True).start()
            return
        store = self.mover.stores.get(run.center)
        link = self.loop.links.get(run.center)
        native = link.native(run.handle) if link is not None and run.handle else None
        if not info.spec.outputs or store is None or native is None or not Path(native).is_dir():
            if info.spec.outputs:
                log.warning("outputs of %s are lost: %s's jobs are not this server's to read", run.job_id, run.center)
            return
        self.mover.later(lambda: publish(self.data, store, info.tenant, run.center, Path(native) / "work",
                                         dict(info.spec.outputs)))

    def cancel(self, job_id: str, now: float) -> None:
        if self.staging.pop(job_id, None) is not None:
            self.mover.cancel_job(job_id, now)

    # ---- each step ---------------------------------------------------------------------------------

    def step(self, now: float) -> None:
        """Start the jobs whose inputs have all landed; fail those whose transfers failed for good."""
        for job_id, st in list(self.staging.items()):
            if job_id not in self.loop.runs:
                self.cancel(job_id, now)  # cancelled or requeued meanwhile
                continue
            failed = None
            for dataset_id in list(st.waits):
                if self._usable(dataset_id, st.run.center):
                    del st.waits[dataset_id]
                    continue
                replicas = self.data.datasets.replicas(dataset_id, st.run.center)
                if any(r.state == READY for r in replicas):
                    continue  # being copied onto the center's disk
                if not replicas or not any(t.state in ACTIVE_TRANSFERS for t in
                                           self._transfers_to(dataset_id, st.run.center)):
                    failed = self._why(dataset_id, st)
            if failed is not None:
                del self.staging[job_id]
                self.mover.cancel_job(job_id, now)
                self.loop.carrier.fail_run(st.run, now, failed)
            elif not st.waits:
                del self.staging[job_id]
                self.loop.store.transition(job_id, JobState.SCHEDULED, now, f"inputs staged at {st.run.center}")
                self.loop.carrier.launch(st.run, now)
        self._requeue_nearer(now)
        if now - self._rules_kept >= RULES_EVERY:
            self._rules_kept = now
            if keep_rules(self.data, now):
                self.mover.kick()

    def _transfers_to(self, dataset_id: str, center: str) -> list[TransferRecord]:
        return [t for t in self.data.datasets.transfers(states=ACTIVE_TRANSFERS, dataset_id=dataset_id)
                if t.target == center]

    def _why(self, dataset_id: str, st: Staging) -> str:
        last = [t for t in self.data.datasets.transfers(job_id=st.run.job_id) if t.dataset_id == dataset_id]
        reason = last[-1].error if last and last[-1].error else "its transfer ended without a checked replica"
        return f"staging {st.waits[dataset_id]} to {st.run.center} failed: {reason}"

    def _requeue_nearer(self, now: float) -> None:
        """Once a transfer has landed a replica, queued jobs reading datasets are resolved again."""
        done = self.data.datasets.done_count()
        if done == self._done:
            return
        self._done = done
        pending = self.loop.state.pending
        for job_id, job in list(pending.items()):
            info = self.loop.jobs.get(job_id)
            if info is None or not info.spec.inputs:
                continue
            try:
                fresh = self.resolve(info.spec)
            except SpecError as e:
                self.loop.settle(job_id, JobState.FAILED, now, f"inputs: {e}")
                continue
            if fresh != job.request.inputs:
                info.request = request_from_spec(info.spec, fresh, info.duration / 3600.0)
                self.loop.state.withdraw(job_id)
                self.loop.state.submit(info.pending(self.loop.state.ledger.progress.get(job_id, 0.0)))
