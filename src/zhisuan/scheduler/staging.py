"""What running a job in a pool costs in moving its inputs there: time, GB, money and energy.

An input already held (with good checksums) at the pool's center moves nothing. Otherwise it comes from
the holding center whose link brings it soonest (RTT + size / the link's per-transfer rate); inputs from
different centers move in parallel, those over one link one after another. A job holds its devices
from its start, so staging time is part of its run (as SkyPilot's file mounts are): the start and
price scores and the expected end all count it, in the simulator and the live loop alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from zhisuan.catalog.links import LinkFigures, default_links
from zhisuan.model import Request
from zhisuan.model.units import format_duration
from zhisuan.scheduler.snapshot import PoolState
from zhisuan.scheduler.tables import F, PoolTable, RequestTable


@dataclass(frozen=True, slots=True)
class Leg:
    """One input's move: from which center, how much and how long."""

    dataset: str
    source: str
    gb: float
    seconds: float
    link: LinkFigures


@dataclass(frozen=True, slots=True)
class Move:
    legs: tuple[Leg, ...] = ()
    seconds: float = 0.0  # until every input is there (inf: some input has no replica anywhere)
    cny: float = 0.0
    kwh: float = 0.0

    @property
    def gb(self) -> float:
        return sum(leg.gb for leg in self.legs)

    def line(self) -> str:
        """"2.1 TB from shanghai, 47 min at 10 Gbit/s, ¥210" (several sources: each, then the total)."""
        if not math.isfinite(self.seconds):
            return "an input has no checked replica at any center"
        if not self.legs:
            return "inputs already here"
        by_source: dict[str, list[Leg]] = {}
        for leg in self.legs:
            by_source.setdefault(leg.source, []).append(leg)
        parts = []
        for source, legs in by_source.items():
            gb, link = sum(x.gb for x in legs), legs[0].link
            parts.append(f"{_size(gb)} from {source} at {link.gbit:g} Gbit/s")
        return f"{', '.join(parts)}: {format_duration(self.seconds)}, ¥{self.cny:,.2f}"


NOTHING = Move()


def _size(gb: float) -> str:
    return f"{gb / 1000:.1f} TB" if gb >= 1000 else f"{gb:.1f} GB" if gb >= 1 else f"{gb * 1000:.0f} MB"


def move_to(request: Request, pool: PoolState) -> Move:
    """What staging `request`'s inputs at `pool`'s center takes."""
    if not request.inputs:
        return NOTHING
    legs: list[Leg] = []
    for data in request.inputs:
        if pool.center in data.at:
            continue
        best: Leg | None = None
        for source in sorted(data.at):
            link = pool.links.get(source) or default_links()["between_hubs"]
            seconds = link.rtt_s + data.gb * 1e9 / link.bytes_per_s
            if best is None or seconds < best.seconds:
                best = Leg(data.name, source, data.gb, seconds, link)
        if best is None:
            return Move(seconds=math.inf)
        legs.append(best)
    per_link: dict[str, float] = {}
    for leg in legs:  # one link carries its inputs one after another
        per_link[leg.source] = per_link.get(leg.source, 0.0) + leg.seconds
    return Move(tuple(legs), max(per_link.values(), default=0.0), sum(x.gb * x.link.cny_per_gb for x in legs),
                sum(x.gb * x.link.kwh_per_gb for x in legs))


@dataclass(frozen=True)
class Staging:
    """[ask, pool] matrices of what moving inputs takes; zeros for asks that read no dataset."""

    seconds: F
    gb: F
    cny: F
    kwh: F
    hours: F  # [request, 1] expected hours on the reference chip (0 without inputs)

    @classmethod
    def of(cls, reqs: RequestTable, pools: PoolTable) -> Staging:
        shape = (len(reqs), len(pools))
        seconds, gb, cny, kwh = (np.zeros(shape) for _ in range(4))
        hours = np.array([[q.hours] for q in reqs.reqs], dtype=np.float64).reshape(len(reqs), 1)
        if not hours.any():
            return cls(seconds, gb, cny, kwh, hours)
        for r, req in enumerate(reqs.reqs):
            if not req.inputs:
                continue
            by_center: dict[str, Move] = {}
            for p, pool in enumerate(pools.pools):
                move = by_center.get(pool.center)
                if move is None:
                    move = by_center[pool.center] = move_to(req, pool)
                seconds[r, p], gb[r, p], cny[r, p], kwh[r, p] = move.seconds, move.gb, move.cny, move.kwh
        return cls(seconds, gb, cny, kwh, hours)

    def rows(self) -> list[list[float]]:
        """Seconds per ask as Python lists; asks that read no dataset share one row of zeros."""
        zeros = [0.0] * self.seconds.shape[1]
        return [self.seconds[r].tolist() if h > 0 else zeros for r, h in enumerate(self.hours[:, 0].tolist())]

    @property
    def any(self) -> bool:
        return bool(self.hours.size and (self.hours > 0).any())

    def per_unit_hour(self, values: F, units: F) -> F:
        """`values` (per job) spread over the job's device-hours (or CPU-hours): what they add to an hourly
        price or carbon rate, so the per-hour scores stay per-hour. Rows without inputs: zero."""
        spread = np.maximum(self.hours * units[:, None], 1e-9)
        out: F = np.where(self.hours > 0, values / spread, 0.0)
        return out
