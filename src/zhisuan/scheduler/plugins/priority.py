"""QueueSort: highest priority first, FIFO among equals."""

from __future__ import annotations

from zhisuan.scheduler.snapshot import PendingJob


class Priority:
    name = "priority"
    priority_ordered = True  # effective priority never rises along the queue

    def key(self, job: PendingJob) -> tuple[float, ...]:
        return (-job.priority, job.submit_time)
