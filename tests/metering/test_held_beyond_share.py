"""Billing by what is held (issue 26 #7): a tiny share asking a node's CPUs was billed ~7,000x less than a
CPU-only job holding the same CPUs. Now a run pays its devices (or share) plus the CPUs or the memory beyond
that share of a node, whichever costs more, at the pool's prices — in quotes, the price score, the price cap
and invoices alike; a job within its share pays its devices exactly as before."""

from datetime import datetime

import pytest

from tests.builders import job, named
from zhisuan.metering.pricebook import PriceBook
from zhisuan.metering.usage import meter
from zhisuan.model import SpecError, parse_job_spec, parse_network, request_from_spec
from zhisuan.model.billing import Held
from zhisuan.scheduler import POLICIES, pools_from_network, snapshot_from_network
from zhisuan.scheduler.explain import explain
from zhisuan.scheduler.feasibility import check_spec
from zhisuan.scheduler.snapshot import pending_from_spec
from zhisuan.scheduler.state import SchedulerState

NET = parse_network("""
name: held
centers:
  - {name: sh, region: east, pue: 1.25, carbon_kg_per_kwh: 0.58, tou_zone: CN-SH,
     pools: [{name: a100, accelerator: a100, nodes: 2, devices_per_node: 8, cpus_per_node: 128,
              memory_gib_per_node: 1024, price_per_device_hour: 10}]}
""")
BOOK = PriceBook.from_network(NET)
ENTRY = BOOK.of("sh", "a100")
NODE = 8 * 10.0  # CNY per node-hour at the flat tariff: a CPU costs 80/128, a GiB 80/1024 (derived)
NOW = datetime.fromisoformat("2026-06-01T10:20:00+08:00").timestamp()  # Shanghai's peak, then flat


def spec(acc, cpus=None, memory=None, nodes=1, max_price=None):
    extra = (f", cpus: {cpus}" if cpus else "") + (f", memory: {memory}" if memory else "")
    cap = f", max_price: {max_price}" if max_price else ""
    return parse_job_spec(f"name: j\ntenant: t\nresources: {{accelerators: '{acc}', nodes: {nodes}{extra}}}\n"
                          f"constraints: {{time_limit: 11400{cap}}}\nrun: x")


def quote(s):
    [c] = explain(snapshot_from_network(NET), pending_from_spec("q", s, NOW), 0.0, calendar=NOW)
    return c


def invoice(s, start, end):
    h = ENTRY.held(request_from_spec(s))
    return meter("j", "t", ENTRY, BOOK.version, h.devices, start, end, [], h.cpus, h.memory_gib)


def test_a_tiny_share_holding_a_nodes_cpus_pays_what_a_cpu_only_job_holding_them_pays():
    share, cpu_only = spec("A100:0.001", 128, "1000Gi"), spec("none", 128)
    q_share, q_cpu = quote(share), quote(cpu_only)
    assert q_share.cost == pytest.approx(q_cpu.cost, rel=1e-9)  # was ~8,000x less: 0.001 device-hours
    assert q_share.cost > 0.9 * NODE * 11400 / 3600 * 0.5  # a node's price, ToU applied (never below x0.5)
    rows = invoice(share, NOW, NOW + q_share.runtime)
    assert len(rows) == 4  # the window crosses three hour boundaries, tariffs change in it
    assert sum(r.cny for r in rows) == pytest.approx(q_share.cost)  # quotes equal invoices
    assert sum(r.cny for r in invoice(cpu_only, NOW, NOW + q_cpu.runtime)) == pytest.approx(q_cpu.cost)
    assert sum(r.cpu_s for r in rows) == pytest.approx((128 - 128 / 8 * 0.001) * q_share.runtime)
    assert all("cpu_price" in r.assumptions.split(",") for r in rows)  # derived from the devices: labelled


@pytest.mark.parametrize("acc, cpus, memory, nodes, devices", [
    ("A100:1", 16, "128Gi", 1, 1.0),  # exactly its share of a node
    ("A100:0.5", 8, "64Gi", 1, 0.5),
    ("A100:8", 128, "1024Gi", 2, 16.0),  # whole nodes
    ("A100:2", None, None, 1, 2.0),
])
def test_a_job_within_its_share_is_billed_its_devices_exactly_as_before(acc, cpus, memory, nodes, devices):
    s = spec(acc, cpus, memory, nodes)
    assert ENTRY.held(request_from_spec(s)) == Held(devices, 0.0, 0.0)
    rows = invoice(s, NOW, NOW + 7200)
    assert [r.cny for r in rows] == [r.cny for r in meter("j", "t", ENTRY, BOOK.version, devices, NOW, NOW + 7200, [])]
    assert all(r.cpu_s == 0 and r.gib_s == 0 and "price" not in r.assumptions for r in rows)
    q = quote(s)
    assert q.cost == pytest.approx(sum(r.cny for r in invoice(s, NOW, NOW + q.runtime)))
    assert ENTRY.held(request_from_spec(spec("none", 16, "128Gi"))) == Held(0.0, 16.0, 0.0)  # CPU-only: its CPUs


def test_memory_beyond_the_share_is_billed_and_a_node_fraction_only_once():
    # 1 of 8 devices, half the CPUs, three quarters of the memory: billed the largest fraction, 3/4 of a node
    # (Slurm's MAX_TRES with derived prices), not the CPUs and the memory both
    held = ENTRY.held(request_from_spec(spec("A100:1", 64, "768Gi")))
    assert held == Held(1.0, 0.0, 768 - 1024 / 8)
    assert held.cny_per_hour(ENTRY.flat, ENTRY.cpu_flat, ENTRY.memory_flat) == pytest.approx(0.75 * NODE)
    [row] = invoice(spec("A100:1", 64, "768Gi"), NOW + 3600, NOW + 5400)  # 11:20-11:50, one tariff hour
    assert row.gib_s == 640 * 1800 and row.cpu_s == 0 and "memory_price" in row.assumptions.split(",")
    cpu_only = ENTRY.held(request_from_spec(spec("none", 16, "512Gi")))  # a CPU-only job's memory past its CPUs'
    assert cpu_only == Held(0.0, 16.0, 512 - 1024 * 16 / 128)
    given = parse_network(NET.model_dump_json().replace('"price_per_cpu_hour":null', '"price_per_cpu_hour":0.2')
                          .replace('"price_per_gib_hour":null', '"price_per_gib_hour":0.01'))
    entry = PriceBook.from_network(given).of("sh", "a100")
    assert (entry.cpu_flat, entry.memory_flat, entry.cpu_assumed, entry.memory_assumed) == (0.2, 0.01, False, False)
    [row] = meter("j", "t", entry, "v", 1.0, NOW + 3600, NOW + 5400, [], 48.0)
    assert "price" not in row.assumptions  # given in the network file: nothing to label


def test_the_price_score_and_the_cap_weigh_the_cpus_an_ask_holds_beyond_its_share():
    net = parse_network("""
name: shapes
centers:
  - {name: c, region: east, pue: 1.2, carbon_kg_per_kwh: 0.5,
     pools: [{name: thin, accelerator: a100, nodes: 1, devices_per_node: 8, cpus_per_node: 32,
              price_per_device_hour: 9},
             {name: fat, accelerator: a100, nodes: 1, devices_per_node: 8, cpus_per_node: 128,
              price_per_device_hour: 10}]}
""")
    state = SchedulerState(pools_from_network(net), POLICIES["zhisuan"])
    ask = job("j", named("a100", per_node=1, cpus=16.0), 0.0, 3600.0)
    state.submit(ask)
    # one device and 16 CPUs: its share of a fat node (10 an hour), but 12 CPUs beyond its share of a thin one,
    # whose cheaper device is then dearer (9 + 12 x 9 x 8 / 32 = 36 an hour)
    assert state.cycle(0.0).starts[0].placement.pool == "fat"
    prices = {c.pool: next(p.raw for p in c.parts if p.name == "price")
              for c in explain(snapshot_from_network(net), ask, 0.0)}
    assert prices == {"thin": pytest.approx(36.0), "fat": pytest.approx(10.0)}
    thin_only = parse_network(NETWORK_OF.format(cpus=32))
    capped = spec("A100:1", 16, max_price=12)
    check_spec(capped, parse_network(NETWORK_OF.format(cpus=128)))  # a fat node bills it 10 an hour
    with pytest.raises(SpecError) as e:
        check_spec(capped, thin_only)  # 40 an hour per device on thin nodes: above its max_price
    assert e.value.errors[0][0] == "constraints.max_price" and "costs 40" in e.value.errors[0][1]


NETWORK_OF = """
name: one
centers:
  - {{name: c, region: east, pue: 1.2, carbon_kg_per_kwh: 0.5,
     pools: [{{name: p, accelerator: a100, nodes: 1, devices_per_node: 8, cpus_per_node: {cpus},
              price_per_device_hour: 10}}]}}
"""
