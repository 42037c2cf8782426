"""Tiresias' discretised 2D-LAS (Gu et al., NSDI'19): least attained service first, in queues by device-time.

A job's attained service is device-seconds received so far (devices x time run, the "2D" of 2D-LAS).
Queue 0 holds jobs below the first threshold, and so on. As in Tiresias' simulator:
- within a queue, jobs are served in the order they entered it (arrival, demotion or promotion time);
- running jobs are ahead of pending ones in their queue: only a job of a higher queue preempts one;
- a running job that crosses a threshold drops a queue at that instant (the book wakes a cycle then);
- starvation guard (`starvation` > 0, Tiresias' knob; 0 = off, its default): a job in a lower queue that
  has waited, since it first ran, `starvation` times as long as it has run, goes back to queue 0 with its
  queue service counted from zero.
Thresholds default to 1 and 10 device-hours; `las-tiresias` uses Tiresias' own 3,250 and 7,200 GPU-s.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from zhisuan.scheduler.capacity import Allocation
from zhisuan.scheduler.plugins.las_book import LasBook
from zhisuan.scheduler.snapshot import PendingJob

THRESHOLDS = (3600.0, 36_000.0)
TIRESIAS = (3250.0, 7200.0)  # jobs.py of SymbioticLab/Tiresias: queue_limit (its third value is never used)


def queue_of(attained: float, thresholds: Sequence[float] = THRESHOLDS) -> int:
    return bisect_right(thresholds, attained)


@dataclass(frozen=True)
class LeastAttained:
    """QueueSort: lowest LAS queue first, then the time the job entered that queue."""

    thresholds: tuple[float, ...] = THRESHOLDS
    starvation: float = 0.0
    name: str = "least-attained"
    priority_ordered: bool = True

    def key(self, job: PendingJob) -> tuple[float, ...]:
        entered = job.submit_time if job.entered is None else job.entered
        return (queue_of(job.attained - job.base, self.thresholds), entered)

    def book(self) -> LasBook:
        return LasBook(self.thresholds, self.starvation)


@dataclass(frozen=True)
class LasPriority:
    """PriorityOf: minus the LAS queue, so a job in a higher queue preempts one that has dropped."""

    thresholds: tuple[float, ...] = THRESHOLDS
    name: str = "least-attained"

    def of_pending(self, job: PendingJob, now: float) -> float:
        return -queue_of(job.attained - job.base, self.thresholds)

    def of_running(self, alloc: Allocation, now: float) -> float:
        return -queue_of(alloc.attained_at(now) - alloc.base, self.thresholds)
