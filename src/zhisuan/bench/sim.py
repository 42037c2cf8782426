"""`zhisuan bench sim`: wall time of a full Philly replay per policy (the network scenario)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from zhisuan.bench import SIM_POLICIES
from zhisuan.scheduler import get_policy
from zhisuan.sim.engine import Simulator
from zhisuan.sim.readers import load_trace
from zhisuan.sim.scenario import trace_cluster


@dataclass
class PolicyTiming:
    policy: str
    jobs: int
    cycles: int
    seconds: float

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.seconds


def run(policies: list[str] | None = None, limit: int | None = None, siloed: bool = False,
        progress: Callable[[str], None] = lambda _: None) -> tuple[float, list[PolicyTiming]]:
    """(seconds to load the trace, one timing per policy)."""
    t0 = time.perf_counter()
    trace = load_trace("philly").limit(limit)
    load = time.perf_counter() - t0
    out = []
    for name in policies or SIM_POLICIES:
        progress(f"replaying {len(trace.jobs):,} jobs under {name}")
        sim = Simulator(trace, trace_cluster(trace, siloed, 2), get_policy(name))
        result = sim.run()
        out.append(PolicyTiming(name, len(trace.jobs), result.cycles, result.wall_seconds))
    return load, out


def median_seconds(timings: list[PolicyTiming]) -> float:
    return statistics.median(t.seconds for t in timings)


@dataclass
class ScaleTiming:
    """One policy at one demand scale, measured in a fresh process (its own peak memory)."""

    policy: str
    scale: float
    jobs: int
    devices: int
    seconds: float
    base_mb: float  # the process after loading the Philly trace (the fixed cost)
    peak_mb: float  # the process's peak during the replay

    @property
    def bytes_per_job(self) -> float:
        return (self.peak_mb - self.base_mb) * 2**20 / self.jobs


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def scaled_run(policy: str, scale: float) -> ScaleTiming:
    """Philly's arrivals ×scale (copies, as plan scenarios grow demand) on its cluster with every VC's nodes
    ×scale: national demand on a national network, the load per device unchanged."""
    from zhisuan.sim.demand import scale_arrivals
    from zhisuan.sim.trace import Trace

    base = load_trace("philly")
    base_mb = _peak_mb()
    grown = scale_arrivals(base, scale)
    trace = Trace(grown.name, grown.jobs, grown.chip, {h: round(n * scale) for h, n in grown.homes.items()},
                  grown.notes, grown.busy_cdf, grown.start)
    scenario = trace_cluster(trace, False, 2)
    result = Simulator(trace, scenario, get_policy(policy)).run()
    return ScaleTiming(policy, scale, len(trace.jobs), scenario.devices, result.wall_seconds, base_mb, _peak_mb())


def run_scaled(policies: list[str], scales: list[float],
               progress: Callable[[str], None] = lambda _: None) -> list[ScaleTiming]:
    """Each (policy, scale) in a process of its own, one after another (2 cores: no overlap to skew time)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    out = []
    for name in policies:
        for scale in scales:
            progress(f"{name} at ×{scale:g} Philly")
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver")) as pool:
                out.append(pool.submit(scaled_run, name, scale).result())
    return out
