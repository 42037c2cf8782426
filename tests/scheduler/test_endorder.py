"""A pool's allocations in chunks keep exactly the order one sorted list of (end, id) would, ties included."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhisuan.scheduler.endorder import EndOrder

ends = st.sampled_from([1.0, 2.0, 2.0, 3.5, 10.0, math.inf])  # few values: many ties across chunk edges
script = st.lists(st.tuples(st.booleans(), ends, st.integers(0, 60), st.integers(0, 10_000)), max_size=300)


@settings(max_examples=200, deadline=None)
@given(script, st.integers(0, 40), st.sampled_from([1, 2, 3, 8]))
def test_keeps_the_order_of_one_sorted_list(steps: list[tuple[bool, float, int, int]], start: int, chunk: int) -> None:
    held = {f"j{k:03d}": float(k % 4) for k in range(start)}  # id -> end
    order = EndOrder(sorted((e, k, k) for k, e in held.items()), chunk)
    for add, end, key, pick in steps:
        job = f"j{key:03d}"
        if add and job not in held:
            held[job] = end
            order.add(end, job, job)
        elif not add and held:
            gone = sorted(held)[pick % len(held)]
            order.remove(held.pop(gone), gone)
        want = [k for _, k in sorted((e, k) for k, e in held.items())]
        assert [x for chunk_ in order.chunks() for x in chunk_] == want
        assert len(order) == len(want)
        if want:
            k = pick % len(want)
            assert order.item_at(k) == want[k]
            assert order.first(k) == want[:k]
    with pytest.raises(IndexError):
        order.item_at(len(held))
