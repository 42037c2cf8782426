import math
from dataclasses import replace

import pytest

from tests.builders import job, named, pool
from zhisuan.model import Request
from zhisuan.scheduler import POLICIES, RunningJob, Snapshot, TenantState, cycle, get_policy
from zhisuan.scheduler.explain import explain

EASY, FIFO, PRIORITY = POLICIES["easy"], POLICIES["fifo"], POLICIES["priority"]


def starts(result):
    return {s.job_id: (s.placement.center, s.placement.pool, s.placement.nodes) for s in result.starts}


def test_places_on_cheapest_then_best_fit_nodes():
    snap = Snapshot(pools=[pool("dear", price=20), pool("cheap", price=5)],
                    pending=[job("a", named(per_node=4)), job("b", named(per_node=4)), job("c", named(per_node=8))])
    res = cycle(snap, 0.0)
    # a and b share one node of the cheap pool (best fit), c takes the other whole node there
    assert starts(res) == {"a": ("cheap", "p", (0,)), "b": ("cheap", "p", (0,)), "c": ("cheap", "p", (1,))}


def test_gang_is_all_or_nothing():
    snap = Snapshot(pools=[pool(nodes=2)],
                    running=[RunningJob("r", "t", "c1/p", (0,), 4, 0.0, 100.0)],
                    pending=[job("gang", named(per_node=8, nodes=2)),
                             job("half", named(per_node=4, nodes=2), duration=50)])
    res = cycle(snap, 0.0, EASY)
    assert "gang" not in starts(res)  # only one node has 8 free
    assert starts(res)["half"][2] == (0, 1)  # both nodes have 4 free, and it ends before the gang's reservation
    assert res.waiting == {"no accepted pool has room for the gang now": ["gang"]}
    slow = Snapshot(pools=snap.pools, running=snap.running,
                    pending=[snap.pending[0], job("half", named(per_node=4, nodes=2), duration=500)])
    assert cycle(slow, 0.0, EASY).starts == []  # would delay the reserved gang


def test_unschedulable_says_which_filters_rejected():
    snap = Snapshot(pools=[pool("a", chip="a100"), pool("b", chip="910b", price=50)],
                    pending=[job("x", named("910b", per_node=1, max_price=10.0))])
    res = cycle(snap, 0.0)
    assert res.unschedulable[0].reason.startswith("0/2 pools fit:")
    assert "stack" in res.unschedulable[0].reason and "max_price" in res.unschedulable[0].reason


def test_easy_backfill_lets_short_jobs_pass_but_not_delay_the_head():
    # one pool of 2 nodes; node 0 busy until t=100. Head wants both nodes -> reserved at t=100.
    snap = Snapshot(
        pools=[pool(nodes=2)],
        running=[RunningJob("r", "t", "c1/p", (0,), 8, 0.0, 100.0)],
        pending=[job("head", named(per_node=8, nodes=2), 0), job("short", named(per_node=8), 1, duration=50),
                 job("long", named(per_node=8), 2, duration=500)],
    )
    res = cycle(snap, 0.0, EASY)
    assert [r.job_id for r in res.reservations] == ["head"] and res.reservations[0].start == 100.0
    assert set(starts(res)) == {"short"}
    # the same queue without backfill: nothing passes the blocked head
    assert cycle(snap, 0.0, FIFO).starts == []


def test_backfill_into_extra_devices_at_reservation_time():
    # head needs 1 node x 8 at t=100; at t=100 node 1 frees too (4 devices extra) -> a long 4-device job fits
    snap = Snapshot(
        pools=[pool(nodes=2)],
        running=[RunningJob("r0", "t", "c1/p", (0,), 8, 0.0, 100.0),
                 RunningJob("r1", "t", "c1/p", (1,), 4, 0.0, 100.0)],
        pending=[job("head", named(per_node=8), 0), job("long4", named(per_node=4), 1, duration=1e4),
                 job("long4b", named(per_node=4), 2, duration=1e4)],
    )
    res = cycle(snap, 0.0, EASY)
    assert res.reservations[0].job_id == "head"
    assert set(starts(res)) == {"long4"}  # fits in node 1's free half without delaying head


def test_fifo_blocks_only_the_pools_the_head_could_use():
    snap = Snapshot(pools=[pool("a", chip="a100", nodes=1), pool("b", chip="910b", nodes=1)],
                    running=[RunningJob("r", "t", "a/p", (0,), 8, 0.0, 100.0)],
                    pending=[job("head", named("a100", per_node=8), 0), job("next-a100", named("a100"), 1),
                             job("next-910b", named("910b"), 2)])
    assert set(starts(cycle(snap, 0.0, FIFO))) == {"next-910b"}


def test_quota_never_exceeded_and_reported():
    snap = Snapshot(pools=[pool(nodes=4)], tenants={"lab": TenantState("lab", quota_devices=10)},
                    pending=[job(f"j{i}", named(per_node=4), i, tenant="lab") for i in range(4)])
    res = cycle(snap, 0.0)
    assert len(res.starts) == 2
    assert res.waiting == {"tenant quota of devices reached": ["j2", "j3"]}


def test_a_quota_counts_a_share_as_its_fraction():
    held = [RunningJob("half", "lab", "c1/p", (0,), 1, 0.0, 1e4, milli=500)]
    snap = Snapshot(pools=[pool(nodes=1)], tenants={"lab": TenantState("lab", quota_devices=2)}, running=held,
                    pending=[job(f"j{i}", named(milli=500), i, tenant="lab") for i in range(4)])
    res = cycle(snap, 0.0)
    assert sorted(starts(res)) == ["j0", "j1", "j2"]  # 0.5 held + 3 x 0.5 = 2 devices: the quota, not 4 jobs
    assert res.waiting == {"tenant quota of devices reached": ["j3"]}


def test_preemption_evicts_lowest_priority_latest_started():
    snap = Snapshot(
        pools=[pool(nodes=2)],
        running=[RunningJob("old-low", "t", "c1/p", (0,), 8, 0.0, 1e4, priority=0),
                 RunningJob("new-low", "t", "c1/p", (1,), 8, 50.0, 1e4, priority=0)],
        pending=[job("urgent", named(per_node=8), 0, priority=5)],
    )
    res = cycle(snap, 60.0, PRIORITY)
    assert [p.job_id for p in res.preemptions] == ["new-low"]
    assert starts(res)["urgent"][2] == (1,)
    # no preemption for equal priority, and not under a policy without preemption
    assert cycle(snap, 60.0, replace(PRIORITY, preemption=False)).preemptions == []
    same = Snapshot(pools=snap.pools, running=snap.running, pending=[job("peer", named(per_node=8))])
    assert cycle(same, 60.0, PRIORITY).preemptions == []


def test_cross_architecture_only_when_portable():
    snap = Snapshot(pools=[pool("a", chip="a100", nodes=1), pool("b", chip="910b", nodes=1, price=1)],
                    running=[RunningJob("r", "t", "a/p", (0,), 8, 0.0, 100.0)],
                    pending=[job("pinned", named("a100", per_node=8)),
                             job("portable", Request(8, stacks=frozenset({"cuda", "cann"}), ref_tflops=312))])
    assert set(starts(cycle(snap, 0.0))) == {"portable"}


def test_unhealthy_center_gets_nothing():
    snap = Snapshot(pools=[pool("down", healthy=False, price=1), pool("up", price=50)],
                    pending=[job("j", named())])
    assert starts(cycle(snap, 0.0))["j"][0] == "up"


def test_why_lists_scored_candidates():
    snap = Snapshot(pools=[pool("dear", price=20), pool("cheap", price=5)], pending=[job("a", named())])
    why = cycle(snap, 0.0).starts[0].why
    cands = why.candidates()
    assert [c.center for c in cands] == ["cheap", "dear"]
    assert cands[0].cost == pytest.approx(5.0) and cands[0].score > cands[1].score


def test_explain_ranks_with_expected_start():
    snap = Snapshot(pools=[pool("busy", price=1), pool("free", price=10)],
                    running=[RunningJob("r", "t", "busy/p", (0, 1), 8, 0.0, 7200.0)])
    cands = explain(snap, job("x", named(per_node=8)), now=0.0)
    by = {c.center: c for c in cands}
    assert by["busy"].start_delay == 7200.0 and by["free"].start_delay == 0.0
    assert cands[0].center == "free"  # starting now beats a 2-hour wait for a cheaper pool
    big = explain(snap, job("y", named(per_node=16)), now=0.0)
    assert all(c.rejected == ("fits-node",) and math.isnan(c.score) for c in big)


def test_unknown_policy_is_an_error():
    with pytest.raises(ValueError, match="known: zhisuan"):
        get_policy("nope")


def test_running_job_in_unknown_pool_is_an_error():
    snap = Snapshot(pools=[pool()], running=[RunningJob("r", "t", "nowhere/p", (0,), 1, 0.0, 1.0)])
    with pytest.raises(ValueError, match="unknown pool"):
        cycle(snap, 0.0)


def test_reservations_are_per_pool_and_the_backfill_depth_cuts_the_walk():
    # pool a: 1 of 2 GPUs busy until 100; pool b: full until 50. Three blocked 2-GPU heads, then three long
    # 1-GPU jobs that fit a's free GPU but would still run at a's reservation (so they may not backfill)
    pools = [pool("a", nodes=1, size=2), pool("b", nodes=1, size=2)]
    running = [RunningJob("ra", "t", "a/p", (0,), 1, 0.0, 100.0), RunningJob("rb", "t", "b/p", (0,), 2, 0.0, 50.0)]
    pending = [job("h1", named(per_node=2), submit=0), job("h2", named(per_node=2), submit=1),
               job("h3", named(per_node=2), submit=2), *(job(f"s{i}", named(), submit=3 + i) for i in range(3))]
    snap = Snapshot(pools=pools, running=running, pending=pending)
    res = cycle(snap, 0.0, EASY)
    # one reservation in each pool (h1 takes b, free first; h2 takes a); h3 finds both pools' taken
    assert [(r.job_id, r.pool, r.start) for r in res.reservations] == [("h1", "b/p", 50.0), ("h2", "a/p", 100.0)]
    assert res.starts == []
    two = cycle(snap, 0.0, replace(EASY, reservations=2))
    assert [r.job_id for r in two.reservations] == ["h1", "h2", "h3", "s0"]  # two per pool
    deep = cycle(snap, 0.0, replace(EASY, backfill_depth=2))
    # h1 blocks first; then two more are tried (h2, s0; h3's shape died once both pools held a reservation)
    assert deep.waiting == {"no accepted pool has room for the gang now": ["h1", "h2", "s0", "h3"],
                            "beyond the backfill depth (2 jobs after the first blocked)": ["s1", "s2"]}


def test_explain_honours_the_cycles_reservations_as_the_backfill_check_does():
    # 1 of 2 GPUs busy until 100; a 2-GPU head is reserved from 100. A 1-GPU job of 500 s would still run
    # then (no devices spare beside the head): not before 100. One of 50 s backfills now.
    snap = Snapshot(pools=[pool("a", nodes=1, size=2)], running=[RunningJob("ra", "t", "a/p", (0,), 1, 0.0, 100.0)],
                    pending=[job("head", named(per_node=2), submit=0, tenant="lab")])
    res = cycle(snap, 0.0, EASY)
    assert [(r.job_id, r.start, r.extra, r.tenant) for r in res.reservations] == [("head", 100.0, 0, "lab")]
    bare = Snapshot(pools=snap.pools, running=snap.running)
    long_one, short_one = job("long", named(), duration=500.0), job("short", named(), duration=50.0)
    assert explain(bare, long_one, 0.0, EASY)[0].start_delay == 0.0  # blind to the reservation
    held = explain(bare, long_one, 0.0, EASY, reservations=res.reservations)[0]
    assert (held.start_delay, held.reserved) == (100.0, (("head", "lab", 100.0),))
    assert explain(bare, short_one, 0.0, EASY, reservations=res.reservations)[0].start_delay == 0.0
    # the reserved job itself is not held up by its own reservation
    assert explain(bare, snap.pending[0], 0.0, EASY, reservations=res.reservations)[0].start_delay == 100.0


def test_a_gang_never_goes_where_the_engine_cannot_start_one_that_large():
    ray_like = replace(pool("ray", price=1.0), max_gang_nodes=1)  # cheaper, but its engine starts one-node jobs
    snap = Snapshot(pools=[ray_like, pool("slurm", price=10.0)],
                    pending=[job("gang", named(per_node=8, nodes=2)), job("single", named(per_node=8))])
    res = cycle(snap, 0.0)
    placed = {s.job_id: s.placement.center for s in res.starts}
    assert placed == {"gang": "slurm", "single": "ray"}
    only = Snapshot(pools=[ray_like], pending=[job("gang", named(per_node=8, nodes=2))])
    [(_, why)] = [(j, w) for j, w in explain_unmet(only)]
    assert "engines start gangs of at most 1" in why


def explain_unmet(snap):
    from zhisuan.scheduler.feasibility import unmet

    return [(j.id, unmet(j.request, snap.pools, get_policy("zhisuan"))[1]) for j in snap.pending]
