"""Step 4 of the cycle: walk the ordered queue and place each job with gang semantics.

Each request keeps a pointer into its preference list. Capacity only shrinks while a cycle assigns,
so a pool that cannot hold a request's gang now cannot later in the same cycle: the pointer only
moves forward, and once it runs off the list every later job with that request is skipped in O(1).
Backfilling checks a job against the reservations made for jobs ahead of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from zhisuan.model import Placement
from zhisuan.scheduler.capacity import Allocation, PoolCapacity
from zhisuan.scheduler.decisions import NO_CAPACITY, CycleResult, Preempt, Reserve, Start, Unschedulable, Wait, Why
from zhisuan.scheduler.framework import Policy
from zhisuan.scheduler.preemption import choose_victims
from zhisuan.scheduler.ranking import Ranking
from zhisuan.scheduler.snapshot import PendingJob, Snapshot
from zhisuan.scheduler.timeline import earliest_start, free_devices_at


@dataclass(slots=True)
class Reservation:
    pool: int
    start: float
    extra: int  # devices free at `start` beyond what the reserved gang needs (EASY's "extra")


class Assigner:
    def __init__(self, snapshot: Snapshot, now: float, policy: Policy, ranking: Ranking,
                 caps: list[PoolCapacity], request_of: list[int]) -> None:
        self.snapshot, self.now, self.policy, self.ranking = snapshot, now, policy, ranking
        self.caps, self.request_of = caps, request_of
        self.speed: list[list[float]] = ranking.ctx.speed.tolist()  # python floats: cheap per-job indexing
        self.total: list[list[float]] = ranking.total.tolist()
        self.admits = [a for a in policy.admits if a.applies(snapshot)]
        n = len(ranking.requests)
        self.pointer = [0] * n
        self.exhausted = [False] * n
        self.blocked = [False] * len(caps)
        self.reservations: list[Reservation] = []
        self.held: dict[str, int] = {}
        for cap in caps:
            for a in cap.allocations.values():
                self.held[a.tenant] = self.held.get(a.tenant, 0) + a.devices
        self.result = CycleResult(requests=n)
        self._unschedulable: dict[int, str] = {}

    def run(self, order: list[int]) -> CycleResult:
        jobs = self.snapshot.pending
        for i in order:
            job, r = jobs[i], self.request_of[i]
            if not self.ranking.prefs[r]:
                self.result.unschedulable.append(Unschedulable(job.id, self._why_not(r)))
                continue
            if self.exhausted[r] and not (self._may_reserve() or self.policy.preemption):
                self.result.waiting.append(Wait(job.id, NO_CAPACITY))
                continue
            refused = self._refused(job, r)
            if refused:
                self.result.waiting.append(Wait(job.id, refused))
                continue
            p = -1 if self.exhausted[r] else self._find(job, r)
            if p >= 0:
                self._start(job, r, p)
            elif not (self.policy.preemption and self._preempt(job, r)):
                self._block(job, r)
        return self.result

    def _may_reserve(self) -> bool:
        return self.policy.backfill == "easy" and len(self.reservations) < self.policy.reservations

    def _refused(self, job: PendingJob, r: int) -> str | None:
        """The reason of the first admission check that refuses the job now, else None."""
        if not self.admits:
            return None
        devices = self.ranking.requests.requests[r].devices
        tenant = self.snapshot.tenant(job.tenant)
        held = self.held.get(job.tenant, 0)
        for a in self.admits:
            if not a.admits(job, devices, tenant, held):
                return a.reason
        return None

    def _runtime(self, job: PendingJob, r: int, p: int) -> float:
        return job.duration / self.speed[r][p]

    def _find(self, job: PendingJob, r: int) -> int:
        prefs, caps, blocked = self.ranking.prefs[r], self.caps, self.blocked
        req = self.ranking.requests.requests[r]
        d, n = req.devices_per_node, req.nodes
        i = self.pointer[r]
        while i < len(prefs):
            p = prefs[i]
            if blocked[p] or not caps[p].fits(d, n):
                if i == self.pointer[r]:
                    self.pointer[r] += 1
                i += 1
                continue
            if self.reservations and self._conflicts(job, r, p, req.devices):
                i += 1
                continue
            return p
        if self.pointer[r] >= len(prefs):
            self.exhausted[r] = True
        return -1

    def _conflicts(self, job: PendingJob, r: int, p: int, devices: int) -> bool:
        end = self.now + self._runtime(job, r, p)
        return any(res.pool == p and end > res.start and devices > res.extra for res in self.reservations)

    def _start(self, job: PendingJob, r: int, p: int) -> None:
        req = self.ranking.requests.requests[r]
        cap, pool = self.caps[p], self.snapshot.pools[p]
        end = self.now + self._runtime(job, r, p)
        for res in self.reservations:
            if res.pool == p and end > res.start:
                res.extra -= req.devices
        nodes = cap.take(req.devices_per_node, req.nodes)
        cap.allocations[job.id] = Allocation(job.id, job.tenant, nodes, req.devices_per_node, end,
                                             job.priority, True, self.now, fresh=True)
        self.held[job.tenant] = self.held.get(job.tenant, 0) + req.devices
        placement = Placement(job.id, pool.center, pool.name, nodes, req.devices_per_node, self.now, end)
        why = Why(self.ranking, r, req.devices, job.duration, p)
        self.result.starts.append(Start(job.id, placement, self.total[r][p], why))

    def _block(self, job: PendingJob, r: int) -> None:
        self.result.waiting.append(Wait(job.id, NO_CAPACITY))
        if self.policy.backfill == "none":
            for p in self.ranking.prefs[r]:
                self.blocked[p] = True
        elif self._may_reserve():
            self._reserve(job, r)

    def _reserve(self, job: PendingJob, r: int) -> None:
        req = self.ranking.requests.requests[r]
        delays = np.full(len(self.caps), math.inf)
        for p in self.ranking.prefs[r]:
            delays[p] = earliest_start(self.caps[p], req.devices_per_node, req.nodes, self.now) - self.now
        total = self.ranking.total_with_delay(r, delays)
        p = int(np.argmax(total))
        if not math.isfinite(total[p]):
            return
        start = self.now + float(delays[p])
        extra = free_devices_at(self.caps[p], start) - req.devices
        self.reservations.append(Reservation(p, start, extra))
        why = Why(self.ranking, r, req.devices, job.duration, p, delays)
        self.result.reservations.append(Reserve(job.id, self.snapshot.pools[p].key, start, why))

    def _preempt(self, job: PendingJob, r: int) -> bool:
        req = self.ranking.requests.requests[r]
        best = None
        for rank_, p in enumerate(self.ranking.prefs[r]):
            victims = choose_victims(self.caps[p], req.devices_per_node, req.nodes, job.priority)
            if victims is not None:
                cost = (max(v.priority for v in victims), sum(v.devices for v in victims), rank_)
                if best is None or cost < best[0]:
                    best = (cost, p, victims)
        if best is None:
            return False
        _, p, victims = best
        for v in victims:
            self.caps[p].release(v.job_id)
            self.held[v.tenant] -= v.devices
            self.result.preemptions.append(Preempt(v.job_id, job.id, self.snapshot.pools[p].key))
        self._start(job, r, p)
        return True

    def _why_not(self, r: int) -> str:
        """Kubernetes-style summary: '0/12 pools: 8 stack mismatch, 4 gang too large'."""
        if r not in self._unschedulable:
            counts: dict[str, int] = {}
            for f, m in self.ranking.masks:
                k = int((~m[r]).sum())
                if k:
                    counts[f.reason] = k
            parts = ", ".join(f"{k} {reason}" for reason, k in counts.items())
            self._unschedulable[r] = f"0/{len(self.caps)} pools fit: {parts}"
        return self._unschedulable[r]
