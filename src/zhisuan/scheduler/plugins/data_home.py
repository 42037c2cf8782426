"""Filter: run the job where its data is — the centers holding the most of its input bytes. The
"always move the job to the data" baseline of `zhisuan bench data`, not part of the default policy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zhisuan.model.datasets import InputData
from zhisuan.scheduler.tables import B, PoolTable, RequestTable


def homes(inputs: Sequence[InputData]) -> frozenset[str]:
    """The centers holding the most GB of these inputs (all of them: every center, when there are none)."""
    held: dict[str, float] = {}
    for d in inputs:
        for c in d.at:
            held[c] = held.get(c, 0.0) + d.gb
    if not held:
        return frozenset()
    top = max(held.values())
    return frozenset(c for c, gb in held.items() if gb >= top)


class DataHome:
    name = "data-home"
    field = "inputs"
    reason = "center does not hold the job's data"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        wanted = [homes(r.inputs) for r in reqs.reqs]
        anywhere = np.array([not w for w in wanted], dtype=np.bool_)[:, None]
        out: B = anywhere | pools.membership(pools.center, wanted)
        return out

    def unmet(self, reqs: RequestTable, r: int, pools: PoolTable, candidates: B) -> str:
        return f"no accepted pool at {', '.join(sorted(homes(reqs.reqs[r].inputs)))}, where its data is"
