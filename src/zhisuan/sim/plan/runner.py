"""`zhisuan plan`: expand a plan into cells, run them (worker processes here, or tasks on a Ray cluster),
price each option against today's network, mark the Pareto front and the cheapest option meeting the target.

Money per option is its difference from today's network at the same demand, so the baseline's own NPV is 0
and an option that only adds capacity nobody needs shows its cost, not a payback."""

from __future__ import annotations

import logging
import math
import multiprocessing
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from zhisuan.model.network import Network
from zhisuan.model.plan import Option, Plan, apply
from zhisuan.scheduler.profiles import policy_for
from zhisuan.sim.plan.cells import CellResult, CellSpec, CenterYear, demand, run_cell
from zhisuan.sim.plan.money import Money, Prices, center_money, option_money

TODAY = "(today)"  # the unchanged network, run when no option of the plan is a plain baseline


@dataclass(frozen=True)
class OptionRow:
    option: str
    scenario: str
    cell: CellResult
    electricity: float  # CNY a year the option's whole network burns at this demand
    money: Money  # the option against today's network
    pareto: bool  # no other option at this scenario is cheaper and waits less (cost vs p95 wait)
    meets: bool | None  # p95 wait within the target at the target's scenario (None: no target here)


@dataclass(frozen=True)
class JoinRow:
    """A center the option builds, joined to the network vs built alone with its share of the demand."""

    option: str
    center: str
    scenario: str
    joined: CenterYear
    alone: CenterYear
    joined_money: Money
    alone_money: Money
    alone_p95_wait: float  # of the whole network run as silos (each center only its own demand)


@dataclass(frozen=True)
class PlanResult:
    plan: Plan
    rows: list[OptionRow]
    joins: list[JoinRow]
    cheapest: str | None  # the cheapest option meeting the target (None: none does, or no target)
    basis: list[str]  # where every money input came from
    notes: list[str]
    wall_seconds: float


def baseline(plan: Plan) -> str:
    plain = [o.name for o in plan.options if not (o.add or o.build or o.retire)]
    return plain[0] if plain else TODAY


def cells(plan: Plan, network: Network) -> list[CellSpec]:
    """Every option × scenario on the network; the baseline too if the plan has none; and, for options that
    build a center, the network as silos at the target's scenario (or the first) for "join vs build alone"."""
    names = [o.name for o in plan.options]
    if baseline(plan) == TODAY:
        names.insert(0, TODAY)
        plan = plan.model_copy(update={"options": [Option.model_construct(name=TODAY), *plan.options]})
    at = plan.target.scenario if plan.target else plan.demand.scenarios[0].name
    out = [CellSpec(plan, network, o, s.name) for o in names for s in plan.demand.scenarios]
    out += [CellSpec(plan, network, o.name, at, siloed=True) for o in plan.options if o.build]
    return out


def _check(plan: Plan, network: Network) -> Prices:
    from zhisuan.model.jobspec import SpecError

    try:
        policy_for(network.scheduler, plan.policy)
    except SpecError as e:
        raise SpecError([("policy" if plan.policy else loc, msg) for loc, msg in e.errors]) from e
    for o in plan.options:
        apply(o, network)  # a network the option cannot make fails now, not in a worker
    for sc in plan.demand.scenarios:
        demand(plan, sc.name)  # the trace reads and every scenario's size is bounded, before any cell runs
    return Prices(plan, network)


def execute(specs: list[CellSpec], workers: int = 1, ray_address: str | None = None,
            progress: Callable[[CellSpec], None] = lambda _: None, ship: bool = False) -> list[CellResult]:
    """Run cells, the largest demand first (better packing of workers); results in the order given."""
    order = sorted(range(len(specs)), key=lambda i: -_weight(specs[i]))
    results: dict[int, CellResult] = {}
    if ray_address:
        results = _on_ray(specs, order, ray_address, progress, ship)
    elif workers <= 1:
        for i in order:
            results[i] = run_cell(specs[i])
            progress(specs[i])
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
            futures = {pool.submit(run_cell, specs[i]): i for i in order}
            for f in as_completed(futures):
                results[futures[f]] = f.result()
                progress(specs[futures[f]])
    return [results[i] for i in range(len(specs))]


def _weight(spec: CellSpec) -> float:
    sc = next(s for s in spec.plan.demand.scenarios if s.name == spec.scenario)
    return sc.arrivals or sc.p_hours_per_month or 1.0


def code_env() -> dict[str, list[str]]:
    """A Ray runtime environment carrying this zhisuan (its folder, with the package data) to the cluster's
    workers, for clusters that have its dependencies (numpy, scipy, pydantic, PyYAML) but not zhisuan."""
    import zhisuan

    return {"py_modules": [str(Path(zhisuan.__file__).parent)]}


def connect_ray(address: str, env: dict[str, list[str]] | None = None) -> None:
    """`ray.init` to an existing cluster, tried three times: Ray Client's proxy starts a server per driver, and
    under load that first start can fail (its process gone before the proxy reads its command line)."""
    import ray

    for attempt in range(3):
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, runtime_env=env)
            return
        except (ConnectionError, RuntimeError) as e:
            if attempt == 2:
                raise RuntimeError(f"Ray at {address} refused this driver three times: {e}") from e
            time.sleep(2.0 * (attempt + 1))


def _on_ray(specs: list[CellSpec], order: list[int], address: str, progress: Callable[[CellSpec], None],
            ship: bool = False) -> dict[int, CellResult]:
    """Cells as Ray tasks on an existing cluster: its workers import zhisuan as installed there, or, with
    `ship`, this one sent along."""
    import ray

    connect_ray(address, code_env() if ship else None)
    try:
        task = ray.remote(num_cpus=1, max_retries=1)(run_cell)
        pending = {task.remote(specs[i]): i for i in order}
        results: dict[int, CellResult] = {}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            results[i] = ray.get(done[0])
            progress(specs[i])
        return results
    finally:
        ray.shutdown()


def pareto(points: Iterable[tuple[str, float, float]]) -> set[str]:
    """Names of the non-dominated (cost, wait) points: none other is at most as costly and waits at most as
    long, better in one."""
    pts = list(points)
    return {n for n, c, w in pts
            if not any((c2 <= c and w2 <= w) and (c2 < c or w2 < w) for n2, c2, w2 in pts if n2 != n)}


def run_plan(plan: Plan, network: Network, workers: int = 1, ray_address: str | None = None,
             progress: Callable[[CellSpec], None] = lambda _: None, ship: bool = False) -> PlanResult:
    t0 = time.perf_counter()
    prices = _check(plan, network)
    specs = cells(plan, network)
    results = execute(specs, workers, ray_address, progress, ship)
    by = {(s.option, s.scenario, s.siloed): r for s, r in zip(specs, results, strict=True)}
    base = baseline(plan)
    rows = []
    for sc in plan.demand.scenarios:
        today = by[(base, sc.name, False)]
        options = ([Option.model_construct(name=TODAY)] if base == TODAY else []) + plan.options
        priced = [(o, by[(o.name, sc.name, False)]) for o in options]
        money = {o.name: option_money(prices, o, network, cell, today) for o, cell in priced}
        front = pareto((o.name, money[o.name].annual_cost, cell.p95_wait) for o, cell in priced)
        for o, cell in priced:
            meets = None
            if plan.target and plan.target.scenario == sc.name:
                meets = cell.p95_wait <= plan.target.p95_wait_hours * 3600 and cell.unplaceable == 0
            rows.append(OptionRow(o.name, sc.name, cell, prices.electricity(cell.centers), money[o.name],
                                 o.name in front, meets))
    meeting = [r for r in rows if r.meets]
    cheapest = min(meeting, key=lambda r: (r.money.annual_cost, r.option)).option if meeting else None
    joins = []
    at = plan.target.scenario if plan.target else plan.demand.scenarios[0].name
    for o in plan.options:
        for c in o.build:
            joined, alone = by[(o.name, at, False)], by[(o.name, at, True)]
            jc = next(x for x in joined.centers if x.center == c.name)
            ac = next(x for x in alone.centers if x.center == c.name)
            joins.append(JoinRow(o.name, c.name, at, jc, ac, center_money(prices, o, network, jc),
                                 center_money(prices, o, network, ac), alone.p95_wait))
    notes = list(dict.fromkeys(n for r in results for n in r.notes))
    if any(math.isnan(r.cell.p95_wait) for r in rows):
        notes.append("an option finished no job at some scenario (wait shown as —)")
    return PlanResult(plan, rows, joins, cheapest, sorted(set(prices.basis.values())), notes,
                      time.perf_counter() - t0)
