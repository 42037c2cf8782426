import numpy as np
import pytest

from tests.builders import job, named, pool
from zhisuan.catalog import load_catalog
from zhisuan.model import Request
from zhisuan.scheduler.capacity import PoolCapacity
from zhisuan.scheduler.framework import ScoreContext
from zhisuan.scheduler.plugins.carbon import Carbon
from zhisuan.scheduler.plugins.fits_gang import FitsGang
from zhisuan.scheduler.plugins.fits_node import FitsNode
from zhisuan.scheduler.plugins.fragmentation import Fragmentation
from zhisuan.scheduler.plugins.healthy import CenterHealthy
from zhisuan.scheduler.plugins.locality import DataLocality
from zhisuan.scheduler.plugins.node_cpus import NodeCpus
from zhisuan.scheduler.plugins.node_memory import NodeMemory
from zhisuan.scheduler.plugins.price import PricePerJob
from zhisuan.scheduler.plugins.price_cap import PriceCap
from zhisuan.scheduler.plugins.quota import Quota
from zhisuan.scheduler.plugins.region import RegionAllowed
from zhisuan.scheduler.plugins.stack import StackCompatible
from zhisuan.scheduler.plugins.start_time import StartTime
from zhisuan.scheduler.ranking import normalise
from zhisuan.scheduler.snapshot import TenantState
from zhisuan.scheduler.tables import PoolTable, RequestTable

POOLS = PoolTable.build([
    pool("sh", "a100", "a100", nodes=2, size=8, price=10, region="east", pue=1.25, grid=0.58),
    pool("qy", "910b", "910b", nodes=4, size=8, price=7, region="west", pue=1.2, grid=0.48),
    pool("sg", "mi300x", "mi300x", nodes=1, size=4, price=30, region="south", pue=1.3, grid=0.44, healthy=False),
])


def mask(f, *reqs):
    return f.mask(RequestTable.build(list(reqs)), POOLS).tolist()


def ctx(reqs):
    rt = RequestTable.build(reqs)
    return rt, ScoreContext(speed=rt.speed(POOLS))


def test_fits_node_and_gang_and_node_size():
    asks = named(per_node=8, nodes=2), named(per_node=8, nodes=3), named(per_node=5)
    assert mask(FitsNode(), *asks) == [[True, True, False], [True, True, False], [True, True, False]]
    assert mask(FitsGang(), *asks) == [[True, True, False], [False, True, False], [True, True, True]]
    assert mask(NodeCpus(), Request(1, cpus=500), Request(1, cpus=128)) == [[False] * 3, [True] * 3]
    assert mask(NodeMemory(), Request(1, memory_gib=2048.0)) == [[False, False, False]]


def test_stack_exact_portable_and_class():
    cat = load_catalog()
    portable = Request(8, stacks=frozenset({"cuda", "cann"}), ref_tflops=312)
    fast_cuda = Request(1, stacks=frozenset({"cuda", "rocm"}), min_tflops=1000)
    assert mask(StackCompatible(), named("a100"), portable, fast_cuda) == [
        [True, False, False], [True, True, False], [False, False, True]]
    assert cat.lookup("mi300x").fp16_tflops > 1000


def test_region_price_cap_and_health():
    assert mask(RegionAllowed(), Request(1), Request(1, regions=frozenset({"west", "south"}))) == [
        [True, True, True], [False, True, True]]
    assert mask(PriceCap(), Request(1, max_price=9.0)) == [[False, True, False]]
    assert mask(CenterHealthy(), Request(1)) == [[True, True, False]]


def test_quota_admission():
    q = Quota()
    j = job("j", named(per_node=4))
    assert q.admits(j, 4000, TenantState("t", quota_devices=8), held=4000)  # thousandths of a device
    assert not q.admits(j, 4000, TenantState("t", quota_devices=8), held=4500)
    assert q.admits(j, 400_000, TenantState("t"), held=10_000_000)


def test_price_per_job_divides_by_speed():
    rt, c = ctx([Request(1, stacks=frozenset({"cuda", "cann"}), ref_tflops=312)])
    raw = PricePerJob().raw(rt, POOLS, c)[0]
    assert raw[0] == pytest.approx(10.0)
    assert raw[1] == pytest.approx(7.0 * 312 / 376)  # the faster 910B finishes sooner


def test_carbon_is_tdp_pue_grid():
    rt, c = ctx([Request(1)])
    assert Carbon().raw(rt, POOLS, c)[0, 0] == pytest.approx(0.4 * 1.25 * 0.58)


def test_locality():
    rt, c = ctx([Request(1, data_center="qy"), Request(1)])
    assert DataLocality().raw(rt, POOLS, c).tolist() == [[1, 0, 1], [0, 0, 0]]


def test_fragmentation_sends_small_members_to_small_nodes():
    rt, c = ctx([Request(4), Request(8), Request(1)])
    raw = Fragmentation().raw(rt, POOLS, c)  # node sizes 8, 8, 4
    assert raw[0].tolist() == [0.5, 0.5, 0.0]  # 4 fills a 4-device node exactly
    assert raw[1].tolist() == [0.0, 0.0, 1.0]  # 8 on a 4-device node: no fit
    assert raw[2, 2] < raw[2, 0]  # one device leaves less of a small node idle


def test_best_fit_takes_the_fullest_node_that_fits():
    cap = PoolCapacity(3, 8)
    assert cap.take(6, 1) == (2,) or cap.free.count(2) == 1
    first = cap.take(2, 1)  # the node with 2 free is filled, whole nodes stay whole
    assert cap.free[first[0]] == 0 and cap.free.count(8) == 2


def test_start_time_is_zero_in_cycle_and_delay_when_given():
    rt, c = ctx([Request(1)])
    assert StartTime().raw(rt, POOLS, c).tolist() == [[0, 0, 0]]
    delayed = ScoreContext(c.speed, start_delay=np.array([[0.0, 60.0, np.inf]]))
    assert StartTime().raw(rt, POOLS, delayed)[0, 1] == 60.0


def test_normalise_best_is_100_worst_0():
    raw = np.array([[1.0, 3.0, 2.0, 99.0], [5.0, 5.0, 5.0, 5.0]])
    feas = np.array([[True, True, True, False], [True, True, False, False]])
    assert normalise(raw, feas).tolist() == [[100.0, 0.0, 50.0, 0.0], [100.0, 100.0, 0.0, 0.0]]
