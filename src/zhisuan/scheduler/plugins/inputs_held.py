"""Filter: every input of the job can be had at the pool's center — a checked replica there, or one elsewhere
that can be copied there (a center whose store the network cannot reach gets no copies)."""

from __future__ import annotations

import numpy as np

from zhisuan.scheduler.tables import B, PoolTable, RequestTable


class InputsHeld:
    name = "inputs"
    field = "inputs"
    reason = "an input has no checked replica at any center"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        out: B = np.ones((len(reqs), len(pools)), dtype=np.bool_)
        centers = sorted(set(pools.center))
        for r, req in enumerate(reqs.reqs):
            if not req.inputs:
                continue
            ok = {c for c in centers if all(d.placeable(c) for d in req.inputs)}
            out[r] = [c in ok for c in pools.center]
        return out

    def unmet(self, reqs: RequestTable, r: int, pools: PoolTable, candidates: B) -> str:
        lost = [d.name for d in reqs.reqs[r].inputs if not d.at]
        if lost:
            return f"no center holds a checked replica of {', '.join(lost)}"
        return "no accepted center holds its inputs or can receive a copy (their stores are not reachable)"
