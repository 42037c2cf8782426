"""Replication rules, kept by the network (Rucio's sense): a dataset with `copies: N, regions: [...]` has N
replicas, one in each named region first; those replicas are pinned (never evicted), and a missing one is
copied from the nearest replica (its owner pays the transfer). The rest of the N go to the centers whose
storage is cheapest, then by name — a plain, reproducible choice."""

from __future__ import annotations

import logging

from zhisuan.control.datasets import DataService
from zhisuan.control.errors import Conflict
from zhisuan.model import SpecError
from zhisuan.store.datasets import READY, STAGING, DatasetRecord

log = logging.getLogger("zhisuan.data")


def chosen_centers(data: DataService, d: DatasetRecord, held: list[str]) -> list[str]:
    """The centers the rule keeps `d` at: existing replicas where they serve the rule, new ones where not."""
    stores = sorted((c for c in data.network.centers if c.store is not None),
                    key=lambda c: (c.store.cny_per_gb_month if c.store else 0.0, c.name))
    region = {c.name: c.region for c in stores}
    chosen: list[str] = []
    for r in d.rule_regions:
        mine = [c for c in held if region.get(c) == r and c not in chosen]
        fresh = [c.name for c in stores if c.region == r and c.name not in chosen]
        if mine or fresh:
            chosen.append((mine or fresh)[0])
    for c in [*held, *(c.name for c in stores)]:
        if len(chosen) >= (d.rule_copies or 0):
            break
        if c not in chosen and c in region:
            chosen.append(c)
    return chosen


def keep_rules(data: DataService, now: float) -> int:
    """Pin the replicas every rule keeps, queue the copies it lacks; the number of copies queued."""
    queued = 0
    for d in data.datasets.with_rules():
        live = data.datasets.replicas(d.id)
        held = [r.center for r in live if r.state in (READY, STAGING)]
        chosen = chosen_centers(data, d, held)
        for r in live:
            if r.pinned != (r.center in chosen):
                data.datasets.set_replica(r.id, now, pinned=r.center in chosen)
        for center in chosen:
            if center in held:
                continue
            try:
                data.replicate(d.owner, d.name, center, now, pinned=True)
                queued += 1
            except (Conflict, SpecError) as e:
                log.warning("rule of %s: no copy to %s: %s", d.ref, center, e)
    return queued
