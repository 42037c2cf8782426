"""The scheduler's cache and its driver contract, after the Kubernetes scheduler cache: pools,
node-level capacity, pending jobs, memoised rankings and the service ledger, kept between cycles.

Both drivers — the simulator on a virtual clock, the live control loop on the wall clock — keep one
`SchedulerState` and tell it what happened in the world:

- `submit(job)` / `withdraw(id)`: a job joins or leaves the queue (submitted, requeued; cancelled);
- `started(id, at)`: a placed job really began to run (its run, and its service, start then);
- `end(id, at)`: a run ended (finished, failed, cancelled, preempted by its owner, failed over);
- `unplace(id)`: a placement that never ran is given back (an engine refused it, or it was withdrawn
  from a center's own queue);
- `hold(running)`: a job found running (recovery after a restart);
- `set_healthy(center, ok)`: a center went down or came back;
- `set_external(pool, load)`: what else occupies a pool (the center's own users, drained nodes);
- `cycle(now)`: order and assign the queue; starts and preemptions are applied to the state at once;
  jobs past their latest start for a deadline are returned as `expired` (the driver fails them).

`epoch` is the calendar time of the driver's 0 (the simulator's clock starts at its trace's start; the
live clock is the calendar): tariffs, grid series and deferral read the calendar.

Same events in, same decisions out: `cycle(snapshot)` builds a fresh state from a snapshot and runs
the very same `Assigner`, so a snapshot and the incremental state that led to it decide alike.
"""

from __future__ import annotations

import math
from dataclasses import replace
from heapq import heapify, heappop, heappush  # names, not the module's attributes: a global read in compiled code

from zhisuan.model import Request
from zhisuan.scheduler.assign import Assigner
from zhisuan.scheduler.capacity import Allocation, PoolCapacity, allocation_of
from zhisuan.scheduler.decisions import DEADLINE, CycleResult, Unschedulable
from zhisuan.scheduler.deferral import Deferral
from zhisuan.scheduler.framework import Book, Policy
from zhisuan.scheduler.ledger import HALF_LIFE, ServiceLedger
from zhisuan.scheduler.queue import PendingQueue
from zhisuan.scheduler.ranking import RankCache
from zhisuan.scheduler.snapshot import PendingJob, PoolState, RunningJob, Snapshot, TenantState
from zhisuan.scheduler.tables import PoolTable

EXTERNAL = ""  # tenant of allocations that are not zhisuan's (a center's own load): no quota, no fair share


class SchedulerState:
    def __init__(self, pools: list[PoolState], policy: Policy,
                 tenants: dict[str, TenantState] | None = None, epoch: float = 0.0) -> None:
        self.pools = list(pools)
        self.policy = policy
        self.epoch = epoch
        self.deferral = Deferral(self.pools) if policy.defer else None
        self.deferred: list[tuple[float, int, PendingJob]] = []  # (release, seq, job): not queued before then
        self.deferred_ids: set[str] = set()
        self.deadlines: list[tuple[float, str]] = []  # (latest start, job id) of queued jobs with a deadline
        self._seq = 0
        self.tenants = tenants if tenants is not None else {}
        self.ledger = ServiceLedger(self.tenants, getattr(policy.queue_sort, "half_life", HALF_LIFE))
        self.index = {p.key: i for i, p in enumerate(self.pools)}
        self.caps = [PoolCapacity.of(p) for p in self.pools]
        self.placed: dict[str, int] = {}  # job id -> pool index of its allocation
        self.external: dict[int, list[str]] = {}  # pool index -> ids of the external allocations held there
        self.queue = PendingQueue(policy.queue_sort)
        self.held: dict[str, int] = {}  # thousandths of a device per tenant (quotas)
        self.cache = RankCache(PoolTable.build(self.pools), policy)
        make_book = getattr(policy.queue_sort, "book", None)
        self.book: Book | None = make_book() if make_book is not None else None

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, policy: Policy, epoch: float = 0.0) -> SchedulerState:
        state = cls(snapshot.pools, policy, snapshot.tenants, epoch)
        for running in snapshot.running:
            state.hold(running)
        for cap in state.caps:  # as a state that has run a while keeps them: each start then inserts, none sorts
            cap.by_end()
        state.submit_many(snapshot.pending)
        return state

    def _enqueue(self, jobs: list[PendingJob]) -> None:
        rows = self.cache.rows_of(jobs)
        self.queue.add_many(jobs, rows)

    @property
    def pending(self) -> dict[str, PendingJob]:
        """Queued jobs (deferred ones are not: see `deferred`)."""
        return self.queue.jobs

    def is_pending(self, job_id: str) -> bool:
        """Queued or deferred."""
        return job_id in self.queue.jobs or job_id in self.deferred_ids

    def pool_index(self, key: str) -> int:
        i = self.index.get(key)
        if i is None:
            raise ValueError(f"unknown pool {key!r}")
        return i

    def allocation(self, job_id: str) -> Allocation | None:
        p = self.placed.get(job_id)
        return None if p is None else self.caps[p].allocations.get(job_id)

    # ---- world events ------------------------------------------------------------------------------

    def hold(self, job: RunningJob) -> None:
        """A job runs on these nodes (started elsewhere, or re-adopted after a restart)."""
        i = self.index.get(job.pool)
        if i is None:
            raise ValueError(f"running job {job.id} is in unknown pool {job.pool!r}")
        self.caps[i].hold(allocation_of(job))
        if job.tenant != EXTERNAL:
            self.placed[job.id] = i
            self.held[job.tenant] = self.held.get(job.tenant, 0) + (job.milli or job.devices * 1000)

    def submit(self, job: PendingJob) -> None:
        """A job joins the queue; a requeued one keeps the service it already received; a deferrable one
        may first wait for a cheaper hour."""
        if job.deadline is not None or job.release > job.submit_time:
            self.submit_many([job])
            return
        attained = self.ledger.attained.get(job.id)
        if attained is not None and attained > job.attained:
            job.attained = attained
        if self.book is not None:
            self.book.submitted(job)
        self.queue.add(job, self.cache.row_of(job.request))

    def _add(self, jobs: list[PendingJob]) -> None:
        if len(jobs) == 1:  # one insertion, not a sort of its list
            self.queue.add(jobs[0], self.cache.row_of(jobs[0].request))
        else:
            self._enqueue(jobs)

    def submit_many(self, jobs: list[PendingJob]) -> None:
        """Jobs join the queue (a restart, a burst: one sort per list, not an insertion per job)."""
        now: list[PendingJob] = []
        for job in jobs:
            job.attained = max(job.attained, self.ledger.attained.get(job.id, 0.0))
            if self.book is not None:
                self.book.submitted(job)
            if job.deadline is not None:
                self._watch_deadline(job)
            if job.release > job.submit_time:
                heappush(self.deferred, (job.release, self._seq, job))
                self.deferred_ids.add(job.id)
                self._seq += 1
            else:
                now.append(job)
        if now:
            self._add(now)

    def _watch_deadline(self, job: PendingJob) -> None:
        r = self.cache.row_of(job.request)
        speeds = [self.cache.ranking.speed_rows[r][p] for p in self.cache.ranking.prefs[r]]
        latest = job.deadline - job.duration / max(speeds) if speeds and job.deadline is not None else math.inf
        heappush(self.deadlines, (latest, job.id))
        if self.deferral is not None and job.release == -math.inf:
            when = self.deferral.release(job.submit_time + self.epoch, latest + self.epoch)
            if when is not None:
                job.release = when - self.epoch

    def has_work(self, now: float) -> bool:
        """Something to decide at `now`: queued jobs, or deferred ones due."""
        return bool(self.queue.jobs) or bool(self.deferred and self.deferred[0][0] <= now)

    def next_release(self) -> float | None:
        """When the next deferred job is due, or the policy's priorities change by themselves (a LAS
        demotion, a Gavel round): the simulator schedules a cycle then."""
        due = self.deferred[0][0] if self.deferred else None
        change = self.book.next_change() if self.book is not None else None
        when = change if due is None else due if change is None else min(due, change)
        return None if when is None else float(when)  # plugins' times may be numpy's; the compiled engine wants floats

    def withdraw(self, job_id: str) -> PendingJob | None:
        """Remove a pending job (cancelled, or started by this state's cycle)."""
        found = self.queue.where.get(job_id)
        if found is None:
            if job_id not in self.deferred_ids:
                return None
            self.deferred_ids.discard(job_id)
            k = next(k for k, (_, _, job) in enumerate(self.deferred) if job.id == job_id)
            job = self.deferred[k][2]
            self.deferred[k] = self.deferred[-1]
            self.deferred.pop()
            heapify(self.deferred)
            return job
        return self.queue.remove(job_id)

    def started(self, job_id: str, at: float) -> None:
        """A placed job began to run at `at` (its engine reported it): service and expected end count from then."""
        alloc = self.allocation(job_id)
        if alloc is not None and at > alloc.start:
            self.caps[self.placed[job_id]].moved(alloc, at, alloc.end + at - alloc.start)

    def end(self, job_id: str, at: float, requeue: bool = False, keep_progress: bool = True) -> Allocation | None:
        """A run ended at `at`: its devices are free again and the service it received is recorded.
        `requeue`: the job will be submitted again (preempted, failed over), so its attained service stays;
        `keep_progress=False`: it restarts from scratch (no checkpoint to resume from)."""
        alloc = self._release(job_id)
        if alloc is None:
            return None
        if not requeue and self.book is None:  # ended for good, and no book to tell: only its tenant's usage stays
            self._record(alloc, at, final=True)
            return alloc
        self._record(alloc, at)
        if not requeue:
            self.forget(job_id)
        elif not keep_progress:
            self.ledger.progress.pop(job_id, None)
        return alloc

    def forget(self, job_id: str) -> None:
        """The job has ended for good: its per-job service and the policy's memory of it go."""
        self.ledger.forget(job_id)
        if self.book is not None:
            self.book.forget(job_id)

    def unplace(self, job_id: str) -> Allocation | None:
        """A placement that never ran is given back, without any service recorded."""
        return self._release(job_id)

    def set_healthy(self, center: str, healthy: bool) -> None:
        """Failover: an unhealthy center's pools are filtered out from the next cycle on."""
        if all(p.healthy == healthy for p in self.pools if p.center == center):
            return
        self.pools = [replace(p, healthy=healthy) if p.center == center else p for p in self.pools]
        self.cache = RankCache(PoolTable.build(self.pools), self.policy)
        jobs = list(self.queue.jobs.values())
        self.queue = PendingQueue(self.policy.queue_sort)
        self._enqueue(jobs)

    def set_external(self, pool: str, load: list[RunningJob]) -> None:
        """What else occupies `pool` now (replaces the last report): the center's own jobs until their
        expected ends, drained or down nodes (end = inf). Where a report and zhisuan's own jobs disagree
        about a node (a moment's race), zhisuan's jobs count and the report holds what is left."""
        p = self.pool_index(pool)
        cap = self.caps[p]
        for job_id in self.external.pop(p, []):
            cap.release(job_id)
        ids = []
        for job in load:
            for n in job.nodes:
                take = min(job.devices_per_node, cap.free[n]) if 0 <= n < len(cap.free) else 0
                if take <= 0:
                    continue
                alloc = Allocation(f"{job.id}@{n}", EXTERNAL, (n,), take, job.expected_end, job.priority, False,
                                   job.start)
                cap.hold(alloc)
                ids.append(alloc.job_id)
        if ids:
            self.external[p] = ids

    # ---- reading -----------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current state as a plain snapshot (explain/quote against live state; tests)."""
        pending = [*self.queue.jobs.values(), *(job for _, _, job in sorted(self.deferred))]
        return Snapshot(list(self.pools), self.running_jobs(), pending, self.tenants)

    def running_jobs(self) -> list[RunningJob]:
        """Every allocation as a RunningJob, the external load included (tenant EXTERNAL)."""
        return [
            RunningJob(a.job_id, a.tenant, pool.key, a.nodes, a.devices_per_node, a.start, a.end, a.priority,
                       a.preemptible, a.attained, milli=a.milli, cpus=a.cpu / 1000, memory_gib=a.memory / 1024)
            for pool, cap in zip(self.pools, self.caps, strict=True)
            for a in cap.allocations.values()
        ]

    def running(self, pool: str) -> list[Allocation]:
        """zhisuan's allocations in a pool (not the external load)."""
        return [a for a in self.caps[self.pool_index(pool)].allocations.values() if a.tenant != EXTERNAL]

    # ---- the cycle ---------------------------------------------------------------------------------

    def cycle(self, now: float, waits: bool = True) -> CycleResult:
        """Order and assign the pending jobs; started jobs then hold their devices here, preempted ones
        have theirs freed and their run recorded (their driver stops and requeues them). `waits=False`: the
        jobs the walk left waiting unvisited are not listed (`rest`: a replay reports no wait reasons), and the
        walk passes over them reading only their rows."""
        self.cache.refresh(now + self.epoch)
        due = []
        while self.deferred and self.deferred[0][0] <= now:
            due.append(heappop(self.deferred)[2])
            self.deferred_ids.discard(due[-1].id)
        if due:
            self._add(due)
        expired = []
        while self.deadlines and self.deadlines[0][0] < now:
            _, job_id = heappop(self.deadlines)
            if self.withdraw(job_id) is not None:
                expired.append(Unschedulable(job_id, DEADLINE))
        if self.book is not None:
            self._rekey(self.book.prepare(self.queue.jobs, self, now))
        ranking = self.cache.ranking
        unschedulable = sorted(r for r in self.queue.present_rows() if not ranking.prefs[r])
        snapshot = Snapshot(self.pools, [], [], self.tenants)
        assigner = Assigner(snapshot, now, self.policy, ranking, self.caps, self.held, now + self.epoch,
                            preemption=self.book.may_preempt if self.book is not None else True)
        walk = self.queue.walk(snapshot, now, assigner, waits)  # the assigner itself: a compiled call per visit
        result = assigner.run(walk)
        result.expired = expired
        result.rest_skip = frozenset(unschedulable)
        why = {r: assigner.why_not(r) for r in unschedulable}  # once per row: it depends only on the row
        result.unschedulable = [Unschedulable(job_id, why[r]) for r, job_id in self.queue.ids_with_rows(unschedulable)]
        for pre in result.preemptions:
            self.placed.pop(pre.job_id, None)
            if pre.allocation is not None:
                self._record(pre.allocation, now)
        self.queue.remove_visited(walk, assigner.taken, [s.job_id for s in result.starts])
        for s in result.starts:
            self.placed[s.job_id] = s.pool
            alloc = self.caps[s.pool].allocations[s.job_id]
            alloc.fresh = False
            if self.book is not None:
                self.book.started(alloc, self.pools[s.pool].chip.name, now)
        return result

    def capacity(self) -> dict[str, int]:
        """Devices per chip in healthy pools."""
        out: dict[str, int] = {}
        for p in self.pools:
            if p.healthy:
                out[p.chip.name] = out.get(p.chip.name, 0) + p.nodes * p.devices_per_node
        return out

    def throughput(self, request: Request) -> dict[str, float]:
        """Speed factor of a request on each chip it may use now (its accepted, healthy pools)."""
        r = self.cache.row_of(request)
        ranking = self.cache.ranking
        out: dict[str, float] = {}
        for p in ranking.prefs[r]:
            chip = self.pools[p].chip.name
            out[chip] = max(out.get(chip, 0.0), float(ranking.speed_rows[r][p]))
        return out

    def _rekey(self, changed: list[str] | None) -> None:
        """Pending jobs whose queue key changed take their new place (None: all of them)."""
        if changed is None:
            jobs = list(self.queue.jobs.values())
            self.queue = PendingQueue(self.policy.queue_sort)
            self._enqueue(jobs)
            return
        for job_id in changed:
            found = self.queue.where.get(job_id)
            if found is not None:
                row = found[3]
                job = self.queue.remove(job_id)
                if job is not None:
                    self.queue.add(job, row)

    # ---- internals ---------------------------------------------------------------------------------

    def _release(self, job_id: str) -> Allocation | None:
        p = self.placed.pop(job_id, None)
        if p is None:
            return None
        alloc = self.caps[p].release(job_id)
        self.held[alloc.tenant] = self.held[alloc.tenant] - (alloc.milli or alloc.devices * 1000)
        return alloc

    def _record(self, alloc: Allocation, at: float, final: bool = False) -> None:
        ran = max(0.0, at - alloc.start)
        self.ledger.record(alloc.tenant, alloc.job_id, alloc.devices * ran, at, ran * alloc.speed, final)
        if self.book is not None and alloc.tenant != EXTERNAL:
            self.book.ended(alloc, at)
