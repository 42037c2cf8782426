"""Heterogeneity-aware max-min fairness, a greedy approximation of Gavel (OSDI'20).

Gavel solves an LP for the share of time each job gets on each accelerator type, maximising the
minimum normalised throughput, and runs it in rounds. Here, without an LP or space sharing: jobs are
served least-normalised-service first (device-seconds received over devices x time in the system),
running jobs well above a waiting job's share may be preempted (in quarters, and only after a lease of
one round — Gavel's 6-minute rounds — so jobs are not preempted as soon as they start), and
the `Throughput` score sends each job to the chip on which it runs fastest relative to its reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from zhisuan.scheduler.capacity import Allocation
from zhisuan.scheduler.framework import ScoreContext
from zhisuan.scheduler.snapshot import PendingJob
from zhisuan.scheduler.tables import F, PoolTable, RequestTable


def normalised_service(attained: float, devices: int, since: float, now: float) -> float:
    """Fraction of its time in the system a job has run at full size (0 = never ran, 1 = always)."""
    return attained / (devices * max(now - since, 1.0))


@dataclass(frozen=True)
class MaxMinFair:
    """QueueSort: least normalised service first (in quarters, as the preemption compares), then FIFO.

    The key depends on `now`, so the queue is re-sorted every cycle (`dynamic`).
    """

    name: str = "max-min-fair"
    priority_ordered: bool = True
    dynamic: bool = True

    def key(self, job: PendingJob) -> tuple[float, ...]:
        return self.key_at(job, job.submit_time)

    def key_at(self, job: PendingJob, now: float) -> tuple[float, ...]:
        share = normalised_service(job.attained, job.request.devices, job.submit_time, now)
        return (math.floor(4 * share), job.submit_time)


ROUND = 360.0  # seconds: Gavel's round (time_per_iteration)


@dataclass(frozen=True)
class FairSharePriority:
    """PriorityOf: minus the quarter of normalised service; running jobs count their current run and
    cannot be preempted during their first round."""

    name: str = "max-min-fair"
    lease: float = ROUND

    def of_pending(self, job: PendingJob, now: float) -> float:
        return -math.floor(4 * normalised_service(job.attained, job.request.devices, job.submit_time, now))

    def of_running(self, alloc: Allocation, now: float) -> float:
        if now - alloc.start < self.lease:
            return math.inf
        since = alloc.start - alloc.attained / max(alloc.devices, 1)  # time in system, at least the runs
        return -math.floor(4 * normalised_service(alloc.attained_at(now), alloc.devices, since, now))


class Throughput:
    """Score: the chip on which the job runs fastest (speed factor vs its reference; higher is better)."""

    name = "throughput"

    def raw(self, reqs: RequestTable, pools: PoolTable, ctx: ScoreContext) -> F:
        out: F = -ctx.speed
        return out
