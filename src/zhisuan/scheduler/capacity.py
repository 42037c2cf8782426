"""Free devices per node of every pool, kept in buckets by free level for O(devices-per-node) gang fits.

A gang of `nodes x devices_per_node` fits a pool when at least `nodes` of its nodes have that many
devices free. Nodes are taken best-fit (the fullest node that still fits first), which keeps whole
nodes free for whole-node gangs. Shares of a device, CPUs and memory (`Shape`) are tracked by the pool's
`DeviceShares` once it holds any; the buckets then count each node's devices nobody holds a part of.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from heapq import heappop, heappush  # names, not the module's attributes: a global read in compiled code
from operator import attrgetter

from zhisuan.scheduler.endorder import EndOrder
from zhisuan.scheduler.shape import WHOLE, Shape
from zhisuan.scheduler.shares import DeviceShares, Picks
from zhisuan.scheduler.snapshot import PoolState, RunningJob, Snapshot


@dataclass(slots=True, init=False)
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
    milli: int = 0  # a share of one device, thousandths (see Shape)
    cpu: int = 0  # thousandths of a CPU per node
    memory: int = 0  # MiB per node

    def __init__(self, job_id: str, tenant: str, nodes: tuple[int, ...], devices_per_node: int, end: float,
                 priority: int, preemptible: bool, start: float, fresh: bool = False, attained: float = 0.0,
                 speed: float = 1.0, base: float = 0.0, rank: float = math.inf, milli: int = 0, cpu: int = 0,
                 memory: int = 0) -> None:
        # written out, not the dataclass's: compiled, mypyc runs it natively (the generated one is interpreted)
        self.job_id, self.tenant, self.nodes, self.devices_per_node = job_id, tenant, nodes, devices_per_node
        self.end, self.priority, self.preemptible, self.start, self.fresh = end, priority, preemptible, start, fresh
        self.attained, self.speed, self.base, self.rank = attained, speed, base, rank
        self.milli, self.cpu, self.memory = milli, cpu, memory

    def attained_at(self, now: float) -> float:
        return self.attained + self.amount * max(0.0, now - self.start)

    @property
    def devices(self) -> int:
        return len(self.nodes) * self.devices_per_node

    @property
    def amount(self) -> float:
        """Devices held, a share counted as its fraction."""
        return self.milli / WHOLE if self.milli else float(self.devices)

    @property
    def shape(self) -> Shape:
        return Shape(self.devices_per_node, len(self.nodes), self.milli, self.cpu, self.memory)


class PoolCapacity:
    """Nodes bucketed by free devices. Within a bucket the lowest node index is taken first, so the
    choice depends only on the pool's current state, never on the order of its history: a state built
    incrementally and one built fresh from its snapshot take the same nodes (same events, same decisions).
    Each bucket is a heap with lazy deletion (an entry is live while its node is still at that level)."""

    __slots__ = ("_order", "_release_ends", "_releases", "_rows_of", "allocations", "buckets", "counts", "cpu", "free",
                 "memory", "shares", "size")

    def __init__(self, nodes: int, size: int, cpu: int = 128_000, memory: int = 1024 * 1024) -> None:
        self.size = size
        self.cpu, self.memory = cpu, memory  # per node: thousandths of a CPU, MiB
        self.shares: DeviceShares | None = None  # kept once the pool holds more than whole devices
        self.free = [size] * nodes
        self.buckets: list[list[int]] = [[] for _ in range(size + 1)]
        self.buckets[size] = list(range(nodes))  # sorted: already a heap
        self.counts = [0] * (size + 1)
        self.counts[size] = nodes
        self.allocations: dict[str, Allocation] = {}
        self._order: EndOrder[Allocation] | None = None  # the allocations in (expected end, id) order, once asked for
        self._releases: dict[Shape, int] = {}  # shape -> releases_until_fit, until a change
        # ranking row -> its `release_end` here, until a change: a pool nothing started on or left since the last
        # cycle answers a blocked job's "when could I start here" without a walk (rows are those of `_rows_of`)
        self._release_ends: dict[int, float] = {}
        self._rows_of: object = None

    def release_ends(self, rows_of: object) -> dict[int, float]:
        """The memo of `release_end` per row of the ranking `rows_of` (emptied when another ranking asks)."""
        if rows_of is not self._rows_of:
            self._release_ends.clear()
            self._rows_of = rows_of
        return self._release_ends

    def _changed(self) -> None:
        """Allocations or free room changed: what was derived from them no longer holds."""
        if self._releases:
            self._releases.clear()
        if self._release_ends:
            self._release_ends.clear()

    @classmethod
    def of(cls, pool: PoolState) -> PoolCapacity:
        return cls(pool.nodes, pool.devices_per_node, pool.cpus_per_node * 1000, round(pool.memory_gib_per_node * 1024))

    def device_shares(self) -> DeviceShares:
        """The per-device state, built on first need: the whole-device allocations held so far get the
        lowest free device numbers of their nodes, in job-id order."""
        if self.shares is None:
            shares = self.shares = DeviceShares(len(self.free), self.size, self.cpu, self.memory)
            for alloc in sorted(self.allocations.values(), key=attrgetter("job_id")):
                shares.apply(alloc.job_id, alloc.shape, alloc.nodes)
        return self.shares

    def fits(self, devices: int, nodes: int) -> bool:
        """Whole devices on `nodes` nodes (a simple shape)."""
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
        self._changed()
        counts, old = self.counts, self.free[node]
        counts[old] = counts[old] - 1  # not `-=`: on an item, compiled code makes that a generic number operation
        self.free[node] = new_free
        counts[new_free] = counts[new_free] + 1
        bucket = self.buckets[new_free]
        heappush(bucket, node)
        if len(bucket) > 2 * self.counts[new_free] + 32:  # too many stale entries: rebuild
            self.buckets[new_free] = sorted({n for n in bucket if self.free[n] == new_free})

    def _pop(self, k: int) -> int:
        bucket, free = self.buckets[k], self.free
        while True:
            node = heappop(bucket)
            if free[node] == k and (not bucket or bucket[0] != node):  # live, and not a duplicate entry
                return node

    def fits_shape(self, shape: Shape) -> bool:
        if shape.simple:
            return self.fits(shape.devices_per_node, shape.nodes)
        if shape.devices_per_node > self.size or shape.cpu > self.cpu or shape.memory > self.memory:
            return False
        return self.device_shares().fits(shape)

    def place(self, job_id: str, shape: Shape, nodes: tuple[int, ...] | None = None,
              picks: Picks | None = None) -> tuple[int, ...]:
        """Take a shape for a job: on the given nodes and devices (a node score chose them), else best-fit.
        Caller checked `fits_shape`."""
        if shape.simple and nodes is None:
            nodes = self.take(shape.devices_per_node, shape.nodes)
            if self.shares is not None:
                self.shares.apply(job_id, shape, nodes)
            return nodes
        shares = self.device_shares()
        if nodes is None:
            nodes = shares.best_fit(shape)
        shares.apply(job_id, shape, nodes, picks)
        self._sync(nodes)
        return nodes

    def _sync(self, nodes: tuple[int, ...]) -> None:
        """Bring the buckets in line with the per-device state of these nodes."""
        assert self.shares is not None
        for n in nodes:
            whole = self.shares.whole(n)
            if whole != self.free[n]:
                self._move(n, whole)
        self._changed()

    def take(self, devices: int, nodes: int) -> tuple[int, ...]:
        """Best-fit: fill the fullest nodes that still fit, lowest index first. Caller checked `fits`."""
        self._changed()
        counts, free, buckets = self.counts, self.free, self.buckets  # locals: native list reads and int arithmetic
        chosen: list[int] = []
        k = devices
        while len(chosen) < nodes:
            if counts[k] == 0:
                k += 1
                continue
            node = self._pop(k)
            counts[k] = counts[k] - 1
            left = k - devices
            free[node] = left
            counts[left] = counts[left] + 1
            heappush(buckets[left], node)
            chosen.append(node)
        if nodes == 1:
            return (chosen[0],)
        chosen.sort()
        return tuple(chosen)

    def hold(self, alloc: Allocation) -> None:
        if self.shares is not None or not alloc.shape.simple:
            self.device_shares().apply(alloc.job_id, alloc.shape, alloc.nodes)
            self._sync(alloc.nodes)
            self.add(alloc)
            return
        for n in alloc.nodes:
            if self.free[n] < alloc.devices_per_node:
                raise ValueError(f"allocation {alloc.job_id} over-allocates node {n}")
            self._move(n, self.free[n] - alloc.devices_per_node)
        self.add(alloc)

    def add(self, alloc: Allocation) -> None:
        """Record an allocation whose nodes were already taken (`take`) or held."""
        self.allocations[alloc.job_id] = alloc
        self._changed()
        if self._order is not None:
            self._order.add(alloc.end, alloc.job_id, alloc)

    def release(self, job_id: str) -> Allocation:
        alloc = self.allocations.pop(job_id)
        if self.shares is not None:
            self.shares.remove(job_id, alloc.shape, alloc.nodes)
            self._sync(alloc.nodes)
        else:
            for n in alloc.nodes:
                self._move(n, self.free[n] + alloc.devices_per_node)
        self._unlist(alloc)
        return alloc

    def _unlist(self, alloc: Allocation) -> None:
        self._changed()
        if self._order is not None:
            self._order.remove(alloc.end, alloc.job_id)

    def moved(self, alloc: Allocation, start: float, end: float) -> None:
        """A held allocation's run starts or ends at another time than expected (the engine said so)."""
        self._unlist(alloc)
        alloc.start, alloc.end = start, end
        self.allocations.pop(alloc.job_id)
        self.add(alloc)

    def by_end(self) -> EndOrder[Allocation]:
        """The allocations in order of expected end (then id), kept up to date once asked for. The
        caller reads it and must not change it."""
        if self._order is None:
            # (end, id) tuples sorted as they are: compared in C, floats first, no key function called per item
            self._order = EndOrder(sorted([(a.end, a.job_id, a) for a in self.allocations.values()]))
        return self._order

    def releases_until_fit(self, shape: Shape) -> int:
        """How many allocations, in order of expected end, must end before the shape fits (0: never).
        Kept until the pool changes: it does not depend on the time, so a pool nothing started on or
        left keeps it from cycle to cycle (EASY asks it for every blocked job and pool)."""
        known = self._releases.get(shape)
        if known is None:
            order = self.by_end()
            known = self._releases[shape] = self.releases_among(shape, order.chunks(), order.head)
        return known

    def releases_among(self, shape: Shape, chunks: list[list[Allocation]], skip: int = 0) -> int:
        """How many of the allocations in `chunks` (read in order, the first `skip` of the first chunk left out),
        released in order, until the shape fits (0: never)."""
        if shape.simple and self.shares is None:
            return releases_until_fit(self.free, self.counts, chunks, shape.devices_per_node, shape.nodes, skip)
        if shape.devices_per_node > self.size or shape.cpu > self.cpu or shape.memory > self.memory:
            return 0
        shares = self.device_shares().copy()
        ready = int(shares.node_mask(shape).sum())
        k = 0
        for c in range(len(chunks)):
            chunk = chunks[c]
            for i in range(skip if c == 0 else 0, len(chunk)):
                alloc = chunk[i]
                k += 1
                was = [shares.node_fits(n, shape) for n in alloc.nodes]
                shares.remove(alloc.job_id, alloc.shape, alloc.nodes)
                ready += sum(1 for n, w in zip(alloc.nodes, was, strict=True) if not w and shares.node_fits(n, shape))
                if ready >= shape.nodes:
                    return k
        return 0

    def free_amount(self) -> float:
        """Devices free now, shares counted as fractions."""
        if self.shares is None:
            return float(self._free_devices())
        return float(self.shares.dev.sum()) / WHOLE

    def _free_devices(self) -> int:
        """Whole devices free over the pool, from the count of nodes at each free level (devices per node + 1
        terms, not one per node: a national pool has thousands)."""
        return sum(k * n for k, n in enumerate(self.counts))

    def allocated_milli(self) -> int:
        """Thousandths of devices held over the pool."""
        if self.shares is None:
            return (len(self.free) * self.size - self._free_devices()) * WHOLE
        return self.shares.allocated_milli()


def allocation_of(job: RunningJob) -> Allocation:
    return Allocation(job.id, job.tenant, job.nodes, job.devices_per_node, job.expected_end,
                      job.priority, job.preemptible, job.start, attained=job.attained, speed=job.speed,
                      milli=job.milli, cpu=round(job.cpus * 1000), memory=round(job.memory_gib * 1024))


def capacities(snapshot: Snapshot) -> list[PoolCapacity]:
    """One PoolCapacity per snapshot pool, with the running jobs' allocations held."""
    caps = [PoolCapacity.of(p) for p in snapshot.pools]
    index = {p.key: i for i, p in enumerate(snapshot.pools)}
    for job in snapshot.running:
        i = index.get(job.pool)
        if i is None:
            raise ValueError(f"running job {job.id} is in unknown pool {job.pool!r}")
        caps[i].hold(allocation_of(job))
    return caps


def releases_until_fit(free: list[int], counts: list[int], chunks: list[list[Allocation]], devices: int,
                       nodes: int, skip: int = 0) -> int:
    """How many of the allocations in `chunks` (read in order, the first `skip` of the first chunk left out),
    released in order, until `nodes` nodes have `devices` free (0: never). `counts[k]`: nodes with k devices free.
    Costs what the walk touches: the nodes ready now are counted from `counts`, and only the nodes released to are
    tracked (a national pool has thousands)."""
    ready = 0
    for level in range(devices, len(counts)):
        ready += counts[level]
    grown: dict[int, int] = {}  # node -> its free devices once the allocations walked so far are released
    k = 0
    for c in range(len(chunks)):
        chunk = chunks[c]
        for i in range(skip if c == 0 else 0, len(chunk)):
            alloc = chunk[i]
            k += 1
            for n in alloc.nodes:
                before = grown.get(n, free[n])
                after = grown[n] = before + alloc.devices_per_node
                if before < devices <= after:
                    ready += 1
            if ready >= nodes:
                return k
    return 0
