"""Baseline GpuClustering (FGD paper): keep tasks of a kind together — shares with shares, whole devices
with whole devices — then the fuller node. CPU-only tasks score alike everywhere (first in node order)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zhisuan.scheduler.capacity import PoolCapacity
from zhisuan.scheduler.nodescore.base import Fit, Pick, by_score
from zhisuan.scheduler.nodescore.workload import Workload
from zhisuan.scheduler.shape import Shape
from zhisuan.scheduler.snapshot import PoolState


@dataclass(frozen=True)
class GpuClustering:
    name: str = "gpu-clustering"
    seed: int = 0

    def choose(self, cap: PoolCapacity, shape: Shape, job_id: str, pool: PoolState, queued: Workload) -> Pick:
        fit = Fit.of(cap, shape)
        if not shape.devices_per_node:
            score = np.zeros(len(fit.nodes))
        else:
            pods = fit.shares.pods[fit.nodes]
            own, other = pods[:, 0 if shape.milli else 1], pods[:, 1 if shape.milli else 0]
            bonus = np.select([(own > 0) & (other == 0), (own > 0) & (other > 0), (own == 0) & (other == 0)],
                              [75, 50, 25], 0)
            score = (25 * (8000 - fit.dev.sum(axis=1)) // 8000 + bonus).astype(np.float64)
        return by_score(score, fit, shape, self.seed, pool.key, len(cap.free))
