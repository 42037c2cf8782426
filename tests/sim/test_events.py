"""The calendar event queue pops exactly what a heap of (time, order) would, whatever the bucket width."""

from __future__ import annotations

import heapq
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhisuan.sim.events import EventQueue, Kind

times = st.one_of(st.floats(-1e6, 1e7, allow_nan=False), st.sampled_from([0.0, 60.0, 120.0, 59.999999, math.inf]))
steps = st.lists(st.one_of(st.tuples(st.just("push"), times, st.integers(0, 5)),
                           st.tuples(st.just("pop"), times, st.just(0))), max_size=120)


@settings(max_examples=300, deadline=None)
@given(steps, st.sampled_from([60.0, 1.0, 0.25, 3600.0]))
def test_pops_as_a_heap_would(script: list[tuple[str, float, int]], width: float) -> None:
    queue, heap, seq = EventQueue(width), [], 0
    for op, time, subject in script:
        if op == "push":
            queue.push(time, Kind.FINISH, subject, seq % 3)
            heapq.heappush(heap, (time, seq, Kind.FINISH, subject, seq % 3))
            seq += 1
            continue
        want = []
        while heap and heap[0][0] <= time:
            want.append(heapq.heappop(heap))
        assert queue.pop_until(time) == want
        assert bool(queue) == bool(heap)
        if heap:
            assert queue.peek_time() == heap[0][0]
            if math.isfinite(heap[0][0]):  # the tick a replay cycles at next, read off the bucket
                assert queue.next_tick() == math.ceil(heap[0][0] / width) * width


def test_a_cycle_on_the_bucket_edge_takes_the_events_at_it_and_leaves_those_just_after() -> None:
    queue = EventQueue(60.0)
    for t in (60.0, 60.0 + 1e-9, 59.5, 120.0):
        queue.push(t, Kind.FINISH, int(t))
    assert [e[0] for e in queue.pop_until(60.0)] == [59.5, 60.0]
    assert queue.peek_time() == 60.0 + 1e-9
    assert [e[0] for e in queue.pop_until(120.0)] == [60.0 + 1e-9, 120.0]
    assert not queue


@pytest.mark.parametrize("width", [0.0, -1.0, math.inf, math.nan])
def test_a_bucket_needs_a_positive_width(width: float) -> None:
    with pytest.raises(ValueError, match="width"):
        EventQueue(width)
