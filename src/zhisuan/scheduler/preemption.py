"""Which running jobs to preempt so a higher-priority gang fits a pool, if any set suffices.

Victims are taken lowest priority first, most recently started first (least work lost), and only
among jobs that were running before this cycle and are preemptible.
"""

from __future__ import annotations

from collections.abc import Callable

from zhisuan.scheduler.capacity import Allocation, PoolCapacity, releases_until_fit


def choose_victims(cap: PoolCapacity, devices: int, nodes: int, priority: float,
                   priority_of: Callable[[Allocation], float]) -> list[Allocation] | None:
    """Lowest (effective) priority first, then most recently started; None if no set frees enough."""
    ranked = [(priority_of(a), a) for a in cap.allocations.values() if a.preemptible and not a.fresh]
    candidates = [a for _, a in sorted(((p, a) for p, a in ranked if p < priority),
                                       key=lambda pa: (pa[0], -pa[1].start, pa[1].job_id))]
    if not candidates or devices > cap.size:
        return None
    k = releases_until_fit(cap.free, candidates, devices, nodes)
    return candidates[:k] if k else None
