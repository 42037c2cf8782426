"""What every node score shares: the pool's nodes a shape fits, a fixed random order of nodes for ties,
and the pick (cost, nodes, devices) of the cheapest node."""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from zhisuan.scheduler.capacity import PoolCapacity
from zhisuan.scheduler.shape import Shape
from zhisuan.scheduler.shares import DeviceShares

I = npt.NDArray[np.int64]  # noqa: E741
F = npt.NDArray[np.float64]
Pick = tuple[float, tuple[int, ...], tuple[tuple[int, ...], ...] | None]


@dataclass(frozen=True)
class Fit:
    """The nodes of a pool one member of `shape` fits on now, with their free devices and CPU."""

    shares: DeviceShares
    nodes: I
    dev: I  # [fit node, device] thousandths free
    cpu: I
    mem: I

    @classmethod
    def of(cls, cap: PoolCapacity, shape: Shape) -> Fit:
        shares = cap.device_shares()
        nodes = np.flatnonzero(shares.node_mask(shape))
        return cls(shares, nodes, shares.dev[nodes].astype(np.int64), shares.cpu[nodes], shares.mem[nodes])


@functools.lru_cache(maxsize=256)
def tie_order(seed: int, pool: str, nodes: int) -> F:
    """A fixed random rank in [0, 1) per node of a pool for a seed: ties go to it, as the FGD artifact's
    randomly prefixed node names do (per run, not per decision). Drawn once per (seed, pool, nodes) and
    shared read-only: drawing it again on every placement was an eighth of a sharing replay."""
    order = np.random.default_rng([seed, zlib.crc32(pool.encode())]).random(nodes)
    order.flags.writeable = False
    return order


def pick(cost: F, fit: Fit, shape: Shape, device: I | None = None) -> Pick:
    """The node of least cost (lowest index on a tie); `device`: the chosen device per fit node, for shares."""
    if shape.nodes > 1:
        nodes = fit.shares.best_fit(shape)
        return 0.0, nodes, None
    i = int(np.argmin(cost))
    node = int(fit.nodes[i])
    if device is not None:
        return float(cost[i]), (node,), ((int(device[i]),),)
    return float(cost[i]), (node,), None


def tightest(fit: Fit, shape: Shape) -> I:
    """Per fit node, the fullest device a share fits on (lowest index on a tie)."""
    room = np.where(fit.dev >= shape.milli, fit.dev, np.iinfo(np.int64).max)
    out: I = np.argmin(room, axis=1)
    return out


def by_score(score: F, fit: Fit, shape: Shape, seed: int, pool: str, nodes: int) -> Pick:
    """The highest integer score wins, ties to the seed's fixed node order (as in the FGD artifact); a share
    takes the fullest device it fits on."""
    cost = -score + 0.5 * tie_order(seed, pool, nodes)[fit.nodes]
    return pick(cost, fit, shape, tightest(fit, shape) if shape.milli else None)


def asked(shape: Shape) -> int:
    """Thousandths of devices a member asks."""
    return shape.milli or shape.devices_per_node * 1000
