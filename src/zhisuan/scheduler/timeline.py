"""Expected start time: when will a pool have `nodes` nodes with `devices` free each?

Walks the pool's allocations in order of expected end and returns devices to their nodes until the
gang fits. Ends are estimates (time limits or predicted run times), so starts are estimates too.
"""

from __future__ import annotations

import math

from zhisuan.scheduler.capacity import Allocation, PoolCapacity, releases_until_fit


def earliest_start(cap: PoolCapacity, devices: int, nodes: int, now: float,
                   ends: list[Allocation] | None = None) -> float:
    """`now` if it fits now, else the first allocation end after which it fits; inf if it never can.
    `ends`: the pool's `by_end` when the caller keeps it."""
    return _walk(cap, devices, nodes, now, ends)[0]


def start_and_blockers(cap: PoolCapacity, devices: int, nodes: int, now: float) -> tuple[float, list[Allocation]]:
    """The earliest start, and the allocations that must end first (in order of expected end)."""
    start, by_end, k = _walk(cap, devices, nodes, now)
    return start, by_end[:k] if k else by_end


def by_end(cap: PoolCapacity) -> list[Allocation]:
    """The pool's allocations in the order they are expected to end."""
    return sorted(cap.allocations.values(), key=lambda a: (a.end, a.job_id))


def _walk(cap: PoolCapacity, devices: int, nodes: int, now: float,
          ends: list[Allocation] | None = None) -> tuple[float, list[Allocation], int]:
    if devices > cap.size or nodes > len(cap.free):
        return math.inf, [], 0
    if cap.fits(devices, nodes):
        return now, [], 0
    by_end = ends if ends is not None else sorted(cap.allocations.values(), key=lambda a: (a.end, a.job_id))
    k = releases_until_fit(cap.free, by_end, devices, nodes)
    return (max(by_end[k - 1].end, now) if k else math.inf), by_end, k


def free_devices_at(cap: PoolCapacity, t: float, ends: list[Allocation] | None = None) -> int:
    """Devices free at time t if every allocation ends when expected (`ends`: the pool's `by_end`)."""
    if ends is None:
        return sum(cap.free) + sum(a.devices for a in cap.allocations.values() if a.end <= t)
    free = sum(cap.free)
    for a in ends:
        if a.end > t:
            break
        free += a.devices
    return free
