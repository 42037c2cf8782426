"""What /metrics reports, computed from the store, the network and the control loop: queue depth per
center, jobs per state, allocated and (measured) busy devices per chip, center health, scheduler cycle
durations, and the energy, carbon and CNY metered so far. The API only renders these."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zhisuan.control.view import LiveView
from zhisuan.model import JobState, Network
from zhisuan.scheduler import DEFAULT
from zhisuan.scheduler.ranking import rank
from zhisuan.scheduler.state import EXTERNAL
from zhisuan.scheduler.tables import PoolTable, RequestTable
from zhisuan.store import JobStore, UsageStore

CYCLE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Labels = tuple[tuple[str, str], ...]


@dataclass
class CycleStats:
    """A histogram of scheduling-cycle durations (seconds), kept by the control loop."""

    count: int = 0
    total: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(CYCLE_BUCKETS))

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        for i, bound in enumerate(CYCLE_BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1


def queue_depth(view: LiveView, network: Network) -> dict[str, int]:
    """Pending jobs per center whose pools accept them (a job counts at every center it could run in)."""
    depth = dict.fromkeys((c.name for c in network.centers), 0)
    if not view.queued or not view.pools:
        return depth
    ranking = rank(RequestTable.build([q for q, _ in view.queued]), PoolTable.build(view.pools), DEFAULT)
    centers = np.array([p.center for p in view.pools])
    for row, (_, count) in enumerate(view.queued):
        for center in set(centers[ranking.feasible[row]].tolist()):
            depth[center] += count
    return depth


def gauges(store: JobStore, usage: UsageStore, network: Network,
           view: LiveView) -> dict[str, list[tuple[Labels, float]]]:
    chip_of = {f"{c.name}/{p.name}": p.accelerator for c in network.centers for p in c.pools}
    held = [r for r in view.running if r.tenant != EXTERNAL]
    latest = usage.latest_samples([r.id for r in held if r.id in view.started])
    allocated: Counter[tuple[str, str]] = Counter()
    external: Counter[tuple[str, str]] = Counter()
    busy: dict[tuple[str, str], float] = {}
    running: Counter[str] = Counter()
    for r in view.running:
        center = r.pool.split("/")[0]
        key = (center, chip_of.get(r.pool, ""))
        if r.tenant == EXTERNAL:
            external[key] += r.devices
            continue
        allocated[key] += r.devices
        if r.id in view.started:
            running[center] += 1
            if r.id in latest:
                busy[key] = busy.get(key, 0.0) + r.devices * float(latest[r.id]["busy_fraction"])
    capacity: Counter[tuple[str, str]] = Counter()
    for c in network.centers:
        for p in c.pools:
            capacity[(c.name, p.accelerator)] += p.devices
    per_state = store.count_by_state()
    metered = usage.totals_by_center()

    def cc(k: tuple[str, str]) -> Labels:
        return (("center", k[0]), ("chip", k[1]))

    return {
        "queue_depth": [((("center", c),), float(n)) for c, n in queue_depth(view, network).items()],
        "jobs": [((("state", s.value),), float(per_state.get(s.value, 0))) for s in JobState],
        "running_jobs": [((("center", c.name),), float(running[c.name])) for c in network.centers],
        "devices": [(cc(k), float(v)) for k, v in sorted(capacity.items())],
        "devices_allocated": [(cc(k), float(allocated[k])) for k in sorted(capacity)],
        "devices_external": [(cc(k), float(external[k])) for k in sorted(capacity)],
        "devices_busy": [(cc(k), busy.get(k, 0.0)) for k in sorted(capacity)],
        "center_up": [((("center", c.name), ("engine", c.engine)), 0.0 if c.name in view.down else 1.0)
                      for c in network.centers],
        "energy_kwh": [((("center", c),), v[0]) for c, v in sorted(metered.items())],
        "carbon_kg": [((("center", c),), v[1]) for c, v in sorted(metered.items())],
        "billed_cny": [((("center", c),), v[2]) for c, v in sorted(metered.items())],
    }


def sim_reports(folder: Path | None) -> list[dict[str, object]]:
    """`zhisuan sim` reports (folders with an index.html) under the reports folder, newest first."""
    if folder is None or not folder.is_dir():
        return []
    found = [folder / "index.html", *sorted(folder.glob("*/index.html"))]
    rows = [{"name": p.parent.name, "path": str(p.relative_to(folder)), "modified": p.stat().st_mtime}
            for p in found if p.is_file()]
    return sorted(rows, key=lambda r: -float(str(r["modified"])))
