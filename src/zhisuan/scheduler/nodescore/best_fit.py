"""Baseline BestFit (FGD paper): the node with the least CPU and devices left after the task, half each
(normalised by a 128-CPU, 8-device node as in the artifact)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zhisuan.scheduler.capacity import PoolCapacity
from zhisuan.scheduler.nodescore.base import Fit, Pick, asked, by_score
from zhisuan.scheduler.nodescore.workload import Workload
from zhisuan.scheduler.shape import Shape
from zhisuan.scheduler.snapshot import PoolState


@dataclass(frozen=True)
class BestFit:
    name: str = "best-fit"
    seed: int = 0

    def choose(self, cap: PoolCapacity, shape: Shape, job_id: str, pool: PoolState, queued: Workload) -> Pick:
        fit = Fit.of(cap, shape)
        left = 0.5 * (fit.cpu - shape.cpu) / 128_000 + 0.5 * (fit.dev.sum(axis=1) - asked(shape)) / 8000
        return by_score(np.floor(100 * (1 - left)), fit, shape, self.seed, pool.key, len(cap.free))
