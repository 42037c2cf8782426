"""What a run is billed for on a pool's nodes: the one rule the scheduler's price score and quotes, metering's
invoices and the simulator's cost report all call, so a tiny share cannot hold a node's CPUs for free.

A gang member holding d devices (a share as its fraction) of a node with D devices, C CPUs and M GiB holds
d/D of that node; a CPU-only one holding c CPUs holds c/C of it. It is billed for what it is sold by (its
devices, or a CPU-only job its CPUs) plus the CPUs beyond d/D × C or the memory beyond that fraction × M,
whichever of the two costs more — a node fraction is billed once, never twice. With the CPU-hour and
GiB-hour prices derived from the devices' (a node's device-hours over its CPUs, over its memory) this is
Slurm's `PriorityFlags=MAX_TRES` billing: the largest fraction of the node held, at the node's price. A job
within its share is billed exactly its devices, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from zhisuan.model.request import Request

F = npt.NDArray[np.float64]
N = TypeVar("N", float, F)
Num = float | npt.NDArray[np.floating[Any]] | npt.NDArray[np.integer[Any]]
EPS = 1e-6  # below a millionth of a CPU or GiB beyond the share is float noise, not a hold


@dataclass(frozen=True, slots=True)
class Held(Generic[N]):
    """What a run is billed for per hour, over all its nodes."""

    devices: N  # devices, a share as its fraction (0: a CPU-only job)
    cpus: N  # CPUs at the CPU-hour price: a CPU-only job's own, or those beyond its devices' share
    memory_gib: N  # GiB at the GiB-hour price: beyond the share of the node its devices (or CPUs) hold

    def cny_per_hour(self, device_price: float, cpu_price: float, gib_price: float) -> N:
        """At the flat tariff (metering and quotes multiply each hour by its time-of-use factor)."""
        out: N = self.devices * device_price + self.cpus * cpu_price + self.memory_gib * gib_price
        return out


def held(devices: Num, cpus: Num, memory_gib: Num, nodes: Num, node_devices: Num, node_cpus: Num,
         node_memory_gib: Num, cpu_price: Num, gib_price: Num) -> Held[F]:
    """The rule over numpy arrays that broadcast (the scheduler's [request, pool] matrices): `devices`,
    `cpus`, `memory_gib` are per node (devices a share's fraction, 0 CPU-only), `node_*` the pool's node."""
    d, c, m = (np.asarray(x, dtype=np.float64) for x in (devices, cpus, memory_gib))
    gpu = d > 0
    by_d = d * node_memory_gib / np.maximum(node_devices, 1)  # multiplied first: exact for whole shares
    by_c = c * node_memory_gib / np.maximum(node_cpus, 1)
    cpu_x = np.where(gpu, c - d * node_cpus / np.maximum(node_devices, 1), 0.0)
    mem_x = m - np.where(gpu, by_d, by_c)
    cpu_x = np.where(cpu_x > EPS, cpu_x, 0.0)
    mem_x = np.where(mem_x > EPS, mem_x, 0.0)
    by_cpu = cpu_x * cpu_price >= mem_x * gib_price
    n = np.asarray(nodes, dtype=np.float64)
    return Held(d * n, (np.where(gpu, 0.0, c) + np.where(by_cpu, cpu_x, 0.0)) * n, np.where(by_cpu, 0.0, mem_x) * n)


def held_by(request: Request, node_devices: int, node_cpus: float, node_memory_gib: float, cpu_price: float,
            gib_price: float) -> Held[float]:
    """`held` for one request on one pool, as plain floats (a quote, an invoice)."""
    h = held(request.device_share, request.cpus, request.memory_gib, request.nodes, node_devices, node_cpus,
             node_memory_gib, cpu_price, gib_price)
    return Held(float(h.devices), float(h.cpus), float(h.memory_gib))
