"""The simulator: arrivals, completions, outages and scheduling cycles on a virtual clock.

It keeps one `SchedulerState` (the same scheduler the live system runs) and tells it what happened.
Cycles run at multiples of `interval` seconds when something happened since the last one (interval 0:
at every event time). A job's run time on a chip = its remaining work / the chip's speed factor.
Preempted jobs keep their progress (checkpointing assumed, as in Tiresias and Gavel); jobs on a
center that goes down restart from scratch elsewhere (recovery = requeue).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

import numpy as np

from zhisuan.model import Request
from zhisuan.scheduler import PendingJob, Policy, TenantState
from zhisuan.scheduler.staging import move_to
from zhisuan.scheduler.state import SchedulerState
from zhisuan.scheduler.tables import PoolTable, RequestTable, holds
from zhisuan.sim.datasets import DataWorld
from zhisuan.sim.events import Event, EventQueue, Kind
from zhisuan.sim.joblog import JobLog, Series
from zhisuan.sim.predict import DurationPredictor
from zhisuan.sim.scenario import Scenario, request_for
from zhisuan.sim.speed import SpeedModel
from zhisuan.sim.trace import Trace, TraceJob, columns, copy_numbers

GC_CYCLES = 8192  # cycles between two collections of young cyclic garbage during a replay (6 days of 60 s cycles)


@dataclass(frozen=True)
class Outage:
    center: str
    start: float
    end: float


@dataclass(slots=True, init=False)
class SimJob:
    """A job between its arrival and its end: what the replay needs while it is live."""

    index: int  # in the trace's jobs (and the job log)
    id: str
    submit: float
    trace: TraceJob  # what it runs; a grown trace's copy reads its original's (whose id and submit differ)
    request: Request
    remaining: float  # work left, seconds on the trace's chip
    shape: int  # its request's row among the replay's distinct requests
    amount: float  # devices it holds while it runs (a share as its fraction)
    factor: float = 1.0  # speed of the current run's chip vs the one its work is measured on
    first_start: float = math.nan
    run_seconds: float = 0.0  # wall time spent running (all runs)
    started: float = math.nan  # start of the current run
    pool: int = -1  # pool of the current (or last) run
    version: int = 0  # bumps when a run is cut short, invalidating its finish event
    preemptions: int = 0
    restarts: int = 0
    measured_speed: bool = False
    staging: float = 0.0  # seconds of the current run spent moving inputs before the work

    def __init__(self, index: int, id: str, submit: float, trace: TraceJob, request: Request, remaining: float,
                 shape: int, amount: float) -> None:
        # written out, not the dataclass's: compiled, mypyc runs it natively (the generated one is interpreted)
        self.index, self.id, self.submit, self.trace, self.request = index, id, submit, trace, request
        self.remaining, self.shape, self.amount, self.factor = remaining, shape, amount, 1.0
        self.first_start, self.run_seconds, self.started, self.pool = math.nan, 0.0, math.nan, -1
        self.version, self.preemptions, self.restarts = 0, 0, 0
        self.measured_speed, self.staging = False, 0.0


@dataclass
class SimResult:
    trace: str
    scenario: Scenario
    policy: str
    estimates: str
    jobs: JobLog  # per-job outcomes, in the trace's order
    device_seconds: list[float]  # allocated, per scenario pool
    utilization: np.ndarray  # (n, 2): time, devices allocated after each change
    cycles: int
    wall_seconds: float
    notes: list[str] = field(default_factory=list)
    busy_fraction: float | None = None  # mean measured utilisation of allocated devices, where known
    # (n, 6): pool, start, end, devices, CPUs and GiB billed (model/billing.py: a CPU-only job's CPUs, or
    # beyond a job's share of a node) — what the cost report prices
    runs: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))
    epoch: float = 0.0  # epoch seconds of time 0 (the trace's start), for local-time tariffs
    deferred: int = 0  # jobs whose release was moved to a cheaper hour (time shifting)
    expired: int = 0  # jobs failed because their deadline could no longer be met
    transfers: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # (n, 4): job, GB, CNY, kgCO2


class Simulator:
    def __init__(self, trace: Trace, scenario: Scenario, policy: Policy, *, interval: float = 60.0,
                 estimates: Literal["oracle", "predicted"] = "oracle", outages: tuple[Outage, ...] = (),
                 stacks: frozenset[str] | None = None, deadlines: dict[str, float] | None = None,
                 rescale: bool = True, data: DataWorld | None = None) -> None:
        self.trace, self.scenario, self.policy = trace, scenario, policy
        self.data = data  # datasets the trace's jobs read (None: jobs read nothing worth moving)
        self.transfers = Series(4)
        self._landing: dict[int, tuple[tuple[str, ...], str]] = {}  # job -> inputs being staged, where
        self.deadlines = deadlines or {}  # job id -> deadline (trace clock), for the jobs that have one
        self.deferred: set[str] = set()  # jobs the scheduler held back for a cheaper hour
        self.runs = Series(6)
        self.interval, self.estimates, self.outages = interval, estimates, outages
        centers = {p.center for p in scenario.pools}
        for o in outages:  # an outage nowhere would silently replay as none
            if o.center not in centers:
                raise ValueError(f"outage at center {o.center!r}, which scenario {scenario.name} does not have "
                                 f"(its centers: {', '.join(sorted(centers))})")
            if not (math.isfinite(o.start) and math.isfinite(o.end)) or o.end <= o.start:
                raise ValueError(f"outage at {o.center}: start and end must be finite seconds, the end after the "
                                 f"start (got {o.start}, {o.end})")
        base, source, submit = columns(trace.jobs)
        self.base, self.source, self.copies = base, source, copy_numbers(trace.jobs)  # read a batch at a time
        self.tenants = {t: TenantState(t) for t in sorted({j.tenant for j in base})}
        self.state = SchedulerState(scenario.pools, policy, self.tenants, epoch=trace.start)
        self.speed = SpeedModel(trace.chip, rescale)
        self.predictor = DurationPredictor()
        stacks = stacks or frozenset([self.speed.trace_chip.stack])
        shapes: dict[tuple[object, ...], int] = {}
        self.requests: list[Request] = []
        shape_of_base = np.empty(len(base), dtype=np.int32)
        for k, j in enumerate(base):  # distinct jobs only: a grown trace's copies share their original's shape
            key = (j.devices, j.chip, j.home if scenario.siloed else None, j.nodes, j.allowed, j.milli, j.cpus,
                   j.memory_gib)
            if key not in shapes:
                shapes[key] = len(self.requests)
                self.requests.append(request_for(j, scenario, trace.chip, stacks))
            shape_of_base[k] = shapes[key]
        self.shape = shape_of_base[source]
        billed = holds(RequestTable.build(self.requests), PoolTable.build(scenario.pools))  # [shape, pool]
        # few rows, read per run: typed lists, so compiled code indexes them natively (numpy's tolist is untyped)
        self.billed_cpus: list[list[float]] = billed.cpus.tolist()
        self.billed_gib: list[list[float]] = billed.memory_gib.tolist()
        self.amounts: list[float] = [j.amount for j in base]  # per distinct job, read at each arrival (float64)
        self.log = JobLog(trace.jobs, submit, np.array(self.amounts, dtype=np.float32)[source])
        # jobs no pool of the scenario could ever run are set aside (counted), not queued forever
        cache = self.state.cache
        possible = np.zeros(len(self.requests), dtype=bool)
        for k, req in enumerate(self.requests):
            row = cache.row_of(req)  # may extend cache.ranking: read it after
            possible[k] = bool(cache.ranking.prefs[row])
        runnable = possible[self.shape]
        self.impossible = int((~runnable).sum())
        order = np.argsort(submit, kind="stable")
        self.arrivals = order[runnable[order]]  # job indices in arrival order
        self.live: list[SimJob | None] = [None] * len(submit)  # by index: a list slot, not a dict entry, per job
        self.by_id: dict[str, SimJob] = {}  # the live jobs by id (decisions name jobs so): one lookup, not two
        self.device_seconds = [0.0] * len(scenario.pools)
        self.allocated = 0.0
        self.utilization = Series(2)
        self.utilization.append(0.0, 0)
        self.cycles = 0
        # retired jobs not yet in the log: index, first start, end, run seconds, pool, preemptions, restarts,
        # measured speed, expired (typed rows, so the log takes a block of them in one numpy call per column)
        self._retired = Series(9)

    def run(self, progress: Callable[[int], None] | None = None) -> SimResult:
        """Replay the trace. What exists before it (the trace, the scenario, the scheduler's tables) lives through
        the replay: it is kept out of the cyclic GC's scans meanwhile. The replay leaves no cyclic garbage of its
        own (its objects die by reference count), yet the collector's automatic passes, run every few hundred
        allocations, rescanned its live jobs and cost a fifth of a national-scale replay: instead the young
        objects are collected once every GC_CYCLES cycles, so cyclic garbage a policy's plugin might make is still
        freed. Both settings are the process's, as the GC's are; the collector is on again when the replay ends."""
        gc.freeze()
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._replay(progress)
        finally:
            gc.unfreeze()
            if enabled:
                gc.enable()

    def _replay(self, progress: Callable[[int], None] | None) -> SimResult:
        t0 = time.perf_counter()
        events = EventQueue(self.interval if self.interval > 0 else 60.0)  # a bucket per cycle
        wakes: set[float] = set()
        for k, o in enumerate(self.outages):
            events.push(o.start, Kind.DOWN, k)
            events.push(o.end, Kind.UP, k)
        arrivals = self.arrivals
        times = self.log.submit[arrivals]
        nxt, n = 0, len(arrivals)
        done = 0
        while events or nxt < n:
            if self.interval > 0:  # the events' buckets are as wide as the interval: the first one's end is its tick
                tick = min(events.next_tick() if events else math.inf,
                           math.ceil(float(times[nxt]) / self.interval) * self.interval if nxt < n else math.inf)
            else:
                tick = float(min(events.peek_time() if events else math.inf, times[nxt] if nxt < n else math.inf))
            upto = int(times.searchsorted(tick, "right"))
            popped = events.pop_until(tick)
            k = 0
            # arrivals first at equal times, as when they were events
            batch = arrivals[nxt:upto]
            for i, when, source, copy, shape in zip(batch.tolist(), times[nxt:upto].tolist(),
                                                    self.source[batch].tolist(), self.copies[batch].tolist(),
                                                    self.shape[batch].tolist(), strict=True):
                while k < len(popped) and popped[k][0] < when:
                    done += self._event(popped[k])
                    k += 1
                self._arrive(i, when, source, copy, shape)
            nxt = upto
            for event in popped[k:]:
                done += self._event(event)
            if self.state.has_work(tick):
                self._cycle(tick, events)
            due = self.state.next_release()
            if due is not None and due > tick and due not in wakes:
                wakes.add(due)
                events.push(due, Kind.WAKE, 0)
            if progress is not None and done:
                progress(done)
                done = 0
        for job in [j for j in self.live if j is not None]:  # never finished (e.g. its center never came back)
            self._retire(job)
        self._log_retired()
        expired = int(self.log.expired.sum())
        notes = [*self.trace.notes, *self.scenario.notes]
        if expired:
            notes.append(f"{expired} jobs failed: their deadline could no longer be met")
        if self.impossible:
            notes.append(f"{self.impossible} jobs no pool of scenario {self.scenario.name} can run were "
                         "left out (e.g. too large a gang, or a chip the network lacks)")
        return SimResult(self.trace.name, self.scenario, self.policy.name, self.estimates, self.log,
                         self.device_seconds, self.utilization.take(), self.cycles, time.perf_counter() - t0,
                         notes, self._busy_fraction(), self.runs.take(), self.trace.start, len(self.deferred),
                         expired, self.transfers.take())

    def _event(self, event: Event) -> int:
        """Apply one queued event; 1 if a job finished."""
        when, _, kind, subject, version = event
        if kind is Kind.FINISH:
            job = self.live[subject]
            if job is not None and job.version == version:
                self._finish(job, when)
                return 1
        elif kind is Kind.DOWN:
            self._down(self.outages[subject].center, when)
        elif kind is Kind.UP:
            self.state.set_healthy(self.outages[subject].center, True)
        elif kind is Kind.STAGED:
            self._staged(subject, version)
        return 0

    def _arrive(self, i: int, when: float, source: int, copy: int, shape: int) -> None:
        """Job i arrives: the `copy`th copy of the trace's distinct job `source` (0: itself)."""
        t = self.base[source]
        job = SimJob(i, t.id if copy == 0 else f"{t.id}~{copy}", when, t, self.requests[shape], t.duration, shape,
                     self.amounts[source])  # the id: trace.copy_id's, written here where mypyc compiles it
        self.live[i] = job
        self.by_id[job.id] = job
        self._submit(job)

    def _retire(self, job: SimJob, end: float = math.nan, expired: bool = False) -> None:
        """The job is done with: its outcome goes to the log, its object away."""
        i = job.index
        self._retired.append(i, job.first_start, end, job.run_seconds, job.pool, job.preemptions, job.restarts,
                             1.0 if job.measured_speed else 0.0, 1.0 if expired else 0.0)
        if len(self._retired) >= 4096:
            self._log_retired()
        self.live[i] = None
        del self.by_id[job.id]

    def _log_retired(self) -> None:
        """Write the retired jobs' outcomes into the log's arrays, a block at a time (one numpy call per column,
        not one per value)."""
        if not len(self._retired):
            return
        log = self.log
        rows = self._retired.take()
        idx = rows[:, 0].astype(np.int64)
        arrays: list[np.ndarray] = [log.first_start, log.end, log.run_seconds, log.pool, log.preemptions, log.restarts,
                                    log.measured_speed, log.expired]
        for k, arr in enumerate(arrays, 1):
            arr[idx] = rows[:, k]  # counts and flags exact in float64; numpy casts them to each column's type

    def _estimate(self, job: SimJob) -> float:
        if self.estimates == "oracle":
            return job.remaining
        done = job.trace.duration - job.remaining
        return max(self.predictor.predict(job.trace.tenant, job.trace.devices) - done, 60.0)

    def _submit(self, job: SimJob) -> None:
        t = job.trace
        request = job.request
        if t.inputs and self.data is not None:
            request = self.data.request(request, t.inputs, t.duration)
        pending = PendingJob(job.id, t.tenant, request, job.submit, self._estimate(job), t.priority,
                             deadline=self.deadlines.get(job.id))
        self.state.submit(pending)
        if pending.release > job.submit:
            self.deferred.add(job.id)

    def _cycle(self, now: float, events: EventQueue) -> None:
        result = self.state.cycle(now, waits=False)  # decisions only: a replay reports no wait reasons
        self.cycles += 1
        if self.cycles % GC_CYCLES == 0:
            gc.collect(1)  # the young generations only: what survives is long-lived and never rescanned
        for x in result.expired:
            self._retire(self.by_id[x.job_id], expired=True)
        for p in result.preemptions:  # the state freed their devices and recorded their service
            job = self.by_id[p.job_id]
            self._stop(job, now)
            job.preemptions += 1
            self._submit(job)
        for s in result.starts:
            job = self.by_id[s.job_id]
            job.factor, job.measured_speed = self.speed.factor(job.trace.application,
                                                               self.scenario.pools[s.pool].chip, job.trace.chip)
            job.pool, job.started = s.pool, now
            if math.isnan(job.first_start):
                job.first_start = now
            self.allocated += job.amount
            job.staging = s.ranking.staging_rows[s.request][s.pool]
            if job.staging > 0:
                self._stage(job, s.ranking.reqs.reqs[s.request], s.pool, now, events)
            events.push(now + job.staging + job.remaining / job.factor, Kind.FINISH, job.index, job.version)
        if result.starts or result.preemptions:
            self.utilization.append(now, self.allocated)

    def _stop(self, job: SimJob, now: float) -> None:
        """End the current run at `now`: account its device-time and progress."""
        ran = now - job.started
        devices = job.amount
        job.remaining = max(job.remaining - max(ran - job.staging, 0.0) * job.factor, 0.0)  # staging does no work
        job.run_seconds += ran
        job.version += 1
        self.device_seconds[job.pool] = self.device_seconds[job.pool] + devices * ran  # `+=` on an item: generic
        self.runs.append(job.pool, job.started, now, devices, self.billed_cpus[job.shape][job.pool],
                         self.billed_gib[job.shape][job.pool])
        self.allocated -= devices

    def _finish(self, job: SimJob, now: float) -> None:
        self.state.end(job.id, now)
        self._stop(job, now)
        if self.estimates == "predicted":  # the oracle never asks the predictor
            self.predictor.observe(job.trace.tenant, job.trace.devices, job.trace.duration)
        self.utilization.append(now, self.allocated)
        self._retire(job, now)

    def _down(self, center: str, now: float) -> None:
        self.state.set_healthy(center, False)
        for pool in self.scenario.pools:
            if pool.center != center:
                continue
            for alloc in self.state.running(pool.key):
                job = self.by_id[alloc.job_id]
                self.state.end(alloc.job_id, now, requeue=True, keep_progress=False)
                self._stop(job, now)
                job.remaining = job.trace.duration  # restarts from scratch elsewhere
                job.restarts += 1
                self._submit(job)
        self.utilization.append(now, self.allocated)

    def _stage(self, job: SimJob, request: Request, p: int, now: float, events: EventQueue) -> None:
        """The run begins by moving its inputs: bill the transfer, land the replicas when it is done."""
        pool = self.scenario.pools[p]
        move = move_to(request, pool)
        self.transfers.append(job.index, move.gb, move.cny, move.kwh * pool.carbon_kg_per_kwh)
        self._landing[job.index] = (tuple(leg.dataset for leg in move.legs), pool.center)
        events.push(now + job.staging, Kind.STAGED, job.index, job.version)

    def _staged(self, i: int, version: int) -> None:
        """Replicas landed: queued jobs reading them are resolved again (the data is now nearer)."""
        names, center = self._landing.pop(i, ((), ""))
        job = self.live[i]
        if self.data is None or job is None or job.version != version:
            return  # cut short before its data arrived: nothing landed
        new = {n for n in names if self.data.landed(n, center)}
        if not new:
            return
        for pending in list(self.state.pending.values()):
            if any(d.name in new for d in pending.request.inputs):
                queued = self.by_id[pending.id]
                self.state.withdraw(pending.id)
                self._submit(queued)

    def _busy_fraction(self) -> float | None:
        cdf = self.trace.busy_cdf
        if not cdf:
            return None
        # mean of the measured utilisation distribution (trapezoid over its quantiles), 0..1
        area = sum((u0 + u1) / 2 * (c1 - c0) for (u0, c0), (u1, c1) in pairwise(cdf))
        return area / 100.0 / 100.0
