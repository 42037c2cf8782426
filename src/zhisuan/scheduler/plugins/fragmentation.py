"""Score: prefer pools where the gang fills a partly used node exactly, over breaking a whole node.

Raw value = devices left idle on the best-fitting node after placing one gang member there,
as a fraction of the node (0 = perfect fit), from the free-level histogram at cycle start.
"""

from __future__ import annotations

import numpy as np

from zhisuan.scheduler.framework import ScoreContext
from zhisuan.scheduler.tables import F, PoolTable, RequestTable


class Fragmentation:
    name = "fragmentation"

    def raw(self, requests: RequestTable, pools: PoolTable, ctx: ScoreContext) -> F:
        hist = ctx.histograms
        levels = np.arange(hist.shape[1])
        out: F = np.ones((len(requests), len(pools)), dtype=np.float64)
        size = np.maximum(pools.devices_per_node, 1).astype(np.float64)
        for d in np.unique(requests.devices_per_node):
            usable = (hist > 0) & (levels[None, :] >= d)
            has = usable.any(axis=1)
            best = np.where(has, np.argmax(usable, axis=1), 0)
            left = np.where(has, (best - d) / size, 1.0)
            out[requests.devices_per_node == d] = left
        return out
