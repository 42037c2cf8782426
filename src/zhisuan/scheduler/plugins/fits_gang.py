"""Filter: the pool could ever hold the gang (node size, node count, CPUs and memory per node).

Whether it can hold it *now* is the cycle's capacity check; this one makes oversize gangs
unschedulable instead of waiting forever.
"""

from __future__ import annotations

from zhisuan.scheduler.tables import B, PoolTable, RequestTable


class FitsGang:
    name = "fits-gang"
    reason = "gang larger than the pool (devices per node, nodes, CPUs or memory)"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        out: B = (
            (reqs.devices_per_node[:, None] <= pools.devices_per_node[None, :])
            & (reqs.nodes[:, None] <= pools.nodes[None, :])
            & (reqs.cpus[:, None] <= pools.cpus[None, :])
            & (reqs.memory[:, None] <= pools.memory[None, :])
        )
        return out
