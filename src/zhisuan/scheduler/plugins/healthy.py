"""Filter: the pool's center answers its health checks (failover moves work away from it)."""

from __future__ import annotations

import numpy as np

from zhisuan.scheduler.tables import B, PoolTable, RequestTable


class CenterHealthy:
    name = "healthy"
    field = None  # not a property of the spec: a center that is down may come back
    reason = "center unhealthy"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        out: B = np.broadcast_to(pools.healthy[None, :], (len(reqs), len(pools)))
        return out

    def unmet(self, reqs: RequestTable, r: int, pools: PoolTable, candidates: B) -> str:
        return "every accepted center is down"
