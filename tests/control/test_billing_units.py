"""What a run is billed for, live (real local engine, SQLite): a share of one device as its fraction, a
CPU-only job by its CPU-hours at the pool's price per CPU-hour — also in the quote before it runs."""

import json
import time

import pytest

from tests.builders import live, step_until
from zhisuan.control.service import Principal
from zhisuan.metering.invoice import local_month
from zhisuan.model import JobState, parse_job_spec, parse_network

NETWORK = parse_network("""
name: units
centers:
  - name: here
    region: east
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    pools:
      - {name: gpu, accelerator: a100, nodes: 1, devices_per_node: 2, cpus_per_node: 32, price_per_device_hour: 10,
         device_ids: ["g0", "g1"]}
      - {name: cpu, accelerator: none, nodes: 1, devices_per_node: 0, cpus_per_node: 64, price_per_cpu_hour: 0.2}
""")
ACME = Principal("acme", False)


def spec(name, acc, run="sleep 30", cpus=None):
    extra = f", cpus: {cpus}" if cpus else ""
    return parse_job_spec(f"name: {name}\ntenant: acme\nresources: {{accelerators: '{acc}'{extra}}}\n"
                          f"constraints: {{time_limit: 3600}}\nrun: {json.dumps(run)}")


@pytest.fixture
def world(tmp_path):
    store, loop, service = live(tmp_path, NETWORK)
    yield store, loop, service
    for rec in store.find(states={JobState.RUNNING}):
        service.cancel(rec.id, ACME, time.time())


def test_a_share_is_billed_as_its_fraction_and_a_cpu_only_job_by_its_cpu_hours(world):
    store, loop, service = world
    half = store.submit(spec("half", "a100:0.5"), time.time())
    cpu = store.submit(spec("cpu", "none", cpus=8), time.time())
    step_until(loop, store, half, {JobState.RUNNING})
    rec = step_until(loop, store, cpu, {JobState.RUNNING})
    assert rec.pool == "cpu"  # CPU-only jobs prefer CPU-only pools
    now = max(store.get(half).updated_at, rec.updated_at) + 3600.0  # an hour into both runs
    bill = service.invoice("acme", local_month(now), ACME, now=now)
    lines = {line.job_name: line for line in bill.lines}
    assert lines["half"].allocated_device_hours == pytest.approx(0.5, rel=1e-2)  # not a whole device
    assert lines["half"].cny == pytest.approx(0.5 * 10, rel=1e-2)  # no ToU zone: the flat price
    assert lines["cpu"].allocated_device_hours == 0 and lines["cpu"].cpu_hours == pytest.approx(8.0, rel=1e-2)
    assert lines["cpu"].cny == pytest.approx(8 * 0.2, rel=1e-2) and lines["cpu"].cny > 0
    assert bill.totals["cpu_hours"] == pytest.approx(8.0, rel=1e-2)
    assert "cpu_price" not in bill.assumptions  # given in the network file, not derived


def test_a_cpu_only_job_on_a_device_pool_pays_its_share_of_a_node_labelled_as_assumed(world):
    _, _, service = world
    _, quote = service.quote(spec("q", "none", cpus=16).model_dump_json(), ACME, time.time())
    costs = {c.pool: c.cost for c in quote}
    assert costs["cpu"] == pytest.approx(16 * 0.2, rel=1e-6)  # an hour of 16 CPUs
    assert costs["gpu"] == pytest.approx(16 * 10 * 2 / 32, rel=1e-6)  # 2 devices' price over 32 CPUs
    from zhisuan.metering.pricebook import PriceBook
    from zhisuan.metering.usage import meter

    entry = PriceBook.from_network(NETWORK).of("here", "gpu")
    [u] = meter("j", "acme", entry, "v", 0.0, 0.0, 1800.0, [], cpus=16)
    assert u.cpu_s == 16 * 1800 and u.kwh == 0 and "not modelled" in u.energy_model
    assert "cpu_price" in u.assumptions.split(",")  # derived from the device price: said so on the line


def test_a_tiny_share_holding_a_nodes_cpus_is_billed_for_them_as_quoted(world):
    """Issue 26 #7: `a100:0.001` with the node's 32 CPUs and 1000 GiB was billed its thousandth of a device
    (¥0.01 an hour) while a CPU-only job holding those CPUs paid ¥20. Now it pays for the CPUs beyond its
    share (the larger of them and the memory beyond it), at the pool's CPU-hour price, as its quote said."""
    store, loop, service = world
    tiny = parse_job_spec("name: tiny\ntenant: acme\n"
                          "resources: {accelerators: 'a100:0.001', cpus: 32, memory: 1000Gi}\n"
                          "constraints: {time_limit: 3600}\nrun: sleep 30")
    _, quote = service.quote(tiny.model_dump_json(), ACME, time.time())
    _, cpu_quote = service.quote(spec("q", "none", cpus=32).model_dump_json(), ACME, time.time())
    quoted = {c.pool: c.cost for c in quote}["gpu"]
    assert quoted == pytest.approx({c.pool: c.cost for c in cpu_quote}["gpu"], rel=1e-9)  # the same CPUs
    job_id = store.submit(tiny, time.time())
    rec = step_until(loop, store, job_id, {JobState.RUNNING})
    now = rec.updated_at + 3600.0  # an hour into the run: the time_limit the quote priced
    [line] = [x for x in service.invoice("acme", local_month(now), ACME, now=now).lines if x.job_id == job_id]
    assert line.cny == pytest.approx(quoted, rel=1e-6) and line.cny == pytest.approx(32 * 10 * 2 / 32, rel=1e-3)
    assert line.cpu_hours == pytest.approx(32 - 32 / 2 * 0.001) and line.allocated_device_hours == pytest.approx(1e-3)
