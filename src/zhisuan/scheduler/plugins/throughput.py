"""Score: the chip on which the job runs fastest (speed factor vs its reference; higher is better) —
Gavel's heterogeneity awareness in placement."""

from __future__ import annotations

from zhisuan.scheduler.framework import ScoreContext
from zhisuan.scheduler.tables import F, PoolTable, RequestTable


class Throughput:
    name = "throughput"

    def raw(self, reqs: RequestTable, pools: PoolTable, ctx: ScoreContext) -> F:
        out: F = -ctx.speed
        return out
