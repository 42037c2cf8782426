"""Gavel's max-min fairness LP and its rounds, against values worked out by hand from the paper's
definitions (Narayanan et al., OSDI'20) and Gavel's simulator (round 360 s, reset at most every 1,920 s)."""

import numpy as np
import pytest

from tests.builders import named, pool
from tests.sim.test_policy_definitions import ends, simulate, starts
from zhisuan.scheduler.capacity import Allocation
from zhisuan.scheduler.plugins.gavel_book import GavelBook
from zhisuan.scheduler.plugins.gavel_lp import max_min_allocation
from zhisuan.scheduler.snapshot import PendingJob


def normalised(x, throughput, devices, capacity):
    prop = (throughput * capacity).sum(axis=1) / capacity.sum()
    return (throughput * x).sum(axis=1) * devices / prop


def test_heterogeneous_lp_equalises_normalised_throughput():
    # one V100 and one K80; A runs 2x and B 3x faster on the V100. Equal shares would give A 1.5/1.5 and B
    # 2/2; the optimum splits both types half and half: A (2*.5 + .5)/1.5 = 1, B (3*.5 + .5)/2 = 1.
    t = np.array([[2.0, 1.0], [3.0, 1.0]])
    cap, dev = np.array([1.0, 1.0]), np.array([1.0, 1.0])
    x = max_min_allocation(t, dev, cap)
    assert normalised(x, t, dev, cap) == pytest.approx([1.0, 1.0], abs=1e-6)
    assert (x.sum(axis=1) <= 1 + 1e-9).all() and ((x * dev[:, None]).sum(axis=0) <= cap + 1e-9).all()


def test_single_type_closed_form_is_the_lp_optimum():
    # 10 devices, jobs of 1, 2, 4 and 8: level t* = min(10/4, 1) = 1 device-time share each (X = 1/s)
    dev = np.array([1.0, 2.0, 4.0, 8.0])
    one = max_min_allocation(np.ones((4, 1)), dev, np.array([10.0]))
    assert one[:, 0] == pytest.approx([1.0, 0.5, 0.25, 0.125])
    # the same problem through HiGHS (a second type with no devices keeps it one-type in substance)
    lp = max_min_allocation(np.ones((4, 2)), dev, np.array([10.0, 0.0]))
    assert normalised(lp, np.ones((4, 2)), dev, np.array([10.0, 0.0])).min() == pytest.approx(1.0)
    # oversubscribed: 3 devices for four 1-device jobs, 3/4 of the time each
    assert max_min_allocation(np.ones((4, 1)), np.ones(4), np.array([3.0]))[:, 0] == pytest.approx([0.75] * 4)


def test_jobs_that_may_not_use_a_type_get_none_of_it():
    t = np.array([[1.0, 0.0], [1.0, 1.0]])
    x = max_min_allocation(t, np.ones(2), np.array([1.0, 1.0]))
    assert x[0, 1] == 0.0


class View:
    def capacity(self):
        return {"V100": 1}

    def throughput(self, request):
        return {"V100": 1.0}


def test_lp_is_solved_again_at_most_every_reset_interval():
    book = GavelBook()
    solves = []
    real = book._solve
    book._solve = lambda view, now: (solves.append(now), real(view, now))
    jobs = {}
    for k, t in enumerate([0.0, 400.0, 800.0, 2000.0]):
        j = PendingJob(f"j{k}", "t", named("v100"), t, 1000.0)
        book.submitted(j)
        jobs[j.id] = j
        book.prepare(jobs, View(), t)
        if k == 0:
            book.started(Allocation("j0", "t", (0,), 1, 1e9, 0, True, 0.0), "V100", 0.0)
    # arrivals at 400 and 800 (rounds 1 and 2) wait for the reset interval; at 2000 (>= 0 + 1920) it solves
    assert solves == [0.0, 2000.0]


def test_rounds_time_slice_two_jobs_on_one_device():
    # 1 GPU, two 720 s jobs at t=0: X = 1/2 each. Round 0: equal priority (both seeded half a round), A
    # first. Round 1 (360): A has 540 of 720 s received, B 180: B's priority 0.5/0.25 = 2 > A's 0.5/0.75,
    # B preempts A. Round 2 (720): equal again; ties keep the running job. B ends 1080, A runs 1080-1440.
    r = simulate(["0,720,1,V100,a,", "0,720,1,V100,a,"], "gavel", [pool("c", "p", "v100", nodes=1, size=1)])
    assert starts(r) == [0, 360] and ends(r) == [1440, 1080]
    assert [j.preemptions for j in r.jobs] == [1, 0]


def test_a_late_arrival_waits_for_the_next_reset_and_a_round_boundary():
    # A (3000 s) alone from 0: X_A = 1. B (100 s) arrives at 100; the LP is not re-solved before 1920 s
    # (Gavel's minimum time between resets), so B has X = 0 until the round at 2160 re-solves (X = 1/2
    # each, time received seeded equal: a tie, A keeps its lease). At 2520 A has 540 s of the 720 s
    # received since the reset: B's priority 0.5/0.25 beats A's 0.5/0.75 and B preempts A; B ends 2620,
    # A resumes and ends 2620 + 480.
    r = simulate(["0,3000,1,V100,a,", "100,100,1,V100,a,"], "gavel", [pool("c", "p", "v100", nodes=1, size=1)])
    assert starts(r) == [0, 2520] and ends(r) == [3100, 2620]
