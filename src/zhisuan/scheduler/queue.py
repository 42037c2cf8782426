"""The pending queue, kept in the policy's order as jobs come and go.

Jobs are kept in one sorted list per (group, request row); entries are (key, sequence, job id, row, job)
and the sequence number breaks ties in submission order. A cycle walks the queue in order by merging
the lists' heads with a heap. When a request can no longer be placed this cycle (the assigner says it
is dead), its list leaves the merge: its jobs wait without being visited one by one, and `rest()`
hands them back as slices (copied in C).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Callable, Iterator, Sequence

from zhisuan.scheduler.framework import QueueSort
from zhisuan.scheduler.snapshot import PendingJob, Snapshot

Entry = tuple[tuple[float, ...], int, str, int, PendingJob]  # the job itself last: no lookup by id to visit it


class QueueWalk:
    def __init__(self, lists: list[tuple[int, list[Entry]]], jobs: dict[str, PendingJob],
                 dead: Callable[[int], bool], per_row: bool) -> None:
        self.lists, self.jobs, self.dead, self.per_row = lists, jobs, dead, per_row
        by_rank: dict[int, list[int]] = {}
        for i, (rank, lst) in enumerate(lists):
            if lst:
                by_rank.setdefault(rank, []).append(i)
        # A group's jobs all come before the next group's (rank first): the merge holds one group's lists at a time
        self.groups = [by_rank[rank] for rank in sorted(by_rank)]
        self.group = 0  # the next group to merge
        self.heap: list[tuple[tuple[float, ...], int, int, int]] = []  # (key, sequence, list, position)
        self.slices: list[tuple[int, int]] = []  # (list, position): the list from there on waits
        self.items: list[Entry] = []
        self.current: tuple[int, int] | None = None
        self.top = False  # the heap's top is the job `next` returned last
        self.job: PendingJob | None = None
        self.cut: set[int] = set()  # per-row lists whose rest already waits (skip_row)
        self.mark: tuple[int, int] | None = None  # (items, slices) before `stop`: what follows was cut short

    def __iter__(self) -> Iterator[tuple[PendingJob, int]]:
        while (r := self.next()) >= 0:
            assert self.job is not None
            yield self.job, r

    def next(self) -> int:
        """The row of the next job to visit (the job is `self.job`), or -1 once none is left. The assigner calls
        this directly: a compiled call, where a generator's resume costs several."""
        heap, lists = self.heap, self.lists
        if self.top:  # the job returned last is still at the top of the heap: its list moves on now
            self.top = False
            self.current = None
            i, pos = heap[0][2], heap[0][3]
            if i in self.cut:
                heapq.heappop(heap)
            else:
                self._advance(i, pos)
        while True:
            if not heap:
                if self.group >= len(self.groups):
                    return -1
                for i in self.groups[self.group]:
                    head = lists[i][1][0]
                    heap.append((head[0], head[1], i, 0))
                self.group += 1
                heapq.heapify(heap)
            i, pos = heap[0][2], heap[0][3]  # it stays at the top while its job is visited: one sift, not two
            e = lists[i][1][pos]
            if not self.dead(e[3]):
                self.current = (i, pos)
                self.top = True
                self.job = e[4]
                return e[3]
            if self.per_row:
                self.slices.append((i, pos))
                heapq.heappop(heap)
                continue
            self.items.append(e)
            self._advance(i, pos)

    def _advance(self, i: int, pos: int) -> None:
        """List i's head at `pos` is done with: its successor takes its place in the heap."""
        lst = self.lists[i][1]
        if pos + 1 < len(lst):
            nxt = lst[pos + 1]
            heapq.heapreplace(self.heap, (nxt[0], nxt[1], i, pos + 1))
        else:
            heapq.heappop(self.heap)

    def skip_row(self) -> None:
        """The current job's request just died (`dead` says so from now on): it waits unvisited, and so
        does the rest of its list when lists are per row."""
        if self.current is None:
            return
        i, pos = self.current
        self.current = None
        if self.per_row:
            self.slices.append((i, pos))
            self.cut.add(i)
        else:
            self.items.append(self.lists[i][1][pos])

    def stop(self) -> None:
        """Nothing from the current job on is visited this cycle: all of it waits."""
        self.mark = (len(self.items), len(self.slices))
        if self.current is not None:
            i, pos = self.current
            if self.per_row:
                self.slices.append((i, pos))
            else:
                self.items.extend(self.lists[i][1][pos:])  # its successor was not pushed yet
            self.current = None
        if self.top:
            self.top = False
            self.heap[0] = self.heap[-1]  # the current job, still at the top of the heap, was just handled
            self.heap.pop()
        waiting = [(i, pos) for _, _, i, pos in self.heap]
        waiting += [(i, 0) for group in self.groups[self.group:] for i in group]  # groups not merged yet
        self.heap.clear()
        self.group = len(self.groups)
        for i, pos in waiting:
            if self.per_row:
                self.slices.append((i, pos))
            else:
                self.items.extend(self.lists[i][1][pos:])

    def rest(self) -> tuple[list[Entry], int]:
        """Jobs left unvisited, and where those start that `stop` cut short (the rest: shapes with nothing to do)."""
        items, slices = self.mark or (len(self.items), len(self.slices))
        out = self.items[:items]
        for i, pos in self.slices[:slices]:
            out += self.lists[i][1][pos:]
        beyond = len(out)
        out += self.items[items:]
        for i, pos in self.slices[slices:]:
            out += self.lists[i][1][pos:]
        return out, beyond


class PendingQueue:
    def __init__(self, sort: QueueSort) -> None:
        self.sort = sort
        self.dynamic = bool(getattr(sort, "dynamic", False))
        self.grouped = hasattr(sort, "group")
        self.lists: dict[tuple[str, int], list[Entry]] = {}
        self.where: dict[str, tuple[tuple[str, int], Entry]] = {}
        self.jobs: dict[str, PendingJob] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self.jobs)

    def _entry(self, job: PendingJob, row: int) -> tuple[tuple[str, int], Entry]:
        if job.id in self.jobs:
            raise ValueError(f"job {job.id} is already pending")
        group: str = self.sort.group(job) if self.grouped else ""  # type: ignore[attr-defined]
        entry = (self.sort.key(job), self._seq, job.id, row, job)
        self._seq += 1
        self.where[job.id] = ((group, row), entry)
        self.jobs[job.id] = job
        return (group, row), entry

    def add(self, job: PendingJob, row: int) -> None:
        place, entry = self._entry(job, row)
        lst = self.lists.get(place)
        if lst is None:
            self.lists[place] = [entry]
        elif lst[-1] < entry:
            lst.append(entry)  # jobs mostly arrive in their queue's order: one comparison, not a bisect
        else:
            insort(lst, entry)

    def add_many(self, jobs: Sequence[PendingJob], rows: Sequence[int]) -> None:
        """Bulk insert (a snapshot's queue): one sort per list instead of an insertion per job."""
        key, where, known, lists = self.sort.key, self.where, self.jobs, self.lists
        group = self.sort.group if self.grouped else None  # type: ignore[attr-defined]
        seq = self._seq
        touched: dict[tuple[str, int], list[Entry]] = {}
        for job, row in zip(jobs, rows, strict=True):
            if job.id in known:
                raise ValueError(f"job {job.id} is already pending")
            place = (group(job) if group else "", row)
            entry = (key(job), seq, job.id, row, job)
            seq += 1
            where[job.id] = (place, entry)
            known[job.id] = job
            lst = lists.get(place)
            if lst is None:
                lists[place] = lst = []
            lst.append(entry)
            touched[place] = lst
        self._seq = seq
        for lst in touched.values():
            lst.sort()

    def remove(self, job_id: str) -> PendingJob | None:
        found = self.where.pop(job_id, None)
        if found is None:
            return None
        place, entry = found
        lst = self.lists[place]
        del lst[bisect_left(lst, entry)]
        if not lst:
            del self.lists[place]
        return self.jobs.pop(job_id)

    def remove_visited(self, walk: QueueWalk, taken: Sequence[tuple[int, int]], ids: Sequence[str]) -> None:
        """Remove the jobs `walk` (this queue's, of this cycle) yielded at `taken` (list, position): the walk knows
        where they are, so there is no bisect over key tuples. A walk yields each list's positions in increasing
        order; each list closes its gaps in one slice assignment (the jobs behind move once a cycle, not once per
        job taken before them: a national queue's lists hold thousands). An entry not where the walk saw it (or a
        merged walk's copy) is removed by its id."""
        if len(taken) != len(ids):
            raise ValueError("one id per position taken")
        lists = walk.lists
        gaps: dict[int, list[int]] = {}  # walk list -> its positions taken, increasing
        places: dict[int, tuple[str, int]] = {}  # walk list -> its key in `lists`
        strays: list[str] = []
        for k in range(len(taken)):
            i, pos = taken[k]
            job_id = ids[k]
            lst = lists[i][1] if i >= 0 and not self.dynamic else None
            if lst is None or pos >= len(lst) or lst[pos][2] != job_id:
                strays.append(job_id)
                continue
            if i not in gaps:
                gaps[i] = []
                places[i] = self.where[job_id][0]
            gaps[i].append(pos)
            del self.where[job_id], self.jobs[job_id]
        for i, positions in gaps.items():
            lst = lists[i][1]
            lo, hi = positions[0], positions[-1]
            if lo == hi:
                del lst[lo]
            else:
                skip = set(positions)
                lst[lo:hi + 1] = [lst[k] for k in range(lo, hi + 1) if k not in skip]
            if not lst:
                del self.lists[places[i]]
        for job_id in strays:
            self.remove(job_id)

    def walk(self, snapshot: Snapshot, now: float, dead: Callable[[int], bool]) -> QueueWalk:
        if self.dynamic:
            key_at = self.sort.key_at  # type: ignore[attr-defined]
            everything = sorted((key_at(e[4], now), e[1], e[2], e[3], e[4])
                                for lst in self.lists.values() for e in lst)
            return QueueWalk([(0, everything)], self.jobs, dead, per_row=False)
        if self.grouped:
            groups = sorted({g for g, _ in self.lists})
            ranked = self.sort.rank_groups(groups, snapshot, now)  # type: ignore[attr-defined]
            rank = {g: i for i, g in enumerate(ranked)}
            return QueueWalk([(rank[g], lst) for (g, _), lst in self.lists.items()], self.jobs, dead, True)
        return QueueWalk([(0, lst) for lst in self.lists.values()], self.jobs, dead, per_row=True)
