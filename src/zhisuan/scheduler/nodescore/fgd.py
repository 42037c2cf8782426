"""Fragmentation gradient descent (FGD; Weng et al., "Beware of Fragmentation", ATC'23), our own code
after the paper and its artifact: place a task where the expected workload's fragmentation grows least.

A node's fragmentation for a task class is the device capacity that class cannot use there: the free
thousandths of devices too small for its per-device ask when the class fits the node, every free
thousandth when it does not fit (too few devices, too little CPU, a chip it may not use) and for CPU-only
classes. Summed over the workload's classes by their shares. A share tries every device it fits on.
`quantise` keeps the artifact's integer score (100·sigmoid(−Δ/1000)), whose ties go to a fixed random
node order per `seed`; without it the exact growth decides — measured worse on the openb trace (exact
greedy growth packs into too few nodes, 90.7% allocated at 100% arrived against 95.3%).

zhisuan's default (`frag-memory`) differs from the paper in two measured ways: the workload keeps every
class (`coverage` 1) and each class's memory, so a node short of memory counts as unusable for the class
as it is for CPU (memory is what blocks most failed shares on the openb trace); `zhisuan bench sharing`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from zhisuan.scheduler.capacity import PoolCapacity
from zhisuan.scheduler.nodescore.base import F, Fit, I, Pick, pick, tie_order
from zhisuan.scheduler.nodescore.workload import B, Workload
from zhisuan.scheduler.shape import WHOLE, Shape
from zhisuan.scheduler.snapshot import PoolState


def fragment(dev: I, cpu: I, mem: I, wl: Workload, allowed: B) -> F:
    """[node] expected fragmentation (thousandths of a device) of nodes with these free devices, CPU and
    memory (memory counts only for a workload that keeps it). Devices are compared with each distinct
    per-device ask once, then spread to the classes that ask it."""
    idle = dev.sum(axis=1)
    asks, level = wl.levels()
    d = dev[None, :, :]
    enough = d >= asks[:, None, None]
    count = np.count_nonzero(enough, axis=2)[level]
    small = np.where(enough, 0, d).sum(axis=2)[level]
    fits = ((count >= wl.num[:, None]) & (cpu[None, :] >= wl.cpu[:, None])
            & (mem[None, :] >= wl.memory[:, None]) & (allowed & (wl.num > 0))[:, None])
    out: F = wl.weight @ np.where(fits, small, idle[None, :])
    return out


_MIX = np.random.default_rng(20230711).integers(1, 2**62, 64, dtype=np.int64) | 1  # odd multipliers, fixed


def distinct(keys: I) -> tuple[I, I]:
    """The distinct rows of `keys` and, per row, its index among them. np.unique(axis=0) sorts the rows as
    bytes (a fifth of a sharing replay); here each row is hashed to one int64 (wrapping), the hashes are made
    unique in 1-D, and the result is checked exactly: on a collision, the row-wise unique. Each state is
    computed alone and read back through the index, so the order of the states changes no result."""
    if keys.shape[1] <= len(_MIX):
        _, first, inverse = np.unique(keys @ _MIX[:keys.shape[1]], return_index=True, return_inverse=True)
        states = keys[first]
        if np.array_equal(states[inverse], keys):
            return states, inverse
    states, inverse = np.unique(keys, axis=0, return_inverse=True)
    return states, inverse.reshape(-1)


def growth(fit: Fit, shape: Shape, wl: Workload, allowed: B, memory: bool) -> tuple[F, I | None]:
    """[fit node] how much the expected fragmentation grows if the shape goes there, and for a share the
    device where it grows least (lowest index on a tie). Nodes in the same state are computed once."""
    mem_used = memory and bool(wl.memory.any())
    if not mem_used and wl.memory.any():
        wl = replace(wl, memory=np.zeros_like(wl.memory), _ok={}, _levels=[])
    keys = np.column_stack([fit.dev, fit.cpu, fit.mem if mem_used else np.zeros_like(fit.cpu)])
    states, inverse = distinct(keys)
    dev, cpu, mem = states[:, :-2], states[:, -2], states[:, -1]
    before = fragment(dev, cpu, mem, wl, allowed)
    left, mem_left = cpu - shape.cpu, mem - (shape.memory if mem_used else 0)
    if shape.milli:
        n, k = dev.shape
        after_dev = np.repeat(dev[:, None, :], k, axis=1)
        ks = np.arange(k)
        after_dev[:, ks, ks] -= shape.milli
        after = fragment(after_dev.reshape(n * k, k), np.repeat(left, k), np.repeat(mem_left, k), wl,
                         allowed).reshape(n, k)
        delta = np.where(dev >= shape.milli, after - before[:, None], np.inf)
        device = np.argmin(delta, axis=1)
        return delta[np.arange(n), device][inverse], device[inverse]
    after_dev = dev.copy()
    if shape.devices_per_node:
        free = after_dev == WHOLE
        after_dev[free & (np.cumsum(free, axis=1) <= shape.devices_per_node)] = 0
    return (fragment(after_dev, left, mem_left, wl, allowed) - before)[inverse], None


@dataclass(frozen=True)
class FragmentationGradient:
    name: str = "fgd"
    workload: Workload | None = None  # None: the asks queued this cycle, alike
    quantise: bool = True
    seed: int = 0
    coverage: float = 0.95  # of the tasks, by the most frequent classes (for a workload built from a trace)
    memory: bool = False  # classes keep their memory ask

    def choose(self, cap: PoolCapacity, shape: Shape, job_id: str, pool: PoolState, queued: Workload) -> Pick:
        fit = Fit.of(cap, shape)
        if shape.nodes > 1:
            return pick(np.zeros(len(fit.nodes)), fit, shape)
        wl = self.workload or queued
        delta, device = growth(fit, shape, wl, wl.allowed(pool.chip.name), self.memory)
        if self.quantise:
            score = np.floor(100.0 / (1.0 + np.exp(np.clip(delta / 1000.0, -50, 50))))
            cost = -score + 0.5 * tie_order(self.seed, pool.key, len(cap.free))[fit.nodes]
        else:
            cost = delta
        return pick(cost, fit, shape, device)
