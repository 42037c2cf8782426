"""Score: expected start of the job's work (seconds from now): until it gets devices, plus moving its
inputs there. In the cycle every candidate gets devices now; the delay matters for reservations and for
`zhisuan explain`, which fill `ScoreContext.start_delay`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zhisuan.scheduler.framework import ScoreContext
from zhisuan.scheduler.tables import F, PoolTable, RequestTable


@dataclass(frozen=True)
class StartTime:
    """`tolerance`: for a job with inputs, the fraction of its expected run time a difference in start must
    reach to count fully (a few minutes of staging weigh little against a 200-hour run)."""

    tolerance: float = 0.5
    name: str = "start"

    def floor(self, reqs: RequestTable, ctx: ScoreContext) -> F | None:
        if ctx.staging is None or not ctx.staging.any:
            return None
        out: F = self.tolerance * ctx.staging.hours * 3600.0
        return out

    def raw(self, reqs: RequestTable, pools: PoolTable, ctx: ScoreContext) -> F:
        out: F = np.zeros((len(reqs), len(pools))) if ctx.start_delay is None else ctx.start_delay
        if ctx.staging is not None and ctx.staging.any:
            out = out + ctx.staging.seconds
        return out
