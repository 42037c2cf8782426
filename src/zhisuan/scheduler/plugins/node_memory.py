"""Filter: the pool's nodes have the memory a gang member asks for (checked per node, not consumed)."""

from __future__ import annotations

from zhisuan.scheduler.tables import B, PoolTable, RequestTable


class NodeMemory:
    name = "memory"
    field = "resources.memory"
    reason = "more memory per node than the pool's nodes have"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        out: B = reqs.memory[:, None] <= pools.memory[None, :]
        return out

    def unmet(self, reqs: RequestTable, r: int, pools: PoolTable, candidates: B) -> str:
        return (f"{reqs.memory[r]:g} GiB per node, but accepted nodes have at most "
                f"{float(pools.memory[candidates].max()):g} GiB")
