"""`zhisuan bench data`: the 东数西算 scenario under data-blind placement, always moving the job to its
data, and zhisuan's data-aware placement — mean JCT, money (compute + transfer) and carbon."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from zhisuan.model import load_network
from zhisuan.scheduler import Policy
from zhisuan.scheduler.plugins.data_home import DataHome
from zhisuan.scheduler.policies import DEFAULT
from zhisuan.sim.eastwest import EastWest, build
from zhisuan.sim.engine import Simulator
from zhisuan.sim.metrics import summarize
from zhisuan.sim.readers import load_trace
from zhisuan.sim.scenario import network_scenario

CN10 = Path(__file__).resolve().parents[3] / "examples" / "networks" / "cn10.yaml"


@dataclass(frozen=True)
class DataRow:
    policy: str
    jobs: int
    finished: int
    mean_jct: float  # seconds
    p99_jct: float
    compute_cny: float
    transfer_cny: float
    kg_co2: float  # compute (TDP model) + transfers
    moved_tb: float
    transfers: int
    replicas: int
    wall_seconds: float

    @property
    def total_cny(self) -> float:
        return self.compute_cny + self.transfer_cny


def policies(base: Policy = DEFAULT) -> list[Policy]:
    return [
        replace(base, name="data-blind", weigh_data=False),
        replace(base, name="move-job-to-data", filters=(*base.filters, DataHome())),
        replace(base, name="data-aware"),
    ]


def scenario(jobs: int, devices: int, seed: int = 0, network: Path = CN10) -> EastWest:
    return build(load_network(network), load_trace("philly").limit(jobs), devices, seed)


def run(jobs: int = 3000, devices: int = 320, seed: int = 0,
        progress: Callable[[str], None] = lambda _: None) -> tuple[EastWest, list[DataRow]]:
    ew = scenario(jobs, devices, seed)
    rows = []
    for policy in policies():
        progress(f"replaying {jobs:,} jobs under {policy.name}")
        sim = Simulator(ew.trace, network_scenario(ew.network, False), policy, stacks=ew.stacks, data=ew.world())
        result = sim.run()
        s = summarize(result)
        t = result.transfers
        rows.append(DataRow(policy.name, s.jobs, s.finished, s.avg_jct, s.p99_jct, s.cny, float(t[:, 2].sum()),
                            s.kg_co2 + float(t[:, 3].sum()), float(t[:, 1].sum()) / 1000.0, len(t),
                            sim.data.replicas_made if sim.data else 0, result.wall_seconds))
    return ew, rows


def versus_best_baseline(rows: list[DataRow]) -> tuple[float, float]:
    """(data-aware mean JCT as % of the better baseline's, its total ¥ as % of that baseline's)."""
    by = {r.policy: r for r in rows}
    aware = by["data-aware"]
    best = min((by["data-blind"], by["move-job-to-data"]), key=lambda r: r.mean_jct)
    return 100.0 * aware.mean_jct / best.mean_jct, 100.0 * aware.total_cny / max(best.total_cny, 1e-9)
