from tests.builders import job, named, pool
from zhisuan.scheduler import Snapshot, TenantState
from zhisuan.scheduler.plugins.fair_share import FairShare, decayed_usage
from zhisuan.scheduler.plugins.fifo import Fifo
from zhisuan.scheduler.plugins.priority import Priority
from zhisuan.scheduler.plugins.shortest_first import ShortestFirst
from zhisuan.scheduler.queue import PendingQueue


def ids(sorter, jobs, snap=None, now=0.0):
    """Queue order, checked to be the same whether jobs arrive one by one or in bulk."""
    snap = snap or Snapshot(pools=[pool()])
    bulk, one_by_one = PendingQueue(sorter), PendingQueue(sorter)
    bulk.add_many(jobs, [0] * len(jobs))
    for j in jobs:
        one_by_one.add(j, 0)
    order = [j.id for j, _ in bulk.walk(snap, now, lambda r: False)]
    assert order == [j.id for j, _ in one_by_one.walk(snap, now, lambda r: False)]
    return order


def test_fifo_orders_by_submit_then_snapshot_order():
    jobs = [job("b", named(), 5), job("a", named(), 1), job("c", named(), 5)]
    assert ids(Fifo(), jobs) == ["a", "b", "c"]


def test_priority_first_then_fifo():
    jobs = [job("low", named(), 0, priority=0), job("hi2", named(), 3, priority=5), job("hi1", named(), 2, priority=5)]
    assert ids(Priority(), jobs) == ["hi1", "hi2", "low"]


def test_fair_share_prefers_light_users_per_weight():
    snap = Snapshot(pools=[pool()], tenants={
        "heavy": TenantState("heavy", weight=1.0, usage=100.0),
        "light": TenantState("light", weight=1.0, usage=10.0),
        "big": TenantState("big", weight=20.0, usage=100.0),  # 100/20 = 5 < 10
    })
    jobs = [job("h", named(), 0, tenant="heavy"), job("l", named(), 1, tenant="light"),
            job("b", named(), 2, tenant="big")]
    assert ids(FairShare(), jobs, snap) == ["b", "l", "h"]


def test_usage_decays_with_half_life():
    t = TenantState("x", usage=80.0, usage_at=0.0)
    assert decayed_usage(t, 2 * 3600.0, half_life=3600.0) == 20.0
    # heavy usage long ago counts less than light usage now
    snap = Snapshot(pools=[pool()], tenants={"old": TenantState("old", usage=1000.0, usage_at=0.0),
                                             "new": TenantState("new", usage=100.0, usage_at=10 * 86400.0)})
    jobs = [job("n", named(), tenant="new"), job("o", named(), tenant="old")]
    assert ids(FairShare(half_life=86400.0), jobs, snap, now=10 * 86400.0) == ["o", "n"]


def test_shortest_first_by_duration_or_device_time():
    jobs = [job("long1", named(per_node=1), duration=100), job("short8", named(per_node=8), duration=50)]
    assert ids(ShortestFirst(), jobs) == ["short8", "long1"]
    assert ids(ShortestFirst(by_device_time=True), jobs) == ["long1", "short8"]


def test_queue_removal_and_rest():
    q = PendingQueue(Fifo())
    q.add_many([job(c, named(), i) for i, c in enumerate("abcd")], [0, 1, 0, 1])
    assert q.remove("b").id == "b" and q.remove("zz") is None
    walk = q.walk(Snapshot(pools=[pool()]), 0.0, lambda r: r == 1)  # row 1 is dead: d is never visited
    assert [j.id for j, _ in walk] == ["a", "c"]
    assert [e[2] for e in walk.rest()[0]] == ["d"]
    walk = q.walk(Snapshot(pools=[pool()]), 0.0, lambda r: False)
    it = iter(walk)
    assert next(it)[0].id == "a"
    walk.stop()
    rest, beyond = walk.rest()
    assert sorted(e[2] for e in rest) == ["a", "c", "d"] and beyond == 0  # from the current entry on, all cut


def test_remove_visited_by_position_or_by_id():
    """Started jobs leave at the walk's positions; an entry no longer where the walk saw it goes by its id."""
    q = PendingQueue(Fifo())
    q.add_many([job(c, named(), i) for i, c in enumerate("abcde")], [0, 0, 1, 0, 0])
    walk = q.walk(Snapshot(pools=[pool()]), 0.0, lambda r: False)
    seen = {j.id: walk.at() for j, _ in walk}
    assert seen["c"] is not None and seen["d"] is not None
    q.remove_visited(walk, [seen["d"], seen["c"], (seen["a"][0], 3)], ["d", "c", "a"])  # a's position is stale
    assert sorted(q.jobs) == ["b", "e"] and sorted(q.where) == ["b", "e"]
    assert [j.id for j, _ in q.walk(Snapshot(pools=[pool()]), 0.0, lambda r: False)] == ["b", "e"]
    walk = q.walk(Snapshot(pools=[pool()]), 0.0, lambda r: False)
    left = [walk.at() for _ in walk]
    q.remove_visited(walk, left, ["b", "e"])
    assert q.lists == {} and q.jobs == {}  # the emptied list went
