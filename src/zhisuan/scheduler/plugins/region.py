"""Filter: the pool's center is in one of the job's allowed regions (no regions: anywhere)."""

from __future__ import annotations

import numpy as np

from zhisuan.scheduler.tables import B, PoolTable, RequestTable


class RegionAllowed:
    name = "region"
    field = "constraints.regions"
    reason = "center not in the job's regions"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        wanted = [r.regions for r in reqs.reqs]
        anywhere = np.array([not w for w in wanted], dtype=np.bool_)[:, None]
        out: B = anywhere | pools.membership(pools.region, wanted)
        return out

    def unmet(self, reqs: RequestTable, r: int, pools: PoolTable, candidates: B) -> str:
        have = sorted({pools.region[p] for p in range(len(pools)) if candidates[p]})
        return f"no accepted pool in regions {sorted(reqs.reqs[r].regions)}; they are in {', '.join(have)}"
