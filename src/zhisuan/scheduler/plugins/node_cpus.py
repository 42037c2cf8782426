"""Filter: the pool's nodes have the CPUs a gang member asks for (checked per node, not consumed)."""

from __future__ import annotations

from zhisuan.scheduler.tables import B, PoolTable, RequestTable


class NodeCpus:
    name = "cpus"
    field = "resources.cpus"
    reason = "more CPUs per node than the pool's nodes have"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        out: B = reqs.cpus[:, None] <= pools.cpus[None, :]
        return out

    def unmet(self, reqs: RequestTable, r: int, pools: PoolTable, candidates: B) -> str:
        return f"{reqs.cpus[r]:g} CPUs per node, but accepted nodes have at most {int(pools.cpus[candidates].max())}"
