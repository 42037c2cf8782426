"""Filter: one gang member's devices fit on one node of the pool."""

from __future__ import annotations

from zhisuan.scheduler.tables import B, PoolTable, RequestTable


class FitsNode:
    name = "fits-node"
    field = "resources.accelerators"
    reason = "more devices per node than the pool's nodes have"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        out: B = reqs.devices_per_node[:, None] <= pools.devices_per_node[None, :]
        return out

    def unmet(self, reqs: RequestTable, r: int, pools: PoolTable, candidates: B) -> str:
        return (f"{reqs.devices_per_node[r]} devices per node, but the largest accepted node has "
                f"{int(pools.devices_per_node[candidates].max())}")
