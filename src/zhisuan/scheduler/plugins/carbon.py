"""Score: kgCO2 per job under the TDP power model: TDP x PUE x grid factor / speed factor."""

from __future__ import annotations

from zhisuan.scheduler.framework import ScoreContext
from zhisuan.scheduler.tables import F, PoolTable, RequestTable


class Carbon:
    name = "carbon"

    def raw(self, reqs: RequestTable, pools: PoolTable, ctx: ScoreContext) -> F:
        out: F = pools.kg_per_device_hour[None, :] / ctx.speed
        return out
