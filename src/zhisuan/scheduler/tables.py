"""Column arrays over pools and over distinct resource asks: the two axes of every filter and score matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from zhisuan.model import Request
from zhisuan.model.billing import Held, held
from zhisuan.scheduler.snapshot import PoolState

F = npt.NDArray[np.float64]
I = npt.NDArray[np.int64]  # noqa: E741
B = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class PoolTable:
    pools: Sequence[PoolState]
    devices_per_node: I
    nodes: I
    gang_nodes: I  # the largest gang the pool's engine starts there
    cpus: I
    memory: F
    tflops: F
    price: F
    cpu_price: F  # CNY per CPU-hour (CPU-only jobs, and CPUs beyond a share of a node)
    memory_price: F  # CNY per GiB-hour beyond a share of a node
    kg_per_device_hour: F
    grid: F  # kgCO2 per kWh at the pool's center (annual factor)
    healthy: B
    center: list[str]
    region: list[str]
    stack: list[str]
    model: list[str]

    @classmethod
    def build(cls, pools: Sequence[PoolState]) -> PoolTable:
        return cls(
            pools=pools,
            devices_per_node=np.array([p.devices_per_node for p in pools], dtype=np.int64),
            nodes=np.array([p.nodes for p in pools], dtype=np.int64),
            gang_nodes=np.array([min(p.nodes, p.max_gang_nodes or p.nodes) for p in pools], dtype=np.int64),
            cpus=np.array([p.cpus_per_node for p in pools], dtype=np.int64),
            memory=np.array([p.memory_gib_per_node for p in pools], dtype=np.float64),
            tflops=np.array([p.chip.fp16_tflops for p in pools], dtype=np.float64),
            price=np.array([p.price for p in pools], dtype=np.float64),
            cpu_price=np.array([p.cpu_price for p in pools], dtype=np.float64),
            memory_price=np.array([p.memory_price for p in pools], dtype=np.float64),
            kg_per_device_hour=np.array([p.kg_per_device_hour for p in pools], dtype=np.float64),
            grid=np.array([p.carbon_kg_per_kwh for p in pools], dtype=np.float64),
            healthy=np.array([p.healthy for p in pools], dtype=np.bool_),
            center=[p.center for p in pools],
            region=[p.region for p in pools],
            stack=[p.chip.stack for p in pools],
            model=[p.chip.name for p in pools],
        )

    def __len__(self) -> int:
        return len(self.pools)

    def membership(self, values: list[str], wanted: Sequence[frozenset[str]]) -> B:
        """[request, pool] -> pool's value is in the request's set (string columns, few distinct values)."""
        out = np.zeros((len(wanted), len(values)), dtype=np.bool_)
        distinct = sorted(set(values))
        cols = {v: np.array([x == v for x in values], dtype=np.bool_) for v in distinct}
        for r, want in enumerate(wanted):
            for v in want:
                col = cols.get(v)
                if col is not None:
                    out[r] |= col
        return out


@dataclass(frozen=True)
class RequestTable:
    reqs: Sequence[Request]
    devices_per_node: I
    nodes: I
    cpus: F
    memory: F
    min_tflops: F
    ref_tflops: F
    max_price: F
    milli: I
    share: F  # devices per node, a share as its fraction (0: CPU-only)
    units: F  # what a run is sold by per hour: devices (a share as its fraction), or a CPU-only job's CPUs

    @classmethod
    def build(cls, reqs: Sequence[Request]) -> RequestTable:
        return cls(
            reqs=reqs,
            devices_per_node=np.array([r.devices_per_node for r in reqs], dtype=np.int64),
            nodes=np.array([r.nodes for r in reqs], dtype=np.int64),
            cpus=np.array([r.cpus for r in reqs], dtype=np.float64),
            memory=np.array([r.memory_gib for r in reqs], dtype=np.float64),
            min_tflops=np.array([r.min_tflops for r in reqs], dtype=np.float64),
            ref_tflops=np.array([r.ref_tflops for r in reqs], dtype=np.float64),
            max_price=np.array([r.max_price for r in reqs], dtype=np.float64),
            milli=np.array([r.milli for r in reqs], dtype=np.int64),
            share=np.array([r.device_share for r in reqs], dtype=np.float64),
            units=np.array([max(r.units, 1e-9) for r in reqs], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.reqs)

    @property
    def simple(self) -> B:
        """[request] whole devices without CPU or memory: what pools' buckets alone decide (see Shape)."""
        out: B = (self.milli == 0) & (self.cpus == 0) & (self.memory == 0)
        return out

    def speed(self, pools: PoolTable) -> F:
        """[request, pool] speed factor vs the request's reference chip (FP16 TFLOPS ratio; 1 without one, and
        on CPU-only pools, which only CPU-only jobs pass)."""
        ref = self.ref_tflops[:, None]
        chip = pools.tflops[None, :]
        ratio: F = np.where((ref > 0) & (chip > 0), chip / np.where(ref > 0, ref, 1.0), 1.0)
        return ratio


def holds(reqs: RequestTable, pools: PoolTable) -> Held[F]:
    """[request, pool] what a run is billed for per hour on each pool (model/billing.py's rule)."""
    return held(reqs.share[:, None], reqs.cpus[:, None], reqs.memory[:, None], reqs.nodes[:, None],
                pools.devices_per_node[None, :], pools.cpus[None, :], pools.memory[None, :],
                pools.cpu_price[None, :], pools.memory_price[None, :])


def unit_price(reqs: RequestTable, pools: PoolTable) -> F:
    """[request, pool] flat CNY per unit a request pays: per device-hour, a CPU-only request per CPU-hour —
    with the CPUs or memory it holds beyond its share of a node spread over those units (0 for most asks)."""
    gpu = reqs.devices_per_node[:, None] > 0
    h = holds(reqs, pools)
    beyond = np.where(gpu, h.cpus, 0.0) * pools.cpu_price[None, :] + h.memory_gib * pools.memory_price[None, :]
    out: F = np.where(gpu, pools.price[None, :], pools.cpu_price[None, :]) + beyond / reqs.units[:, None]
    return out
