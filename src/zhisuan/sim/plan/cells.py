"""One cell of a plan: an option's network under one demand scenario, replayed and measured over the demand's
arrival window — what the centers bill, burn and emit in that window, annualised. Small and picklable, so
cells run in worker processes or as Ray tasks and only their figures travel back."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from zhisuan.catalog import load_catalog
from zhisuan.metering.energy import IDLE_FRACTION
from zhisuan.model.billing import Held
from zhisuan.model.jobspec import SpecError
from zhisuan.model.network import Network
from zhisuan.model.plan import Plan, apply
from zhisuan.scheduler.profiles import policy_for
from zhisuan.sim.demand import factor_for, scale_arrivals
from zhisuan.sim.engine import SimResult, Simulator
from zhisuan.sim.readers import load_trace
from zhisuan.sim.scenario import network_scenario
from zhisuan.sim.trace import Trace

YEAR = 365.0 * 86400.0


@dataclass(frozen=True)
class CellSpec:
    plan: Plan
    network: Network  # today's (the plan's region); the option is applied in the worker
    option: str
    scenario: str
    siloed: bool = False  # each center serves only the demand homed to it ("build alone")


@dataclass(frozen=True)
class CenterYear:
    """A center over the demand window, money and energy annualised."""

    center: str
    devices: int
    allocated_util: float
    revenue: float  # CNY a year billed at its price book (time-of-use applied)
    kwh: float  # facility energy a year: allocated devices at their draw, idle ones at IDLE_FRACTION of TDP
    kg_co2: float
    kwh_at_tou: float  # the same energy weighted by its zone's time-of-use multipliers: × the flat price = the bill


@dataclass(frozen=True)
class CellResult:
    option: str
    scenario: str
    siloed: bool
    factor: float  # arrivals multiplier used
    jobs: int
    finished: int
    unplaceable: int  # jobs no pool of this network can run (left out, counted)
    mean_wait: float  # seconds
    p95_wait: float
    mean_jct: float
    p95_jct: float
    busy_fraction: float | None  # measured busy share of allocated time, where the trace has it
    centers: tuple[CenterYear, ...]
    wall_seconds: float
    notes: tuple[str, ...]

    @property
    def devices(self) -> int:
        return sum(c.devices for c in self.centers)

    @property
    def allocated_util(self) -> float:
        return sum(c.allocated_util * c.devices for c in self.centers) / max(self.devices, 1)

    @property
    def busy_util(self) -> float | None:
        return None if self.busy_fraction is None else self.allocated_util * self.busy_fraction

    @property
    def revenue(self) -> float:
        return sum(c.revenue for c in self.centers)

    @property
    def kwh(self) -> float:
        return sum(c.kwh for c in self.centers)

    @property
    def kg_co2(self) -> float:
        return sum(c.kg_co2 for c in self.centers)


@cache
def base_trace(name: str, limit: int | None) -> Trace:
    return load_trace(name).limit(limit)


MAX_JOBS = 50_000_000  # a cell's jobs at most: about 10 GB at the simulator's ~200 bytes a job


def demand(plan: Plan, scenario: str) -> tuple[Trace, float]:
    """The scenario's trace and the arrivals factor it took."""
    k, sc = next((k, s) for k, s in enumerate(plan.demand.scenarios) if s.name == scenario)
    trace = base_trace(plan.demand.trace, plan.demand.limit)
    factor = factor_for(trace, sc.arrivals, sc.p_hours_per_month)
    if factor * len(trace.jobs) > MAX_JOBS:
        raise SpecError([(f"demand.scenarios.{k}", f"{factor:,.1f}× {len(trace.jobs):,} jobs is over {MAX_JOBS:,} "
                          "jobs in one simulation: ask for less, or plan a region")])
    return scale_arrivals(trace, factor, plan.demand.seed), factor


def assign_homes(trace: Trace, network: Network, seed: int = 0) -> Trace:
    """Give each job a home center for a siloed replay. A trace's own homes (Philly's VCs) go whole to
    centers, largest work first to the center with the most capacity left (FP16 PFLOPS); a trace without
    homes is split job by job in proportion to capacity (seeded)."""
    capacity = {c.name: sum(p.nodes * p.devices_per_node * p.chip.fp16_tflops for p in c.pools)
                for c in network.centers}
    total = sum(capacity.values())
    homes = {j.home for j in trace.jobs if j.home}
    if homes and not homes <= set(capacity):
        work: dict[str, float] = {}
        for j in trace.jobs:
            work[j.home or ""] = work.get(j.home or "", 0.0) + j.devices * j.duration
        scale = sum(work.values()) / total
        left = {c: cap * scale for c, cap in capacity.items()}
        mapping = {}
        for home, w in sorted(work.items(), key=lambda kv: (-kv[1], kv[0])):
            center = max(left, key=lambda c: (left[c], c))
            mapping[home] = center
            left[center] -= w
        jobs = [replace(j, home=mapping[j.home or ""]) for j in trace.jobs]
    elif homes:
        return trace
    else:
        names = sorted(capacity)
        pick = np.random.default_rng(seed).choice(len(names), size=len(trace.jobs),
                                                  p=[capacity[n] / total for n in names])
        jobs = [replace(j, home=names[k]) for j, k in zip(trace.jobs, pick, strict=True)]
    return Trace(trace.name, jobs, trace.chip, trace.homes, [*trace.notes, "homes assigned to centers by capacity"],
                 trace.busy_cdf, trace.start)


def _centers(r: SimResult, w0: float, w1: float) -> tuple[CenterYear, ...]:
    window = max(w1 - w0, 1.0)
    year = YEAR / window
    busy = r.busy_fraction if r.busy_fraction is not None else 1.0
    draw = busy + (1.0 - busy) * IDLE_FRACTION
    runs = r.runs
    start, end = np.maximum(runs[:, 1], w0), np.minimum(runs[:, 2], w1)
    keep = end > start
    runs, start, end = runs[keep], start[keep], end[keep]
    rows: dict[str, list[float]] = {}
    for k, pool in enumerate(r.scenario.pools):
        mine = runs[:, 0] == k
        devices = pool.nodes * pool.devices_per_node
        used_h = float(((end[mine] - start[mine]) * runs[mine, 3]).sum()) / 3600.0
        weight = pool.tou.integral(start[mine] + r.epoch, end[mine] + r.epoch)
        priced_h = float((weight * runs[mine, 3]).sum()) / 3600.0
        billed = Held(priced_h, float((weight * runs[mine, 4]).sum()) / 3600.0,
                      float((weight * runs[mine, 5]).sum()) / 3600.0)  # CPUs, memory beyond shares (billing.py)
        idle_h = max(devices * window / 3600.0 - used_h, 0.0)
        idle_priced_h = max(devices * float(pool.tou.integral(w0 + r.epoch, w1 + r.epoch)) / 3600.0 - priced_h, 0.0)
        kw = (pool.chip.tdp_w or 0.0) / 1000.0 * pool.pue
        kwh = (used_h * draw + idle_h * IDLE_FRACTION) * kw
        kwh_at_tou = (priced_h * draw + idle_priced_h * IDLE_FRACTION) * kw
        row = rows.setdefault(pool.center, [0.0] * 6)
        revenue = billed.cny_per_hour(pool.price, pool.cpu_price, pool.memory_price)
        for i, v in enumerate((devices, used_h, revenue, kwh, kwh * pool.carbon_kg_per_kwh,
                               kwh_at_tou)):
            row[i] += v
    return tuple(CenterYear(c, int(v[0]), v[1] * 3600.0 / (v[0] * window) if v[0] else 0.0, v[2] * year,
                            v[3] * year, v[4] * year, v[5] * year) for c, v in rows.items())


def run_cell(spec: CellSpec) -> CellResult:
    """Replay the cell and keep only its figures."""
    plan = spec.plan
    option = next(o for o in plan.options if o.name == spec.option)
    network = apply(option, spec.network)
    trace, factor = demand(plan, spec.scenario)
    if spec.siloed:
        trace = assign_homes(trace, network, plan.demand.seed)
    scenario = network_scenario(network, spec.siloed)
    policy = policy_for(network.scheduler, plan.policy)
    chip = load_catalog().lookup(trace.chip)
    stacks = frozenset(plan.demand.stacks) or frozenset([chip.stack])
    sim = Simulator(trace, scenario, policy, interval=plan.interval, stacks=stacks)
    r = sim.run()
    submit, first, end = r.jobs.submit, r.jobs.first_start, r.jobs.end
    done = np.isfinite(end)
    wait, jct = (first - submit)[done], (end - submit)[done]

    def stat(x: np.ndarray, p: float | None = None) -> float:
        if not len(x):
            return math.nan
        return float(x.mean()) if p is None else float(np.percentile(x, p))

    w0, w1 = (float(submit.min()), float(submit.max())) if len(submit) else (0.0, 1.0)
    return CellResult(spec.option, spec.scenario, spec.siloed, factor, len(r.jobs), int(done.sum()),
                      sim.impossible, stat(wait), stat(wait, 95), stat(jct), stat(jct, 95), r.busy_fraction,
                      _centers(r, w0, w1), r.wall_seconds, tuple(dict.fromkeys(r.notes)))
