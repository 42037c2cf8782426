"""`zhisuan bench scheduler`: placements per second of one full cycle at network scale."""

from __future__ import annotations

import gc
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

from zhisuan.bench import synthetic
from zhisuan.scheduler import DEFAULT, Policy, Snapshot
from zhisuan.scheduler.state import SchedulerState


@dataclass
class SchedulerBench:
    centers: int
    pools: int
    nodes: int
    devices: int
    chip_types: int
    pending: int
    running: int
    reqs: int
    placed: int
    waiting: int
    unschedulable: int
    reservations: int
    cycle_seconds: list[float]
    build_seconds: list[float]
    peak_traced_mb: float
    max_rss_mb: float

    @property
    def median_cycle(self) -> float:
        return statistics.median(self.cycle_seconds)

    @property
    def placements_per_second(self) -> float:
        return self.placed / self.median_cycle


def run(quick: bool = False, repeats: int = 5, policy: Policy = DEFAULT,
        progress: Callable[[str], None] = lambda _: None) -> SchedulerBench:
    scale = 10 if quick else 1
    progress("building the synthetic network and queue")
    snap: Snapshot = synthetic.snapshot(centers=20, nodes=10_000 // scale, jobs=100_000 // scale)
    times, builds = [], []
    result = None
    for i in range(repeats):
        progress(f"cycle {i + 1}/{repeats}")
        t0 = time.perf_counter()
        state = SchedulerState.from_snapshot(snap, policy)  # cold start: the scheduler cache from a snapshot
        t1 = time.perf_counter()
        # A long-running scheduler keeps its large, stable state out of the cyclic GC's scans (gc.freeze);
        # without it, full collections walking the 100k-job queue cost about a third of a cycle.
        gc.collect()
        gc.freeze()
        t2 = time.perf_counter()
        result = state.cycle(0.0)
        times.append(time.perf_counter() - t2)
        builds.append(t1 - t0)
        gc.unfreeze()
    assert result is not None
    progress("measuring peak memory of one cycle (traced, untimed)")
    state = SchedulerState.from_snapshot(snap, policy)
    tracemalloc.start()
    state.cycle(0.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return SchedulerBench(
        centers=len({p.center for p in snap.pools}), pools=len(snap.pools),
        nodes=sum(p.nodes for p in snap.pools), devices=sum(p.nodes * p.devices_per_node for p in snap.pools),
        chip_types=len({p.chip.name for p in snap.pools}), pending=len(snap.pending), running=len(snap.running),
        reqs=result.reqs, placed=result.placed, waiting=result.waiting_jobs,
        unschedulable=len(result.unschedulable), reservations=len(result.reservations),
        cycle_seconds=times, build_seconds=builds, peak_traced_mb=peak / 2**20,
        max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
