"""What 2D-LAS remembers of each job between cycles: when it entered its queue, the service counted
before its last promotion, and when its next demotion (running) or promotion (waiting) falls due.

Times are exact, not sampled: a run from `start` with `a0` device-seconds on `d` devices crosses the
threshold T at start + (T - a0) / d; a job that first ran at `t0` and has run `e` seconds since has
waited starvation x e at t0 + (1 + starvation) x e (Tiresias counts its waiting only once it has run).
"""

from __future__ import annotations

import heapq
from bisect import bisect_right

from zhisuan.scheduler.capacity import Allocation
from zhisuan.scheduler.framework import StateView
from zhisuan.scheduler.snapshot import PendingJob


class LasBook:
    def __init__(self, thresholds: tuple[float, ...], starvation: float) -> None:
        self.thresholds, self.starvation = thresholds, starvation
        self.base: dict[str, float] = {}  # service at its last promotion
        self.entered: dict[str, float] = {}  # when it entered its current queue, if not at submission
        self.first_run: dict[str, float] = {}  # start of its first run since arrival or promotion
        self.ran: dict[str, float] = {}  # seconds run since then
        self.version: dict[str, int] = {}
        self.due: list[tuple[float, int, str]] = []  # (when, version, job): a demotion or promotion
        self.running: dict[str, Allocation] = {}
        self.may_preempt = True

    def _bump(self, job_id: str) -> int:
        v = self.version[job_id] = self.version.get(job_id, 0) + 1
        return v

    def submitted(self, job: PendingJob) -> None:
        job.base = self.base.get(job.id, job.base)  # a job rebuilt from a snapshot keeps what it carries
        job.entered = self.entered.get(job.id, job.entered)
        v = self._bump(job.id)
        t0 = self.first_run.get(job.id)
        if self.starvation > 0 and t0 is not None and bisect_right(self.thresholds, job.attained - job.base) > 0:
            heapq.heappush(self.due, (t0 + (1 + self.starvation) * self.ran.get(job.id, 0.0), v, job.id))

    def started(self, alloc: Allocation, chip: str, now: float) -> None:
        self.first_run.setdefault(alloc.job_id, now)
        self.running[alloc.job_id] = alloc
        self._demotion(alloc, self._bump(alloc.job_id), now)

    def _demotion(self, alloc: Allocation, version: int, now: float) -> None:
        service = alloc.attained_at(now) - alloc.base
        q = bisect_right(self.thresholds, service)
        if q < len(self.thresholds) and alloc.devices:
            when = alloc.start + (self.thresholds[q] - (alloc.attained - alloc.base)) / alloc.devices
            heapq.heappush(self.due, (when, version, alloc.job_id))

    def ended(self, alloc: Allocation, at: float) -> None:
        j = alloc.job_id
        self._bump(j)
        self.running.pop(j, None)
        self.ran[j] = self.ran.get(j, 0.0) + max(0.0, at - alloc.start)
        a0 = alloc.attained - alloc.base
        q0, q1 = bisect_right(self.thresholds, a0), bisect_right(self.thresholds, alloc.attained_at(at) - alloc.base)
        if q1 > q0 and alloc.devices:
            self.entered[j] = alloc.start + (self.thresholds[q1 - 1] - a0) / alloc.devices

    def forget(self, job_id: str) -> None:
        for d in (self.base, self.entered, self.first_run, self.ran, self.version, self.running):
            d.pop(job_id, None)

    def prepare(self, pending: dict[str, PendingJob], view: StateView, now: float) -> list[str] | None:
        """Promotions that fell due re-key their jobs; demotions need nothing but this cycle (the running
        job's priority reads its service at `now`) and the next one is booked."""
        changed: list[str] = []
        while self.due and self.due[0][0] <= now:
            when, v, j = heapq.heappop(self.due)
            if self.version.get(j) != v:
                continue
            job = pending.get(j)
            if job is not None:  # a promotion
                job.base = self.base[j] = job.attained
                job.entered = self.entered[j] = when
                self.first_run.pop(j, None)
                self.ran.pop(j, None)
                self._bump(j)
                changed.append(j)
                continue
            alloc = self.running.get(j)
            if alloc is not None:
                self._demotion(alloc, v, now)
        return changed

    def next_change(self) -> float | None:
        while self.due and self.version.get(self.due[0][2]) != self.due[0][1]:
            heapq.heappop(self.due)
        return self.due[0][0] if self.due else None
