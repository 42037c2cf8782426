"""QueueSort: highest priority first, FIFO among equals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zhisuan.scheduler.snapshot import PendingJob, Snapshot


class Priority:
    name = "priority"

    def order(self, jobs: Sequence[PendingJob], snapshot: Snapshot, now: float) -> list[int]:
        n = len(jobs)
        submit = np.fromiter((j.submit_time for j in jobs), dtype=np.float64, count=n)
        prio = np.fromiter((j.priority for j in jobs), dtype=np.float64, count=n)
        return [int(i) for i in np.lexsort((np.arange(n), submit, -prio))]
