"""Filter: the pool's center is in one of the job's allowed regions (no regions: anywhere)."""

from __future__ import annotations

import numpy as np

from zhisuan.scheduler.tables import B, PoolTable, RequestTable


class RegionAllowed:
    name = "region"
    reason = "center not in the job's regions"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        wanted = [r.regions for r in reqs.reqs]
        anywhere = np.array([not w for w in wanted], dtype=np.bool_)[:, None]
        out: B = anywhere | pools.membership(pools.region, wanted)
        return out
