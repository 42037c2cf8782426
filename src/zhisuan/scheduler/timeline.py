"""Expected start time: when will a pool have room for a shape (`nodes` nodes with its devices, share,
CPUs and memory free each)?

Walks the pool's allocations in order of expected end (kept by the pool) and returns devices to their
nodes until the gang fits. Ends are estimates (time limits or predicted run times), so starts are too.
"""

from __future__ import annotations

import math

from zhisuan.scheduler.capacity import Allocation, PoolCapacity
from zhisuan.scheduler.shape import Shape


def earliest_start(cap: PoolCapacity, shape: Shape, now: float) -> float:
    """`now` if it fits now, else the first allocation end after which it fits; inf if it never can."""
    return max(release_end(cap, shape), now)


def release_end(cap: PoolCapacity, shape: Shape) -> float:
    """The earliest start without the clock: -inf if the shape fits now, inf if it never can, else the expected
    end of the last allocation that must go first. It changes only when the pool does."""
    return _walk(cap, shape)[0]


def start_and_blockers(cap: PoolCapacity, shape: Shape, now: float) -> tuple[float, list[Allocation]]:
    """The earliest start, and the allocations that must end first (in order of expected end)."""
    end, k = _walk(cap, shape)
    if end == -math.inf or shape.devices_per_node > cap.size or shape.nodes > len(cap.free):  # fits now, or never
        return max(end, now), []
    by_end = cap.by_end()
    return max(end, now), by_end.first(k if k else len(by_end))


def _walk(cap: PoolCapacity, shape: Shape) -> tuple[float, int]:
    if shape.devices_per_node > cap.size or shape.nodes > len(cap.free):
        return math.inf, 0
    if cap.fits_shape(shape):
        return -math.inf, 0
    k = cap.releases_until_fit(shape)
    return (cap.by_end().item_at(k - 1).end if k else math.inf), k


def free_devices_at(cap: PoolCapacity, t: float) -> float:
    """Devices free at time t if every allocation ends when expected (shares as fractions)."""
    free = cap.free_amount()
    order = cap.by_end()
    chunks = order.chunks()
    for c in range(len(chunks)):
        chunk = chunks[c]
        for i in range(order.head if c == 0 else 0, len(chunk)):
            a = chunk[i]
            if a.end > t:
                return free
            free += a.amount
    return free
