"""Where a trace is replayed: its own cluster as isolated silos, the same nodes as one network, or a
network file's centers. Values we had to pick are listed in `notes` and printed with the results."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from zhisuan.catalog import load_catalog
from zhisuan.model import Network, Request
from zhisuan.model.network import derived_prices
from zhisuan.scheduler import PoolState, pools_from_network
from zhisuan.sim.trace import Trace, TraceJob

# Defaults for trace clusters that come without prices or sites (ASSUMPTION, printed with results).
PRICE = 10.0  # CNY per device-hour: midpoint of the low-confidence 8-12 CNY A100/A800 range
PUE = 1.25  # hub target
GRID = 0.5366  # kgCO2/kWh, China national average 2022 (MEE/NBS)
DEFAULT_NODES = {"gavel": 63, "default": 8}  # Gavel's 'philly' spec is 500 V100s; Sia/Pollux used 64 GPUs


@dataclass
class Scenario:
    name: str
    pools: list[PoolState]
    siloed: bool = False
    notes: list[str] = field(default_factory=list)
    tou: dict[str, str | None] = field(default_factory=dict)  # pool key -> ToU zone of its center

    @property
    def devices(self) -> int:
        return sum(p.nodes * p.devices_per_node for p in self.pools)


def _pool(center: str, chip: str, nodes: int, per_node: int) -> PoolState:
    """A trace cluster's nodes: CPUs and memory priced as a network file's pool without their prices would be."""
    pool = PoolState(center=center, name="gpu", chip=load_catalog().lookup(chip), region=center, nodes=nodes,
                     devices_per_node=per_node, price=PRICE, pue=PUE, carbon_kg_per_kwh=GRID)
    (pool.cpu_price, _), (pool.memory_price, _) = derived_prices(PRICE, per_node, pool.cpus_per_node,
                                                                  pool.memory_gib_per_node, None, None)
    return pool


_SITE = (f"price {PRICE} CNY/device-h (CPUs and memory beyond a job's share of a node: the node's price over "
         f"them), PUE {PUE}, grid {GRID} kgCO2/kWh (China 2022 average): "
         "ASSUMPTION for a trace cluster")


def trace_cluster(trace: Trace, siloed: bool, per_node: int) -> Scenario:
    """Each home (Philly VC) a center with its own nodes; siloed keeps every job at home."""
    sized = {h: n for h, n in trace.homes.items() if n > 0}
    if sized:
        pools = [_pool(h, trace.chip, n, per_node) for h, n in sorted(sized.items())]
        return Scenario("siloed" if siloed else "network", pools, siloed, [_SITE])
    if siloed:
        raise ValueError(f"trace {trace.name} has no per-home cluster sizes: use --network for a siloed run")
    nodes = DEFAULT_NODES.get(trace.name, DEFAULT_NODES["default"])
    note = f"{nodes} nodes x {per_node} {trace.chip}: ASSUMPTION (the trace brings no cluster)"
    return Scenario("network", [_pool("cluster", trace.chip, nodes, per_node)], False, [note, _SITE])


def network_scenario(network: Network, siloed: bool) -> Scenario:
    """A network file's centers; siloed runs keep jobs in their `home` center (the trace must name it)."""
    pools = pools_from_network(network)
    if siloed:  # a silo is its center: the region filter then keeps each job at home
        pools = [replace(p, region=p.center) for p in pools]
    tou = {f"{c.name}/{p.name}": c.tou_zone for c in network.centers for p in c.pools}
    return Scenario(network.name + ("-siloed" if siloed else ""), pools, siloed,
                    ["centers, prices, PUE and grid factors from the network file (its assumptions apply)"], tou)


def request_for(job: TraceJob, scenario: Scenario, trace_chip: str, stacks: frozenset[str]) -> Request:
    """Gang shape: as the trace says (`nodes`), else the largest per-node count dividing the job that fits the
    smallest node in the scenario."""
    regions = frozenset([job.home]) if scenario.siloed and job.home else frozenset()
    if not job.devices:
        return Request(0, cpus=job.cpus, memory_gib=job.memory_gib, regions=regions)
    if job.nodes is not None:
        per_node = job.devices // job.nodes
    else:
        size = min((p.devices_per_node for p in scenario.pools if p.devices_per_node), default=1)
        per_node = max(d for d in range(1, min(job.devices, size) + 1) if job.devices % d == 0)
    chip = load_catalog().lookup(job.chip or trace_chip)
    return Request(per_node, job.devices // per_node, stacks=stacks, ref_tflops=chip.fp16_tflops,
                   regions=regions, models=frozenset(job.allowed), milli=job.milli, cpus=job.cpus,
                   memory_gib=job.memory_gib)
