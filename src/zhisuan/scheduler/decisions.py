"""What a cycle returns: starts, preemptions, reservations, and jobs no pool can ever take.

Plain slotted dataclasses, not frozen ones: a cycle creates tens of thousands and frozen ones cost
five times as much to build. Treat them as values.

Every start and reservation carries its `Why`: the scored candidates that made the choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from zhisuan.model import Placement
from zhisuan.model.billing import held_by
from zhisuan.scheduler.capacity import Allocation
from zhisuan.scheduler.pricing import run_cost
from zhisuan.scheduler.ranking import Part, Ranking
from zhisuan.scheduler.snapshot import PendingJob, PoolState
from zhisuan.scheduler.staging import move_to
from zhisuan.scheduler.tables import F


@dataclass(slots=True)
class Candidate:
    center: str
    pool: str
    score: float
    start_delay: float  # seconds; inf = never
    cost: float  # CNY for the whole job
    carbon: float  # kgCO2 for the whole job (TDP power model)
    runtime: float  # seconds on this pool's chip
    rejected: tuple[str, ...] = ()  # names of the filters that reject this pool
    waits_for: tuple[str, ...] = ()  # allocations that must end before it can start here (explain)
    reserved: tuple[tuple[str, str, float], ...] = ()  # (job, tenant, start) of reservations holding this pool
    parts: tuple[Part, ...] = ()  # what each score contributed to `score`
    staging: float = 0.0  # seconds moving its inputs here, within the devices' hold, before `runtime`
    data: str = ""  # the data line: what moves from where, how long, what it costs ("" without inputs)


@dataclass(slots=True, init=False)
class Why:
    """The per-pool scores behind a decision, built lazily from the cycle's ranking. With `calendar` (the
    epoch seconds of the decision), cost and carbon are those of the expected run window, hour by hour, as
    the invoice will meter it; without, at the flat price and annual grid factor."""

    ranking: Ranking
    request: int
    duration: float
    chosen: int
    delays: F | dict[int, float] | None = None  # seconds until each pool could start it (dict: those given)
    calendar: float | None = None

    def __init__(self, ranking: Ranking, request: int, duration: float, chosen: int,
                 delays: F | dict[int, float] | None = None, calendar: float | None = None) -> None:
        self.ranking, self.request, self.duration, self.chosen = ranking, request, duration, chosen
        self.delays, self.calendar = delays, calendar

    def candidates(self, limit: int | None = None) -> list[Candidate]:
        rk, r = self.ranking, self.request
        delays = self.delays
        if isinstance(delays, dict):
            every = np.full(len(rk.pools), math.inf)
            every[list(delays)] = list(delays.values())
            delays = self.delays = every
        total = rk.total[r] if delays is None else rk.total_with_delay(r, delays)
        pools = [int(p) for p in sorted(range(len(rk.pools)), key=lambda p: (-total[p], p))]
        parts = rk.parts(r, delays)
        request = rk.reqs.reqs[r]
        out = []
        for p in pools[:limit]:
            runtime = self.duration / float(rk.ctx.speed[r, p])
            pool = rk.pools.pools[p]
            bill = held_by(request, pool.devices_per_node, pool.cpus_per_node, pool.memory_gib_per_node,
                           pool.cpu_price, pool.memory_price)
            move = move_to(request, pool)
            staging = move.seconds if math.isfinite(move.seconds) else 0.0
            held = staging + runtime  # devices are held while inputs stage
            hours = held / 3600.0 * bill.devices
            delay = float(delays[p]) if delays is not None else 0.0
            if self.calendar is not None:
                start = self.calendar + (delay if math.isfinite(delay) else 0.0)
                cost, carbon = run_cost(pool, bill, start, start + held)
            else:
                cost = (hours * pool.price + held / 3600.0 * bill.cpus * pool.cpu_price
                        + held / 3600.0 * bill.memory_gib * pool.memory_price)
                carbon = hours * pool.kg_per_device_hour
            cost += move.cny
            carbon += move.kwh * pool.carbon_kg_per_kwh
            out.append(Candidate(
                center=pool.center, pool=pool.name,
                score=float(total[p]) if math.isfinite(total[p]) else math.nan,
                start_delay=delay, cost=cost, carbon=carbon, runtime=runtime,
                rejected=tuple(f.name for f in rk.rejecting(r, p)), parts=parts.get(p, ()),
                staging=staging, data=move.line() if request.inputs else "",
            ))
        return out


@dataclass(slots=True, init=False)
class Start:
    """A job placed now: where (the pool's index in the cycle and its state), on which nodes, until when. The
    `Placement` the control loop carries out is built when asked: the simulator never asks, and a cycle makes
    thousands."""

    job_id: str
    score: float
    ranking: Ranking
    request: int
    duration: float
    pool: int  # index into the cycle's pools
    calendar: float | None  # epoch seconds of the decision (prices the run window)
    site: PoolState
    nodes: tuple[int, ...]
    devices_per_node: int
    at: float
    end: float  # expected
    milli: int = 0

    def __init__(self, job_id: str, score: float, ranking: Ranking, request: int, duration: float, pool: int,
                 calendar: float | None, site: PoolState, nodes: tuple[int, ...], devices_per_node: int, at: float,
                 end: float, milli: int = 0) -> None:
        # written out (as Allocation's): a cycle makes thousands
        self.job_id, self.score, self.ranking, self.request = job_id, score, ranking, request
        self.duration, self.pool, self.calendar, self.site = duration, pool, calendar, site
        self.nodes, self.devices_per_node, self.at, self.end, self.milli = nodes, devices_per_node, at, end, milli

    @property
    def placement(self) -> Placement:
        return Placement(self.job_id, self.site.center, self.site.name, self.nodes, self.devices_per_node, self.at,
                         self.end, self.milli)

    @property
    def why(self) -> Why:
        """Built on demand: most starts are never asked why, and a cycle makes tens of thousands."""
        return Why(self.ranking, self.request, self.duration, self.pool, None, self.calendar)


@dataclass(slots=True)
class Preempt:
    job_id: str
    by: str
    pool: str  # center/pool
    allocation: Allocation | None = None  # what the victim held (its run is recorded up to the cycle)


@dataclass(slots=True, init=False)
class Reserve:
    """Job cannot start now; it holds `pool` from `start` and later jobs may only backfill around it."""

    job_id: str
    pool: str
    start: float
    why: Why
    extra: float = 0.0  # devices free at `start` beside the reserved gang: a backfill this small never delays it
    tenant: str = ""

    def __init__(self, job_id: str, pool: str, start: float, why: Why, extra: float = 0.0, tenant: str = "") -> None:
        self.job_id, self.pool, self.start, self.why, self.extra, self.tenant = job_id, pool, start, why, extra, tenant


@dataclass(slots=True, init=False)
class Unschedulable:
    job_id: str
    reason: str

    def __init__(self, job_id: str, reason: str) -> None:
        self.job_id, self.reason = job_id, reason


NO_CAPACITY = "no accepted pool has room for the gang now"


DEADLINE = "its deadline can no longer be met on any pool"


@dataclass(init=False)
class CycleResult:
    starts: list[Start] = field(default_factory=list)
    preemptions: list[Preempt] = field(default_factory=list)
    reservations: list[Reserve] = field(default_factory=list)
    unschedulable: list[Unschedulable] = field(default_factory=list)
    expired: list[Unschedulable] = field(default_factory=list)  # past their deadline: the driver fails them
    waits: dict[str, list[str]] = field(default_factory=dict)  # reason -> ids, for jobs the walk reached
    rest: list[tuple[tuple[float, ...], int, str, int, PendingJob]] = field(default_factory=list)  # queue not reached
    rest_skip: frozenset[int] = frozenset()  # rows of unschedulable jobs, reported in `unschedulable`
    beyond: int = 0  # rest[beyond:] was cut short by the backfill depth, not by its request dying
    beyond_reason: str = NO_CAPACITY
    reqs: int = 0  # distinct resource asks ranked

    def __init__(self, starts: list[Start] | None = None, preemptions: list[Preempt] | None = None,
                 reservations: list[Reserve] | None = None, unschedulable: list[Unschedulable] | None = None,
                 expired: list[Unschedulable] | None = None, waits: dict[str, list[str]] | None = None,
                 rest: list[tuple[tuple[float, ...], int, str, int, PendingJob]] | None = None,
                 rest_skip: frozenset[int] = frozenset(), beyond: int = 0, beyond_reason: str = NO_CAPACITY,
                 reqs: int = 0) -> None:
        # written out: mypyc compiles this one (the dataclass's is interpreted, and every cycle makes one)
        self.starts = [] if starts is None else starts
        self.preemptions = [] if preemptions is None else preemptions
        self.reservations = [] if reservations is None else reservations
        self.unschedulable = [] if unschedulable is None else unschedulable
        self.expired = [] if expired is None else expired
        self.waits = {} if waits is None else waits
        self.rest = [] if rest is None else rest
        self.rest_skip, self.beyond, self.beyond_reason, self.reqs = rest_skip, beyond, beyond_reason, reqs

    def wait(self, job_id: str, reason: str) -> None:
        ids = self.waits.get(reason)
        if ids is None:
            self.waits[reason] = ids = []
        ids.append(job_id)

    @property
    def waiting(self) -> dict[str, list[str]]:
        """Reason -> ids of the jobs left pending; the unreached rest waits for capacity (in queue order)."""
        out = {k: list(v) for k, v in self.waits.items()}
        for entries, reason in ((self.rest[:self.beyond], NO_CAPACITY), (self.rest[self.beyond:], self.beyond_reason)):
            ids = [e[2] for e in sorted(entries) if e[3] not in self.rest_skip]
            if ids:
                out.setdefault(reason, []).extend(ids)
        return out

    @property
    def waiting_jobs(self) -> int:
        return sum(len(v) for v in self.waits.values()) + sum(1 for e in self.rest if e[3] not in self.rest_skip)

    @property
    def placed(self) -> int:
        return len(self.starts)
