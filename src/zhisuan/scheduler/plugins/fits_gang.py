"""Filter: the pool has enough nodes for the gang (all members start together or not at all), and its
engine starts gangs that large (a Ray center: one node).

Whether it has them free *now* is the cycle's capacity check; this one makes gangs larger than any
pool unschedulable (refused at submit) instead of waiting forever.
"""

from __future__ import annotations

from zhisuan.scheduler.tables import B, PoolTable, RequestTable


class FitsGang:
    name = "fits-gang"
    field = "resources.nodes"
    reason = "gang of more nodes than the pool has"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        out: B = reqs.nodes[:, None] <= pools.gang_nodes[None, :]
        return out

    def unmet(self, reqs: RequestTable, r: int, pools: PoolTable, candidates: B) -> str:
        most = int(pools.gang_nodes[candidates].max())
        if most == int(pools.nodes[candidates].max()):
            return f"gang of {reqs.nodes[r]} nodes, but the largest accepted pool has {most}"
        return f"gang of {reqs.nodes[r]} nodes, but the accepted pools' engines start gangs of at most {most}"
