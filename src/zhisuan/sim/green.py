"""Carbon-aware placement and deferrable-job time shifting, compared with carbon-blind placement on a
trace replayed over a network of real centers: kgCO2 and CNY saved against the wait they add.

Time shifting is the scheduler's own (`defer`, scheduler/deferral.py), as the live network runs it: a job
with a deadline is released at the next hour whose network-wide tariff is at most flat, if it can still
meet its deadline. Traces carry no deadlines, so which jobs are deferrable is an ASSUMPTION stated with
the results: jobs expected to run at most `max_hours`, due `slack_hours` after their no-wait end.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from zhisuan.catalog.tou import HOUR
from zhisuan.model import Network
from zhisuan.scheduler import get_policy
from zhisuan.sim.engine import SimResult, Simulator
from zhisuan.sim.metrics import Summary, summarize
from zhisuan.sim.readers import load_trace
from zhisuan.sim.scenario import network_scenario
from zhisuan.sim.trace import Trace


def deadlines_for(trace: Trace, slack_hours: float, max_hours: float) -> dict[str, float]:
    """Traces carry no deadlines: the deferrable jobs (expected at most `max_hours`) get one `slack_hours`
    after they would end if started at once (an ASSUMPTION, stated with the results)."""
    return {j.id: j.submit + j.duration + slack_hours * HOUR for j in trace.jobs if j.duration <= max_hours * HOUR}


@dataclass(frozen=True)
class GreenRow:
    label: str
    summary: Summary
    deferred: int
    expired: int = 0


def compare(network: Network, trace_name: str = "philly", limit: int | None = None, interval: float = 60.0,
            slack_hours: float = 12.0, max_hours: float = 4.0,
            stacks: frozenset[str] | None = None) -> tuple[Trace, list[GreenRow]]:
    """carbon-blind, zhisuan, carbon-first and zhisuan + time shifting over the network's centers;
    `stacks`: the software stacks every job can run on (default: the trace chip's own)."""
    trace = load_trace(trace_name).limit(limit)
    scenario = network_scenario(network, siloed=False)
    deadlines = deadlines_for(trace, slack_hours, max_hours)
    shifting = replace(get_policy("zhisuan"), name="zhisuan+defer", defer=True)
    runs = [("carbon-blind", get_policy("carbon-blind"), None),
            ("zhisuan (carbon weight 2)", get_policy("zhisuan"), None),
            ("carbon-first (carbon weight 8)", get_policy("carbon-first"), None),
            (f"zhisuan + time shifting (≤{max_hours:g} h jobs, {slack_hours:g} h slack)", shifting, deadlines)]
    rows = []
    for label, policy, due in runs:
        result: SimResult = Simulator(trace, scenario, policy, interval=interval, deadlines=due, stacks=stacks).run()
        rows.append(GreenRow(label, summarize(result), result.deferred, result.expired))
    return trace, rows
