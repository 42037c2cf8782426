"""Time shifting of deferrable work (削峰填谷): a job with slack before its deadline is released at the next
clock hour whose tariff, over the whole network weighted by capacity, is at most flat (flat or valley),
if that hour comes before the latest start that still meets its deadline. Both drivers run it, through
`SchedulerState.submit`, when the policy's `defer` is on.
"""

from __future__ import annotations

from collections.abc import Sequence

from zhisuan.catalog.tou import HOUR, hour_start
from zhisuan.scheduler.snapshot import PoolState

HORIZON = 7 * 24  # hours looked ahead at most


class Deferral:
    def __init__(self, pools: Sequence[PoolState]) -> None:
        self.pools = list(pools)
        self.weight = sum(p.nodes * p.devices_per_node for p in self.pools) or 1
        self._cheap: dict[float, bool] = {}

    def multiplier(self, hour: float) -> float:
        """The network's capacity-weighted time-of-use multiplier of the clock hour starting at `hour`."""
        total = sum(p.nodes * p.devices_per_node * float(p.tou.integral(hour, hour + HOUR)) / HOUR for p in self.pools)
        return total / self.weight

    def cheap(self, hour: float) -> bool:
        found = self._cheap.get(hour)
        if found is None:
            found = self._cheap[hour] = self.multiplier(hour) <= 1.0 + 1e-9
        return found

    def release(self, submitted: float, latest_start: float) -> float | None:
        """When to release a job submitted at `submitted` that must start by `latest_start` (epoch seconds):
        the next cheap hour, or None to release it at once (cheap now, or no cheap hour in time)."""
        h = hour_start(submitted)
        if self.cheap(h):
            return None
        for k in range(1, HORIZON):
            t = h + k * HOUR
            if t > latest_start:
                return None
            if self.cheap(t):
                return t
        return None
