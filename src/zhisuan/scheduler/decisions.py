"""What a cycle returns: starts, preemptions, reservations, and jobs no pool can ever take.

Every start and reservation carries its `Why`: the scored candidates that made the choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from zhisuan.model import Placement
from zhisuan.scheduler.ranking import Ranking
from zhisuan.scheduler.tables import F


@dataclass(frozen=True, slots=True)
class Candidate:
    center: str
    pool: str
    score: float
    start_delay: float  # seconds; inf = never
    cost: float  # CNY for the whole job
    carbon: float  # kgCO2 for the whole job (TDP power model)
    runtime: float  # seconds on this pool's chip
    rejected: tuple[str, ...] = ()  # names of the filters that reject this pool


@dataclass(frozen=True)
class Why:
    """The per-pool scores behind a decision, built lazily from the cycle's ranking."""

    ranking: Ranking
    request: int
    devices: int
    duration: float
    chosen: int
    delays: F | None = None

    def candidates(self, limit: int | None = None) -> list[Candidate]:
        rk, r = self.ranking, self.request
        total = rk.total[r] if self.delays is None else rk.total_with_delay(r, self.delays)
        pools = [int(p) for p in sorted(range(len(rk.pools)), key=lambda p: (-total[p], p))]
        out = []
        for p in pools[:limit]:
            runtime = self.duration / float(rk.ctx.speed[r, p])
            hours = runtime / 3600.0 * self.devices
            pool = rk.pools.pools[p]
            out.append(Candidate(
                center=pool.center, pool=pool.name,
                score=float(total[p]) if math.isfinite(total[p]) else math.nan,
                start_delay=float(self.delays[p]) if self.delays is not None else 0.0,
                cost=hours * pool.price, carbon=hours * pool.kg_per_device_hour, runtime=runtime,
                rejected=tuple(f.name for f in rk.rejecting(r, p)),
            ))
        return out


@dataclass(frozen=True, slots=True)
class Start:
    job_id: str
    placement: Placement
    score: float
    why: Why


@dataclass(frozen=True, slots=True)
class Preempt:
    job_id: str
    by: str
    pool: str  # center/pool


@dataclass(frozen=True, slots=True)
class Reserve:
    """Job cannot start now; it holds `pool` from `start` and later jobs may only backfill around it."""

    job_id: str
    pool: str
    start: float
    why: Why


@dataclass(frozen=True, slots=True)
class Unschedulable:
    job_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Job stays pending this cycle: no pool has room now, an admission check (quota) said no."""

    job_id: str
    reason: str


NO_CAPACITY = "no accepted pool has room for the gang now"


@dataclass
class CycleResult:
    starts: list[Start] = field(default_factory=list)
    preemptions: list[Preempt] = field(default_factory=list)
    reservations: list[Reserve] = field(default_factory=list)
    unschedulable: list[Unschedulable] = field(default_factory=list)
    waiting: list[Wait] = field(default_factory=list)
    requests: int = 0  # distinct requests ranked

    @property
    def placed(self) -> int:
        return len(self.starts)
