"""Free devices per node of every pool, kept in buckets by free level for O(devices-per-node) gang fits.

A gang of `nodes x devices_per_node` fits a pool when at least `nodes` of its nodes have that many
devices free. Nodes are taken best-fit (the fullest node that still fits first), which keeps whole
nodes free for whole-node gangs.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def attained_at(self, now: float) -> float:
        return self.attained + self.devices * max(0.0, now - self.start)

    @property
    def devices(self) -> int:
        return len(self.nodes) * self.devices_per_node


class PoolCapacity:
    __slots__ = ("allocations", "buckets", "free", "size")

    def __init__(self, nodes: int, size: int) -> None:
        self.size = size
        self.free = [size] * nodes
        self.buckets: list[dict[int, None]] = [{} for _ in range(size + 1)]
        self.buckets[size] = dict.fromkeys(range(nodes))
        self.allocations: dict[str, Allocation] = {}

    def fits(self, devices: int, nodes: int) -> bool:
        if devices > self.size:
            return False
        have = 0
        buckets = self.buckets
        for k in range(self.size, devices - 1, -1):
            have += len(buckets[k])
            if have >= nodes:
                return True
        return False

    def _move(self, node: int, new_free: int) -> None:
        del self.buckets[self.free[node]][node]
        self.free[node] = new_free
        self.buckets[new_free][node] = None

    def take(self, devices: int, nodes: int) -> tuple[int, ...]:
        """Best-fit: fill the fullest nodes that still fit. Caller checked `fits`."""
        chosen: list[int] = []
        buckets = self.buckets
        k = devices
        while len(chosen) < nodes:
            bucket = buckets[k]
            if not bucket:
                k += 1
                continue
            node, _ = bucket.popitem()
            left = k - devices
            self.free[node] = left
            buckets[left][node] = None
            chosen.append(node)
        return tuple(sorted(chosen))

    def hold(self, alloc: Allocation) -> None:
        for n in alloc.nodes:
            if self.free[n] < alloc.devices_per_node:
                raise ValueError(f"allocation {alloc.job_id} over-allocates node {n}")
            self._move(n, self.free[n] - alloc.devices_per_node)
        self.allocations[alloc.job_id] = alloc

    def release(self, job_id: str) -> Allocation:
        alloc = self.allocations.pop(job_id)
        for n in alloc.nodes:
            self._move(n, self.free[n] + alloc.devices_per_node)
        return alloc


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
