"""Free devices per node of every pool, kept in buckets by free level for O(devices-per-node) gang fits.

A gang of `nodes x devices_per_node` fits a pool when at least `nodes` of its nodes have that many
devices free. Nodes are taken best-fit (the fullest node that still fits first), which keeps whole
nodes free for whole-node gangs.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from dataclasses import dataclass
from operator import attrgetter

from zhisuan.scheduler.snapshot import RunningJob, Snapshot


@dataclass(slots=True)
class Allocation:
    """Devices held in one pool until `end` (expected); `fresh` if started in this cycle."""

    job_id: str
    tenant: str
    nodes: tuple[int, ...]
    devices_per_node: int
    end: float
    priority: int
    preemptible: bool
    start: float
    fresh: bool = False
    attained: float = 0.0  # device-seconds the job had received before this start
    speed: float = 1.0  # speed factor of this pool's chip vs the job's reference chip
    base: float = 0.0  # see PendingJob.base
    rank: float = math.inf  # see PendingJob.rank; inf: not to be preempted for rank this round

    def attained_at(self, now: float) -> float:
        return self.attained + self.devices * max(0.0, now - self.start)

    @property
    def devices(self) -> int:
        return len(self.nodes) * self.devices_per_node


class PoolCapacity:
    """Nodes bucketed by free devices. Within a bucket the lowest node index is taken first, so the
    choice depends only on the pool's current state, never on the order of its history: a state built
    incrementally and one built fresh from its snapshot take the same nodes (same events, same decisions).
    Each bucket is a heap with lazy deletion (an entry is live while its node is still at that level)."""

    __slots__ = ("_end_allocs", "_ends", "_releases", "allocations", "buckets", "counts", "free", "size")

    def __init__(self, nodes: int, size: int) -> None:
        self.size = size
        self.free = [size] * nodes
        self.buckets: list[list[int]] = [[] for _ in range(size + 1)]
        self.buckets[size] = list(range(nodes))  # sorted: already a heap
        self.counts = [0] * (size + 1)
        self.counts[size] = nodes
        self.allocations: dict[str, Allocation] = {}
        self._ends: list[tuple[float, str]] | None = None  # (end, id) in order, kept once asked for
        self._end_allocs: list[Allocation] = []  # the allocations in that order
        self._releases: dict[tuple[int, int], int] = {}  # gang shape -> releases_until_fit, until a change

    def fits(self, devices: int, nodes: int) -> bool:
        if devices > self.size:
            return False
        have = 0
        counts = self.counts
        for k in range(self.size, devices - 1, -1):
            have += counts[k]
            if have >= nodes:
                return True
        return False

    def _move(self, node: int, new_free: int) -> None:
        self._releases.clear()
        self.counts[self.free[node]] -= 1
        self.free[node] = new_free
        self.counts[new_free] += 1
        bucket = self.buckets[new_free]
        heapq.heappush(bucket, node)
        if len(bucket) > 2 * self.counts[new_free] + 32:  # too many stale entries: rebuild
            self.buckets[new_free] = sorted({n for n in bucket if self.free[n] == new_free})

    def _pop(self, k: int) -> int:
        bucket, free = self.buckets[k], self.free
        while True:
            node = heapq.heappop(bucket)
            if free[node] == k and (not bucket or bucket[0] != node):  # live, and not a duplicate entry
                return node

    def take(self, devices: int, nodes: int) -> tuple[int, ...]:
        """Best-fit: fill the fullest nodes that still fit, lowest index first. Caller checked `fits`."""
        if self._releases:
            self._releases.clear()
        chosen: list[int] = []
        k = devices
        while len(chosen) < nodes:
            if not self.counts[k]:
                k += 1
                continue
            node = self._pop(k)
            self.counts[k] -= 1
            left = k - devices
            self.free[node] = left
            self.counts[left] += 1
            heapq.heappush(self.buckets[left], node)
            chosen.append(node)
        return tuple(sorted(chosen))

    def hold(self, alloc: Allocation) -> None:
        for n in alloc.nodes:
            if self.free[n] < alloc.devices_per_node:
                raise ValueError(f"allocation {alloc.job_id} over-allocates node {n}")
            self._move(n, self.free[n] - alloc.devices_per_node)
        self.add(alloc)

    def add(self, alloc: Allocation) -> None:
        """Record an allocation whose nodes were already taken (`take`) or held."""
        self.allocations[alloc.job_id] = alloc
        if self._releases:
            self._releases.clear()
        if self._ends is not None:
            key = (alloc.end, alloc.job_id)
            i = bisect_left(self._ends, key)
            self._ends.insert(i, key)
            self._end_allocs.insert(i, alloc)

    def release(self, job_id: str) -> Allocation:
        alloc = self.allocations.pop(job_id)
        for n in alloc.nodes:
            self._move(n, self.free[n] + alloc.devices_per_node)
        self._unlist(alloc)
        return alloc

    def _unlist(self, alloc: Allocation) -> None:
        self._releases.clear()
        if self._ends is not None:
            i = bisect_left(self._ends, (alloc.end, alloc.job_id))
            del self._ends[i], self._end_allocs[i]

    def moved(self, alloc: Allocation, start: float, end: float) -> None:
        """A held allocation's run starts or ends at another time than expected (the engine said so)."""
        self._unlist(alloc)
        alloc.start, alloc.end = start, end
        self.allocations.pop(alloc.job_id)
        self.add(alloc)

    def by_end(self) -> list[Allocation]:
        """The allocations in order of expected end (then id), kept up to date once asked for. The
        caller reads it and must not change it."""
        if self._ends is None:
            ranked = sorted(self.allocations.values(), key=attrgetter("end", "job_id"))
            self._ends, self._end_allocs = [(a.end, a.job_id) for a in ranked], ranked
        return self._end_allocs

    def releases_until_fit(self, devices: int, nodes: int) -> int:
        """How many allocations, in order of expected end, must end before a devices x nodes gang fits
        (0: never). Kept until the pool changes: it does not depend on the time, so a pool nothing
        started on or left keeps it from cycle to cycle (EASY asks it for every blocked job and pool)."""
        known = self._releases.get((devices, nodes))
        if known is None:
            known = self._releases[(devices, nodes)] = releases_until_fit(self.free, self.by_end(), devices, nodes)
        return known


def allocation_of(job: RunningJob) -> Allocation:
    return Allocation(job.id, job.tenant, job.nodes, job.devices_per_node, job.expected_end,
                      job.priority, job.preemptible, job.start, attained=job.attained, speed=job.speed)


def capacities(snapshot: Snapshot) -> list[PoolCapacity]:
    """One PoolCapacity per snapshot pool, with the running jobs' allocations held."""
    caps = [PoolCapacity(p.nodes, p.devices_per_node) for p in snapshot.pools]
    index = {p.key: i for i, p in enumerate(snapshot.pools)}
    for job in snapshot.running:
        i = index.get(job.pool)
        if i is None:
            raise ValueError(f"running job {job.id} is in unknown pool {job.pool!r}")
        caps[i].hold(allocation_of(job))
    return caps


def releases_until_fit(free: list[int], allocs: list[Allocation], devices: int, nodes: int) -> int:
    """How many of `allocs`, released in order, until `nodes` nodes have `devices` free (0: never)."""
    free = list(free)
    ready = sum(1 for f in free if f >= devices)
    for k, alloc in enumerate(allocs, 1):
        for n in alloc.nodes:
            before = free[n]
            free[n] += alloc.devices_per_node
            if before < devices <= free[n]:
                ready += 1
        if ready >= nodes:
            return k
    return 0
