"""Concrete device ids for a placed job, given what the runs already placed in its pool hold.

The scheduler decides how much of each node a job takes; the loop names the devices. Whole devices are
the first slots nobody holds any part of; a share of one device (`milli`) goes to the fullest device
it still fits, as the scheduler's DeviceShares picks it, so two 0.5 shares meet on one device and leave
the others whole for whole-device jobs.
"""

from __future__ import annotations

from collections.abc import Iterable

WHOLE = 1000  # thousandths of one device

Held = Iterable[tuple[tuple[int, ...], tuple[tuple[str, ...], ...], int]]  # (nodes, device ids per node, milli)


def device_ids(slots: list[str], held: Held, nodes: tuple[int, ...], per_node: int, milli: int = 0) -> list[list[str]]:
    """Device ids per placed node. `held`: every run in the pool as (nodes, ids per node, its milli)."""
    taken: dict[int, dict[str, int]] = {}  # node -> device id -> thousandths held
    for run_nodes, ids, share in held:
        for n, node_ids in zip(run_nodes, ids, strict=False):
            for d in node_ids:
                taken.setdefault(n, {})[d] = taken.get(n, {}).get(d, 0) + (share or WHOLE)
    if milli:
        return [[_share_slot(slots, taken.get(n, {}), milli)] for n in nodes]
    return [[s for s in slots if not taken.get(n, {}).get(s)][:per_node] for n in nodes]


def _share_slot(slots: list[str], used: dict[str, int], milli: int) -> str:
    """The fullest device the share still fits (first in slot order on a tie). Should none fit — the
    scheduler saw room, so only a different packing of earlier shares gets here — the least used one."""
    fits = [s for s in slots if WHOLE - used.get(s, 0) >= milli]
    if fits:
        return min(fits, key=lambda s: (WHOLE - used.get(s, 0), slots.index(s)))
    return min(slots, key=lambda s: (used.get(s, 0), slots.index(s)))
