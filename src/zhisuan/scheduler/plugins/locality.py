"""Score: prefer the center that holds the job's data (1 = data must move, 0 = local or no data)."""

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
        return out
