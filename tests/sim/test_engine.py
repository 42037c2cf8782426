"""The simulator against traces small enough to compute by hand, and its conservation laws."""

import math

import pytest

from tests.builders import pool
from zhisuan.scheduler import get_policy
from zhisuan.sim.engine import Outage, Simulator
from zhisuan.sim.predict import DurationPredictor
from zhisuan.sim.scenario import Scenario
from zhisuan.sim.speed import SpeedModel
from zhisuan.sim.trace import parse_csv


def trace(rows: str):
    return parse_csv("submit,duration,devices,chip,tenant\n" + rows, "t.csv")


def run(rows: str, policy: str, pools=None, interval=0.0, outages=()):
    sc = Scenario("network", pools or [pool("c", "p", "v100", nodes=1, size=2)])
    return Simulator(trace(rows), sc, get_policy(policy), interval=interval, outages=outages).run()


def jcts(result):
    return [j.end - j.trace.submit for j in result.jobs]


TWO_GANG = "0,100,2,V100,a\n10,50,2,V100,a\n20,10,1,V100,a\n"


def test_fifo_exact_jcts():
    # A holds both devices 0-100; B (2) starts at 100; C waits behind B in strict FIFO: 150-160
    assert jcts(run(TWO_GANG, "fifo")) == [100, 140, 140]


def test_shortest_first_exact_jcts():
    # at 100 the 10-second C goes first; B needs both devices and starts when C ends at 110
    assert jcts(run(TWO_GANG, "sjf")) == [100, 150, 90]


def test_easy_backfill_exact_jcts():
    rows = "0,100,1,V100,a\n10,50,2,V100,a\n20,30,1,V100,a\n"
    assert jcts(run(rows, "fifo")) == [100, 140, 160]  # C waits behind the blocked B
    assert jcts(run(rows, "easy")) == [100, 140, 30]  # C ends at 50, before B's reservation at 100


def test_cycle_interval_delays_starts_to_the_next_tick():
    r = run("5,100,1,V100,a\n", "fifo", interval=60.0)
    assert r.jobs[0].first_start == 60 and jcts(r) == [155]


def test_faster_chip_runs_shorter_by_tflops_ratio():
    r = run("0,1000,1,V100,a\n", "fifo", pools=[pool("c", "p", "a100", nodes=1, size=1)])
    assert jcts(r)[0] == pytest.approx(1000 * 125 / 312)
    assert not r.jobs[0].measured_speed


def test_measured_speed_for_profiled_applications():
    speed = SpeedModel("V100 SXM2 32GB")
    factor, measured = speed.factor("cifar10", pool(chip="a100").chip)
    assert measured and factor == pytest.approx(2.4955)
    assert speed.factor(None, pool(chip="a100").chip) == (312 / 125, False)


def test_outage_restarts_running_jobs_elsewhere():
    pools = [pool("a", "p", "v100", nodes=1, size=1, price=1), pool("b", "p", "v100", nodes=1, size=1, price=9)]
    r = run("0,100,1,V100,a\n", "fifo", pools=pools, outages=(Outage("a", 50, 500),))
    job = r.jobs[0]
    assert job.restarts == 1 and job.end == 150  # restarted from scratch on b at 50
    assert r.device_seconds == [50.0, 100.0]


@pytest.mark.parametrize(("outage", "says"), [(Outage("nowhere", 50, 500), "'nowhere'"),
                                              (Outage("a", 50, math.inf), "finite"), (Outage("a", 50, 10), "finite")])
def test_an_outage_at_no_center_or_at_no_time_is_refused(outage, says):
    pools = [pool("a", "p", "v100", nodes=1, size=1, price=1)]
    with pytest.raises(ValueError, match=says):
        run("0,100,1,V100,a\n", "fifo", pools=pools, outages=(outage,))


@pytest.mark.parametrize("policy", ["fifo", "easy", "sjf", "qssf", "las", "zhisuan", "gavel"])
def test_conservation_on_a_philly_prefix(policy):
    from zhisuan.sim.readers import load_trace
    from zhisuan.sim.scenario import trace_cluster

    tr = load_trace("philly").limit(1500)
    sc = trace_cluster(tr, siloed=False, per_node=2)
    r = Simulator(tr, sc, get_policy(policy)).run()
    for j in r.jobs:  # every job finishes exactly once, after it started, after it was submitted
        assert math.isfinite(j.end) and j.trace.submit <= j.first_start <= j.end
        assert j.run_seconds == pytest.approx(j.trace.duration)  # all its work done, at speed 1
    # device-seconds add up: per pool == per job, and equal the work at speed 1
    per_job = sum(j.trace.devices * j.run_seconds for j in r.jobs)
    assert sum(r.device_seconds) == pytest.approx(per_job)
    assert per_job == pytest.approx(sum(j.trace.devices * j.trace.duration for j in r.jobs))
    assert max(u for _, u in r.utilization) <= sc.devices and r.utilization[-1][1] == 0


def test_predictor_learns_from_finished_jobs_only():
    p = DurationPredictor(default=7.0)
    assert p.predict("vc", 2) == 7.0
    p.observe("vc", 2, 100.0)
    p.observe("vc", 4, 300.0)
    assert p.predict("vc", 2) == 100.0 and p.predict("vc", 8) == 200.0 and p.predict("other", 1) == 200.0


def test_jobs_no_pool_can_run_are_set_aside_and_counted():
    r = run("0,10,1,V100,a\n0,10,4,V100,a\n", "fifo")  # one node of 2 devices: the 4-device gang never fits
    assert math.isfinite(r.jobs[0].end) and math.isnan(r.jobs[1].end)
    assert any("1 jobs no pool" in n for n in r.notes)


def test_siloed_replay_on_a_network_needs_homes_naming_its_centers(root):
    from zhisuan.model import load_network
    from zhisuan.sim.runner import scenarios

    net = load_network(root / "examples/networks/toy3.yaml")
    with pytest.raises(ValueError, match="unknown homes"):
        scenarios(trace("0,10,1,V100,a\n"), "siloed", 2, net)
    homed = parse_csv("submit,duration,devices,chip,tenant,home\n0,10,1,A100,a,shanghai\n", "h.csv")
    assert [s.siloed for s in scenarios(homed, "both", 2, net)] == [True, False]


def test_a_pod_of_eight_stays_on_one_node_when_the_trace_says_so():
    """`nodes` in the trace is the gang's shape: an 8-GPU pod on one node fits only the 8-GPU pool, not a gang of
    four 2-GPU members over the small nodes (the old rule: fit the smallest node)."""
    pools = [pool("c", "small", "v100", nodes=8, size=2), pool("c", "big", "v100", nodes=1, size=8)]
    rows = "submit,duration,devices,chip,tenant,nodes\n0,100,8,V100,a,1\n0,100,8,V100,a,\n"
    r = Simulator(parse_csv(rows, "t.csv"), Scenario("network", pools), get_policy("fifo"), interval=0).run()
    pod, gang = r.jobs
    assert pools[pod.pool].name == "big" and pools[gang.pool].name == "small"
    with pytest.raises(ValueError, match="line 2: nodes must be a positive divisor"):
        parse_csv("submit,duration,devices,chip,nodes\n0,100,8,V100,3\n", "t.csv")


def test_each_job_runs_at_the_speed_of_its_own_chip_and_speed_can_be_off():
    rows = "submit,duration,devices,chip,tenant\n0,1000,1,V100,a\n0,1000,1,A100-80GB,a\n"
    a100 = [pool("c", "p", "a100", nodes=2, size=1)]
    r = Simulator(parse_csv(rows, "t.csv"), Scenario("network", a100), get_policy("fifo"), interval=0).run()
    assert jcts(r) == [pytest.approx(1000 * 125 / 312), pytest.approx(1000)]  # the A100 job: measured on its chip
    flat = Simulator(parse_csv(rows, "t.csv"), Scenario("network", a100), get_policy("fifo"), interval=0,
                     rescale=False).run()
    assert jcts(flat) == [1000, 1000]


def test_a_job_runs_only_on_the_chips_it_allows():
    pools = [pool("c", "a100", "a100", nodes=1, size=1), pool("c", "t4", "t4", nodes=1, size=1)]
    rows = "submit,duration,devices,chip,tenant,chips\n0,100,1,V100,a,T4|P100\n0,100,1,V100,a,T4\n0,100,1,V100,a,\n"
    r = Simulator(parse_csv(rows, "t.csv"), Scenario("network", pools), get_policy("fifo"), interval=0).run()
    first, second, free = r.jobs
    assert pools[first.pool].name == pools[second.pool].name == "t4"  # never the (free, faster) A100
    assert second.first_start == first.end and pools[free.pool].name == "a100"


def test_a_grown_traces_copies_are_known_by_their_ids_in_the_replay():
    """Deadlines name jobs by id: a copy's (made in the replay, not read from the trace) must match the trace's."""
    from zhisuan.sim.demand import scale_arrivals

    two = scale_arrivals(trace("0,50,1,V100,a\n5,50,1,V100,a\n"), 2.0)
    copy = next(j for j in two.jobs if "~" in j.id)
    sc = Scenario("network", [pool("c", "p", "v100", nodes=1, size=4)])
    result = Simulator(two, sc, get_policy("zhisuan"), interval=0, deadlines={copy.id: copy.submit + 10.0}).run()
    assert [j.trace.id for j in result.jobs if j.expired] == [copy.id]  # 50 s of work cannot end within 10 s
    assert all(math.isfinite(j.end) for j in result.jobs if not j.expired)


def test_a_share_is_counted_at_its_exact_fraction():
    """A 0.3-device share holds 0.3 of a device in double precision (not a float32 rounding of it)."""
    r = run("0,100,0.3,V100,a\n", "fifo")
    assert r.device_seconds[0] == 0.3 * 100.0
    assert r.runs[0, 3] == 0.3
