"""The 东数西算 scenario: data born in the east, capacity across the cn10 network, jobs that read it.

- Centers, chips, prices, PUE and grid factors: the cn10 network file; each pool's nodes scaled by one
  factor so the network's devices match the trace's load (ASSUMPTION: the shares between centers kept).
- Jobs: the first `jobs` of the Philly trace (arrivals, sizes, durations), portable across every stack in
  the network (ASSUMPTION: frameworks that run on CUDA, CANN, Neuware and DTK alike), speed by FP16 TFLOPS.
- Datasets: the sourced sizes of public training sets (`catalog/data/dataset_sizes.csv`); each is born
  at a center in a demand-side (eastern) hub province — 京津冀, 长三角, 粤港澳, 成渝, per the 2022 hub
  approvals — chosen in proportion to its devices (ASSUMPTION); each job reads one, by Zipf popularity
  (s = 1, ASSUMPTION).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace

import numpy as np

from zhisuan.catalog import load_catalog
from zhisuan.catalog.links import DATA
from zhisuan.model import Network
from zhisuan.sim.datasets import Dataset, DataWorld
from zhisuan.sim.trace import Trace

EAST = frozenset({"河北", "北京", "天津", "上海", "江苏", "浙江", "安徽", "广东", "四川", "重庆"})

NOTES = [
    "pools: cn10's nodes scaled by one factor to the trace's load (ASSUMPTION: shares between centers kept)",
    "jobs portable across every stack of the network, speed by FP16 TFLOPS (ASSUMPTION)",
    "datasets: sourced sizes of public training sets; born in demand-side hub provinces in proportion to "
    "devices, read by Zipf(1) popularity (ASSUMPTION)",
    "staged replicas are kept (no eviction: stores taken to be large enough, ASSUMPTION)",
]


@dataclass(frozen=True)
class EastWest:
    network: Network
    trace: Trace
    datasets: list[Dataset]
    stacks: frozenset[str]
    notes: tuple[str, ...]

    def world(self) -> DataWorld:
        """A fresh copy of the datasets at their birth centers (each replay changes its own)."""
        return DataWorld([Dataset(d.name, d.gb, d.born) for d in self.datasets])


def dataset_sizes() -> list[tuple[str, float]]:
    with (DATA / "dataset_sizes.csv").open(encoding="utf-8") as f:
        return [(row["dataset"], float(row["size_gb"])) for row in csv.DictReader(f)]


def scaled(network: Network, devices: int) -> Network:
    """`network` with every pool's nodes × one factor (at least one node) to about `devices` devices."""
    factor = devices / max(network.devices, 1)
    centers = [c.model_copy(update={"pools": [p.model_copy(update={"nodes": max(1, round(p.nodes * factor))})
                                              for p in c.pools]}) for c in network.centers]
    return network.model_copy(update={"centers": centers})


def build(network: Network, trace: Trace, devices: int, seed: int = 0) -> EastWest:
    """The scenario on `network` (cn10) for `trace`'s jobs, on about `devices` devices."""
    rng = np.random.default_rng(seed)
    net = scaled(network, devices)
    east = [c for c in net.centers if c.province in EAST and c.devices]
    if not east:
        raise ValueError(f"network {network.name} has no center in a demand-side hub province")
    weights = np.array([c.devices for c in east], dtype=float)
    sizes = dataset_sizes()
    datasets = [Dataset(name, gb, east[int(rng.choice(len(east), p=weights / weights.sum()))].name)
                for name, gb in sizes]
    order = rng.permutation(len(datasets))  # popularity rank is not size rank
    zipf = 1.0 / np.arange(1, len(datasets) + 1)
    picks = rng.choice(len(datasets), size=len(trace.jobs), p=zipf / zipf.sum())
    jobs = [replace(j, inputs=(datasets[int(order[k])].name,)) for j, k in zip(trace.jobs, picks, strict=True)]
    stacks = frozenset(p.chip.stack for c in net.centers for p in c.pools)
    known = {a.stack for a in load_catalog().accelerators}
    return EastWest(net, replace(trace, jobs=jobs), datasets, stacks & known,
                    (*NOTES, f"{net.devices} devices in {len(net.centers)} centers; {len(trace.jobs)} jobs"))
