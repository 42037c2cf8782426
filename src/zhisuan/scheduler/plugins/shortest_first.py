"""QueueSort: shortest expected job first (SJF); with `by_device_time`, smallest device-time first (QSSF).

Expected duration is the job's own estimate (time limit) or a predicted one the caller supplies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zhisuan.scheduler.snapshot import PendingJob, Snapshot


@dataclass(frozen=True)
class ShortestFirst:
    by_device_time: bool = False
    name: str = "shortest-first"

    def order(self, jobs: Sequence[PendingJob], snapshot: Snapshot, now: float) -> list[int]:
        n = len(jobs)
        size = np.fromiter(
            (j.duration * (j.request.devices if self.by_device_time else 1) for j in jobs),
            dtype=np.float64, count=n,
        )
        submit = np.fromiter((j.submit_time for j in jobs), dtype=np.float64, count=n)
        return [int(i) for i in np.lexsort((np.arange(n), submit, size))]
