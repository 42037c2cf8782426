"""Tiresias-style discretised 2D-LAS (NSDI'19): least attained service first, in queues by device-time.

A job's attained service is device-seconds received so far (devices x time run, the "2D" of 2D-LAS).
Queue 0 holds jobs below the first threshold, and so on; within a queue, FIFO. As a running job crosses
a threshold it drops a queue, so a newly arrived job in a higher queue may preempt it (with the
policy's preemption on). Thresholds as in the paper's evaluation scale: 1 and 10 device-hours.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from zhisuan.scheduler.capacity import Allocation
from zhisuan.scheduler.snapshot import PendingJob

THRESHOLDS = (3600.0, 36_000.0)


def queue_of(attained: float, thresholds: Sequence[float] = THRESHOLDS) -> int:
    return bisect_right(thresholds, attained)


@dataclass(frozen=True)
class LeastAttained:
    """QueueSort: lowest LAS queue first, FIFO within a queue."""

    thresholds: tuple[float, ...] = THRESHOLDS
    name: str = "least-attained"
    priority_ordered: bool = True

    def key(self, job: PendingJob) -> tuple[float, ...]:
        return (queue_of(job.attained, self.thresholds), job.submit_time)


@dataclass(frozen=True)
class LasPriority:
    """PriorityOf: minus the LAS queue, so a job in a higher queue preempts one that has dropped."""

    thresholds: tuple[float, ...] = THRESHOLDS
    name: str = "least-attained"

    def of_pending(self, job: PendingJob, now: float) -> float:
        return -queue_of(job.attained, self.thresholds)

    def of_running(self, alloc: Allocation, now: float) -> float:
        return -queue_of(alloc.attained_at(now), self.thresholds)
