"""Carbon-aware placement and deferrable-job time shifting, compared with carbon-blind placement on a
trace replayed over a network of real centers: kgCO2 and CNY saved against the wait they add.

Time shifting moves the release of a deferrable job from a peak hour to the next hour in which the
network's capacity-weighted ToU multiplier is at most 1 (flat or valley), within the job's slack.
Traces carry no deadlines, so which jobs are deferrable is an ASSUMPTION stated with the results:
jobs expected to run at most `max_hours`, with `slack_hours` of slack.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zhisuan.metering.tou import HOUR, load_tou
from zhisuan.model import Network
from zhisuan.scheduler import get_policy
from zhisuan.sim.engine import SimResult, Simulator
from zhisuan.sim.metrics import Summary, summarize
from zhisuan.sim.readers import load_trace
from zhisuan.sim.scenario import Scenario, network_scenario
from zhisuan.sim.trace import Trace


def network_multiplier(scenario: Scenario, t: np.ndarray) -> np.ndarray:
    """Capacity-weighted mean ToU multiplier of the scenario's pools at absolute times `t` (hour starts)."""
    total = np.zeros_like(t, dtype=float)
    weight = 0.0
    for p in scenario.pools:
        devices = p.nodes * p.devices_per_node
        total += devices * load_tou(scenario.tou.get(p.key)).integral(t, t + HOUR) / HOUR
        weight += devices
    return total / max(weight, 1.0)


def time_shift(trace: Trace, scenario: Scenario, slack_hours: float, max_hours: float) -> dict[str, float]:
    """Job id -> new release time for deferrable jobs submitted in hours dearer than flat."""
    if not trace.jobs:
        return {}
    last = max(j.submit for j in trace.jobs) + (slack_hours + 2) * HOUR
    hours = np.arange(0.0, last + HOUR, HOUR)
    cheap = network_multiplier(scenario, hours + trace.start) <= 1.0 + 1e-9
    next_cheap = np.full(len(hours), np.inf)  # start of the first cheap hour at or after each hour
    nxt = np.inf
    for k in range(len(hours) - 1, -1, -1):
        if cheap[k]:
            nxt = hours[k]
        next_cheap[k] = nxt
    release = {}
    for j in trace.jobs:
        if j.duration > max_hours * HOUR:
            continue
        k = int(j.submit // HOUR)
        if cheap[k]:
            continue
        when = next_cheap[k + 1] if k + 1 < len(hours) else np.inf
        if when - j.submit <= slack_hours * HOUR:
            release[j.id] = float(when)
    return release


@dataclass(frozen=True)
class GreenRow:
    label: str
    summary: Summary
    deferred: int


def compare(network: Network, trace_name: str = "philly", limit: int | None = None, interval: float = 60.0,
            slack_hours: float = 12.0, max_hours: float = 4.0,
            stacks: frozenset[str] | None = None) -> tuple[Trace, list[GreenRow]]:
    """carbon-blind, zhisuan, carbon-first and zhisuan + time shifting over the network's centers;
    `stacks`: the software stacks every job can run on (default: the trace chip's own)."""
    trace = load_trace(trace_name).limit(limit)
    scenario = network_scenario(network, siloed=False)
    release = time_shift(trace, scenario, slack_hours, max_hours)
    runs = [("carbon-blind", "carbon-blind", None), ("zhisuan (carbon weight 2)", "zhisuan", None),
            ("carbon-first (carbon weight 8)", "carbon-first", None),
            (f"zhisuan + time shifting (≤{max_hours:g} h jobs, {slack_hours:g} h slack)", "zhisuan", release)]
    rows = []
    for label, policy, rel in runs:
        result: SimResult = Simulator(trace, scenario, get_policy(policy), interval=interval, release=rel,
                                      stacks=stacks).run()
        rows.append(GreenRow(label, summarize(result), result.deferred))
    return trace, rows
