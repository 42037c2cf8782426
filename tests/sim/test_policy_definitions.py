"""Policies against small traces whose JCTs are worked out by hand from each policy's published
definition (EASY backfill: Lifka 1995 / Mu'alem & Feitelson 2001; Tiresias 2D-LAS: Gu et al. NSDI'19),
not from our own output. The first two are the reproducers of two bugs: a policy that stopped its
walk at the first dead gang (not work-conserving), and EASY protecting one blocked job for the whole
network instead of one per pool."""

from dataclasses import replace

import pytest

from tests.builders import job, named, pool
from zhisuan.scheduler import Policy, get_policy
from zhisuan.scheduler.plugins.least_attained import LasPriority, LeastAttained
from zhisuan.scheduler.state import SchedulerState
from zhisuan.sim.engine import Simulator
from zhisuan.sim.scenario import Scenario
from zhisuan.sim.trace import parse_csv


def simulate(rows: list[str], policy: str | Policy, pools, siloed: bool = False, interval: float = 0.0):
    trace = parse_csv("submit,duration,devices,chip,tenant,home\n" + "\n".join(rows) + "\n", "t.csv")
    pol = get_policy(policy) if isinstance(policy, str) else policy
    return Simulator(trace, Scenario("t", pools, siloed), pol, interval=interval).run()


def las(*thresholds: float, starvation: float = 0.0) -> Policy:
    return replace(get_policy("las"), queue_sort=LeastAttained(thresholds, starvation),
                   priority_of=LasPriority(thresholds))


def ends(result) -> list[float]:
    return [j.end for j in result.jobs]


def starts(result) -> list[float]:
    return [j.first_start for j in result.jobs]


@pytest.mark.parametrize("policy", ["las", "gavel", "easy", "sjf", "zhisuan"])
def test_a_small_job_behind_two_dead_gangs_starts_at_once(policy):
    # 1 node x 4 GPUs. A holds 3 GPUs 0-1000; B and C (4 GPUs each) cannot fit and (all in LAS queue 0,
    # nobody of lower priority) cannot preempt; D (1 GPU, 100 s) fits the free GPU at its arrival, t=3.
    rows = ["0,1000,3,V100,a,", "1,100,4,V100,a,", "2,100,4,V100,a,", "3,100,1,V100,a,"]
    r = simulate(rows, policy, [pool("c", "p", "v100", nodes=1, size=4)])
    assert starts(r) == [0, 1000, 1100, 3]


def test_fifo_still_blocks_behind_its_head():
    rows = ["0,1000,3,V100,a,", "1,100,4,V100,a,", "2,100,4,V100,a,", "3,100,1,V100,a,"]
    r = simulate(rows, "fifo", [pool("c", "p", "v100", nodes=1, size=4)])
    assert starts(r) == [0, 1000, 1100, 1200]


def _two_silos() -> list[str]:
    rows = []
    for home, first in (("A", 1000), ("B", 100)):
        rows += [f"0,{first},1,V100,a,{home}", f"1,10,2,V100,a,{home}"]
        rows += [f"{50 * k},100,1,V100,a,{home}" for k in range(1, 21)]
    return rows


@pytest.mark.parametrize("policy", ["easy", "sjf", "qssf", "zhisuan"])
def test_easy_reserves_for_the_blocked_head_of_every_pool(policy):
    pools = [pool("A", "gpu", "v100", nodes=1, size=2, region="A"),
             pool("B", "gpu", "v100", nodes=1, size=2, region="B")]
    r = simulate(_two_silos(), policy, pools, siloed=True)
    got = {(j.trace.home, j.trace.submit, j.trace.duration): j.first_start for j in r.jobs}
    # silo A: the 2-GPU job reserves t=1000 (when the 1000 s job ends). 1-GPU jobs backfill on the free GPU
    # one after another while they end by 1000: k-th (arrives 50k) runs 50+100(k-1) .. 150+100(k-1), k <= 9.
    # From 1010 the rest go two at a time.
    assert got[("A", 1, 10)] == 1000
    for k in range(1, 21):
        want = 50 + 100 * (k - 1) if k <= 9 else 1010 + 100 * ((k - 10) // 2)
        assert got[("A", 50 * k, 100)] == want, k
    # silo B: its own reservation at t=100 (its 100 s job ends); nothing that would still run at 100 may
    # take the GPU it needs, so the 2-GPU job starts at 100, then 1-GPU jobs two at a time from 110.
    assert got[("B", 1, 10)] == 100
    for k in range(1, 21):
        assert got[("B", 50 * k, 100)] == 110 + 100 * ((k - 1) // 2), k


def test_las_demotes_at_the_crossing_instant():
    # 1 GPU, one threshold at 100 GPU-s. A runs from 0 and drops to queue 1 at exactly t=100; B (queue 0,
    # waiting since 10) preempts it then, runs 100-150; A resumes and ends at 150 + 200 = 350.
    r = simulate(["0,300,1,V100,a,", "10,50,1,V100,a,"], las(100.0), [pool("c", "p", "v100", nodes=1, size=1)])
    assert starts(r) == [0, 100] and ends(r) == [350, 150]


def test_las_keeps_a_running_job_ahead_of_waiting_ones_in_its_queue():
    # A drops to queue 1 at 100, B preempts it and drops too at 200; A (queue 1, waiting) does not preempt
    # B (queue 1, running): B runs to its end at 1100, then A 1100-2000.
    r = simulate(["0,1000,1,V100,a,", "50,1000,1,V100,a,"], las(100.0), [pool("c", "p", "v100", nodes=1, size=1)])
    assert starts(r) == [0, 100] and ends(r) == [2000, 1100]


def test_las_starvation_guard_promotes_after_waiting_as_long_as_it_ran():
    # As above with Tiresias' knob 1: a job in queue 1 that has waited (since it first ran) as long as it has
    # run goes back to queue 0, its queue service counted from zero. A ran 0-100, waits from 100: promoted
    # at 200, preempts B (queue 1 since 200); B ran 100-200, is promoted at 300 and preempts A (back in
    # queue 1 after 100 more GPU-s), and so on: they alternate every 100 s. A's tenth run ends at 1900,
    # B's at 2000.
    r = simulate(["0,1000,1,V100,a,", "50,1000,1,V100,a,"], las(100.0, starvation=1.0),
                 [pool("c", "p", "v100", nodes=1, size=1)])
    assert ends(r) == [1900, 2000]
    assert [j.preemptions for j in r.jobs] == [9, 9]


def test_las_orders_a_queue_by_when_jobs_entered_it():
    # 3 GPUs, threshold 100 GPU-s. A (1 GPU, submitted first) and B (2 GPUs) start at 1: B crosses 100 at
    # 1 + 100/2 = 51, A at 1 + 100/1 = 101. Both preempted at 200: in queue 1, B (entered 51) is ahead of
    # A (entered 101) although A was submitted first.
    st = SchedulerState([pool("c", "p", "v100", nodes=1, size=3)], las(100.0))
    st.submit(job("A", named("v100"), submit=0.0, duration=1000))
    st.submit(job("B", named("v100", per_node=2), submit=0.5, duration=1000))
    assert {s.job_id for s in st.cycle(1.0).starts} == {"A", "B"}
    for j in ("A", "B"):
        st.end(j, 200.0, requeue=True)
        st.submit(job(j, named("v100", per_node=1 if j == "A" else 2), submit=0.0 if j == "A" else 0.5))
    assert [(j.id, j.entered) for j in sorted(st.pending.values(), key=st.policy.queue_sort.key)] == [
        ("B", 51.0), ("A", 101.0)]


def test_las_tiresias_preset_uses_its_thresholds():
    # 4 GPUs cross Tiresias' 3,250 GPU-s at 812.5 s; a 1-GPU job waiting since 1 preempts it then
    pol = get_policy("las-tiresias")
    r = simulate(["0,2000,4,V100,a,", "1,100,1,V100,a,"], pol, [pool("c", "p", "v100", nodes=1, size=4)])
    assert starts(r) == [0, 812.5] and ends(r) == [2100, 912.5]
