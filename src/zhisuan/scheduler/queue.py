"""The pending queue, kept in the policy's order as jobs come and go.

Jobs are kept in one sorted list per group (a fair-share tenant; one list when the policy has no groups);
entries are (key, sequence, job id, row, job) and the sequence number breaks ties in submission order; beside
each list, its entries' rows. A cycle walks the groups in their rank order and each list in order: an index
moves along, with no merge and no comparison. When a request can no longer be placed this cycle (the assigner
says it is dead, and stays so), its later jobs wait unvisited: the walk reads only their rows (a national queue
holds a million jobs, most of them waiting: their entries stay untouched in memory), and `rest()` hands them
back when the walk was asked to collect them (wait reasons; a replay asks for none). The queue counts the rows of
each list, so once every row of a list is dead the walk leaves the rest of that list at once, unread.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

from zhisuan.scheduler.framework import QueueSort
from zhisuan.scheduler.snapshot import PendingJob, Snapshot

Entry = tuple[tuple[float, ...], int, str, int, PendingJob]  # the job itself last: no lookup by id to visit it


class RowJudge:
    """Says whether a row can place nothing more this cycle (once true, it stays so). The assigner is one: the walk
    asks at every visit, and a compiled method is called in C, where a Python callable costs the interpreter's
    calling convention each time."""

    def dead(self, r: int) -> bool:
        return False


class CalledJudge(RowJudge):
    """A plain function as the judge (tests; callers outside a cycle)."""

    def __init__(self, dead: Callable[[int], bool]) -> None:
        self.called = dead

    def dead(self, r: int) -> bool:
        return self.called(r)


Judge = RowJudge | Callable[[int], bool]


class RowCount:
    """How many entries of one list have each row (rows with none left out): the walk leaves the list once all of
    these are dead. A dict, not a list indexed by row: that would be as long as the highest row any job ever had,
    in every tenant's list (one tenant sending many distinct asks would lengthen them all)."""

    __slots__ = ("by_row",)

    def __init__(self) -> None:
        self.by_row: dict[int, int] = {}

    def add(self, row: int) -> None:
        by_row = self.by_row
        by_row[row] = by_row.get(row, 0) + 1

    def remove(self, row: int) -> None:
        n = self.by_row[row] - 1
        if n:
            self.by_row[row] = n
        else:
            del self.by_row[row]


class QueueWalk:
    def __init__(self, lists: list[list[Entry]], rows: list[list[int]], groups: list[str], dead: Judge,
                 collect: bool = True, present: list[Collection[int]] | None = None) -> None:
        """`lists`: the queue's lists in the order they are walked (a group's jobs all before the next group's),
        `rows` their entries' rows and `groups` their groups; `dead(row)`: the row can place nothing more this
        cycle — once true, it stays so; `collect`: keep the jobs left waiting unvisited for `rest()`; `present`:
        each list's distinct rows, exactly (None: not known, every entry is read)."""
        self.lists, self.rows, self.groups, self.collect, self.present = lists, rows, groups, collect, present
        self.judge: RowJudge = dead if isinstance(dead, RowJudge) else CalledJudge(dead)
        self.list = 0  # the list being walked
        self.pos = 0  # the position in it of the job being visited, or of the next entry to look at
        self.gone: list[bool] = []  # by row, found dead: their entries are passed over without asking again
        self.items: list[Entry] = []  # entries left waiting, unvisited
        self.visiting = False  # the job `next` returned last is at (list, pos): no tuple made per visit
        self.job: PendingJob | None = None
        self.mark: int | None = None  # len(items) before `stop`: what follows was cut short
        self.alive = -1  # rows of the list being walked not found dead yet (-1: not counted)

    def __iter__(self) -> Iterator[tuple[PendingJob, int]]:
        while (r := self.next()) >= 0:
            assert self.job is not None
            yield self.job, r

    def next(self) -> int:
        """The row of the next job to visit (the job is `self.job`), or -1 once none is left. The assigner calls
        this directly: a compiled call, where a generator's resume costs several."""
        if self.visiting:  # the job returned last is done with: move past it
            self.visiting = False
            self.pos += 1
        lists, gone, collect = self.lists, self.gone, self.collect
        while self.list < len(lists):
            lst: list[Any] = lists[self.list]  # entries kept boxed: read as Entry, compiled code copies them to append
            rows = self.rows[self.list]
            pos = self.pos
            if pos == 0 and self.present is not None:
                self.alive = self._alive(self.present[self.list])
            while pos < len(rows) and self.alive != 0:
                r = rows[pos]
                if r >= len(gone):
                    gone.extend([False] * (r + 1 - len(gone)))
                if not gone[r]:
                    if not self.judge.dead(r):
                        self.pos = pos
                        self.visiting = True
                        self.job = lst[pos][4]
                        return r
                    gone[r] = True
                    self.alive -= 1
                if collect:
                    self.items.append(lst[pos])
                pos += 1
            if collect and pos < len(rows):  # every row of this list is dead: the rest of it waits, unread
                self.items.extend(lst[pos:])
            self.list += 1
            self.pos = 0
        return -1

    def _alive(self, rows: Collection[int]) -> int:
        """How many of these rows are not found dead yet."""
        gone = self.gone
        n = 0
        for r in rows:
            if r >= len(gone) or not gone[r]:
                n += 1
        return n

    def skip_row(self) -> None:
        """The current job's request just died (`dead` says so from now on): it and the rest of its jobs wait
        unvisited."""
        if not self.visiting:
            return
        self.gone[self.rows[self.list][self.pos]] = True  # next() sized it for this row
        self.alive -= 1
        if self.collect:
            lst: list[Any] = self.lists[self.list]
            self.items.append(lst[self.pos])
        self.visiting = False
        self.pos += 1

    def stop(self) -> None:
        """Nothing from the current job on is visited this cycle: all of it waits."""
        self.mark = len(self.items)
        self.visiting = False  # the current job waits too: the walk resumes from it
        for k in range(self.list, len(self.lists) if self.collect else 0):
            lst = self.lists[k]
            self.items.extend(lst[self.pos:] if k == self.list else lst)
        self.list, self.pos = len(self.lists), 0

    def at(self) -> tuple[int, int] | None:
        """(list, position) of the job being visited, or None."""
        return (self.list, self.pos) if self.visiting else None

    def rest(self) -> tuple[list[Entry], int]:
        """Jobs left unvisited, and where those start that `stop` cut short (the rest: shapes with nothing to do);
        none unless the walk collects them."""
        return self.items, len(self.items) if self.mark is None else self.mark


class PendingQueue:
    def __init__(self, sort: QueueSort) -> None:
        self.sort = sort
        self.dynamic = bool(getattr(sort, "dynamic", False))
        self.grouped = hasattr(sort, "group")
        self.lists: dict[str, list[Entry]] = {}  # group -> its jobs in order
        self.rows: dict[str, list[int]] = {}  # group -> the row of each of its jobs, in the same order
        self.where: dict[str, Entry] = {}  # job id -> its entry (no tuple of its own: one less to make and free)
        self.counts: dict[str, RowCount] = {}  # group -> its entries' rows (kept when its list empties: tenants return)
        self.jobs: dict[str, PendingJob] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self.jobs)

    def _entry(self, job: PendingJob, row: int) -> tuple[str, Entry]:
        if job.id in self.jobs:
            raise ValueError(f"job {job.id} is already pending")
        group: str = self.sort.group(job) if self.grouped else ""  # type: ignore[attr-defined]
        entry = (self.sort.key(job), self._seq, job.id, row, job)
        self._seq += 1
        self.where[job.id] = entry
        self.jobs[job.id] = job
        return group, entry

    def add(self, job: PendingJob, row: int) -> None:
        place, entry = self._entry(job, row)
        lst = self.lists.get(place)
        if lst is None:
            self.lists[place] = [entry]
            self.rows[place] = [row]
        counts = self.counts.get(place)
        if counts is None:
            counts = self.counts[place] = RowCount()
        counts.add(row)
        if lst is None:
            return
        if lst[-1] < entry:
            lst.append(entry)  # jobs mostly arrive in their queue's order: one comparison, not a bisect
            self.rows[place].append(row)
        else:
            at = bisect_left(lst, entry)
            lst.insert(at, entry)
            self.rows[place].insert(at, row)

    def add_many(self, jobs: Sequence[PendingJob], rows: Sequence[int]) -> None:
        """Bulk insert (a snapshot's queue): one sort per list instead of an insertion per job."""
        key, where, known, lists = self.sort.key, self.where, self.jobs, self.lists
        group = self.sort.group if self.grouped else None  # type: ignore[attr-defined]
        seq = self._seq
        touched: dict[str, list[Entry]] = {}
        for job, row in zip(jobs, rows, strict=True):
            if job.id in known:
                raise ValueError(f"job {job.id} is already pending")
            place = group(job) if group else ""
            entry = (key(job), seq, job.id, row, job)
            seq += 1
            where[job.id] = entry
            known[job.id] = job
            lst = lists.get(place)
            if lst is None:
                lists[place] = lst = []
            lst.append(entry)
            touched[place] = lst
            counts = self.counts.get(place)
            if counts is None:
                counts = self.counts[place] = RowCount()
            counts.add(row)
        self._seq = seq
        for place, lst in touched.items():
            lst.sort()
            self.rows[place] = [e[3] for e in lst]

    def remove(self, job_id: str) -> PendingJob | None:
        entry = self.where.pop(job_id, None)
        if entry is None:
            return None
        place: str = self.sort.group(entry[4]) if self.grouped else ""  # type: ignore[attr-defined]
        lst = self.lists[place]
        at = bisect_left(lst, entry)
        del lst[at], self.rows[place][at]
        self.counts[place].remove(entry[3])
        if not lst:
            del self.lists[place], self.rows[place]
        return self.jobs.pop(job_id)

    def remove_visited(self, walk: QueueWalk, taken: Sequence[tuple[int, int]], ids: Sequence[str]) -> None:
        """Remove the jobs `walk` (this queue's, of this cycle) yielded at `taken` (list, position): the walk knows
        where they are, so there is no bisect over key tuples. Each list closes its gaps in one slice assignment
        (the jobs behind move once a cycle, not once per job taken before them: a national queue's lists hold
        thousands). An entry not where the walk saw it (or a merged walk's copy) is removed by its id."""
        if len(taken) != len(ids):
            raise ValueError("one id per position taken")
        lists = walk.lists
        gaps: dict[int, list[int]] = {}  # walk list -> its positions taken
        strays: list[str] = []
        for k in range(len(taken)):
            i, pos = taken[k]
            job_id = ids[k]
            lst = lists[i] if i >= 0 and not self.dynamic else None
            if lst is None or pos >= len(lst) or lst[pos][2] != job_id:
                strays.append(job_id)
                continue
            if i not in gaps:
                gaps[i] = []
            gaps[i].append(pos)
            del self.where[job_id], self.jobs[job_id]
            self.counts[walk.groups[i]].remove(walk.rows[i][pos])
        for i, positions in gaps.items():
            kept: list[Any] = lists[i]  # boxed entries: moved, not unpacked and packed again
            rows = walk.rows[i]
            lo, hi = min(positions), max(positions)
            if lo == hi:
                del kept[lo], rows[lo]
            else:
                skip = set(positions)
                stay = [k for k in range(lo, hi + 1) if k not in skip]  # once, for the entries and their rows
                kept[lo:hi + 1] = [kept[k] for k in stay]
                rows[lo:hi + 1] = [rows[k] for k in stay]
            if not kept:
                del self.lists[walk.groups[i]], self.rows[walk.groups[i]]
        for job_id in strays:
            self.remove(job_id)

    def present_rows(self) -> set[int]:
        """The rows of the pending jobs."""
        out: set[int] = set()
        for counts in self.counts.values():
            out.update(counts.by_row)
        return out

    def row_counts(self) -> dict[int, int]:
        """Pending jobs per row (rows with none left out), in row order."""
        out: dict[int, int] = {}
        for counts in self.counts.values():
            for r, n in counts.by_row.items():
                out[r] = out.get(r, 0) + n
        return dict(sorted(out.items()))

    def ids_with_rows(self, rows: Collection[int]) -> list[tuple[int, str]]:
        """(row, id) of the pending jobs with these rows, by row, then in submission order: a pass over the lists
        holding them, for the rare rows no pool can run (the cycle tells those jobs so each time)."""
        wanted = set(rows)
        if not wanted:
            return []
        found: list[tuple[int, int, str]] = []
        for group, lst in self.lists.items():
            if any(r in wanted for r in self.counts[group].by_row):
                found.extend((e[3], e[1], e[2]) for e in lst if e[3] in wanted)
        found.sort()
        return [(r, job_id) for r, _, job_id in found]

    def walk(self, snapshot: Snapshot, now: float, dead: Judge, collect: bool = True) -> QueueWalk:
        """This cycle's walk; `collect`: it hands back the jobs it left waiting unvisited (`rest()`)."""
        if self.dynamic:
            key_at = self.sort.key_at  # type: ignore[attr-defined]
            everything = sorted((key_at(e[4], now), e[1], e[2], e[3], e[4])
                                for lst in self.lists.values() for e in lst)
            return QueueWalk([everything], [[e[3] for e in everything]], [""], dead, collect, [self.present_rows()])
        groups = self.sort.rank_groups(sorted(self.lists), snapshot, now) if self.grouped else list(self.lists)  # type: ignore[attr-defined]
        return QueueWalk([self.lists[g] for g in groups], [self.rows[g] for g in groups], groups, dead, collect,
                         [self.counts[g].by_row for g in groups])
