"""A plan file (YAML): the network today, the demand it must serve, the investments to compare and the
money — what `zhisuan plan` simulates option by option. Checked whole before anything runs, every error
naming its field (`options.2.add.0.pool: no pool gpu-h100 at center qingyang`), and against the network it
names: an option may only add to pools and centers that exist, build a center that does not, retire what
is there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zhisuan.catalog import load_catalog
from zhisuan.model.jobspec import SpecError
from zhisuan.model.network import Center, Network, load_network, parse_file

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Scenario(_Strict):
    """A demand scenario: the trace's arrivals scaled (×2 = twice the jobs, same mix), or scaled to a load
    given in P-hours a month (FP16 PFLOPS of the trace's chip × hours)."""

    name: str = Field(pattern=NAME, max_length=64)
    arrivals: float | None = Field(None, gt=0, le=1000)
    p_hours_per_month: float | None = Field(None, gt=0, le=1e9)

    @model_validator(mode="after")
    def _one_measure(self) -> Scenario:
        if self.arrivals is not None and self.p_hours_per_month is not None:
            raise ValueError("give arrivals or p_hours_per_month, not both")
        if self.arrivals is None and self.p_hours_per_month is None:
            self.arrivals = 1.0
        return self


class Demand(_Strict):
    trace: str = Field(min_length=1, max_length=512, description="a packaged trace name or a CSV path")
    scenarios: list[Scenario] = Field(default_factory=lambda: [Scenario(name="x1")], min_length=1, max_length=64)
    limit: int | None = Field(None, ge=1, description="replay only the first N jobs of the trace")
    stacks: list[str] = Field(default_factory=list, max_length=16,
                              description="software stacks the jobs run on (default: the trace chip's own)")
    seed: int = Field(0, ge=0, description="of the jitter given to copied arrivals")

    @field_validator("scenarios")
    @classmethod
    def _unique(cls, v: list[Scenario]) -> list[Scenario]:
        names = [s.name for s in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"scenario names repeat: {dup}")
        return v


class AddNodes(_Strict):
    """More nodes in an existing pool."""

    center: str
    pool: str
    nodes: int = Field(ge=1, le=100_000)


class PoolRef(_Strict):
    center: str
    pool: str


class Option(_Strict):
    """One investment to compare; an option with nothing to change is the baseline."""

    name: str = Field(pattern=NAME, max_length=64)
    add: list[AddNodes] = Field(default_factory=list, max_length=256)
    build: list[Center] = Field(default_factory=list, max_length=64)
    retire: list[PoolRef] = Field(default_factory=list, max_length=256)


class Opex(_Strict):
    maintenance_pct: float = Field(5.0, ge=0, le=100, description="of capex, per year")
    staff_per_year: float = Field(0.0, ge=0, description="CNY")
    bandwidth_per_year: float = Field(0.0, ge=0, description="CNY")


class Finance(_Strict):
    capex_per_node: dict[str, float] = Field(default_factory=dict, description="accelerator -> CNY per server")
    install_per_node: float = Field(0.0, ge=0, description="CNY: racking, network, power and cooling share")
    build_per_center: float = Field(0.0, ge=0, description="CNY to build a new center's hall and power")
    opex: Opex = Field(default_factory=Opex)
    electricity_cny_per_kwh: float | None = Field(
        None, gt=0, le=100, description="flat price; default: the sourced table by province, else an ASSUMPTION")
    depreciation_years: int = Field(5, ge=1, le=30)
    discount_rate: float = Field(0.08, gt=-1, le=1)
    horizon_years: int = Field(5, ge=1, le=30)
    assumptions: dict[str, str] = Field(default_factory=dict, description="field -> why it is ours, not sourced")

    @field_validator("capex_per_node")
    @classmethod
    def _known_chips(cls, v: dict[str, float]) -> dict[str, float]:
        catalog = load_catalog()
        out = {}
        for chip, price in v.items():
            if price < 0:
                raise ValueError(f"{chip}: a price cannot be negative, got {price}")
            out[catalog.lookup(chip).name] = price  # an unknown chip: ValueError naming it and the near ones
        return out


class Target(_Strict):
    """The service level an option must meet: p95 wait at a scenario."""

    p95_wait_hours: float = Field(gt=0, le=10_000)
    scenario: str


class Plan(_Strict):
    name: str = Field(pattern=NAME, max_length=64)
    network: str = Field(min_length=1, max_length=512, description="network file, relative to the plan")
    centers: list[str] = Field(default_factory=list, max_length=1024,
                               description="the part of the network the plan studies (default: all of it)")
    policy: str | None = Field(None, max_length=64, description="default: the network's scheduler profile")
    interval: float = Field(60.0, ge=0, le=86400, description="seconds between scheduling cycles")
    demand: Demand
    options: list[Option] = Field(min_length=1, max_length=256)
    finance: Finance = Field(default_factory=Finance)
    target: Target | None = None


def _cross_checks(plan: Plan) -> None:
    """What one field cannot say alone, with the field named."""
    errors = []
    seen: set[str] = set()
    for i, option in enumerate(plan.options):
        if option.name in seen:
            errors.append((f"options.{i}.name", f"option {option.name!r} is named twice"))
        seen.add(option.name)
    stacks = set(load_catalog().stacks)
    for i, stack in enumerate(plan.demand.stacks):
        if stack not in stacks:
            errors.append((f"demand.stacks.{i}",
                           f"unknown software stack {stack!r}; known: {', '.join(sorted(stacks))}"))
    if plan.target and plan.target.scenario not in {s.name for s in plan.demand.scenarios}:
        errors.append(("target.scenario", f"no scenario {plan.target.scenario!r} in demand.scenarios"))
    if errors:
        raise SpecError(errors)


def check_against(plan: Plan, network: Network) -> None:
    """Every option refers to what the network has (and builds only what it has not); SpecError naming the
    field otherwise."""
    pools = {(c.name, p.name) for c in network.centers for p in c.pools}
    centers = {c.name for c in network.centers}
    errors = []
    for i, option in enumerate(plan.options):
        refs: list[tuple[str, AddNodes | PoolRef]] = [
            *((f"options.{i}.add.{k}", a) for k, a in enumerate(option.add)),
            *((f"options.{i}.retire.{k}", r) for k, r in enumerate(option.retire))]
        for where, ref in refs:
            if ref.center not in centers:
                errors.append((f"{where}.center", f"no center {ref.center!r} in {network.name}"))
            elif (ref.center, ref.pool) not in pools:
                errors.append((f"{where}.pool", f"no pool {ref.pool} at center {ref.center}"))
        for k, center in enumerate(option.build):
            if center.name in centers:
                errors.append((f"options.{i}.build.{k}.name", f"center {center.name!r} exists already"))
    if errors:
        raise SpecError(errors)


def parse_plan(data: str | dict[str, Any]) -> Plan:
    plan = parse_file(data, Plan, "a plan file")
    _cross_checks(plan)
    return plan


def load_plan(path: str | Path) -> tuple[Plan, Network]:
    """A plan file and the network it names (relative to the plan), checked against each other."""
    path = Path(path)
    plan = parse_plan(path.read_text(encoding="utf-8"))
    where = (path.parent / plan.network).resolve()
    try:
        network = load_network(where)
    except FileNotFoundError as e:
        raise SpecError([("network", f"network file not found: {where}")]) from e
    except SpecError as e:
        raise SpecError([(f"network ({where.name}): {loc}" if loc else "network", msg) for loc, msg in e.errors]) from e
    network = study_region(plan, network)
    check_against(plan, network)
    return plan, network


def study_region(plan: Plan, network: Network) -> Network:
    """The network cut to the plan's `centers` (all of it when none are named)."""
    if not plan.centers:
        return network
    known = {c.name for c in network.centers}
    unknown = [(f"centers.{i}", f"no center {c!r} in {network.name}") for i, c in enumerate(plan.centers)
               if c not in known]
    if unknown:
        raise SpecError(unknown)
    keep = set(plan.centers)
    data = network.model_dump()
    data["centers"] = [c for c in data["centers"] if c["name"] in keep]
    data["running"] = [r for r in data["running"] if r["center"] in keep]
    return Network.model_validate(data)


def apply(option: Option, network: Network) -> Network:
    """The network as the option would make it: nodes added to pools, centers built, pools retired (a
    center left without pools goes too, with any load listed on what went). Checked like any network."""
    data = network.model_dump()
    added = {(a.center, a.pool): a.nodes for a in option.add}
    gone = {(r.center, r.pool) for r in option.retire}
    centers = []
    for c in data["centers"]:
        pools = []
        for p in c["pools"]:
            if (c["name"], p["name"]) in gone:
                continue
            more = added.get((c["name"], p["name"]), 0)
            if more:  # planned nodes have no engine names or device ids yet
                p = {**p, "nodes": p["nodes"] + more, "node_names": [], "device_ids": []}
            pools.append(p)
        if pools:
            centers.append({**c, "pools": pools})
    data["centers"] = centers + [c.model_dump() for c in option.build]
    kept = {(c["name"], p["name"]) for c in data["centers"] for p in c["pools"]}
    data["running"] = [r for r in data["running"] if (r["center"], r["pool"]) in kept]
    return Network.model_validate(data)


def new_nodes(option: Option, network: Network) -> dict[str, int]:
    """Servers the option buys, per accelerator (catalog name): what its capex is counted on."""
    chip_of = {(c.name, p.name): p.chip.name for c in network.centers for p in c.pools}
    out: dict[str, int] = {}
    for a in option.add:
        out[chip_of[(a.center, a.pool)]] = out.get(chip_of[(a.center, a.pool)], 0) + a.nodes
    for c in option.build:
        for p in c.pools:
            out[p.chip.name] = out.get(p.chip.name, 0) + p.nodes
    return out
