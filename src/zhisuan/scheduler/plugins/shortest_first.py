"""QueueSort: shortest expected job first (SJF); with `by_device_time`, smallest device-time first (QSSF).

Expected duration is the job's own estimate (time limit) or a predicted one the caller supplies.
"""

from __future__ import annotations

from dataclasses import dataclass

from zhisuan.scheduler.snapshot import PendingJob


@dataclass(frozen=True)
class ShortestFirst:
    by_device_time: bool = False
    name: str = "shortest-first"
    priority_ordered: bool = False

    def key(self, job: PendingJob) -> tuple[float, ...]:
        size = job.duration * (job.request.devices if self.by_device_time else 1)
        return (size, job.submit_time)
