"""Step 4 of the cycle: walk the ordered queue and place each job with gang semantics.

Each request keeps a pointer into its preference list. Capacity only shrinks while a cycle assigns,
so a pool that cannot hold a request's gang now cannot later in the same cycle: the pointer only
moves forward, and once it runs off the list every later job with that request is skipped in O(1).
A request that is exhausted and can neither reserve nor preempt is dead for the rest of the cycle: its
jobs wait without being visited one by one, while other shapes (smaller gangs) behind them still get
their turn — the cycle stays work-conserving. Once every request is dead the walk ends.
Backfilling checks a job against the reservations made for jobs ahead of it.
"""

from __future__ import annotations

import math

from zhisuan.scheduler.capacity import Allocation, PoolCapacity
from zhisuan.scheduler.decisions import NO_CAPACITY, CycleResult, Preempt, Reserve, Start, Why
from zhisuan.scheduler.framework import Policy
from zhisuan.scheduler.nodescore.workload import Workload
from zhisuan.scheduler.preemption import VictimList
from zhisuan.scheduler.queue import QueueWalk, RowJudge
from zhisuan.scheduler.ranking import Ranking
from zhisuan.scheduler.shares import Picks
from zhisuan.scheduler.snapshot import PendingJob, Snapshot
from zhisuan.scheduler.timeline import free_devices_at, release_end


class Assigner(RowJudge):
    def __init__(self, snapshot: Snapshot, now: float, policy: Policy, ranking: Ranking,
                 caps: list[PoolCapacity], held: dict[str, int], calendar: float | None = None,
                 preemption: bool = True) -> None:
        self.snapshot, self.now, self.policy, self.ranking = snapshot, now, policy, ranking
        # fields of Python objects (a lookup by name each time) read once a cycle, not at each job
        self.pools = snapshot.pools
        self.reservations, self.no_backfill = policy.reservations, policy.backfill == "none"
        self.calendar = calendar  # epoch seconds of `now` (the simulator's clock starts at its trace's 0)
        self.caps = caps
        self.preemption = policy.preemption and preemption  # the policy's book may hold it back this cycle
        self.speed, self.total = ranking.speed_rows, ranking.total_rows
        self.moving = ranking.staging_rows  # seconds to stage each request's inputs at each pool
        self.shape, self.simple, staged = ranking.shapes()  # shared with the ranking: read, never written
        self.weigh_data = policy.weigh_data and staged
        self._soonest: dict[int, float] = {}  # request row -> seconds until its work could start at best
        self.admits = [a for a in policy.admits if a.applies(snapshot)]
        n = len(ranking.reqs)
        self.pointer = [0] * n
        self.exhausted = [False] * n
        self.gone = [False] * n  # request rows that can neither fit, reserve nor preempt for the rest of the cycle
        self._open = [-2] * n  # row -> one of its pools with room to reserve when last asked (-1: none; -2: not yet)
        self.blocked = [False] * len(caps)
        self.reserved: dict[int, list[Reserve]] = {}  # pool -> its reservations (the backfill check; `extra` shrinks)
        self.full: set[int] = set()  # pools holding as many reservations as the policy allows per pool
        self.easy = policy.backfill == "easy" and policy.reservations > 0
        self.depth = policy.backfill_depth  # jobs the walk may visit after the first blocked one (0: all)
        self.blocked_at: int | None = None  # jobs visited when the first job was blocked
        self.visited = 0
        self._walk: QueueWalk | None = None
        self.taken: list[tuple[int, int]] = []  # (walk list, position) of each start, so the queue drops it there
        self.node_score = policy.node_score  # chooses nodes and devices for shapes with shares, CPU or memory
        self._pick: tuple[int, tuple[int, ...], Picks | None] | None = None  # pool, nodes, devices: node score's choice
        self.held = held  # thousandths of a device per tenant, updated as jobs start or are preempted
        self.result = CycleResult(reqs=n)
        self._lowest_running: float | None = None
        self._running_priority: dict[str, float] = {}  # effective priorities are fixed within a cycle
        self._floors: list[float] | None = None  # lowest preemptible priority per pool at cycle start
        self._failed_upto: dict[int, float] = {}  # request row -> highest priority that found no victims
        self._victims: dict[int, VictimList] = {}  # pool -> its ranked victims this cycle

    def run(self, walk: QueueWalk) -> CycleResult:
        exhausted = self.exhausted
        preemption = self.preemption
        no_capacity = self.result.waits.setdefault(NO_CAPACITY, [])
        self._walk = walk
        while (r := walk.next()) >= 0:
            job = walk.job
            assert job is not None
            self.visited += 1
            if self.depth and self.blocked_at is not None and self.visited - self.blocked_at > self.depth:
                walk.stop()  # Slurm's bf_max_job_test: the rest waits for the next cycle
                self.result.beyond_reason = f"beyond the backfill depth ({self.depth} jobs after the first blocked)"
                break
            if exhausted[r]:
                if not self._may_reserve(r) and not self._may_preempt(job):
                    self.gone[r] = True  # no later job of this shape can preempt either: its jobs wait
                    walk.skip_row()  # unvisited; smaller shapes behind it still get their turn
                    continue
                if not (preemption or self._may_reserve(r)):
                    no_capacity.append(job.id)
                    continue
            refused = self._refused(job, r) if self.admits else None
            if refused:
                self.result.wait(job.id, refused)
                continue
            p = -1 if exhausted[r] else self._find(job, r)
            if p >= 0:
                self._start(job, r, p)
            elif not (preemption and self._preempt(job, r)):
                self._block(job, r)
        if not no_capacity:
            del self.result.waits[NO_CAPACITY]
        self.result.rest, self.result.beyond = walk.rest()
        self._walk = None  # the walk holds `dead`: without this loop a cycle's garbage is freed at once, not by the GC
        return self.result

    def _floor(self, p: int) -> float:
        """Lowest priority a job may be preempted at in pool p (only rises as victims leave)."""
        if self._floors is None:
            self._rank_running()
        assert self._floors is not None
        return self._floors[p]

    def _rank_running(self) -> None:
        """Every preemptible allocation's priority, once per cycle (they are fixed within it): per-pool floors
        and the lowest overall."""
        of_running, now, cache = self.policy.priority_of.of_running, self.now, self._running_priority
        floors = []
        for cap in self.caps:
            low = math.inf
            for a in cap.allocations.values():
                if a.preemptible and not a.fresh:
                    p = cache[a.job_id] = of_running(a, now)
                    if p < low:
                        low = p
            floors.append(low)
        self._floors = floors
        self._lowest_running = min(floors, default=math.inf)

    def _priority(self, a: Allocation) -> float:
        p = self._running_priority.get(a.job_id)
        if p is None:
            p = self._running_priority[a.job_id] = self.policy.priority_of.of_running(a, self.now)
        return p

    def dead(self, r: int) -> bool:
        """Request r can place nothing more this cycle: no pool at all, or none left and nothing to
        reserve or preempt. Its queued jobs wait without being visited."""
        return self.gone[r] or not self.ranking.prefs[r] or (
            self.exhausted[r] and not self.preemption and not self._may_reserve(r))

    def _may_preempt(self, job: PendingJob) -> bool:
        """Could this job, or (in a priority-ordered queue) any after it, still preempt someone?"""
        if not self.preemption:
            return False
        if not self.policy.queue_sort.priority_ordered:
            return True
        if self._lowest_running is None:
            self._rank_running()
        assert self._lowest_running is not None
        return self.policy.priority_of.of_pending(job, self.now) > self._lowest_running

    def _may_reserve(self, r: int) -> bool:
        """EASY reserves per pool: a blocked job may reserve while one of its pools has room for one more."""
        if not self.easy:
            return False
        full = self.full
        if not full:
            return True
        p = self._open[r]
        if p >= 0 and p not in full:  # pools only fill up in a cycle: the one found last time, if still open, answers
            return True
        if p == -1:
            return False
        for q in self.ranking.prefs[r]:
            if q not in full:
                self._open[r] = q
                return True
        self._open[r] = -1
        return False

    def _refused(self, job: PendingJob, r: int) -> str | None:
        """The reason of the first admission check that refuses the job now, else None."""
        if not self.admits:
            return None
        req = self.ranking.reqs.reqs[r]
        asked = req.milli or req.devices * 1000
        tenant = self.snapshot.tenant(job.tenant)
        held = self.held.get(job.tenant, 0)
        for a in self.admits:
            if not a.admits(job, asked, tenant, held):
                return a.reason
        return None

    def _runtime(self, job: PendingJob, r: int, p: int) -> float:
        """From taking the devices to releasing them: staging its inputs, then the work at the chip's speed."""
        return self.moving[r][p] + job.duration / self.speed[r][p]

    def _find(self, job: PendingJob, r: int) -> int:
        prefs, caps, blocked, reserved = self.ranking.prefs[r], self.caps, self.blocked, self.reserved
        shape = self.shape[r]
        simple, d, n = self.simple[r], shape.devices_per_node, shape.nodes
        i = self.pointer[r]
        while i < len(prefs):
            p = prefs[i]
            if blocked[p] or not (caps[p].fits(d, n) if simple else caps[p].fits_shape(shape)):
                if i == self.pointer[r]:
                    self.pointer[r] = i + 1  # (i is the pointer here) an item's `+=` is a generic number op
                i += 1
                continue
            if reserved and p in reserved and self._conflicts(job, r, p, shape.amount):
                i += 1
                continue
            if job.deadline is not None and self.now + self._runtime(job, r, p) > job.deadline:
                i += 1  # it would end too late here (a slower chip): another pool, or later, or never
                continue
            if self.weigh_data and self._too_far(job, r, p):
                i += 1  # its data moves longer than it would wait for a pool nearer the data
                continue
            if self.node_score is not None and not simple:
                return self._choose_nodes(job, r, i)
            return p
        if self.pointer[r] >= len(prefs):
            self.exhausted[r] = True
        return -1

    def _usable(self, job: PendingJob, r: int, p: int) -> bool:
        """The job could start in pool p now: room, no reservation ahead of it, and its deadline met."""
        if self.blocked[p] or not self.caps[p].fits_shape(self.shape[r]):
            return False
        if self.reserved and p in self.reserved and self._conflicts(job, r, p, self.shape[r].amount):
            return False
        if self.weigh_data and self._too_far(job, r, p):
            return False
        return job.deadline is None or self.now + self._runtime(job, r, p) <= job.deadline  # a slower chip: too late

    def _too_far(self, job: PendingJob, r: int, p: int) -> bool:
        """Starting now in pool p means moving inputs for longer than the job would wait, plus a tenth of its
        run (estimates are estimates), to start its work sooner elsewhere — nearer its data, or where it is."""
        moving = self.moving[r][p]
        if moving <= 0:
            return False
        soonest = self._soonest.get(r)
        if soonest is None:
            now, row = self.now, self.moving[r]
            soonest = self._soonest[r] = min((self._earliest(q, r) - now + row[q] for q in self.ranking.prefs[r]),
                                             default=math.inf)
        return moving > soonest + max(60.0, 0.1 * job.duration / self.speed[r][p])

    def _choose_nodes(self, job: PendingJob, r: int, i: int) -> int:
        """The node score picks nodes and devices among the pools that tie with the best usable one."""
        assert self.node_score is not None
        prefs, total, shape = self.ranking.prefs[r], self.total[r], self.shape[r]
        best_total = total[prefs[i]]
        best: tuple[float, int, tuple[int, ...], Picks | None] | None = None
        for p in prefs[i:]:
            if total[p] < best_total - 1e-9 * max(1.0, abs(best_total)):
                break  # preference lists are sorted best first
            if not self._usable(job, r, p):
                continue
            cap = self.caps[p]
            cost, nodes, picks = self.node_score.choose(cap, shape, job.id, self.snapshot.pools[p], self._queued())
            if best is None or cost < best[0]:
                best = (cost, p, nodes, picks)
        assert best is not None
        self._pick = best[1:]
        return best[1]

    def _queued(self) -> Workload:
        """The distinct asks of this cycle's queue, alike: the workload node scores expect when not told."""
        return self.ranking.workload()

    def _conflicts(self, job: PendingJob, r: int, p: int, devices: float) -> bool:
        end = self.now + self._runtime(job, r, p)
        return any(end > res.start and devices > res.extra for res in self.reserved[p])

    def _earliest(self, p: int, r: int) -> float:
        """Row r's earliest start in pool p. The pool keeps the clockless part per row until it changes (a job
        starts there, is preempted or ends), so each is walked once per row and change, not per blocked job and
        cycle."""
        cap = self.caps[p]
        known = cap.release_ends(self.ranking)
        end = known.get(r)
        if end is None:
            end = known[r] = release_end(cap, self.shape[r])
        return max(end, self.now)

    def _start(self, job: PendingJob, r: int, p: int) -> None:
        shape = self.shape[r]
        d, n, milli = shape.devices_per_node, shape.nodes, shape.milli
        cap, pool, now = self.caps[p], self.pools[p], self.now
        speed = self.speed[r][p]
        end = now + self._runtime(job, r, p)
        here = self.reserved.get(p)
        if here:
            for res in here:
                if end > res.start:
                    res.extra -= shape.amount
        pick, self._pick = self._pick, None
        if pick is not None and pick[0] == p:
            nodes = cap.place(job.id, shape, pick[1], pick[2])
        elif cap.shares is None and self.simple[r]:
            nodes = cap.take(d, n)  # the whole-device fast path
        else:
            nodes = cap.place(job.id, shape)
        cap.add(Allocation(job.id, job.tenant, nodes, d, end, job.priority, True, now, True, job.attained, speed,
                           job.base, math.inf, milli, shape.cpu, shape.memory))
        self.held[job.tenant] = self.held.get(job.tenant, 0) + (milli or d * n * 1000)
        walk = self._walk
        self.taken.append((walk.list, walk.pos) if walk is not None and walk.visiting else (-1, -1))
        self.result.starts.append(Start(job.id, self.total[r][p], self.ranking, r, job.duration, p, self.calendar, pool,
                                        nodes, d, now, end, milli))

    def _block(self, job: PendingJob, r: int) -> None:
        self.result.wait(job.id, NO_CAPACITY)
        if self.blocked_at is None:
            self.blocked_at = self.visited
        if self.no_backfill:
            for p in self.ranking.prefs[r]:
                self.blocked[p] = True
        elif self._may_reserve(r):
            self._reserve(job, r)

    def _reserve(self, job: PendingJob, r: int) -> None:
        now, full = self.now, self.full
        pools: list[int] = []
        delays: list[float] = []
        for q in self.ranking.prefs[r]:
            if q not in full:  # full pools: it waits unprotected there
                pools.append(q)
                delays.append(self._earliest(q, r) - now)
        k = self.ranking.best_with_delay(r, pools, delays)
        if k < 0:
            return
        p = pools[k]
        start = now + delays[k]
        extra = free_devices_at(self.caps[p], start) - self.shape[r].amount
        given = {pools[i]: delays[i] for i in range(len(pools))}  # compiled: `dict(zip(...))` is two generic calls
        why = Why(self.ranking, r, job.duration, p, given, self.calendar)
        reserve = Reserve(job.id, self.pools[p].key, start, why, extra, job.tenant)
        self.result.reservations.append(reserve)
        here = self.reserved.setdefault(p, [])
        here.append(reserve)
        if len(here) >= self.reservations:
            self.full.add(p)

    def _preempt(self, job: PendingJob, r: int) -> bool:
        shape = self.shape[r]
        mine = self.policy.priority_of.of_pending(job, self.now)
        if mine <= self._failed_upto.get(r, -math.inf):
            return False  # a job of this shape and at least this priority found no victims: victims only dwindle
        best = None
        for rank_, p in enumerate(self.ranking.prefs[r]):
            if mine <= self._floor(p):
                continue  # nobody there is of lower priority
            ranked = self._victims.get(p)
            if ranked is None:
                ranked = self._victims[p] = VictimList(self.caps[p], self._priority)
            victims = ranked.choose(self.caps[p], shape, mine)
            if victims is not None:
                cost = (max(self._priority(v) for v in victims), sum(v.devices for v in victims), rank_)
                if best is None or cost < best[0]:
                    best = (cost, p, victims)
        if best is None:
            self._failed_upto[r] = max(mine, self._failed_upto.get(r, -math.inf))
            return False
        _, p, victims = best
        self._victims[p].drop(len(victims))
        for v in victims:
            self.caps[p].release(v.job_id)
            self.held[v.tenant] -= v.milli or v.devices * 1000
            self.result.preemptions.append(Preempt(v.job_id, job.id, self.snapshot.pools[p].key, v))
        self._start(job, r, p)
        return True

    def why_not(self, r: int) -> str:
        """Kubernetes-style summary: '0/12 pools: 8 stack mismatch, 4 gang too large'."""
        counts: dict[str, int] = {}
        for f, m in self.ranking.masks:
            k = int((~m[r]).sum())
            if k:
                counts[f.reason] = k
        parts = ", ".join(f"{k} {reason}" for reason, k in counts.items())
        return f"0/{len(self.caps)} pools fit: {parts}"
