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
from zhisuan.scheduler.capacity import capacities
from zhisuan.scheduler.decisions import Candidate, Reserve, Why
from zhisuan.scheduler.framework import Policy
from zhisuan.scheduler.policies import DEFAULT
from zhisuan.scheduler.pricing import time_dependent
from zhisuan.scheduler.ranking import rank
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
        start, first = start_and_blockers(caps[p], req.devices_per_node, req.nodes, now)
        end = start + job.duration / float(ranking.ctx.speed[0, p])
        for res in held.get(key, ()):
            if res.job_id != job.id and start < res.start < end and req.devices > res.extra:
                start = res.start  # it cannot backfill around the reservation: not before it
        delays[p] = start - now
        blockers[key] = tuple(a.job_id for a in first)
    best = ranking.prefs[0][0] if ranking.prefs[0] else -1
    out = Why(ranking, 0, req.devices, job.duration, best, delays, calendar).candidates()
    for c in out:
        key = f"{c.center}/{c.pool}"
        c.waits_for = blockers.get(key, ())
        c.reserved = tuple((res.job_id, res.tenant, res.start) for res in held.get(key, ()))
    return out
