"""The operator console's numbers and alerts, from a live view built by the scheduler state itself."""

import pytest

from tests.builders import job, named, pool
from zhisuan.control.overview import DayTotal, local_midnight, overview
from zhisuan.control.view import LiveView
from zhisuan.metering.usage import UsageInterval
from zhisuan.model import parse_network
from zhisuan.scheduler import POLICIES
from zhisuan.scheduler.state import SchedulerState

NET = parse_network("""
name: two
centers:
  - {name: a, region: east, pue: 1.2, carbon_kg_per_kwh: 0.5,
     pools: [{name: p, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 10}]}
  - {name: b, region: west, pue: 1.1, carbon_kg_per_kwh: 0.3,
     pools: [{name: p, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 8}]}
tenants: [{name: lab, quota_devices: 8}, {name: acme}]
""")


def interval(center, measured, busy, cny=1.0):
    return DayTotal.of(UsageInterval("j", "lab", center, "p", "A100", 0.0, 3600.0, 8, measured, measured, busy,
                                     "nvml", None, 1.0, "tdp", 0.5, "flat", 1.0, cny, "v1", ""))


def test_kpis_centers_and_alerts():
    state = SchedulerState([pool("a", nodes=1, size=8), pool("b", nodes=1, size=8)], POLICIES["fifo"])
    state.submit(job("big", named(per_node=8), submit=0.0, tenant="lab", duration=3600.0))
    state.submit(job("next", named(per_node=8), submit=1.0, tenant="acme", duration=600.0))
    state.submit(job("waits", named(per_node=8), submit=2.0, tenant="acme", duration=600.0))
    result = state.cycle(0.0)
    assert len(result.starts) == 2
    view = LiveView.of(state, {"b": "no answer for 30 s"}, {})
    today = [interval("a", 3600.0 * 8, 3600.0 * 2, cny=80.0)]  # a: 75% of measured time idle
    out = overview(NET, view, {"b": "no answer for 30 s"}, today, [], 3, 100.0, None)
    k = out["kpis"]
    assert (k["allocated_pct"], k["queue"], k["jobs_per_hour"], k["cny_today"]) == (100.0, 1, 3, 80.0)
    assert k["busy_pct"] == 25.0 and k["pflops_online"] == pytest.approx(k["pflops_total"] / 2, rel=1e-6)
    a = next(c for c in out["centers"] if c["name"] == "a")
    b = next(c for c in out["centers"] if c["name"] == "b")
    assert (a["occupancy_pct"], a["queue"], a["next_free_s"]) == (100.0, 1, 3500.0)  # big ends at 3600
    assert (b["healthy"], b["next_free_s"]) == (False, None)  # a center that is down offers no start
    kinds = {(x["kind"], x["subject"]) for x in out["alerts"]}
    assert kinds == {("center-down", "b"), ("idle-while-allocated", "a"), ("over-quota", "lab")}
    mine = overview(NET, view, {}, today, [], 0, 100.0, "acme")
    assert ("over-quota", "lab") not in {(x["kind"], x["subject"]) for x in mine["alerts"]}  # not acme's business
    assert (mine["kpis"]["cny_today"], mine["kpis"]["busy_pct"]) == (0.0, 25.0)  # lab's bill is not acme's to see


def test_today_starts_at_midnight_in_shanghai():
    assert local_midnight(1_796_000_000.0) % 86400 == 16 * 3600  # 00:00 +08:00 is 16:00 UTC


def test_the_days_totals_are_summed_by_the_store_as_the_intervals_say(tmp_path):
    import dataclasses

    from zhisuan.model import parse_job_spec
    from zhisuan.store import JobStore, UsageStore, connect, migrate
    from zhisuan.store.schema import UsageRow

    engine = connect(f"sqlite:///{tmp_path / 'u.db'}")
    migrate(engine)
    spec = parse_job_spec("name: x\ntenant: lab\nresources: {accelerators: a100:1}\nrun: 'true'\n")
    j1, j2, j3 = (JobStore(engine).submit(spec, 0.0) for _ in range(3))
    rows = [UsageInterval(j1, "lab", "a", "p", "A100", 0.0, 3600.0, 8, 28800.0, 28800.0, 7200.0, "nvml", None,
                          1.0, "tdp", 0.5, "flat", 1.0, 80.0, "v1", ""),
            UsageInterval(j2, "lab", "a", "p", "A100", 3600.0, 7200.0, 8, 28800.0, 0.0, None, "", None,
                          2.0, "tdp", 0.9, "flat", 1.0, 80.0, "v1", ""),  # unmeasured: no busy, no measured part
            UsageInterval(j3, "acme", "b", "p", "A100", 9000.0, 9600.0, 1, 600.0, 600.0, 600.0, "nvml", None,
                          0.1, "tdp", 0.05, "flat", 1.0, 2.0, "v1", "")]  # starts when the window ends
    with engine.begin() as conn:
        conn.execute(UsageRow.__table__.insert(), [{**dataclasses.asdict(u), "attempt": 1} for u in rows])
    sums = [DayTotal(**t) for t in UsageStore(engine).totals(0.0, 9000.0)]
    assert len(sums) == 1 and (sums[0].center, sums[0].tenant) == ("a", "lab")
    got = sums[0]
    assert (got.measured_device_s, got.busy_device_s, got.cny) == (28800.0, 7200.0, 160.0)  # by hand
    assert got.kg_co2 == pytest.approx(1.4)
