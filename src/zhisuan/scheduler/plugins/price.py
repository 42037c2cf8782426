"""Score: price per job, i.e. device-hours x price / speed factor (per reference hour here: the job's
duration multiplies every pool alike, and normalisation is scale-free)."""

from __future__ import annotations

from zhisuan.scheduler.framework import ScoreContext
from zhisuan.scheduler.tables import F, PoolTable, RequestTable


class PricePerJob:
    name = "price"

    def raw(self, reqs: RequestTable, pools: PoolTable, ctx: ScoreContext) -> F:
        out: F = pools.price[None, :] / ctx.speed
        return out
