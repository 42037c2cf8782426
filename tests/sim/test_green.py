"""The simulator bills with metering's ToU tables; carbon-aware placement and time shifting."""

from dataclasses import replace
from datetime import datetime

import pytest

from zhisuan.model import parse_network
from zhisuan.scheduler import get_policy
from zhisuan.sim.engine import Simulator
from zhisuan.sim.green import deadlines_for
from zhisuan.sim.metrics import summarize
from zhisuan.sim.scenario import network_scenario
from zhisuan.sim.trace import Trace, TraceJob

NET = parse_network("""
name: two
centers:
  - {name: coal, region: north, pue: 1.3, carbon_kg_per_kwh: 0.8, tou_zone: CN-SH,
     pools: [{name: gpu, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 10}]}
  - {name: hydro, region: west, pue: 1.3, carbon_kg_per_kwh: 0.1, tou_zone: CN-SH,
     pools: [{name: gpu, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 10}]}
""")
START = datetime.fromisoformat("2026-11-25T07:00:00+08:00").timestamp()  # trace time 0 = 07:00 in Shanghai


def trace(*jobs):
    return Trace("t", list(jobs), "A100 SXM4 80GB", start=START)


def run(tr, policy, deadlines=None):
    pol = replace(get_policy("zhisuan"), defer=True) if policy == "defer" else get_policy(policy)
    return Simulator(tr, network_scenario(NET, False), pol, interval=0, deadlines=deadlines).run()


def test_the_simulator_prices_runs_at_their_local_tou_hours():
    s = summarize(run(trace(TraceJob("a", 0.0, 7200.0, 1)), "zhisuan"))  # 07:00-09:00: flat hour, then peak
    assert s.cny == pytest.approx(10 * (1.0 + 1.6))


def test_carbon_aware_placement_picks_the_cleaner_center():
    jobs = [TraceJob(f"j{i}", 60.0 * i, 3600.0, 2) for i in range(4)]  # all fit in either center
    blind, aware = (summarize(run(trace(*jobs), p)) for p in ("carbon-blind", "zhisuan"))
    assert aware.kg_co2 < blind.kg_co2 * 0.5 and aware.avg_queue <= blind.avg_queue + 1


def test_time_shifting_moves_peak_submissions_to_the_next_cheaper_hour_within_slack():
    tr = trace(TraceJob("peak", 1.5 * 3600, 1800.0, 1),  # 08:30: peak until 11:00
               TraceJob("long", 1.5 * 3600, 8 * 3600.0, 1),  # too long to defer
               TraceJob("flat", 0.2 * 3600, 1800.0, 1))  # 07:12: already flat
    deadlines = deadlines_for(tr, slack_hours=12, max_hours=4)
    assert set(deadlines) == {"peak", "flat"}
    shifted = run(tr, "defer", deadlines)
    starts = {j.trace.id: j.first_start for j in shifted.jobs}
    assert starts == {"peak": 4 * 3600.0, "long": 1.5 * 3600, "flat": 0.2 * 3600}  # peak released at 11:00
    assert shifted.deferred == 1 and shifted.expired == 0
    tight = run(tr, "defer", deadlines_for(tr, slack_hours=1, max_hours=4))  # 2.5 h to 11:00 > 1 h slack
    assert {j.trace.id: j.first_start for j in tight.jobs}["peak"] == 1.5 * 3600 and tight.deferred == 0
    before, after = summarize(run(tr, "zhisuan")), summarize(shifted)
    assert after.cny < before.cny and after.avg_queue > before.avg_queue


def test_a_job_that_can_no_longer_meet_its_deadline_expires():
    tr = trace(TraceJob("hog", 0.0, 7200.0, 8), TraceJob("hog2", 0.0, 7200.0, 8),  # both centers busy 2 h
               TraceJob("urgent", 60.0, 1800.0, 8))
    r = run(tr, "zhisuan", {"urgent": 60.0 + 1800.0 + 600.0})  # only 10 minutes of slack
    urgent = next(j for j in r.jobs if j.trace.id == "urgent")
    assert urgent.expired and r.expired == 1 and any("deadline" in n for n in r.notes)
