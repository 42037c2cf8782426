"""The simulator's cost report bills what runs hold (model/billing.py), as invoices do: a share asking a
node's CPUs pays for them, a CPU-only job for its CPUs — not device-seconds alone (issue 26 #7)."""

from datetime import datetime

import pytest

from zhisuan.metering.pricebook import PriceBook
from zhisuan.metering.usage import meter
from zhisuan.model import parse_network
from zhisuan.scheduler import get_policy
from zhisuan.sim.engine import Simulator
from zhisuan.sim.metrics import per_center, summarize
from zhisuan.sim.plan.cells import YEAR, _centers
from zhisuan.sim.scenario import network_scenario
from zhisuan.sim.trace import Trace, TraceJob

START = datetime.fromisoformat("2026-11-25T07:30:00+08:00").timestamp()  # runs cross 08:00 (CN-SH: peak)


def network(tou):
    zone = ", tou_zone: CN-SH" if tou else ""
    return parse_network(f"""
name: one
centers:
  - {{name: c, region: east, pue: 1.2, carbon_kg_per_kwh: 0.5{zone},
     pools: [{{name: gpu, accelerator: a100, nodes: 2, devices_per_node: 8, cpus_per_node: 128,
              memory_gib_per_node: 1024, price_per_device_hour: 10}}]}}
""")


JOBS = [TraceJob("share", 0.0, 3600.0, 1, milli=1, cpus=128.0, memory_gib=1000.0),  # a tiny share, a node's CPUs
        TraceJob("cpus", 0.0, 3600.0, 0, cpus=128.0),  # CPU-only, the other node's CPUs
        TraceJob("fair", 0.0, 3600.0, 1, cpus=8.0, memory_gib=64.0)]  # within its share: its device alone


@pytest.mark.parametrize("tou", [False, True])
def test_the_cost_report_bills_the_cpus_a_share_holds_as_the_invoice_does(tou):
    net = network(tou)
    r = Simulator(Trace("t", JOBS, "A100 SXM4 80GB", start=START), network_scenario(net, False),
                  get_policy("fifo"), interval=0).run()
    book = PriceBook.from_network(net)
    entry = book.of("c", "gpu")
    billed = {"share": (0.001, 128 - 0.016, 0.0), "cpus": (0.0, 128.0, 0.0), "fair": (1.0, 0.0, 0.0)}
    ran = {j.trace.id: (START + j.first_start, START + j.end) for j in r.jobs}
    assert ran["fair"][0] == START + 3600  # no node had 8 CPUs left until the first two ended
    invoiced = sum(u.cny for job, (d, c, m) in billed.items()
                   for u in meter(job, "t", entry, book.version, d, *ran[job], [], c, m))
    assert summarize(r).cny == pytest.approx(invoiced)  # was the device-seconds alone: 1.001 device-hours
    assert invoiced > 2 * 80  # two nodes' CPUs for an hour (80 an hour a node, never below x1 before 08:30)
    [center] = per_center(r)
    assert center.cpu_hours == pytest.approx(128 - 0.016 + 128) and center.memory_gib_hours == 0
    [year] = _centers(r, 0.0, 7200.0)
    assert year.revenue * 7200.0 / YEAR == pytest.approx(invoiced)  # the plan's revenue bills it alike
