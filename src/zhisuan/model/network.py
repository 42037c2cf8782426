"""A network file (YAML) lists the centers that join the network and the pools inside each.

Any value that is ours rather than sourced is listed under `assumptions: {field: why}` of its center
or pool; every table that prints such a value marks it, so an ASSUMPTION never passes as a fact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from zhisuan.catalog import CPU_ONLY, Accelerator, load_catalog
from zhisuan.model.jobspec import SpecError, spec_errors
from zhisuan.model.links import CenterStore, Link
from zhisuan.model.profile import ControlSettings, SchedulerProfile
from zhisuan.model.sso import SsoSettings

EngineKind = Literal["local", "slurm", "ray", "kubernetes"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def derived_prices(device_price: float, node_devices: int, node_cpus: float, node_memory_gib: float,
                   cpu_price: float | None, gib_price: float | None) -> tuple[tuple[float, bool], tuple[float, bool]]:
    """((CNY per CPU-hour, assumed), (CNY per GiB-hour, assumed)): as given, else a node's device-hours spread
    over its CPUs, over its memory (a CPU-only node: its CPU-hours over its memory) — assumed, and labelled."""
    cpu = (cpu_price, False) if cpu_price is not None else (device_price * node_devices / node_cpus, True)
    if gib_price is not None:
        return cpu, (gib_price, False)
    node = device_price * node_devices if node_devices else cpu[0] * node_cpus
    return cpu, (node / node_memory_gib, True)


class Pool(_Strict):
    """A homogeneous group of nodes: one accelerator model, the same devices per node; `accelerator: none`
    with `devices_per_node: 0` is a pool of CPU-only nodes (CPU-only jobs run there)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    accelerator: str
    nodes: int = Field(ge=1)
    devices_per_node: int = Field(ge=0, le=64)
    cpus_per_node: int = Field(128, ge=1)
    memory_gib_per_node: float = Field(1024.0, gt=0)
    price_per_device_hour: float = Field(ge=0, description="CNY per device-hour at the flat tariff")
    price_per_cpu_hour: float | None = Field(None, ge=0, description="CNY per CPU-hour a CPU-only job pays at "
                                             "the flat tariff (default: a node's devices' price over its CPUs)")
    price_per_gib_hour: float | None = Field(None, ge=0, description="CNY per GiB-hour of memory held beyond a "
                                             "job's share of the node (default: a node's price over its memory)")
    device_ids: list[str] = Field(default_factory=list, description="local engine: ids per node slot")
    discover: Literal["nvml"] | None = Field(None, description="local engine: take devices from NVML at start")
    node_names: list[str] = Field(default_factory=list, description="the engine's names of the nodes, by index")
    max_gang_nodes: int | None = Field(None, ge=1, description="the engine starts gangs of at most this many "
                                       "nodes (a Ray center: 1); None: any the pool has")
    assumptions: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _cpu_pools_sell_cpu_hours(cls, data: Any) -> Any:
        """A CPU-only pool has no device to price: its device price is 0 unless said."""
        if isinstance(data, dict) and str(data.get("accelerator", "")).strip().lower() == CPU_ONLY.name:
            return {"price_per_device_hour": 0.0, **data}
        return data

    @field_validator("accelerator")
    @classmethod
    def _known(cls, v: str) -> str:
        return CPU_ONLY.name if v.strip().lower() == CPU_ONLY.name else load_catalog().lookup(v).name

    @model_validator(mode="after")
    def _cpu_only(self) -> Pool:
        if (self.accelerator == CPU_ONLY.name) != (self.devices_per_node == 0):
            raise ValueError("devices_per_node is 0 exactly for a CPU-only pool (accelerator: none)")
        if self.devices_per_node == 0 and self.price_per_cpu_hour is None:
            raise ValueError("price_per_cpu_hour: a CPU-only pool sells CPU-hours; give their price")
        return self

    @property
    def cpu_price(self) -> tuple[float, bool]:
        """(CNY per CPU-hour, assumed): as given, else a node's device-hours spread over its CPUs (assumed:
        the pool is priced by the device; a job holding CPUs beyond its share pays that share of a node)."""
        return self._prices[0]

    @property
    def memory_price(self) -> tuple[float, bool]:
        """(CNY per GiB-hour, assumed): as given, else a node's price spread over its memory (assumed)."""
        return self._prices[1]

    @property
    def _prices(self) -> tuple[tuple[float, bool], tuple[float, bool]]:
        return derived_prices(self.price_per_device_hour, self.devices_per_node, self.cpus_per_node,
                              self.memory_gib_per_node, self.price_per_cpu_hour, self.price_per_gib_hour)

    @property
    def chip(self) -> Accelerator:
        return CPU_ONLY if self.accelerator == CPU_ONLY.name else load_catalog().lookup(self.accelerator)

    @property
    def devices(self) -> int:
        return self.nodes * self.devices_per_node

    @property
    def pflops(self) -> float:
        return self.chip.pflops(self.devices)


class CenterMetrics(_Strict):
    """Where the center's device metrics are: its Prometheus and the exporter feeding it (the metric names
    per exporter are in engines/prometheus.py)."""

    prometheus: str = Field(pattern=r"^https?://[^\s]+$", max_length=512)
    exporter: Literal["dcgm", "npu", "amd", "hami"]


class Center(_Strict):
    """A site of the network: where it is, what its power costs in carbon, and who runs it."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name_zh: str | None = None
    region: str
    province: str | None = None
    engine: EngineKind = "local"
    engine_config: dict[str, Any] = Field(default_factory=dict)
    join: Literal["direct", "agent"] = Field("direct", description="direct: the server runs the center's engine "
                                             "itself (its agent in the server's process); agent: the center runs "
                                             "`zhisuan agent`, which connects out to the server")
    pue: float = Field(ge=1.0, le=3.0)
    carbon_kg_per_kwh: float = Field(ge=0, description="grid emission factor of the center's province")
    tou_zone: str | None = None
    carbon_series: str | None = Field(None, description="CSV of hourly grid carbon intensity (else the annual factor)")
    idle_discount: float = Field(0.0, ge=0, le=1, description="fraction off the price of measured-idle device time")
    healthy: bool = True
    metrics: CenterMetrics | None = Field(None, description="measured busy, watts and memory from Prometheus")
    pools: list[Pool] = Field(default_factory=list, description="empty: read from the engine's inventory")
    store: CenterStore | None = Field(None, description="the center's object store, for datasets")
    assumptions: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_pools(self) -> Center:
        if not self.pools and self.engine == "local":
            raise ValueError(f"center {self.name}: a local center declares its pools")
        if self.join == "agent" and not self.pools:
            raise ValueError(f"center {self.name}: pools: a center that joins through its agent declares its pools "
                             "(the network file is the authority on its capacity)")
        if self.join == "agent" and self.engine_config:
            raise ValueError(f"center {self.name}: engine_config: stays with the center's agent (its credentials "
                             "and addresses never reach the server)")
        for p in self.pools:
            if self.engine == "ray" and p.max_gang_nodes is None:
                p.max_gang_nodes = 1  # the Ray engine starts single-node jobs (no placement group inside)
        names = [p.name for p in self.pools]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"pool names repeat in center {self.name}: {sorted(dup)}")
        return self

    @property
    def devices(self) -> int:
        return sum(p.devices for p in self.pools)

    @property
    def pflops(self) -> float:
        return sum(p.pflops for p in self.pools)


class Tenant(_Strict):
    """Who submits and pays. `quota_devices` caps the devices it may hold at once (None: no cap)."""

    name: str = Field(min_length=1)
    weight: float = Field(1.0, gt=0, description="fair-share weight")
    quota_devices: int | None = Field(None, ge=0)


class Organisation(_Strict):
    """A company, university or group that buys compute: its projects are tenants of the network (each
    submits, holds a quota, is funded and billed on its own); its admins manage members and budgets."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name_zh: str = Field("", max_length=64)
    projects: list[str] = Field(min_length=1, max_length=1000, description="tenants of the network")


class RunningLoad(_Strict):
    """Work already running in a pool when the network file is read (examples and explain)."""

    center: str
    pool: str
    nodes: int = Field(ge=1)
    devices_per_node: int = Field(ge=1)
    remaining: float = Field(gt=0, description="seconds until it is expected to end")
    tenant: str = "other"
    priority: int = 0


class Network(_Strict):
    name: str
    description: str = ""
    centers: list[Center] = Field(min_length=1)
    tenants: list[Tenant] = Field(default_factory=list)
    organisations: list[Organisation] = Field(default_factory=list, max_length=10_000,
                                              description="a tenant in none is an organisation of its own")
    running: list[RunningLoad] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list, max_length=10_000,
                              description="between centers or regions; undeclared pairs take their kind's default")
    scheduler: SchedulerProfile = Field(default_factory=SchedulerProfile)
    control: ControlSettings = Field(default_factory=ControlSettings)
    sso: SsoSettings | None = Field(None, description="single sign-on through an OpenID provider")

    @model_validator(mode="after")
    def _consistent(self) -> Network:
        names = [c.name for c in self.centers]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"center names repeat: {sorted(dup)}")
        pools = {(c.name, p.name): p for c in self.centers for p in c.pools}
        for i, r in enumerate(self.running):
            pool = pools.get((r.center, r.pool))
            if pool is None:
                raise ValueError(f"running[{i}]: no pool {r.center}/{r.pool}")
            if r.devices_per_node > pool.devices_per_node or r.nodes > pool.nodes:
                raise ValueError(f"running[{i}]: larger than pool {r.center}/{r.pool}")
        tenants = {t.name for t in self.tenants}
        seen: dict[str, str] = {}
        for i, org in enumerate(self.organisations):
            if [o.name for o in self.organisations].count(org.name) > 1:
                raise ValueError(f"organisations[{i}].name: {org.name!r} repeats")
            if org.name in tenants and org.name not in org.projects:
                raise ValueError(f"organisations[{i}].name: {org.name!r} is a tenant the organisation does not "
                                 f"list (a tenant in no organisation is one of its own name)")
            for p in org.projects:
                if p not in tenants:
                    raise ValueError(f"organisations[{i}].projects: {p!r} is not a tenant of the network")
                if p in seen:
                    raise ValueError(f"organisations[{i}].projects: {p!r} is already a project of {seen[p]!r}")
                seen[p] = org.name
        for group, grant in (self.sso.groups.items() if self.sso else ()):
            if grant.project and grant.project not in tenants:
                raise ValueError(f"sso.groups.{group}.project: {grant.project!r} is not a tenant of the network")
            if grant.org and grant.org not in self.orgs():
                raise ValueError(f"sso.groups.{group}.org: {grant.org!r} is not an organisation of the network")
            if any(c not in names for c in grant.centers):
                raise ValueError(f"sso.groups.{group}.centers: not all centers of the network")
        known = set(names) | {c.region for c in self.centers}
        for i, link in enumerate(self.links):
            bad = [x for x in link.between if x not in known]
            if bad:
                raise ValueError(f"links[{i}].between: {bad[0]!r} is neither a center nor a region of the network")
        return self

    def center(self, name: str) -> Center:
        for c in self.centers:
            if c.name == name:
                return c
        raise KeyError(f"no center {name!r} in network {self.name!r}")

    def tenant(self, name: str) -> Tenant:
        for t in self.tenants:
            if t.name == name:
                return t
        return Tenant(name=name)

    def orgs(self) -> dict[str, list[str]]:
        """Organisation -> its projects: those declared, and each tenant in none as one of its own."""
        out = {o.name: list(o.projects) for o in self.organisations}
        placed = {p for ps in out.values() for p in ps}
        for t in self.tenants:
            if t.name not in placed:
                out.setdefault(t.name, []).append(t.name)
        return out

    @property
    def devices(self) -> int:
        return sum(c.devices for c in self.centers)

    @property
    def pflops(self) -> float:
        return sum(c.pflops for c in self.centers)


M = TypeVar("M", bound=BaseModel)


def parse_file(data: str | dict[str, Any], model: type[M], what: str) -> M:
    """A YAML file's text (or its mapping) as `model`, or SpecError naming the field (`what`: "a network file")."""
    if isinstance(data, str):
        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as e:
            raise SpecError([("", f"malformed YAML: {e}")]) from e
    if not isinstance(data, dict):
        raise SpecError([("", f"{what} must be a mapping")])
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise spec_errors(e) from e


def parse_network(data: str | dict[str, Any]) -> Network:
    return parse_file(data, Network, "a network file")


def load_network(path: str | Path) -> Network:
    """Read a network YAML file; errors name the field (e.g. centers.2.pools.0.accelerator)."""
    return parse_network(Path(path).read_text(encoding="utf-8"))
