"""Filter: the pool's chip is the one asked for (or one of those listed), or — for portable jobs and class
asks — any chip of an allowed software stack at or above `min_tflops` (cross-architecture placement).
A CPU-only job (no devices) runs on any pool's nodes, as a CPU pod lands on a GPU node in Kubernetes."""

from __future__ import annotations

import numpy as np

from zhisuan.scheduler.tables import B, PoolTable, RequestTable


class StackCompatible:
    name = "stack"
    field = "resources.accelerators"
    reason = "accelerator or software stack not accepted by the job"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        named = [r.models for r in reqs.reqs]
        by_model = pools.membership(pools.model, named)
        by_stack = pools.membership(pools.stack, [r.stacks for r in reqs.reqs])
        fast_enough = pools.tflops[None, :] >= reqs.min_tflops[:, None]
        is_named = np.array([bool(m) for m in named], dtype=np.bool_)[:, None]
        out: B = np.where(is_named, by_model, by_stack & fast_enough) | (reqs.devices_per_node == 0)[:, None]
        return out

    def unmet(self, reqs: RequestTable, r: int, pools: PoolTable, candidates: B) -> str:
        req = reqs.reqs[r]
        asked = req.model or (f"any of {', '.join(sorted(req.models))}" if req.models else
                              f"any {'/'.join(sorted(req.stacks))} chip" + (
                                  f" of at least {req.min_tflops:g} TFLOPS" if req.min_tflops else ""))
        have = sorted({pools.model[p] for p in range(len(pools)) if candidates[p]})
        return f"no pool has {asked}; the accepted pools have {', '.join(have) or 'nothing'}"
