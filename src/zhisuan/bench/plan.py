"""`zhisuan bench plan`: a 24-option plan over the full Philly trace, every option replayed through the
scheduler in worker processes on this machine: wall seconds per option."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from zhisuan.model.plan import Plan, load_plan
from zhisuan.sim.plan.cells import CellSpec
from zhisuan.sim.plan.runner import PlanResult, cells, run_plan

EXAMPLE = Path("examples") / "plans" / "cn10-growth.yaml"


@dataclass
class PlanTiming:
    options: int
    cells: int
    jobs_per_cell: int
    workers: int
    seconds: float
    result: PlanResult

    @property
    def per_option(self) -> float:
        return self.seconds / self.options


def example_path() -> Path:
    """The shipped example plan (repo checkout), whose region and finance the benchmark reuses."""
    here = Path(str(resources.files("zhisuan"))).parents[1] / EXAMPLE
    return here if here.is_file() else EXAMPLE


def bench_plan(base: Plan, limit: int | None) -> Plan:
    """The example's region, finance and guiyang build at ×1 demand, with 24 options: today, six sizes of
    extension at each of the three centers, three sizes of the new center, a retirement, one with an extension."""
    build = next(o for o in base.options if o.build).build[0]
    options: list[dict[str, object]] = [{"name": "today"}]
    for center in ("wuhan-aicc", "hefei-acc", "chengdu-icc"):
        options += [{"name": f"{center}-plus-{n}", "add": [{"center": center, "pool": "main", "nodes": n}]}
                    for n in (8, 16, 24, 32, 48, 64)]
    for n in (16, 32, 48):
        pool = build.pools[0].model_dump() | {"nodes": n}
        options.append({"name": f"build-guiyang-{n}", "build": [build.model_dump() | {"pools": [pool]}]})
    options += [{"name": "retire-hefei", "retire": [{"center": "hefei-acc", "pool": "main"}]},
                {"name": "retire-hefei-chengdu-plus-32", "retire": [{"center": "hefei-acc", "pool": "main"}],
                 "add": [{"center": "chengdu-icc", "pool": "main", "nodes": 32}]}]
    finance = base.finance.model_dump()
    finance["capex_per_node"] = {"DCU Shensuan-1 (深算一号)": 400_000.0} | finance["capex_per_node"]
    finance["assumptions"] = finance["assumptions"] | {"capex_per_node": "910A and DCU servers: not sourced"}
    data = base.model_dump() | {"name": "bench-24", "options": options, "target": None, "finance": finance}
    data["demand"] = base.demand.model_dump() | {"scenarios": [{"name": "x1", "arrivals": 1}], "limit": limit}
    return Plan.model_validate(data)


def run(limit: int | None = None, workers: int = 0,
        progress: Callable[[CellSpec], None] = lambda _: None) -> PlanTiming:
    base, network = load_plan(example_path())
    plan = bench_plan(base, limit)
    n = workers or os.cpu_count() or 1
    result = run_plan(plan, network, n, progress=progress)
    jobs = result.rows[0].cell.jobs
    return PlanTiming(len(plan.options), len(cells(plan, network)), jobs, n, result.wall_seconds, result)
