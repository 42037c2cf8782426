"""QueueSort: first come, first served (submit time, then snapshot order)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zhisuan.scheduler.snapshot import PendingJob, Snapshot


class Fifo:
    name = "fifo"

    def order(self, jobs: Sequence[PendingJob], snapshot: Snapshot, now: float) -> list[int]:
        submit = np.fromiter((j.submit_time for j in jobs), dtype=np.float64, count=len(jobs))
        return [int(i) for i in np.argsort(submit, kind="stable")]
