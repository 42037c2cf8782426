"""Quotes equal invoices: the scheduler prices a run's expected window hour by hour with the tariff and
grid intensity metering bills it with; price scores follow the tariff of the hour; deadlines are kept."""

from datetime import datetime

import pytest

from tests.builders import job, named
from zhisuan.metering.pricebook import PriceBook
from zhisuan.metering.usage import meter
from zhisuan.model import SpecError, parse_job_spec, parse_network
from zhisuan.scheduler import POLICIES, pools_from_network, snapshot_from_network
from zhisuan.scheduler.explain import explain
from zhisuan.scheduler.feasibility import check_spec
from zhisuan.scheduler.state import SchedulerState


def at(text):
    return datetime.fromisoformat(text).timestamp()


def network(tmp_path):
    series = tmp_path / "gs.csv"  # Electricity Maps' hourly format: 2023-06-01, 00:00-05:00 UTC
    rows = "".join(f"2023-06-01 {h:02d}:00:00,China,Gansu,CN-GS,{200 + 50 * h}\n" for h in range(6))
    series.write_text("Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct)\n" + rows)
    return parse_network(f"""
name: tou
centers:
  - {{name: sh, region: east, pue: 1.25, carbon_kg_per_kwh: 0.58, tou_zone: CN-SH,
     pools: [{{name: a100, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 10}}]}}
  - {{name: gs, region: west, pue: 1.2, carbon_kg_per_kwh: 0.48, carbon_series: {series},
     pools: [{{name: a100, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 11}}]}}
""")


def test_a_quote_is_the_invoice_of_the_run_it_expects(tmp_path):
    net = network(tmp_path)
    now = at("2026-06-01T10:20:00+08:00")  # 02:20 UTC; Shanghai's peak until 11:00, then flat
    pending = job("q", named("a100", per_node=4), now, duration=3 * 3600 + 600)
    quote = {c.center: c for c in explain(snapshot_from_network(net), pending, 0.0, calendar=now)}
    book = PriceBook.from_network(net)
    for center in ("sh", "gs"):
        rows = meter("q", "t", book.of(center, "a100"), book.version, 4, now, now + quote[center].runtime, [])
        assert len(rows) == 4  # the window crosses three hour boundaries
        assert quote[center].cost == pytest.approx(sum(r.cny for r in rows))
        assert quote[center].carbon == pytest.approx(sum(r.kg_co2 for r in rows))
    sh_rows = meter("q", "t", book.of("sh", "a100"), book.version, 4, now, now + quote["sh"].runtime, [])
    assert len({r.tou_multiplier for r in sh_rows}) > 1  # the quote is not a flat price x hours
    assert quote["sh"].cost != pytest.approx(10 * 4 * quote["sh"].runtime / 3600)


def test_the_price_score_follows_the_tariff_of_the_hour(tmp_path):
    net = parse_network("""
name: two-tariffs
centers:
  - {name: sh, region: east, pue: 1.25, carbon_kg_per_kwh: 0.5, tou_zone: CN-SH,
     pools: [{name: a100, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 10}]}
  - {name: flat, region: east, pue: 1.25, carbon_kg_per_kwh: 0.5,
     pools: [{name: a100, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 10.5}]}
""")
    valley, peak = at("2026-06-01T01:00:00+08:00"), at("2026-06-01T08:00:00+08:00")  # CN-SH: x0.5, x1.6
    chosen = {}
    for name, t in (("valley", valley), ("peak", peak)):
        state = SchedulerState(pools_from_network(net), POLICIES["zhisuan"])
        state.submit(job("j", named("a100", per_node=1), t, 3600.0))
        chosen[name] = state.cycle(t).starts[0].placement.center
    assert chosen == {"valley": "sh", "peak": "flat"}  # cheaper at night, dearer at the peak


def test_deadlines_are_checked_at_submit_and_kept_by_the_cycle(tmp_path):
    net = network(tmp_path)
    now = at("2026-06-01T10:00:00+08:00")
    spec = parse_job_spec("name: late\ntenant: t\nresources: {accelerators: a100:1}\nrun: x\n"
                          "constraints: {time_limit: 2h, deadline: '2026-06-01T11:00:00+08:00'}")
    with pytest.raises(SpecError) as e:
        check_spec(spec, net, now=now)
    assert e.value.errors[0][0] == "constraints.deadline" and "after the deadline" in e.value.errors[0][1]
    state = SchedulerState(pools_from_network(net), POLICIES["zhisuan"])
    for i in range(2):  # both pools taken for an hour
        state.submit(job(f"hog{i}", named("a100", per_node=8), 0.0, 3600.0))
    state.cycle(0.0)
    urgent = job("urgent", named("a100", per_node=1), 10.0, 1800.0)
    urgent.deadline = 10.0 + 1800.0 + 600.0
    state.submit(urgent)
    assert state.cycle(20.0).expired == []  # it could still make it
    assert [x.job_id for x in state.cycle(700.0).expired] == ["urgent"]  # no longer


def test_every_candidate_is_explained_part_by_part_and_the_margin_in_words():
    from tests.builders import pool
    from zhisuan.scheduler import Snapshot
    from zhisuan.scheduler.explain import margin

    # a: cheaper and cleaner; b: holds the job's data. Default weights: start 4, price 3, carbon 2, locality 2,
    # fragmentation 1 -> a wins price and carbon (25 + 16.7 points), b wins locality (16.7)
    snap = Snapshot(pools=[pool("a", price=5.0, grid=0.3), pool("b", price=10.0, grid=0.6)])
    cands = explain(snap, job("j", named(per_node=8, data_center="b"), duration=3600.0), 0.0)
    for c in cands:
        assert sum(p.contribution for p in c.parts) == pytest.approx(c.score)
    a, b = cands
    assert [(p.name, round(p.score), p.weight) for p in a.parts] == [
        ("start", 100, 4.0), ("price", 100, 3.0), ("carbon", 100, 2.0), ("locality", 0, 2.0),
        ("fragmentation", 100, 1.0)]
    assert a.parts[1].raw == 5.0 and b.parts[1].raw == 10.0  # the price score's raw: CNY per device-hour
    words = margin(cands)
    assert words.startswith("a/p over b/p by 25.0 points: cheaper by ¥40.00 and greener by ")
    assert words.endswith("; data locality favoured b/p by 100 points but weighs less")
    assert margin(cands[:1]) == "a/p is the only pool that can run it"
