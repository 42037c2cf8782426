"""Score: keep big nodes whole for big gangs: prefer the pool whose node size fits the gang member best.

Raw value = devices a node would have left after one gang member, as a fraction of the node
(0 = the member fills the node exactly). Small jobs go to small nodes first; whole-node gangs score
0 everywhere. Within a pool, nodes are taken best-fit (fullest node that fits), see capacity.py.
Asks with a share, CPUs or memory score alike everywhere here: the policy's node score weighs where they
fragment least, across the pools that tie (a node-size proxy would only narrow its choice). CPU-only
asks prefer CPU-only pools, which keeps GPU nodes' CPUs for GPU jobs.
"""

from __future__ import annotations

import numpy as np

from zhisuan.scheduler.framework import ScoreContext
from zhisuan.scheduler.tables import F, PoolTable, RequestTable


class Fragmentation:
    name = "fragmentation"

    def raw(self, reqs: RequestTable, pools: PoolTable, ctx: ScoreContext) -> F:
        size = pools.devices_per_node[None, :].astype(np.float64)
        d = reqs.devices_per_node[:, None].astype(np.float64)
        by_size = np.where(d <= size, (size - d) / np.maximum(size, 1.0), 1.0)
        out: F = np.where(d == 0, (size > 0).astype(np.float64), np.where(reqs.simple[:, None], by_size, 0.0))
        return out
