"""Baseline GpuPacking (FGD paper): a share first joins a partly used device (the fuller node first), then
takes a fresh device on a node already in use, and only then starts an idle node (smaller nodes first).
CPU-only tasks score alike everywhere (first in node order)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zhisuan.scheduler.capacity import PoolCapacity
from zhisuan.scheduler.nodescore.base import Fit, Pick, by_score, tightest
from zhisuan.scheduler.nodescore.workload import Workload
from zhisuan.scheduler.shape import WHOLE, Shape
from zhisuan.scheduler.snapshot import PoolState


@dataclass(frozen=True)
class GpuPacking:
    name: str = "gpu-packing"
    seed: int = 0

    def choose(self, cap: PoolCapacity, shape: Shape, job_id: str, pool: PoolState, queued: Workload) -> Pick:
        fit = Fit.of(cap, shape)
        size = fit.dev.shape[1]
        if not shape.devices_per_node:
            score = np.zeros(len(fit.nodes))
        else:
            idle = (fit.dev == WHOLE).all(axis=1)
            if shape.milli:
                chosen = fit.dev[np.arange(len(fit.nodes)), tightest(fit, shape)]
                fresh = (chosen == WHOLE).astype(np.int64)
            else:
                fresh = np.full(len(fit.nodes), shape.devices_per_node)
            partly = np.maximum(100 - (fit.dev * 100 // WHOLE).sum(axis=1) // 10, 50)
            used = np.where(fresh > 0, np.maximum(50 - fresh, 33), partly)
            score = np.where(idle, 33 - size, used).astype(np.float64)
        return by_score(score, fit, shape, self.seed, pool.key, len(cap.free))
