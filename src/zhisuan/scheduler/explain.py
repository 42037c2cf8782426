"""Rank every pool for one job, with expected start, price and carbon: the "why" before submitting.

Used by `zhisuan explain`, quotes and "Why here?". Same filters and scores as the cycle; start delays
come from the pools' release timelines and, under EASY, from the latest cycle's reservations: a job that
would still run when a reserved gang starts, and needs more than the devices left beside it, cannot
backfill there, so it starts no earlier than the reservation (as the cycle's backfill check decides).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from zhisuan.catalog.tou import hour_start
from zhisuan.model.units import format_duration
from zhisuan.scheduler.capacity import capacities
from zhisuan.scheduler.decisions import Candidate, Reserve, Why
from zhisuan.scheduler.framework import Policy
from zhisuan.scheduler.policies import DEFAULT
from zhisuan.scheduler.pricing import time_dependent
from zhisuan.scheduler.ranking import rank
from zhisuan.scheduler.shape import Shape
from zhisuan.scheduler.snapshot import PendingJob, Snapshot
from zhisuan.scheduler.tables import PoolTable, RequestTable
from zhisuan.scheduler.timeline import start_and_blockers


def explain(snapshot: Snapshot, job: PendingJob, now: float, policy: Policy = DEFAULT,
            calendar: float | None = None, reservations: Sequence[Reserve] = ()) -> list[Candidate]:
    """All pools, best first; rejected pools last with the filters that rejected them. With `calendar` (the
    epoch seconds of `now`), scores take that hour's tariffs and grid intensity, and cost and carbon are
    those of each pool's expected run window, as the invoice would meter it. `reservations` are the
    latest cycle's: each candidate lists those holding its pool, the job's own included."""
    caps = capacities(snapshot)
    at = hour_start(calendar) if calendar is not None and time_dependent(snapshot.pools) else None
    ranking = rank(RequestTable.build([job.request]), PoolTable.build(snapshot.pools), policy, at)
    req = job.request
    delays = np.full(len(caps), math.inf)
    blockers: dict[str, tuple[str, ...]] = {}
    held: dict[str, list[Reserve]] = {}
    for res in reservations:
        held.setdefault(res.pool, []).append(res)
    for p in ranking.prefs[0]:
        key = snapshot.pools[p].key
        start, first = start_and_blockers(caps[p], Shape.of(req), now)
        end = start + ranking.staging_rows[0][p] + job.duration / float(ranking.ctx.speed[0, p])
        for res in held.get(key, ()):
            if res.job_id != job.id and start < res.start < end and req.devices > res.extra:
                start = res.start  # it cannot backfill around the reservation: not before it
        delays[p] = start - now
        blockers[key] = tuple(a.job_id for a in first)
    best = ranking.prefs[0][0] if ranking.prefs[0] else -1
    out = Why(ranking, 0, job.duration, best, delays, calendar).candidates()
    for c in out:
        key = f"{c.center}/{c.pool}"
        c.waits_for = blockers.get(key, ())
        c.reserved = tuple((res.job_id, res.tenant, res.start) for res in held.get(key, ()))
    return out


LABELS = {"start": "start time", "price": "price", "carbon": "carbon", "locality": "data locality",
          "fragmentation": "node fit", "throughput": "speed"}


def _won(name: str, a: Candidate, b: Candidate) -> str:
    """What the winner's edge on one score means, in the job's own units where they exist."""
    if name == "start" and math.isfinite(b.start_delay):
        sooner = format_duration(b.start_delay + b.staging - a.start_delay - a.staging)
        if b.staging > a.staging:
            return f"starts its work {sooner} sooner (there: {b.data})"
        return f"starts {sooner} sooner"
    if name == "price":
        return f"cheaper by ¥{b.cost - a.cost:,.2f}" if b.cost > a.cost else "cheaper per device-hour"
    if name == "carbon":
        return f"greener by {b.carbon - a.carbon:,.3f} kgCO2" if b.carbon > a.carbon else "greener per device-hour"
    if name == "locality":
        return f"moves less data ({a.data})" if a.data else "holds the job's data"
    if name == "throughput":
        return f"runs it faster ({format_duration(a.runtime)} vs {format_duration(b.runtime)})"
    if name == "fragmentation":
        return "fits its nodes better"
    return f"better {name}"


def margin(candidates: list[Candidate]) -> str:
    """The winner over the runner-up in words: by how many points, and which scores decided it — "cheaper
    by ¥0.14 and greener; data locality favoured shanghai/h800 by 25 points but weighs less"."""
    ok = [c for c in candidates if not c.rejected and math.isfinite(c.score)]
    if not ok:
        return "no pool can run it"
    a = ok[0]
    if len(ok) == 1:
        return f"{a.center}/{a.pool} is the only pool that can run it"
    b = ok[1]
    theirs = {p.name: p for p in b.parts}
    won, lost = [], []
    for mine in a.parts:
        other = theirs.get(mine.name)
        if other is None or abs(mine.contribution - other.contribution) < 0.05:
            continue
        if mine.contribution > other.contribution:
            won.append((mine.contribution - other.contribution, _won(mine.name, a, b)))
        else:
            lost.append((other.contribution - mine.contribution,
                         f"{LABELS.get(mine.name, mine.name)} favoured {b.center}/{b.pool} by "
                         f"{other.score - mine.score:.0f} points but weighs less"))
    head = f"{a.center}/{a.pool} over {b.center}/{b.pool} by {a.score - b.score:.1f} points"
    if not won:
        return f"{head}: equal on every score; the first pool in the network's order wins the tie"
    words = " and ".join(w for _, w in sorted(won, reverse=True))
    return f"{head}: {words}" + "".join(f"; {w}" for _, w in sorted(lost, reverse=True))
