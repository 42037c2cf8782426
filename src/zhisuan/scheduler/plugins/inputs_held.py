"""Filter: every input of the job has a checked replica somewhere (else no pool can ever get it)."""

from __future__ import annotations

import numpy as np

from zhisuan.scheduler.tables import B, PoolTable, RequestTable


class InputsHeld:
    name = "inputs"
    field = "inputs"
    reason = "an input has no checked replica at any center"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        ok = np.array([all(d.at for d in r.inputs) for r in reqs.reqs], dtype=np.bool_)[:, None]
        out: B = np.broadcast_to(ok, (len(reqs), len(pools)))
        return out

    def unmet(self, reqs: RequestTable, r: int, pools: PoolTable, candidates: B) -> str:
        lost = [d.name for d in reqs.reqs[r].inputs if not d.at]
        return f"no center holds a checked replica of {', '.join(lost)}"
