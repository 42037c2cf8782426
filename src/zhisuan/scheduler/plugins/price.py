"""Score: price per job, i.e. device-hours x price x time-of-use multiplier / speed factor (a CPU-only job:
its CPU-hours' price), with the CPUs or memory an ask holds beyond its share of each pool's node at that
pool's prices (model/billing.py) — so a pool whose nodes the ask fits within its share is preferred.

The multiplier is the center's tariff averaged over `window` seconds from the current clock hour (the
job's exact run window is priced by quotes; a ranking is shared by every job with the same request, so
the cycle takes one window for all). The job's duration multiplies every pool alike and normalisation
is scale-free, so it is left out — except for a job with inputs to move: the devices it holds while they
stage and the transfer's ¥ are spread over its expected device-hours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zhisuan.scheduler.framework import ScoreContext
from zhisuan.scheduler.pricing import price_factors
from zhisuan.scheduler.tables import F, PoolTable, RequestTable, unit_price


@dataclass(frozen=True)
class PricePerJob:
    window: float = 4 * 3600.0  # seconds of tariff the score averages over (a profile argument)
    name: str = "price"

    def raw(self, reqs: RequestTable, pools: PoolTable, ctx: ScoreContext) -> F:
        price = unit_price(reqs, pools)  # per device-hour (CPU-only: CPU-hour), what it holds beyond included
        if ctx.at is not None:
            price = price * price_factors(pools.pools, ctx.at, self.window)[None, :]
        out: F = price / ctx.speed
        staging = ctx.staging
        if staging is not None and staging.any:
            held = np.where(staging.hours > 0, staging.seconds / 3600.0 / np.maximum(staging.hours, 1e-9), 0.0)
            out = out + price * held + staging.per_unit_hour(staging.cny, reqs.units)
        return out
