"""Baseline Random (FGD paper): any node the task fits on, any device it fits on, uniformly."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from zhisuan.scheduler.capacity import PoolCapacity
from zhisuan.scheduler.nodescore.base import Fit, Pick, pick
from zhisuan.scheduler.nodescore.workload import Workload
from zhisuan.scheduler.shape import Shape
from zhisuan.scheduler.snapshot import PoolState


@dataclass(frozen=True)
class RandomNode:
    name: str = "random"
    seed: int = 0

    def choose(self, cap: PoolCapacity, shape: Shape, job_id: str, pool: PoolState, queued: Workload) -> Pick:
        fit = Fit.of(cap, shape)
        rng = np.random.default_rng([self.seed, zlib.crc32(job_id.encode()), zlib.crc32(pool.key.encode())])
        cost = rng.random(len(fit.nodes))  # the least of independent uniforms: uniform over every pool's nodes
        device = None
        if shape.milli:
            room = np.where(fit.dev >= shape.milli, rng.random(fit.dev.shape), np.inf)
            device = np.argmin(room, axis=1)
        return pick(cost, fit, shape, device)
