"""A pool's allocations in chunks keep exactly the order one sorted list of (end, id) would, ties included."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhisuan.scheduler.endorder import EndOrder


def live(order: EndOrder) -> list:
    """The items as a reader of `chunks()` sees them: the first chunk's first `head` are gone."""
    return [x for c, chunk in enumerate(order.chunks()) for x in chunk[order.head if c == 0 else 0:]]


ends = st.sampled_from([1.0, 2.0, 2.0, 3.5, 10.0, math.inf])  # few values: many ties across chunk edges
script = st.lists(st.tuples(st.booleans(), ends, st.integers(0, 60), st.integers(0, 10_000), st.booleans()),
                  max_size=300)


@settings(max_examples=200, deadline=None)
@given(script, st.integers(0, 40), st.sampled_from([1, 2, 3, 8]))
def test_keeps_the_order_of_one_sorted_list(steps: list[tuple[bool, float, int, int, bool]], start: int,
                                            chunk: int) -> None:
    """Adds and removals, the first to end removed often (its O(1) way out), read after some steps only (so
    several ended entries may wait at the front when the next add or removal comes)."""
    held = {f"j{k:03d}": float(k % 4) for k in range(start)}  # id -> end
    order = EndOrder(sorted((e, k, k) for k, e in held.items()), chunk)
    steps = [*steps, (False, 0.0, 0, 0, True)]
    for add, end, key, pick, look in steps:
        job = f"j{key:03d}"
        if add and job not in held:
            held[job] = end
            order.add(end, job, job)
        elif not add and held:
            ranked = [k for _, k in sorted((e, k) for k, e in held.items())]
            gone = ranked[0] if pick % 2 else sorted(held)[pick % len(held)]
            order.remove(held.pop(gone), gone)
        want = [k for _, k in sorted((e, k) for k, e in held.items())]
        assert len(order) == len(want)
        if not look:
            continue
        assert live(order) == want
        if want:
            k = pick % len(want)
            assert order.item_at(k) == want[k]
            assert order.first(k) == want[:k]
    with pytest.raises(IndexError):
        order.item_at(len(held))


@pytest.mark.parametrize("end,key", [(0.5, "z"), (1.0, "0")])
def test_an_item_added_before_the_first_ended_ones_is_not_taken_for_them(end: float, key: str) -> None:
    """The first to end left by its mark; one added ahead of it (an earlier end, or the same end and a lower id)
    is kept, and the ended one stays gone."""
    order = EndOrder([(1.0, "a", "a"), (2.0, "b", "b"), (3.0, "c", "c")], 8)
    order.remove(1.0, "a")
    order.add(end, key, key)
    order.remove(2.0, "b")
    assert live(order) == [key, "c"]
    assert len(order) == 2
