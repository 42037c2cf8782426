"""Score: kgCO2 per job under the TDP power model: TDP x PUE x grid intensity / speed factor.

The intensity is the center's annual grid factor, or — where it configures an hourly series — the
series averaged over `window` seconds from the current clock hour. A job with inputs to move adds the
transfer's energy at the receiving center's grid factor, spread over its expected device-hours.
"""

from __future__ import annotations

from dataclasses import dataclass

from zhisuan.scheduler.framework import ScoreContext
from zhisuan.scheduler.pricing import carbon_factors
from zhisuan.scheduler.tables import F, PoolTable, RequestTable


@dataclass(frozen=True)
class Carbon:
    window: float = 4 * 3600.0  # seconds of grid intensity the score averages over (a profile argument)
    name: str = "carbon"

    def raw(self, reqs: RequestTable, pools: PoolTable, ctx: ScoreContext) -> F:
        kg = pools.kg_per_device_hour
        if ctx.at is not None:
            kg = kg * carbon_factors(pools.pools, ctx.at, self.window)
        out: F = kg[None, :] / ctx.speed
        staging = ctx.staging
        if staging is not None and staging.any:
            out = out + staging.per_unit_hour(staging.kwh * pools.grid[None, :], reqs.units)
        return out
