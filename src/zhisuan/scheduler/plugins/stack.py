"""Filter: the pool's chip is the one asked for, or — for portable jobs and class asks — any chip
of an allowed software stack at or above `min_tflops` (cross-architecture placement)."""

from __future__ import annotations

import numpy as np

from zhisuan.scheduler.tables import B, PoolTable, RequestTable


class StackCompatible:
    name = "stack"
    reason = "accelerator or software stack not accepted by the job"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        named = [r.model for r in reqs.reqs]
        by_model = pools.membership(pools.model, [frozenset([m]) if m else frozenset() for m in named])
        by_stack = pools.membership(pools.stack, [r.stacks for r in reqs.reqs])
        fast_enough = pools.tflops[None, :] >= reqs.min_tflops[:, None]
        is_named = np.array([m is not None for m in named], dtype=np.bool_)[:, None]
        out: B = np.where(is_named, by_model, by_stack & fast_enough)
        return out
