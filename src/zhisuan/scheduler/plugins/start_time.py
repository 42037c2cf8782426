"""Score: expected start time (seconds from now). In the cycle every candidate starts now; the delay
matters for reservations and for `zhisuan explain`, which fill `ScoreContext.start_delay`."""

from __future__ import annotations

import numpy as np

from zhisuan.scheduler.framework import ScoreContext
from zhisuan.scheduler.tables import F, PoolTable, RequestTable


class StartTime:
    name = "start"

    def raw(self, reqs: RequestTable, pools: PoolTable, ctx: ScoreContext) -> F:
        if ctx.start_delay is None:
            return np.zeros((len(reqs), len(pools)), dtype=np.float64)
        return ctx.start_delay
