"""`zhisuan plan`: demand scaling, a cell's money computed by hand, option pricing against today, the Pareto
front and target, join-vs-alone, and the property that more devices never raise FIFO's mean wait."""

import csv
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import pool
from zhisuan.catalog import load_catalog
from zhisuan.metering.energy import IDLE_FRACTION
from zhisuan.metering.finance import npv, yearly_flows
from zhisuan.model import SpecError
from zhisuan.model.plan import load_plan
from zhisuan.scheduler import get_policy
from zhisuan.sim.demand import factor_for, p_hours_per_month, scale_arrivals
from zhisuan.sim.engine import Simulator
from zhisuan.sim.plan.cells import YEAR, CellSpec, run_cell
from zhisuan.sim.plan.runner import pareto, run_plan
from zhisuan.sim.scenario import Scenario
from zhisuan.sim.trace import parse_csv

NETWORK = """name: one
centers:
  - name: alpha
    region: east
    province: 北京
    pue: 1.5
    carbon_kg_per_kwh: 0.5
    pools: [{name: gpu, accelerator: A100-80GB, nodes: 1, devices_per_node: 2, price_per_device_hour: 10}]
"""
TRACE = "submit,duration,devices,chip,tenant\n0,3600,1,A100-80GB,a\n7200,3600,1,A100-80GB,a\n"


def write_plan(tmp_path, body: str, trace: str = TRACE):
    (tmp_path / "net.yaml").write_text(NETWORK, encoding="utf-8")
    (tmp_path / "t.csv").write_text(trace, encoding="utf-8")
    path = tmp_path / "plan.yaml"
    path.write_text(f"name: p\nnetwork: net.yaml\ndemand: {{trace: {tmp_path / 't.csv'}}}\ninterval: 0\n{body}",
                    encoding="utf-8")
    return load_plan(path)


def test_arrivals_scale_by_copies_that_keep_the_mix():
    t = parse_csv("submit,duration,devices\n" + "".join(f"{60 * i},600,{1 + i % 3}\n" for i in range(100)), chip="a100")
    two = scale_arrivals(t, 2.0)
    assert len(two.jobs) == 200 and len({j.id for j in two.jobs}) == 200
    assert sorted(j.devices for j in two.jobs) == sorted(2 * [j.devices for j in t.jobs])
    assert all(a.submit <= b.submit for a, b in zip(two.jobs, two.jobs[1:], strict=False))
    copies = [j for j in two.jobs if "~" in j.id]
    originals = {j.id: j for j in t.jobs}
    assert all(0 <= c.submit - originals[c.id.split("~")[0]].submit <= 3600 for c in copies)
    assert 130 <= len(scale_arrivals(t, 1.5).jobs) <= 170  # the fractional part is a seeded sample
    assert scale_arrivals(t, 1.5, seed=3).jobs != scale_arrivals(t, 1.5, seed=4).jobs
    with pytest.raises(ValueError):
        scale_arrivals(t, math.nan)


def test_a_target_load_sets_the_factor():
    t = parse_csv("submit,duration,devices,chip\n0,3600,2,A100-80GB\n86400,3600,2,A100-80GB\n")
    tflops = load_catalog().lookup("A100-80GB").fp16_tflops
    have = 4 * tflops / 1000 / (86400 / (30.44 * 86400))  # 4 device-hours in a one-day window
    assert p_hours_per_month(t) == pytest.approx(have)
    assert factor_for(t, None, 3 * have) == pytest.approx(3.0)


def test_a_cell_bills_and_burns_what_hand_arithmetic_says(tmp_path):
    plan, network = write_plan(tmp_path, "options: [{name: today}]\n")
    cell = run_cell(CellSpec(plan, network, "today", "x1"))
    assert cell.jobs == 2 and cell.mean_wait == 0 and cell.p95_jct == 3600
    # window = the arrivals [0, 7200] s: the first job's hour lies in it, the second's starts at its end
    (alpha,) = cell.centers
    year = YEAR / 7200
    assert alpha.revenue == pytest.approx(1 * 10 * year)  # one device-hour at ¥10, annualised
    assert alpha.allocated_util == pytest.approx(3600 / (2 * 7200))
    tdp = load_catalog().lookup("A100-80GB").tdp_w
    kwh = (1 * 1 + 3 * IDLE_FRACTION) * tdp / 1000 * 1.5 * year  # 1 busy device-hour, 3 idle, PUE 1.5
    assert alpha.kwh == pytest.approx(kwh) and alpha.kg_co2 == pytest.approx(kwh * 0.5)
    assert alpha.kwh_at_tou == pytest.approx(kwh)  # no time-of-use zone: every hour at the flat price


def test_electricity_is_billed_at_the_zones_time_of_use_hours(tmp_path):
    from zhisuan.catalog.tou import load_tou

    tou, tdp = load_tou("CN-BJ"), load_catalog().lookup("A100-80GB").tdp_w
    t0 = next(h * 3600.0 for h in range(24) if tou.at(h * 3600.0)[0] != 1.0)  # an off-flat hour (trace clock = epoch)
    trace = f"submit,duration,devices,chip,tenant\n{t0:.0f},3600,1,A100-80GB,a\n{t0 + 7200:.0f},3600,1,A100-80GB,a\n"
    plan, network = write_plan(tmp_path, "options: [{name: today}]\n", trace)
    network = network.model_copy(update={"centers": [network.centers[0].model_copy(update={"tou_zone": "CN-BJ"})]})
    cell = run_cell(CellSpec(plan, network, "today", "x1"))
    (alpha,) = cell.centers
    busy_h = float(tou.integral(t0, t0 + 3600.0)) / 3600  # the one run inside the arrival window
    all_h = 2 * float(tou.integral(t0, t0 + 7200.0)) / 3600  # both devices over the window
    expected = (busy_h + (all_h - busy_h) * IDLE_FRACTION) * tdp / 1000 * 1.5 * YEAR / 7200
    assert alpha.kwh_at_tou == pytest.approx(expected) and alpha.kwh_at_tou != pytest.approx(alpha.kwh)


BUSY = "submit,duration,devices,chip,tenant\n" + "".join(f"{600 * i},1000,2,A100-80GB,a\n" for i in range(30))


def test_options_are_priced_against_today(tmp_path):
    plan, network = write_plan(tmp_path, """options:
  - {name: more, add: [{center: alpha, pool: gpu, nodes: 1}]}
finance:
  capex_per_node: {a100: 1000000}
  install_per_node: 50000
  electricity_cny_per_kwh: 0.5
  opex: {maintenance_pct: 4}
  discount_rate: 0.1
  horizon_years: 3
  depreciation_years: 6
  assumptions: {capex_per_node: a test figure}
target: {p95_wait_hours: 0.5, scenario: x1}
""", BUSY)
    result = run_plan(plan, network)
    today, more = result.rows  # no plain option in the plan: today's network is run and named
    assert today.option == "(today)" and today.money.capex == 0 and today.money.payback is None
    assert today.cell.p95_wait > 1800 and more.cell.p95_wait < today.cell.p95_wait  # a queue, then none
    m = more.money
    assert m.capex == 1_050_000 and m.opex == pytest.approx(0.04 * 1_050_000)
    assert m.revenue == pytest.approx(more.cell.revenue - today.cell.revenue)
    assert m.electricity == pytest.approx((more.cell.kwh - today.cell.kwh) * 0.5)
    flows = yearly_flows(1_050_000, m.revenue, m.opex + m.electricity, 3, 1_050_000 * 0.5)  # half still on the books
    assert m.npv == pytest.approx(npv(0.1, flows))
    assert more.meets and not today.meets and result.cheapest == "more"
    assert any("a test figure" in b for b in result.basis) and any("ASSUMPTION" in b for b in result.basis)
    from zhisuan.sim.plan.report import HEADERS, write_report

    html = write_report(result, tmp_path / "zh", "zh-CN").read_text(encoding="utf-8")
    assert "达到目标的最便宜方案" in html and "净现值" in html
    assert not [h for h in HEADERS if f"<th>{h}</th>" in html]  # every column header in Chinese


def test_the_front_keeps_only_undominated_options():
    points = [("a", 0, 10), ("b", 5, 5), ("c", 6, 5), ("d", 9, 1), ("e", 9, 2)]
    assert pareto(points) == {"a", "b", "d"}


def test_a_chip_without_a_price_is_named_before_anything_runs(tmp_path):
    plan, network = write_plan(tmp_path, """options:
  - {name: mi, build: [{name: beta, region: west, pue: 1.2, carbon_kg_per_kwh: 0.4,
       pools: [{name: amd, accelerator: MI250X, nodes: 2, devices_per_node: 8, price_per_device_hour: 5}]}]}
""")
    with pytest.raises(SpecError) as e:
        run_plan(plan, network)
    assert e.value.errors[0][0] == "finance.capex_per_node.Instinct MI250X"


def test_building_alone_vs_joining_the_network(tmp_path):
    trace = "submit,duration,devices,chip,tenant,home\n" + "".join(
        f"{300 * i},1800,2,A100-80GB,a,{'x' if i % 4 else 'y'}\n" for i in range(60))
    plan, network = write_plan(tmp_path, """options:
  - {name: build, build: [{name: beta, region: west, province: 贵州, pue: 1.2, carbon_kg_per_kwh: 0.4,
       pools: [{name: gpu, accelerator: A100-80GB, nodes: 1, devices_per_node: 2, price_per_device_hour: 8}]}]}
finance: {capex_per_node: {a100: 100000}, build_per_center: 1000000}
""", trace)
    result = run_plan(plan, network)
    (join,) = result.joins
    assert join.center == "beta" and join.joined_money.capex == 1_100_000 == join.alone_money.capex
    # alone, beta serves only the VC given to it (the smaller one); joined, it takes the overflow too
    assert join.joined.allocated_util > join.alone.allocated_util > 0
    assert join.joined.revenue > join.alone.revenue


def fifo_mean_wait(jobs: list[tuple[int, int, int]], nodes: int) -> float:
    rows = "".join(f"{s},{d},{n},V100,a\n" for s, d, n in jobs)
    sc = Scenario("network", [pool("c", "p", "v100", nodes=nodes, size=2)])
    r = Simulator(parse_csv("submit,duration,devices,chip,tenant\n" + rows), sc, get_policy("fifo"),
                  interval=0).run()
    return sum(j.first_start - j.trace.submit for j in r.jobs) / len(r.jobs)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(1, 400), st.sampled_from([1, 2, 4])), min_size=1,
                max_size=25), st.integers(2, 4), st.integers(1, 3))
def test_more_devices_never_raise_fifo_mean_wait(jobs, nodes, more):
    assert fifo_mean_wait(jobs, nodes + more) <= fifo_mean_wait(jobs, nodes) + 1e-9


def test_the_example_plan_runs_from_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from tests.builders import ROOT
    from zhisuan.cli.main import app

    res = CliRunner().invoke(app, ["plan", str(ROOT / "examples" / "plans" / "cn10-growth.yaml"), "--limit", "1500",
                                   "--workers", "2", "--out", str(tmp_path / "rep")], env={"COLUMNS": "220"})
    assert res.exit_code == 0, res.output
    assert "chengdu-plus-64" in res.output and "target" in res.output and "ASSUMPTION" in res.output
    rows = list(csv.DictReader((tmp_path / "rep" / "plan.csv").open(encoding="utf-8")))
    assert len(rows) == 6 * 3 and {r["scenario"] for r in rows} == {"x2", "x4", "x6"}
    assert (tmp_path / "rep" / "index.html").is_file() and (tmp_path / "rep" / "join-vs-alone.csv").is_file()


def test_a_demand_too_large_to_simulate_is_refused_before_anything_runs(tmp_path, monkeypatch):
    from zhisuan.sim.plan import cells

    plan, network = write_plan(tmp_path, "options: [{name: today}]\n")
    huge = plan.model_copy(update={"demand": plan.demand.model_copy(update={"scenarios": [
        plan.demand.scenarios[0].model_copy(update={"arrivals": 1000.0})]})})
    monkeypatch.setattr(cells, "MAX_JOBS", 1500)  # 2 jobs x 1000
    with pytest.raises(SpecError) as e:
        run_plan(huge, network)
    assert e.value.errors[0][0] == "demand.scenarios.0"


def test_a_bad_plan_exits_non_zero_naming_the_field(tmp_path):
    from typer.testing import CliRunner

    from zhisuan.cli.main import app

    write_plan(tmp_path, "options: [{name: today}]\n")
    bad = tmp_path / "plan.yaml"
    bad.write_text(bad.read_text(encoding="utf-8").replace("interval: 0", "interval: -5"), encoding="utf-8")
    res = CliRunner().invoke(app, ["plan", str(bad)])
    assert res.exit_code != 0 and "interval" in res.output


def test_retiring_a_pool_saves_its_maintenance_and_its_electricity(tmp_path):
    two = NETWORK.replace("price_per_device_hour: 10}]", "price_per_device_hour: 10},\n"
                          "            {name: old, accelerator: A100-80GB, nodes: 2, devices_per_node: 2,"
                          " price_per_device_hour: 12}]")
    (tmp_path / "net.yaml").write_text(two, encoding="utf-8")
    (tmp_path / "t.csv").write_text(TRACE, encoding="utf-8")
    (tmp_path / "plan.yaml").write_text(f"""name: p
network: net.yaml
demand: {{trace: {tmp_path / 't.csv'}}}
interval: 0
options:
  - {{name: lean, retire: [{{center: alpha, pool: old}}]}}
finance:
  capex_per_node: {{a100: 1000000}}
  electricity_cny_per_kwh: 0.5
  opex: {{maintenance_pct: 4}}
""", encoding="utf-8")
    plan, network = load_plan(tmp_path / "plan.yaml")
    result = run_plan(plan, network)
    lean = next(r for r in result.rows if r.option == "lean").money
    assert lean.capex == 0 and lean.opex == pytest.approx(-2 * 1_000_000 * 0.04)  # two nodes' maintenance saved
    assert lean.electricity <= 0 and any("maintenance" in b for b in result.basis)
