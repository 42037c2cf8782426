"""Score: keep a job near the center its spec names in `constraints.data` (1 away from it, else 0). A job
with `inputs` is kept near them by the start, price and carbon scores, which count moving them (time,
held devices, transfer ¥ and energy): its locality is flat, not counted twice."""

from __future__ import annotations

import numpy as np

from zhisuan.scheduler.framework import ScoreContext
from zhisuan.scheduler.tables import F, PoolTable, RequestTable


class DataLocality:
    name = "locality"

    def raw(self, reqs: RequestTable, pools: PoolTable, ctx: ScoreContext) -> F:
        wanted = [frozenset([r.data_center]) if r.data_center else frozenset() for r in reqs.reqs]
        local = pools.membership(pools.center, wanted)
        no_data = np.array([r.data_center is None for r in reqs.reqs], dtype=np.bool_)[:, None]
        out: F = np.where(no_data | local, 0.0, 1.0)
        staging = ctx.staging
        if staging is not None and staging.any:
            out = np.where(staging.hours > 0, 0.0, out)
        return out
