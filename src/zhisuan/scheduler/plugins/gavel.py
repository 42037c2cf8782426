"""Gavel (Narayanan et al., OSDI'20): heterogeneity-aware max-min fairness in rounds. The book
(`gavel_book.py`) solves the LP and ranks jobs when a round begins; these plugins read the ranks."""

from __future__ import annotations

from dataclasses import dataclass

from zhisuan.scheduler.capacity import Allocation
from zhisuan.scheduler.plugins.gavel_book import RESET, ROUND, GavelBook
from zhisuan.scheduler.snapshot import PendingJob


@dataclass(frozen=True)
class GavelOrder:
    """QueueSort: highest round priority first (allocated share / share received), then FIFO."""

    round: float = ROUND
    reset: float = RESET
    name: str = "gavel"
    priority_ordered: bool = True

    def key(self, job: PendingJob) -> tuple[float, ...]:
        return (-job.rank, job.submit_time)

    def book(self) -> GavelBook:
        return GavelBook(self.round, self.reset)


class GavelPriority:
    """PriorityOf: the round priority; a running job is outranked only when a round begins (its rank is
    infinite otherwise: it keeps its lease)."""

    name = "gavel"

    def of_pending(self, job: PendingJob, now: float) -> float:
        return job.rank

    def of_running(self, alloc: Allocation, now: float) -> float:
        return alloc.rank
