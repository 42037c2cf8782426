"""A center's own load in the leader's loop: what its engine reports occupies its pools (its users' jobs, nodes drained
or down there), and the nodes its operator drained in zhisuan — each held in the scheduler's state as the center's
own load that never ends, merged with what the engine reported. Re-applied every step for the pools that have any,
so devices a job frees on a drained node are held again before the next cycle could place anything there; running
jobs go on."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from zhisuan.engines import EngineDown
from zhisuan.scheduler.snapshot import RunningJob
from zhisuan.scheduler.state import EXTERNAL
from zhisuan.store.drains import Drain, DrainStore

if TYPE_CHECKING:
    from zhisuan.control.loop import ControlLoop

log = logging.getLogger("zhisuan.control")
EVERY = 2.0  # seconds between readings of the drains (an operator's change takes effect within this)
PREFIX = "drain:"


class DrainBoard:
    def __init__(self, loop: ControlLoop) -> None:
        self.loop = loop
        self.store = DrainStore(loop.store.engine)
        self.nodes: dict[str, dict[int, Drain]] = {}  # pool key -> node -> its drain
        self.observed: dict[str, list[RunningJob]] = {}  # pool key -> what its engine last reported
        self._at = -math.inf

    def touch(self) -> None:
        """Read the drains at the next step (a change made in this process; others' within EVERY)."""
        self._at = -math.inf

    def observe(self, now: float, only: str | None = None) -> None:
        """Ask each healthy center's engine what else occupies its pools; the state holds it, drains merged."""
        loop = self.loop
        for center in loop.network.centers:
            if center.name in loop.failover.down or (only is not None and center.name != only):
                continue
            try:
                load = loop.fleet.of(center.name).load(center.pools)
            except (EngineDown, OSError, ValueError, KeyError) as e:
                log.warning("load of %s unknown: %s", center.name, e)
                continue
            by_pool: dict[str, list[RunningJob]] = {f"{center.name}/{p.name}": [] for p in center.pools}
            for x in load:
                key = f"{center.name}/{x.pool}"
                if key in by_pool:
                    by_pool[key].append(RunningJob(x.id, EXTERNAL, key, x.nodes, x.devices_per_node, x.start,
                                                   x.expected_end, preemptible=False))
            loop.labels[center.name] = {x.id: x.what for x in load}
            for key, jobs in by_pool.items():
                loop.state.set_external(key, self.external(key, jobs))

    def external(self, key: str, reported: list[RunningJob]) -> list[RunningJob]:
        """What the engine reported for a pool, with its drained nodes (kept for later re-applies)."""
        self.observed[key] = reported
        pool = self.loop.pool_of.get(key)
        drained = self.nodes.get(key, {})
        if pool is None or not drained:
            return reported
        return [*reported, *(RunningJob(f"{PREFIX}{n}", EXTERNAL, key, (n,), pool.devices_per_node, d.at, math.inf,
                                        preemptible=False) for n, d in drained.items())]

    def step(self, now: float) -> None:
        changed: set[str] = set()
        if now - self._at >= EVERY or now < self._at:
            self._at = now
            fresh: dict[str, dict[int, Drain]] = {}
            for d in self.store.list():
                fresh.setdefault(f"{d.center}/{d.pool}", {})[d.node] = d
            changed = {k for k in set(fresh) | set(self.nodes) if fresh.get(k) != self.nodes.get(k)}
            self.nodes = fresh
        for key in changed | set(self.nodes):
            if key not in self.loop.pool_of:
                continue
            self.loop.state.set_external(key, self.external(key, self.observed.get(key, [])))
            center = key.split("/", 1)[0]
            labels = {k: v for k, v in self.loop.labels.get(center, {}).items() if not k.startswith(PREFIX)}
            for n, d in self.nodes.get(key, {}).items():
                labels[f"{PREFIX}{n}"] = f"node {n} of {d.pool} drained by its operator: {d.reason}"
            self.loop.labels[center] = labels
