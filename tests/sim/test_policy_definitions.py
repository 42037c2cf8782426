"""Policies against small traces whose JCTs are worked out by hand from each policy's published
definition (EASY backfill: Lifka 1995 / Mu'alem & Feitelson 2001; Tiresias 2D-LAS: Gu et al. NSDI'19),
not from our own output. The first two are the reproducers of two bugs: a policy that stopped its
walk at the first dead gang (not work-conserving), and EASY protecting one blocked job for the whole
network instead of one per pool."""

import pytest

from tests.builders import pool
from zhisuan.scheduler import get_policy
from zhisuan.sim.engine import Simulator
from zhisuan.sim.scenario import Scenario
from zhisuan.sim.trace import parse_csv


def simulate(rows: list[str], policy: str, pools, siloed: bool = False, interval: float = 0.0):
    trace = parse_csv("submit,duration,devices,chip,tenant,home\n" + "\n".join(rows) + "\n", "t.csv")
    return Simulator(trace, Scenario("t", pools, siloed), get_policy(policy), interval=interval).run()


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
