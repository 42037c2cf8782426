"""The scheduler's cache, after the Kubernetes scheduler cache: pools, node-level capacity, pending
jobs and memoised rankings, kept between cycles and updated incrementally by their owner.

The simulator and the live control loop keep one `SchedulerState` and tell it what changed (a job
submitted, finished, a center down); `cycle(snapshot)` builds a fresh one from a snapshot. Both run
the very same `Assigner`, so a snapshot and the incremental state that led to it decide alike.
"""

from __future__ import annotations

from dataclasses import replace

from zhisuan.scheduler.assign import Assigner
from zhisuan.scheduler.capacity import Allocation, PoolCapacity, allocation_of
from zhisuan.scheduler.decisions import CycleResult, Unschedulable
from zhisuan.scheduler.framework import Policy
from zhisuan.scheduler.queue import PendingQueue
from zhisuan.scheduler.ranking import RankCache
from zhisuan.scheduler.snapshot import PendingJob, PoolState, RunningJob, Snapshot, TenantState
from zhisuan.scheduler.tables import PoolTable


class SchedulerState:
    def __init__(self, pools: list[PoolState], policy: Policy,
                 tenants: dict[str, TenantState] | None = None) -> None:
        self.pools = list(pools)
        self.policy = policy
        self.tenants = tenants if tenants is not None else {}
        self.index = {p.key: i for i, p in enumerate(self.pools)}
        self.caps = [PoolCapacity(p.nodes, p.devices_per_node) for p in self.pools]
        self.queue = PendingQueue(policy.queue_sort)
        self.by_row: dict[int, dict[str, None]] = {}  # ranking row -> ids of pending jobs with that request
        self.held: dict[str, int] = {}  # devices per tenant
        self.cache = RankCache(PoolTable.build(self.pools), policy)

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, policy: Policy) -> SchedulerState:
        state = cls(snapshot.pools, policy, snapshot.tenants)
        for running in snapshot.running:
            state.hold(running)
        state._enqueue(snapshot.pending)
        return state

    def _enqueue(self, jobs: list[PendingJob]) -> None:
        rows = self.cache.rows_of(jobs)
        self.queue.add_many(jobs, rows)
        for job, r in zip(jobs, rows, strict=True):
            self.by_row.setdefault(r, {})[job.id] = None

    @property
    def pending(self) -> dict[str, PendingJob]:
        return self.queue.jobs

    def pool_index(self, key: str) -> int:
        i = self.index.get(key)
        if i is None:
            raise ValueError(f"unknown pool {key!r}")
        return i

    def hold(self, job: RunningJob) -> None:
        """A job runs on these nodes (started elsewhere, or re-adopted after a restart)."""
        i = self.index.get(job.pool)
        if i is None:
            raise ValueError(f"running job {job.id} is in unknown pool {job.pool!r}")
        self.caps[i].hold(allocation_of(job))
        self.held[job.tenant] = self.held.get(job.tenant, 0) + job.devices

    def release(self, job_id: str, pool: str) -> Allocation:
        """A running job ended (or was preempted by its owner): its devices are free again."""
        alloc = self.caps[self.pool_index(pool)].release(job_id)
        self.held[alloc.tenant] -= alloc.devices
        return alloc

    def submit(self, job: PendingJob) -> None:
        r = self.cache.row_of(job.request)
        self.queue.add(job, r)
        self.by_row.setdefault(r, {})[job.id] = None

    def withdraw(self, job_id: str) -> PendingJob | None:
        """Remove a pending job (cancelled, or started by this state's cycle)."""
        found = self.queue.where.get(job_id)
        if found is None:
            return None
        del self.by_row[found[1][3]][job_id]
        return self.queue.remove(job_id)

    def set_healthy(self, center: str, healthy: bool) -> None:
        """Failover: an unhealthy center's pools are filtered out from the next cycle on."""
        self.pools = [replace(p, healthy=healthy) if p.center == center else p for p in self.pools]
        self.cache = RankCache(PoolTable.build(self.pools), self.policy)
        jobs = list(self.queue.jobs.values())
        self.queue = PendingQueue(self.policy.queue_sort)
        self.by_row = {}
        self._enqueue(jobs)

    def snapshot(self) -> Snapshot:
        """The current state as a plain snapshot (explain/quote against live state; tests)."""
        running = [
            RunningJob(a.job_id, a.tenant, pool.key, a.nodes, a.devices_per_node, a.start, a.end, a.priority,
                       a.preemptible, a.attained)
            for pool, cap in zip(self.pools, self.caps, strict=True)
            for a in cap.allocations.values()
        ]
        return Snapshot(list(self.pools), running, list(self.queue.jobs.values()), self.tenants)

    def running(self, pool: str) -> list[Allocation]:
        return list(self.caps[self.pool_index(pool)].allocations.values())

    def cycle(self, now: float) -> CycleResult:
        """Order and assign the pending jobs; started jobs then hold their devices here."""
        ranking = self.cache.ranking
        present = [r for r, ids in self.by_row.items() if ids]
        unschedulable = [r for r in present if not ranking.prefs[r]]
        snapshot = Snapshot(self.pools, [], [], self.tenants)
        assigner = Assigner(snapshot, now, self.policy, ranking, self.caps, self.held)
        result = assigner.run(self.queue.walk(snapshot, now, assigner.dead))
        result.rest_skip = frozenset(unschedulable)
        result.unschedulable = [Unschedulable(job_id, assigner.why_not(r))
                                for r in unschedulable for job_id in self.by_row[r]]
        for s in result.starts:
            self.withdraw(s.job_id)
            self.caps[s.pool].allocations[s.job_id].fresh = False
        return result
