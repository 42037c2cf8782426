"""QueueSort: first come, first served."""

from __future__ import annotations

from zhisuan.scheduler.snapshot import PendingJob


class Fifo:
    name = "fifo"
    priority_ordered = False

    def key(self, job: PendingJob) -> tuple[float, ...]:
        return (job.submit_time,)
