"""How many running jobs must end before a gang fits: the walk that counts ready nodes from the pool's free-level
counts and tracks only the nodes it releases to answers as releasing into a copy of every node's free devices."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zhisuan.scheduler.capacity import Allocation, PoolCapacity
from zhisuan.scheduler.shape import Shape


def by_copy(cap: PoolCapacity, devices: int, nodes: int) -> int:
    free = list(cap.free)
    order = cap.by_end()
    for k, alloc in enumerate(order.first(len(order)), 1):
        for n in alloc.nodes:
            free[n] += alloc.devices_per_node
        if sum(1 for f in free if f >= devices) >= nodes:
            return k
    return 0


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 12), st.sampled_from([1, 2, 4, 8]), st.data())
def test_releases_until_fit_counts_as_a_full_copy_would(nodes: int, size: int, data: st.DataObject) -> None:
    cap = PoolCapacity(nodes, size)
    cap.by_end()  # kept up to date from here, as in a cycle that reserves
    asks = data.draw(st.lists(st.tuples(st.integers(1, size), st.integers(1, 3), st.floats(1, 1e4)), max_size=30))
    for k, (d, n, end) in enumerate(asks):
        if cap.fits(d, n):
            cap.add(Allocation(f"j{k}", "t", cap.take(d, n), d, end, 0, True, 0.0))
    for k in data.draw(st.lists(st.integers(0, len(asks)), max_size=5)):  # some end early, some first (gone by a mark)
        first = cap.by_end().item_at(0).job_id if cap.allocations else None
        for job_id in (f"j{k}", first):
            if job_id in cap.allocations:
                cap.release(job_id)
    order = cap.by_end()
    for d in range(1, size + 1):
        for n in range(1, nodes + 2):
            want = by_copy(cap, d, n)
            assert cap.releases_among(Shape(d, n), order.chunks(), order.head) == want, (d, n)
            assert cap.releases_until_fit(Shape(d, n)) == want, (d, n)
