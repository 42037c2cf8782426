"""The simulator bills with metering's ToU tables; carbon-aware placement and time shifting."""

from datetime import datetime

import pytest

from zhisuan.model import parse_network
from zhisuan.scheduler import get_policy
from zhisuan.sim.engine import Simulator
from zhisuan.sim.green import time_shift
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


def run(tr, policy, release=None):
    return Simulator(tr, network_scenario(NET, False), get_policy(policy), interval=0, release=release).run()


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
    shifted = time_shift(tr, network_scenario(NET, False), slack_hours=12, max_hours=4)
    assert shifted == {"peak": 4 * 3600.0}  # released at 11:00
    assert time_shift(tr, network_scenario(NET, False), slack_hours=1, max_hours=4) == {}  # 2.5 h > 1 h slack
    before, after = (summarize(run(tr, "zhisuan", rel)) for rel in (None, shifted))
    assert after.cny < before.cny and after.avg_queue > before.avg_queue
