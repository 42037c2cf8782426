"""Rank every pool for one job, with expected start, price and carbon: the "why" before submitting.

Used by `zhisuan explain` and, later, by quotes. Same filters and scores as the cycle; start delays
come from the pools' release timelines.
"""

from __future__ import annotations

import math

import numpy as np

from zhisuan.catalog.tou import hour_start
from zhisuan.scheduler.capacity import capacities
from zhisuan.scheduler.decisions import Candidate, Why
from zhisuan.scheduler.framework import Policy
from zhisuan.scheduler.policies import DEFAULT
from zhisuan.scheduler.pricing import time_dependent
from zhisuan.scheduler.ranking import rank
from zhisuan.scheduler.snapshot import PendingJob, Snapshot
from zhisuan.scheduler.tables import PoolTable, RequestTable
from zhisuan.scheduler.timeline import start_and_blockers


def explain(snapshot: Snapshot, job: PendingJob, now: float, policy: Policy = DEFAULT,
            calendar: float | None = None) -> list[Candidate]:
    """All pools, best first; rejected pools last with the filters that rejected them. With `calendar` (the
    epoch seconds of `now`), scores take that hour's tariffs and grid intensity, and cost and carbon are
    those of each pool's expected run window, as the invoice would meter it."""
    caps = capacities(snapshot)
    at = hour_start(calendar) if calendar is not None and time_dependent(snapshot.pools) else None
    ranking = rank(RequestTable.build([job.request]), PoolTable.build(snapshot.pools), policy, at)
    req = job.request
    delays = np.full(len(caps), math.inf)
    blockers: dict[str, tuple[str, ...]] = {}
    for p in ranking.prefs[0]:
        start, first = start_and_blockers(caps[p], req.devices_per_node, req.nodes, now)
        delays[p] = start - now
        blockers[snapshot.pools[p].key] = tuple(a.job_id for a in first)
    best = ranking.prefs[0][0] if ranking.prefs[0] else -1
    out = Why(ranking, 0, req.devices, job.duration, best, delays, calendar).candidates()
    for c in out:
        c.waits_for = blockers.get(f"{c.center}/{c.pool}", ())
    return out
