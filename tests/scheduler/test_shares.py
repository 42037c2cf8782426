"""Device shares, CPUs and memory as consumed resources, CPU-only jobs and nodes."""

import math

import hypothesis.strategies as st
from hypothesis import given, settings

from tests.builders import job, named, pool
from zhisuan.catalog import CPU_ONLY
from zhisuan.model import JobSpec, Request, request_from_spec
from zhisuan.scheduler import POLICIES, PoolState
from zhisuan.scheduler.capacity import Allocation, PoolCapacity
from zhisuan.scheduler.explain import explain
from zhisuan.scheduler.shape import Shape
from zhisuan.scheduler.state import SchedulerState


def started(result):
    return sorted(s.job_id for s in result.starts)


def cpu_pool(nodes=2, cpus=32):
    return PoolState("c", "cpu", CPU_ONLY, "east", nodes, 0, 0.0, 1.2, 0.5, cpus_per_node=cpus)


def spec_request(acc, **res):
    return request_from_spec(JobSpec.model_validate({"name": "x", "tenant": "t", "run": "true",
                                                     "resources": {"accelerators": acc, **res}}))


def test_two_half_device_jobs_share_one_device():
    st = SchedulerState([pool("c", "p", nodes=1, size=1)], POLICIES["zhisuan"])
    half = spec_request("A100:0.5")
    assert half.milli == 500 and half.devices_per_node == 1
    for i in range(3):
        st.submit(job(f"h{i}", half, float(i)))
    st.submit(job("whole", named(), 3.0))
    res = st.cycle(10.0)
    assert started(res) == ["h0", "h1"]
    assert {s.placement.milli for s in res.starts} == {500}
    assert st.caps[0].shares is not None and st.caps[0].shares.dev.tolist() == [[0]]
    st.end("h0", 20.0)  # half the device back: a third half fits, a whole device does not
    assert started(st.cycle(21.0)) == ["h2"]
    st.end("h1", 30.0)
    st.end("h2", 31.0)
    assert started(st.cycle(32.0)) == ["whole"]


def test_shares_pack_onto_the_fullest_device_first():
    cap = PoolCapacity(1, 2)
    cap.place("a", Shape(1, milli=300))
    cap.place("b", Shape(1, milli=600))
    assert sorted(cap.shares.dev[0].tolist()) == [100, 1000]  # b joined a's device: a whole one stays free
    assert cap.free == [1] and cap.fits(1, 1)


def test_cpus_and_memory_are_consumed_not_just_checked():
    st = SchedulerState([pool("c", "p", nodes=1, size=8)], POLICIES["fifo"])
    for i in range(3):
        st.submit(job(f"j{i}", named(per_node=1, cpus=50), float(i)))  # the pool's nodes have 128 CPUs
    assert started(st.cycle(5.0)) == ["j0", "j1"]
    st.end("j0", 6.0)
    assert started(st.cycle(7.0)) == ["j2"]
    mem = SchedulerState([pool("c", "p", nodes=1, size=8)], POLICIES["fifo"])
    for i in range(3):
        mem.submit(job(f"m{i}", named(per_node=1, memory_gib=400.0), float(i)))  # nodes have 1024 GiB
    assert started(mem.cycle(5.0)) == ["m0", "m1"]


def test_cpu_only_jobs_run_on_cpu_only_nodes_and_gpu_jobs_never_do():
    st = SchedulerState([pool("c", "gpu", nodes=1, size=8), cpu_pool()], POLICIES["zhisuan"])
    cpu_job = spec_request("none", cpus=8)
    assert cpu_job.devices_per_node == 0
    st.submit(job("cpu", cpu_job))
    st.submit(job("gpu", named(per_node=1)))
    res = st.cycle(1.0)
    where = {s.job_id: s.placement.pool for s in res.starts}
    assert where == {"cpu": "cpu", "gpu": "gpu"}
    big_gpu = SchedulerState([cpu_pool()], POLICIES["zhisuan"])
    big_gpu.submit(job("g", named()))
    assert big_gpu.cycle(1.0).unschedulable  # no pool could ever take it


def test_cpu_only_jobs_fill_cpu_nodes_then_wait():
    st = SchedulerState([cpu_pool(nodes=2, cpus=32)], POLICIES["fifo"])
    for i in range(5):
        st.submit(job(f"c{i}", Request(0, cpus=16.0), float(i)))
    assert started(st.cycle(10.0)) == ["c0", "c1", "c2", "c3"]


def test_a_whole_device_waits_for_every_share_on_it_and_explain_says_when():
    st = SchedulerState([pool("c", "p", nodes=1, size=1)], POLICIES["zhisuan"])
    st.submit(job("a", spec_request("A100:0.25"), 0.0, 100.0))
    st.submit(job("b", spec_request("A100:0.25"), 0.0, 500.0))
    assert started(st.cycle(0.0)) == ["a", "b"]
    [cand] = explain(st.snapshot(), job("w", named()), 0.0)
    assert cand.start_delay == 500.0  # both shares must end, not just the first


def test_a_snapshot_of_shared_devices_rebuilds_the_same_state():
    st = SchedulerState([pool("c", "p", nodes=2, size=2)], POLICIES["zhisuan"])
    for i, acc in enumerate(["A100:0.5", "A100:0.3", "A100:1", "A100:0.7"]):
        st.submit(job(f"j{i}", spec_request(acc, cpus=4), float(i)))
    st.cycle(10.0)
    again = SchedulerState.from_snapshot(st.snapshot(), POLICIES["zhisuan"])
    assert sorted(again.caps[0].shares.dev.sum(axis=1).tolist()) == sorted(st.caps[0].shares.dev.sum(axis=1).tolist())
    assert again.caps[0].shares.cpu.tolist() == st.caps[0].shares.cpu.tolist()
    assert again.caps[0].free == st.caps[0].free


def test_preemption_frees_shares_for_a_higher_priority_job():
    st = SchedulerState([pool("c", "p", nodes=1, size=1)], POLICIES["priority"])
    st.submit(job("low1", spec_request("A100:0.5"), 0.0, priority=0))
    st.submit(job("low2", spec_request("A100:0.5"), 0.0, priority=0))
    st.cycle(1.0)
    st.submit(job("high", named(), 2.0, priority=10))
    res = st.cycle(3.0)
    assert started(res) == ["high"] and sorted(p.job_id for p in res.preemptions) == ["low1", "low2"]


shapes = st.one_of(
    st.builds(lambda m, c: Shape(1, 1, m, c * 1000, 0), st.integers(1, 999), st.integers(0, 8)),
    st.builds(lambda d, n, c: Shape(d, n, 0, c * 1000, 0), st.integers(0, 4), st.integers(1, 2), st.integers(0, 8)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(shapes, st.booleans()), min_size=1, max_size=40))
def test_buckets_and_device_state_never_disagree(ops):
    """Whatever is placed and released, a node's bucket is its number of untouched devices, nothing is
    over-allocated, and releasing everything leaves the pool as new."""
    cap = PoolCapacity(3, 4, cpu=16_000, memory=1024)
    live: list[str] = []
    for i, (shape, release) in enumerate(ops):
        if shape.devices_per_node == 0 and shape.cpu == 0:
            continue
        if cap.fits_shape(shape):
            jid = f"j{i}"
            nodes = cap.place(jid, shape)
            cap.add(Allocation(jid, "t", nodes, shape.devices_per_node, math.inf, 0, True, 0.0,
                               milli=shape.milli, cpu=shape.cpu, memory=shape.memory))
            live.append(jid)
        if release and live:
            cap.release(live.pop(0))
        if cap.shares is not None:
            assert [cap.shares.whole(n) for n in range(3)] == cap.free
            assert (cap.shares.dev >= 0).all() and (cap.shares.dev <= 1000).all() and (cap.shares.cpu >= 0).all()
    for jid in live:
        cap.release(jid)
    assert cap.free == [4, 4, 4] and cap.allocated_milli() == 0
