"""Which running jobs to preempt so a higher-priority gang fits a pool, if any set suffices.

Victims are taken lowest priority first, most recently started first (least work lost), and only
among jobs that were running before this cycle and are preemptible. A pool's candidates are ranked
once per cycle (`VictimList`) and only re-ranked after a preemption there: effective priorities are
fixed within a cycle.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

from zhisuan.scheduler.capacity import Allocation, PoolCapacity
from zhisuan.scheduler.shape import Shape


class VictimList:
    """A pool's preemptible allocations, lowest priority first, then most recently started."""

    def __init__(self, cap: PoolCapacity, priority_of: Callable[[Allocation], float]) -> None:
        ranked = sorted(((priority_of(a), -a.start, a.job_id, a) for a in cap.allocations.values()
                         if a.preemptible and not a.fresh), key=lambda e: e[:3])
        self.priorities = [e[0] for e in ranked]
        self.allocs = [e[3] for e in ranked]

    def drop(self, k: int) -> None:
        """The first k were preempted (victims are always a prefix)."""
        del self.priorities[:k], self.allocs[:k]

    def choose(self, cap: PoolCapacity, shape: Shape, priority: float) -> list[Allocation] | None:
        """The fewest lowest-priority victims (all strictly below `priority`) that make the gang fit."""
        below = bisect_left(self.priorities, priority)
        if not below or shape.devices_per_node > cap.size:
            return None
        k = cap.releases_among(shape, [self.allocs[:below]])
        return self.allocs[:k] if k else None

