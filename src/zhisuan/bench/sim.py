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
