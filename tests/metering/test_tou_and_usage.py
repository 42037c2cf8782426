"""Metering arithmetic: ToU at the center's local time, usage intervals, invoices that reconcile."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhisuan.catalog.tou import hour_segments, load_tou
from zhisuan.metering.invoice import invoice, local_month
from zhisuan.metering.pricebook import PriceBook
from zhisuan.metering.usage import BusySample, meter
from zhisuan.metering.utilization import utilization
from zhisuan.model import parse_network

SH = ZoneInfo("Asia/Shanghai")
NET = parse_network("""
name: bill
centers:
  - {name: sh, region: east, pue: 1.25, carbon_kg_per_kwh: 0.5849, tou_zone: CN-SH, idle_discount: 0.5,
     pools: [{name: a100, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 10}]}
  - {name: gs, region: west, pue: 1.2, carbon_kg_per_kwh: 0.4772, tou_zone: CN-GS,
     pools: [{name: npu, accelerator: 910b3, nodes: 1, devices_per_node: 8, price_per_device_hour: 8}]}
""")
BOOK = PriceBook.from_network(NET)


def at(text):
    return datetime.fromisoformat(text).timestamp()


def test_tou_hours_are_read_at_shanghai_local_time():
    sh = load_tou("CN-SH")
    assert sh.at(at("2026-11-25T11:30:00+00:00")) == (1.6, "peak")  # 19:30 in Shanghai: November evening peak
    assert sh.at(at("2026-11-25T11:30:00+08:00")) == (1.0, "flat")
    assert sh.at(at("2026-01-15T19:30:00+08:00")) == (2.25, "sharp")  # January evening sharp peak
    assert sh.at(at("2026-11-25T23:59:59+08:00")) == (0.5, "valley")
    assert load_tou("CN-GS").assumed and not sh.assumed
    with pytest.raises(ValueError, match="tou_zone: unknown zone 'CN-XX'"):
        load_tou("CN-XX")


@given(st.floats(1.6e9, 2.0e9), st.floats(0, 9 * 86400))
def test_the_vectorised_integral_equals_hour_by_hour_sums(start, length):
    sh = load_tou("CN-SH")
    expected = sum((b - a) * sh.multipliers[datetime.fromtimestamp(a, SH).month - 1, datetime.fromtimestamp(a, SH).hour]
                   for a, b in hour_segments(start, start + length))
    assert float(sh.integral(start, start + length)) == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_a_run_across_the_peak_boundary_is_priced_per_local_hour():
    entry = BOOK.of("sh", "a100")
    runs = meter("j1", "acme", entry, BOOK.version, 2, at("2026-11-25T07:30:00+08:00"), at("2026-11-25T08:30:00+08:00"),
                 [])
    assert [(u.tou_period, u.tou_multiplier) for u in runs] == [("flat", 1.0), ("peak", 1.6)]
    assert sum(u.cny for u in runs) == pytest.approx(2 * 0.5 * 10 * 1.0 + 2 * 0.5 * 10 * 1.6)


def test_without_a_measurement_busy_is_unmeasured_and_energy_is_the_tdp_bound():
    entry = BOOK.of("sh", "a100")
    [u] = meter("j1", "acme", entry, BOOK.version, 8, at("2026-11-25T12:00:00+08:00"), at("2026-11-25T12:30:00+08:00"),
                [])
    assert u.busy_device_s is None and u.busy_source == "unmeasured" and u.measured_device_s == 0
    assert "upper bound" in u.energy_model
    assert u.kwh == pytest.approx(8 * 400 * 1800 * 1.25 / 3.6e6)  # A100 SXM4 80GB TDP 400 W, PUE 1.25
    assert u.kg_co2 == pytest.approx(u.kwh * 0.5849)


def test_a_jobs_own_reports_give_busy_energy_and_the_idle_discount():
    entry = BOOK.of("sh", "a100")
    t0 = at("2026-11-25T12:00:00+08:00")
    samples = [BusySample(t0 + 600, 0.8, "self-report", peak_memory_gib=30), BusySample(t0 + 1200, 0.2, "self-report")]
    [u] = meter("j2", "acme", entry, BOOK.version, 4, t0, t0 + 1800, samples)
    assert u.measured_device_s == 4 * 1200 and u.busy_device_s == pytest.approx(4 * (600 * 0.8 + 600 * 0.2))
    assert u.busy_source == "self-report" and u.peak_memory_gib == 30 and "model" in u.energy_model
    idle = 4 * 1200 - u.busy_device_s
    assert u.cny == pytest.approx((4 * 1800 - 0.5 * idle) / 3600 * 10 * 1.0)  # flat hour, half off idle time


def test_invoices_reconcile_with_the_usage_records():
    t0 = at("2026-11-30T22:10:00+08:00")  # runs into December (local time)
    half = [BusySample(t0, 0.5, "nvml")]
    records = meter("j3", "acme", BOOK.of("gs", "npu"), BOOK.version, 8, t0, t0 + 3 * 3600, half)
    records += meter("j4", "acme", BOOK.of("sh", "a100"), BOOK.version, 1, t0, t0 + 1800, [])
    records += meter("j5", "lab", BOOK.of("sh", "a100"), BOOK.version, 1, t0, t0 + 1800, [])
    nov = invoice(records, "acme", "2026-11", {"j3": "train", "j4": "eval"})
    mine = [u for u in records if u.tenant == "acme" and local_month(u.start) == "2026-11"]
    assert nov.totals["cny"] == sum(u.cny for u in mine) and nov.totals["kwh"] == sum(u.kwh for u in mine)
    assert sum(x.cny for x in nov.lines) == pytest.approx(nov.totals["cny"], rel=1e-12)
    dec = invoice(records, "acme", "2026-12", {})
    assert nov.totals["cny"] + dec.totals["cny"] == pytest.approx(sum(u.cny for u in records if u.tenant == "acme"))
    eval_line = next(x for x in nov.lines if x.job_id == "j4")
    assert eval_line.busy_device_hours is None and "unmeasured" in nov.to_csv()
    assert "tou" in nov.assumptions  # Gansu's ratios are unknown: flat price, labelled
    assert BOOK.version in nov.price_versions


def test_utilization_separates_allocated_busy_and_idle():
    t0 = at("2026-11-25T12:00:00+08:00")
    records = meter("j6", "acme", BOOK.of("sh", "a100"), BOOK.version, 4, t0, t0 + 3600, [BusySample(t0, 0.25, "nvml")])
    [row] = utilization(records, {("sh", "A100 SXM4 80GB"): 8}, t0, t0 + 3600, 3600)
    assert (row.allocated_pct, row.busy_pct, row.idle_while_allocated_pct) == pytest.approx((50.0, 12.5, 75.0))


def test_an_engines_measured_busy_holds_for_a_run_without_samples(tmp_path):
    from zhisuan.control.metering import Meter
    from zhisuan.engines import Usage
    from zhisuan.model import JobState, parse_job_spec
    from zhisuan.store import JobStore, UsageStore, connect, migrate

    db = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(db)
    store = JobStore(db)
    t0 = at("2026-11-25T12:00:00+08:00")
    job = store.submit(parse_job_spec("name: s\ntenant: acme\nresources: {accelerators: a100:2}\nrun: x"), t0)
    store.transition(job, JobState.SCHEDULED, t0, "placed", center="sh", pool="a100", nodes=(0,), devices_per_node=2,
                     devices=[["0", "1"]])
    rec = store.transition(job, JobState.RUNNING, t0, "started", engine_handle="7@/x")
    meter = Meter(NET, UsageStore(db))
    [row] = meter.run_rows(rec, t0 + 1800, Usage(3600.0, 1800.0, 2700.0, "sacct gres/gpuutil (step average)"))
    assert row["busy_device_s"] == pytest.approx(2700.0) and row["busy_source"].startswith("sacct gres/gpuutil")
    [row] = meter.run_rows(rec, t0 + 1800, Usage(3600.0, 1800.0, None, "sacct AllocTRES"))
    assert row["busy_device_s"] is None
    # Slurm's ConsumedEnergy without gpuutil: the draw is measured (energy from it), busy stays unmeasured
    [row] = meter.run_rows(rec, t0 + 1800, Usage(3600.0, 1800.0, None, "sacct AllocTRES", energy_joules=720_000.0))
    assert row["busy_device_s"] is None and row["busy_source"] == "unmeasured"
    assert row["kwh"] == pytest.approx(720_000 * 1.25 / 3.6e6) and row["energy_model"] == "measured watts"


def test_an_hourly_carbon_series_replaces_the_annual_factor(tmp_path):
    em = tmp_path / "sg.csv"  # Electricity Maps' hourly export format
    em.write_text("Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct)\n"
                  "2023-01-01 04:00:00,Singapore,Singapore,SG,375.83\n"
                  "2023-01-01 05:00:00,Singapore,Singapore,SG,300.00\n")
    lw = tmp_path / "gb.csv"  # Let's Wait Awhile: half-hourly, averaged to hours
    lw.write_text("Time,Carbon Intensity\n2020-06-01 04:00:00,100\n2020-06-01 04:30:00,200\n")
    net = parse_network(f"""
name: hourly
centers:
  - {{name: sg, region: east, pue: 1.25, carbon_kg_per_kwh: 0.5, carbon_series: {em},
     pools: [{{name: a100, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 10}}]}}
  - {{name: gb, region: west, pue: 1.25, carbon_kg_per_kwh: 0.5, carbon_series: {lw},
     pools: [{{name: a100, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 10}}]}}
""")
    book = PriceBook.from_network(net)
    t = at("2023-01-01T12:00:00+08:00")  # 04:00 UTC
    [a, b] = meter("j", "acme", book.of("sg", "a100"), book.version, 1, t, t + 7200, [])
    assert a.kg_co2 == pytest.approx(a.kwh * 0.37583) and b.kg_co2 == pytest.approx(b.kwh * 0.300)
    assert "carbon_series typical year" not in a.assumptions
    [c] = meter("j", "acme", book.of("gb", "a100"), book.version, 1, at("2026-06-01T12:00:00+08:00"),
                at("2026-06-01T12:30:00+08:00"), [])
    assert c.kg_co2 == pytest.approx(c.kwh * 0.150) and "carbon_series typical year" in c.assumptions
    [gap] = meter("j", "acme", book.of("sg", "a100"), book.version, 1, t + 7200, t + 7300, [])  # 06:00 UTC: none
    assert gap.kg_co2 == pytest.approx(gap.kwh * 0.5) and "carbon_series gap: annual factor" in gap.assumptions
    with pytest.raises(ValueError, match="carbon_series: no file"):
        PriceBook.from_network(parse_network(str(net.model_dump_json()).replace(str(em), str(tmp_path / "x.csv"))))
