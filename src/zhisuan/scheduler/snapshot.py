"""What the scheduler sees: pools, running allocations, pending jobs and tenants at one instant.

A snapshot is plain data. The live control loop builds it from the store; the simulator from its
in-memory state; `snapshot_from_network` from a network file (examples, `zhisuan explain`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zhisuan.catalog import Accelerator
from zhisuan.catalog.carbon import CarbonSeries, load_series
from zhisuan.catalog.links import LinkFigures
from zhisuan.catalog.tou import FLAT, TouTable, load_tou
from zhisuan.model import JobSpec, Network, request_from_spec
from zhisuan.model.datasets import InputData
from zhisuan.model.links import links_into
from zhisuan.scheduler.pending import PendingJob as PendingJob  # re-exported: its home is compiled


@dataclass(slots=True)
class PoolState:
    center: str
    name: str
    chip: Accelerator
    region: str
    nodes: int
    devices_per_node: int
    price: float  # CNY per device-hour
    pue: float
    carbon_kg_per_kwh: float
    healthy: bool = True
    cpus_per_node: int = 128
    memory_gib_per_node: float = 1024.0
    tou: TouTable = field(default=FLAT, repr=False)  # the center's time-of-use multipliers on `price`
    carbon_series: CarbonSeries | None = field(default=None, repr=False)  # hourly grid intensity, if configured
    cpu_price: float = 0.0  # CNY per CPU-hour: a CPU-only job's, and CPUs beyond a share (Pool.cpu_price)
    memory_price: float = 0.0  # CNY per GiB-hour of memory beyond a job's share of a node (Pool.memory_price)
    max_gang_nodes: int = 0  # the engine starts gangs of at most this many nodes (0: any the pool has)
    links: dict[str, LinkFigures] = field(default_factory=dict, repr=False)  # source center -> link into this one

    @property
    def key(self) -> str:
        return f"{self.center}/{self.name}"

    @property
    def kwh_per_device_hour(self) -> float:
        """Facility energy of one device-hour under the TDP power model (an upper bound): TDP x PUE."""
        return (self.chip.tdp_w or 0.0) / 1000.0 * self.pue

    @property
    def kg_per_device_hour(self) -> float:
        """Carbon of one busy device-hour at the annual grid factor: TDP x PUE x grid."""
        return self.kwh_per_device_hour * self.carbon_kg_per_kwh


@dataclass(slots=True)
class RunningJob:
    id: str
    tenant: str
    pool: str  # PoolState.key
    nodes: tuple[int, ...]
    devices_per_node: int
    start: float
    expected_end: float
    priority: int = 0
    preemptible: bool = True
    attained: float = 0.0  # device-seconds received before this start (requeued jobs)
    speed: float = 1.0  # speed factor of the pool's chip vs the job's reference chip
    milli: int = 0  # a share of one device, thousandths (0: whole devices)
    cpus: float = 0.0  # per node
    memory_gib: float = 0.0  # per node

    @property
    def devices(self) -> int:
        return len(self.nodes) * self.devices_per_node


@dataclass(slots=True)
class TenantState:
    name: str
    weight: float = 1.0
    quota_devices: int | None = None
    usage: float = 0.0  # device-seconds, decayed to `usage_at`
    usage_at: float = 0.0


@dataclass
class Snapshot:
    pools: list[PoolState]
    running: list[RunningJob] = field(default_factory=list)
    pending: list[PendingJob] = field(default_factory=list)
    tenants: dict[str, TenantState] = field(default_factory=dict)

    def tenant(self, name: str) -> TenantState:
        t = self.tenants.get(name)
        return t if t is not None else TenantState(name)


def pools_from_network(network: Network) -> list[PoolState]:
    into = {c.name: links_into(c, network.centers, network.links) for c in network.centers}
    return [
        PoolState(
            center=c.name, name=p.name, chip=p.chip, region=c.region, nodes=p.nodes,
            devices_per_node=p.devices_per_node, price=p.price_per_device_hour, pue=c.pue,
            carbon_kg_per_kwh=c.carbon_kg_per_kwh, healthy=c.healthy, cpus_per_node=p.cpus_per_node,
            memory_gib_per_node=p.memory_gib_per_node, tou=load_tou(c.tou_zone),
            carbon_series=load_series(c.carbon_series) if c.carbon_series else None, cpu_price=p.cpu_price[0],
            memory_price=p.memory_price[0], max_gang_nodes=p.max_gang_nodes or 0, links=into[c.name],
        )
        for c in network.centers
        for p in c.pools
    ]


def snapshot_from_network(network: Network, now: float = 0.0) -> Snapshot:
    """Pools of the network plus its declared running load, packed onto the lowest node indices."""
    pools = pools_from_network(network)
    used: dict[str, list[int]] = {p.key: [0] * p.nodes for p in pools}
    size = {p.key: p.devices_per_node for p in pools}
    running = []
    for i, r in enumerate(network.running):
        key = f"{r.center}/{r.pool}"
        free = used[key]
        nodes = [n for n in range(len(free)) if size[key] - free[n] >= r.devices_per_node][: r.nodes]
        if len(nodes) < r.nodes:
            raise ValueError(f"running[{i}] does not fit in {key} next to the load before it")
        for n in nodes:
            free[n] += r.devices_per_node
        running.append(RunningJob(f"load-{i}", r.tenant, key, tuple(nodes), r.devices_per_node,
                                  now, now + r.remaining, r.priority))
    tenants = {t.name: TenantState(t.name, t.weight, t.quota_devices, 0.0, now) for t in network.tenants}
    return Snapshot(pools=pools, running=running, tenants=tenants)


DEFAULT_DURATION = 3600.0  # seconds assumed when a spec gives no time_limit


def pending_from_spec(job_id: str, spec: JobSpec, submit_time: float,
                      default_duration: float = DEFAULT_DURATION, inputs: tuple[InputData, ...] = ()) -> PendingJob:
    """`inputs`: the spec's datasets resolved (their sizes and replicas), for a job that reads some."""
    deadline = spec.constraints.deadline
    hours = (spec.constraints.time_limit or default_duration) / 3600.0
    return PendingJob(
        id=job_id, tenant=spec.tenant, request=request_from_spec(spec, inputs, hours), submit_time=submit_time,
        duration=spec.constraints.time_limit or default_duration, priority=spec.priority,
        deadline=deadline.timestamp() if deadline is not None else None,
    )
