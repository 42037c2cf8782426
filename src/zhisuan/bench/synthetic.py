"""A synthetic network and queue at the scale the scheduler must handle, seeded and reproducible.

Job sizes follow Philly's mix (mostly one device, a tail of multi-node gangs up to 64 devices);
reqs are a mix of named chips, portable jobs and stack classes, over 20 tenants.
"""

from __future__ import annotations

import numpy as np

from zhisuan.catalog import load_catalog
from zhisuan.model import Request
from zhisuan.scheduler import PendingJob, PoolState, RunningJob, Snapshot, TenantState

CHIPS = ["A100 SXM4 80GB", "H100 SXM5 80GB", "H800 SXM5 80GB", "A800 SXM4 80GB", "Ascend 910B (generic)",
         "Ascend 910B3", "Instinct MI300X", "MLU370-X8"]
REGIONS = ["east", "north", "west", "south", "central"]
# devices per job and their weights (Philly: 1 GPU 93%, then 2/4/8, a tail of 16-64)
SIZES = np.array([1, 2, 4, 8, 16, 32, 64])
SIZE_P = np.array([0.70, 0.08, 0.08, 0.08, 0.03, 0.02, 0.01])


def network(centers: int = 20, nodes: int = 10_000, per_node: int = 8, seed: int = 1) -> list[PoolState]:
    """`centers` centers of 2-3 pools each, `nodes` nodes in total, chips drawn from CHIPS."""
    rng = np.random.default_rng(seed)
    catalog = load_catalog()
    pools: list[PoolState] = []
    per_center = nodes // centers
    for c in range(centers):
        k = 2 + c % 2
        chips = rng.choice(len(CHIPS), size=k, replace=False)
        split = np.diff(np.round(np.linspace(0, per_center, k + 1)).astype(int))
        region = REGIONS[c % len(REGIONS)]
        for chip_i, n in zip(chips, split, strict=True):
            chip = catalog.lookup(CHIPS[int(chip_i)])
            pools.append(PoolState(
                center=f"c{c:02d}", name=f"p{int(chip_i)}", chip=chip, region=region, nodes=int(n),
                devices_per_node=per_node, price=round(float(rng.uniform(0.6, 1.4)) * chip.fp16_tflops / 30, 2),
                pue=float(rng.uniform(1.1, 1.4)), carbon_kg_per_kwh=float(rng.uniform(0.14, 0.72)),
            ))
    return pools


def _requests(rng: np.random.Generator, count: int) -> list[Request]:
    catalog = load_catalog()
    out = []
    for _ in range(count):
        devices = int(rng.choice(SIZES, p=SIZE_P))
        per_node, nodes = (devices, 1) if devices <= 8 else (8, devices // 8)
        chip = catalog.lookup(CHIPS[int(rng.integers(len(CHIPS)))])
        kind = rng.random()
        regions = frozenset(rng.choice(REGIONS, size=3, replace=False).tolist()) if rng.random() < 0.2 \
            else frozenset()
        if kind < 0.6:
            req = Request(per_node, nodes, model=chip.name, stacks=frozenset([chip.stack]),
                          ref_tflops=chip.fp16_tflops, regions=regions)
        elif kind < 0.8:
            req = Request(per_node, nodes, stacks=frozenset([chip.stack, "cann" if chip.stack == "cuda" else "cuda"]),
                          ref_tflops=chip.fp16_tflops, regions=regions)
        else:
            req = Request(per_node, nodes, stacks=frozenset([chip.stack]), min_tflops=300.0, ref_tflops=300.0,
                          regions=regions)
        out.append(req)
    return out


def queue(jobs: int = 100_000, tenants: int = 20, seed: int = 2, shapes: int = 400) -> list[PendingJob]:
    """`jobs` pending jobs drawn from `shapes` distinct resource asks (real queues repeat a few shapes a lot)."""
    rng = np.random.default_rng(seed)
    reqs = _requests(rng, shapes)
    pick = rng.zipf(1.3, size=jobs) % shapes
    durations = np.exp(rng.normal(7.0, 1.8, size=jobs)).clip(60, 7 * 86400)
    submits = np.sort(rng.uniform(-86400, 0, size=jobs))
    prios = rng.choice([0, 0, 0, 1, 2], size=jobs)
    tenant = rng.integers(tenants, size=jobs)
    return [
        PendingJob(f"j{i}", f"t{int(tenant[i])}", reqs[int(pick[i])], float(submits[i]), float(durations[i]),
                   int(prios[i]))
        for i in range(jobs)
    ]


def load(pools: list[PoolState], share: float = 0.3, seed: int = 3) -> list[RunningJob]:
    """Whole-node jobs already running on `share` of each pool's nodes, ending over the next hours."""
    rng = np.random.default_rng(seed)
    running = []
    for p in pools:
        busy = int(p.nodes * share)
        for n in range(busy):
            running.append(RunningJob(f"r-{p.key}-{n}", f"t{n % 20}", p.key, (n,), p.devices_per_node,
                                      -3600.0, float(rng.uniform(60, 8 * 3600)), int(rng.integers(0, 2))))
    return running


def snapshot(centers: int = 20, nodes: int = 10_000, jobs: int = 100_000, seed: int = 1) -> Snapshot:
    pools = network(centers, nodes, seed=seed)
    tenants = {f"t{i}": TenantState(f"t{i}", weight=1.0 + i % 3, usage=float(i * 3.6e6)) for i in range(20)}
    return Snapshot(pools=pools, running=load(pools, seed=seed + 2), pending=queue(jobs, seed=seed + 1),
                    tenants=tenants)
