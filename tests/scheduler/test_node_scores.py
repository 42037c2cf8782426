"""Node scores: FGD's fragmentation by hand, every baseline's choice is a feasible one, ties and seeds."""

import numpy as np
import pytest

from tests.builders import pool
from zhisuan.scheduler.capacity import PoolCapacity
from zhisuan.scheduler.nodescore.base import Fit
from zhisuan.scheduler.nodescore.fgd import FragmentationGradient, fragment, growth
from zhisuan.scheduler.nodescore.workload import Workload
from zhisuan.scheduler.policies import NODE_SCORES
from zhisuan.scheduler.shape import Shape

HALF = Shape(1, milli=500)


def cap_with(devs, cpu=64_000, memory=256 * 1024):
    """A pool whose nodes have these free thousandths per device (rows) and CPU."""
    cap = PoolCapacity(len(devs), len(devs[0]), cpu=cpu, memory=memory)
    shares = cap.device_shares()
    shares.dev[:] = np.array(devs, dtype=np.int32)
    cap._sync(tuple(range(len(devs))))
    return cap


def test_fragmentation_by_hand():
    wl = Workload.of([(HALF, frozenset())])  # only half-device tasks will come
    dev = np.array([[1000, 300], [200, 0]])
    cpu = np.array([10_000, 10_000])
    mem = np.zeros(2, dtype=np.int64)
    # node 0: the 300 left on device 1 is too small for a half: fragment 300; node 1: 200 too small, 0 is nothing
    assert fragment(dev, cpu, mem, wl, np.array([True])).tolist() == [300.0, 200.0]
    hungry = Workload.of([(Shape(1, milli=500, cpu=20_000), frozenset())])  # needs more CPU than any node has
    assert fragment(dev, cpu, mem, hungry, np.array([True])).tolist() == [1300.0, 200.0]  # every free thousandth
    cpu_only = Workload.of([(Shape(0, cpu=1000), frozenset())])
    assert fragment(dev, cpu, mem, cpu_only, np.array([True])).tolist() == [1300.0, 200.0]
    not_here = fragment(dev, cpu, mem, wl, np.array([False]))  # the class may not use this chip
    assert not_here.tolist() == [1300.0, 200.0]


def test_fgd_puts_a_small_share_on_the_device_it_fragments_least():
    cap = cap_with([[1000, 300]])
    wl = Workload.of([(HALF, frozenset())])
    fit = Fit.of(cap, Shape(1, milli=200))
    delta, device = growth(fit, Shape(1, milli=200), wl, wl.allowed("x"), memory=False)
    # on device 1 the fragment shrinks 300 -> 100; on device 0 it stays (800 still takes a half)
    assert delta.tolist() == [-200.0] and device.tolist() == [1]
    _, nodes, picks = FragmentationGradient(workload=wl).choose(cap, Shape(1, milli=200), "j", pool(), wl)
    assert nodes == (0,) and picks == ((1,),)


def test_fgd_keeps_whole_nodes_for_whole_device_tasks():
    """A share goes to the node already cut, not the intact one the 2-device tasks need."""
    cap = cap_with([[1000, 1000], [1000, 600]])
    wl = Workload.of([(Shape(2), frozenset()), (HALF, frozenset())])
    _, nodes, _ = FragmentationGradient(workload=wl).choose(cap, HALF, "j", pool(nodes=2, size=2), wl)
    assert nodes == (1,)


def test_memory_aware_fragmentation_sees_a_node_short_of_memory():
    cap = cap_with([[1000, 1000], [1000, 1000]], memory=100 * 1024)
    cap.device_shares().mem[0] = 10 * 1024  # node 0 has devices but almost no memory left
    big = Shape(1, milli=500, memory=50 * 1024)
    wl = Workload.of([(big, frozenset())], memory=True)
    dev, cpu, mem = cap.shares.dev.astype(np.int64), cap.shares.cpu, cap.shares.mem
    assert fragment(dev, cpu, mem, wl, np.array([True])).tolist() == [2000.0, 0.0]
    flat = Workload.of([(big, frozenset())])  # FGD as published: memory left out
    assert fragment(dev, cpu, mem, flat, np.array([True])).tolist() == [0.0, 0.0]


def test_workload_keeps_the_most_frequent_classes_up_to_the_coverage():
    asks = [(HALF, frozenset())] * 90 + [(Shape(1), frozenset())] * 6 + [(Shape(8), frozenset())] * 4
    wl = Workload.of(asks, coverage=0.95)
    assert wl.milli.tolist() == [500, 1000] and wl.weight.tolist() == pytest.approx([90 / 96, 6 / 96])
    assert len(Workload.of(asks, coverage=1.0)) == 3
    with pytest.raises(ValueError):
        Workload.of([])


@pytest.mark.parametrize("name", sorted(NODE_SCORES))
@pytest.mark.parametrize("shape", [Shape(1, milli=300, cpu=4000), Shape(2, cpu=8000), Shape(0, cpu=30_000)],
                         ids=["share", "two", "cpu-only"])
def test_every_node_score_chooses_a_node_and_device_that_fit(name, shape):
    rng = np.random.default_rng(7)
    devs = rng.choice([0, 100, 400, 700, 1000], size=(12, 4)).tolist()
    cap = cap_with(devs, cpu=32_000)
    cap.device_shares().cpu[:] = rng.choice([0, 4000, 16_000, 32_000], size=12)
    wl = Workload.of([(shape, frozenset()), (HALF, frozenset())])
    ns = NODE_SCORES[name]
    _, nodes, picks = ns.choose(cap, shape, "job-1", pool(nodes=12, size=4), wl)
    assert len(nodes) == 1 and cap.shares.node_fits(nodes[0], shape)
    if picks is not None:
        assert cap.shares.dev[nodes[0], picks[0][0]] >= shape.milli
    cap.place("job-1", shape, nodes, picks)  # and the capacity takes exactly that


def test_gpu_packing_and_best_fit_fill_a_partly_used_device_first():
    cap = cap_with([[1000, 1000], [1000, 400]])
    wl = Workload.of([(HALF, frozenset())])
    small = Shape(1, milli=300)
    for name in ("gpu-packing", "best-fit"):
        _, nodes, picks = NODE_SCORES[name].choose(cap, small, "j", pool(nodes=2, size=2), wl)
        assert (nodes, picks) == ((1,), ((1,),)), name


def test_random_differs_by_job_and_repeats_for_the_same_job():
    cap = cap_with([[1000]] * 50)
    wl = Workload.of([(HALF, frozenset())])
    rnd = NODE_SCORES["random"]
    p = pool(nodes=50, size=1)
    picks = {rnd.choose(cap, HALF, f"j{i}", p, wl)[1] for i in range(20)}
    assert len(picks) > 5
    assert rnd.choose(cap, HALF, "j1", p, wl) == rnd.choose(cap, HALF, "j1", p, wl)
