"""Baseline DotProd (FGD paper, after Tetris): the node whose free CPU and devices, as a vector, are least
aligned with the task's ask (normalised by a 128-CPU, 8-device node as in the artifact)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zhisuan.scheduler.capacity import PoolCapacity
from zhisuan.scheduler.nodescore.base import Fit, Pick, asked, by_score
from zhisuan.scheduler.nodescore.workload import Workload
from zhisuan.scheduler.shape import Shape
from zhisuan.scheduler.snapshot import PoolState


@dataclass(frozen=True)
class DotProduct:
    name: str = "dot-product"
    seed: int = 0

    def choose(self, cap: PoolCapacity, shape: Shape, job_id: str, pool: PoolState, queued: Workload) -> Pick:
        fit = Fit.of(cap, shape)
        dot = fit.cpu / 128_000 * shape.cpu / 128_000 + fit.dev.sum(axis=1) / 8000 * asked(shape) / 8000
        score = np.floor(100 * (1 - dot / 2))
        return by_score(score, fit, shape, self.seed, pool.key, len(cap.free))
