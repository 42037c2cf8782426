"""Named policies: the plugin sets users choose between (`--policy`)."""

from __future__ import annotations

from dataclasses import replace

from zhisuan.scheduler.framework import Filter, NodeScore, Policy, Score
from zhisuan.scheduler.nodescore.best_fit import BestFit
from zhisuan.scheduler.nodescore.dot_prod import DotProduct
from zhisuan.scheduler.nodescore.fgd import FragmentationGradient
from zhisuan.scheduler.nodescore.gpu_clustering import GpuClustering
from zhisuan.scheduler.nodescore.gpu_packing import GpuPacking
from zhisuan.scheduler.nodescore.random import RandomNode
from zhisuan.scheduler.plugins.carbon import Carbon
from zhisuan.scheduler.plugins.fair_share import FairShare
from zhisuan.scheduler.plugins.fifo import Fifo
from zhisuan.scheduler.plugins.fits_gang import FitsGang
from zhisuan.scheduler.plugins.fits_node import FitsNode
from zhisuan.scheduler.plugins.fragmentation import Fragmentation
from zhisuan.scheduler.plugins.gavel import GavelOrder, GavelPriority
from zhisuan.scheduler.plugins.healthy import CenterHealthy
from zhisuan.scheduler.plugins.inputs_held import InputsHeld
from zhisuan.scheduler.plugins.least_attained import TIRESIAS, LasPriority, LeastAttained
from zhisuan.scheduler.plugins.locality import DataLocality
from zhisuan.scheduler.plugins.node_cpus import NodeCpus
from zhisuan.scheduler.plugins.node_memory import NodeMemory
from zhisuan.scheduler.plugins.price import PricePerJob
from zhisuan.scheduler.plugins.price_cap import PriceCap
from zhisuan.scheduler.plugins.priority import Priority
from zhisuan.scheduler.plugins.quota import Quota
from zhisuan.scheduler.plugins.region import RegionAllowed
from zhisuan.scheduler.plugins.shortest_first import ShortestFirst
from zhisuan.scheduler.plugins.stack import StackCompatible
from zhisuan.scheduler.plugins.start_time import StartTime
from zhisuan.scheduler.plugins.throughput import Throughput

# In the order a spec's feasibility is explained: the first filter that leaves no pool names the field.
FILTERS: tuple[Filter, ...] = (StackCompatible(), RegionAllowed(), FitsNode(), FitsGang(), NodeCpus(), NodeMemory(),
                               PriceCap(), InputsHeld(), CenterHealthy())

# Weights: start time dominates (it is what users wait for), then money, then carbon and data movement;
# fragmentation breaks ties. Normalised scores make the weights unit-free.
SCORES: tuple[tuple[Score, float], ...] = (
    (StartTime(), 4.0),
    (PricePerJob(), 3.0),
    (Carbon(), 2.0),
    (DataLocality(), 2.0),
    (Fragmentation(), 1.0),
)

DEFAULT = Policy(
    name="zhisuan",
    queue_sort=FairShare(),
    filters=FILTERS,
    scores=SCORES,
    admits=(Quota(),),
    backfill="easy",
    node_score=FragmentationGradient(name="frag-memory", coverage=1.0, memory=True),
    description="fair share across tenants, EASY backfill, placement by start time, price, carbon, locality",
)

# Node scores (where in a pool shares, CPU and memory go): the FGD paper's baselines, FGD, and ours.
NODE_SCORES: dict[str, NodeScore] = {s.name: s for s in (
    RandomNode(), DotProduct(), GpuClustering(), GpuPacking(), BestFit(), FragmentationGradient(),
    FragmentationGradient(name="frag-memory", coverage=1.0, memory=True))}

POLICIES: dict[str, Policy] = {
    "zhisuan": DEFAULT,
    "fifo": replace(DEFAULT, name="fifo", queue_sort=Fifo(), backfill="none",
                    description="first come first served, no backfill (head-of-line blocking)"),
    "easy": replace(DEFAULT, name="easy", queue_sort=Fifo(), backfill="easy",
                    description="FIFO with EASY backfill (Slurm's default behaviour)"),
    "priority": replace(DEFAULT, name="priority", queue_sort=Priority(), preemption=True,
                        description="priority order, EASY backfill, preempts lower priority"),
    "sjf": replace(DEFAULT, name="sjf", queue_sort=ShortestFirst(),
                   description="shortest expected job first, EASY backfill"),
    "qssf": replace(DEFAULT, name="qssf", queue_sort=ShortestFirst(by_device_time=True),
                    description="smallest expected device-time first (Helios QSSF), EASY backfill"),
    "las": replace(DEFAULT, name="las", queue_sort=LeastAttained(), priority_of=LasPriority(), preemption=True,
                   reservations=0, description="Tiresias 2D-LAS: least attained device-time first, preemptive"),
    "las-tiresias": replace(DEFAULT, name="las-tiresias", queue_sort=LeastAttained(TIRESIAS),
                            priority_of=LasPriority(TIRESIAS), preemption=True, reservations=0,
                            description="2D-LAS with Tiresias' own thresholds (3,250 and 7,200 GPU-s)"),
    "gavel": replace(DEFAULT, name="gavel", queue_sort=GavelOrder(), priority_of=GavelPriority(),
                     preemption=True, reservations=0, scores=((Throughput(), 6.0), *SCORES),
                     description="Gavel: heterogeneity-aware max-min fairness (LP, HiGHS) in 6-minute rounds"),
}


def _carbon_weight(weight: float) -> tuple[tuple[Score, float], ...]:
    return tuple((s, weight if s.name == "carbon" else w) for s, w in SCORES)


POLICIES["carbon-blind"] = replace(DEFAULT, name="carbon-blind", scores=_carbon_weight(0.0),
                                   description="zhisuan without the carbon score (the comparison baseline)")
POLICIES["carbon-first"] = replace(DEFAULT, name="carbon-first", scores=_carbon_weight(8.0),
                                   description="zhisuan with carbon weighted above start time and price")


def get_policy(name: str) -> Policy:
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}") from None
