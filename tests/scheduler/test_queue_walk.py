"""The queue's walk against its definition: every pending job in (group rank, key, submission) order, a job visited
unless its row was dead when the walk reached it, the rest handed back, and the started ones removed where they
were seen."""

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import job, named, pool
from zhisuan.scheduler import Snapshot, TenantState
from zhisuan.scheduler.plugins.fair_share import FairShare
from zhisuan.scheduler.plugins.priority import Priority
from zhisuan.scheduler.queue import PendingQueue, QueueWalk, RowCount

REQ = named()
jobs_ = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 5), st.integers(0, 2)),
                 min_size=1, max_size=40)  # (row, tenant, submit, priority)
# per visit: 0 visit it, 1 start it, 2 its row dies now (skip_row), 3 stop the walk here
actions = st.lists(st.integers(0, 3), max_size=60)


@settings(max_examples=150, deadline=None)
@given(jobs_, actions, st.sets(st.integers(0, 3), max_size=2), st.booleans(), st.booleans(), st.booleans())
def test_the_walk_visits_in_order_skips_dead_rows_and_removes_what_started(specs, acts, dead_at_start, fair, collect,
                                                                           one_by_one):
    sort = FairShare() if fair else Priority()
    tenants = {f"t{k}": TenantState(f"t{k}", usage=float(k * 7 % 3)) for k in range(3)}
    snap = Snapshot(pools=[pool()], tenants=tenants)
    q = PendingQueue(sort)
    js = [job(f"j{i}", REQ, float(s), tenant=f"t{t}", priority=p) for i, (_, t, s, p) in enumerate(specs)]
    rows = [r for r, _, _, _ in specs]
    if one_by_one:  # out of order: inserted inside a list, not appended
        for j, r in zip(js, rows, strict=True):
            q.add(j, r)
    else:
        q.add_many(js, rows)
    seq = {j.id: i for i, j in enumerate(js)}
    rank = {g: i for i, g in enumerate(sort.rank_groups(sorted(tenants), snap, 0.0))} if fair else {}
    order = sorted(js, key=lambda j: (rank.get(j.tenant, 0), sort.key(j), seq[j.id]))
    row_of = {j.id: r for j, r in zip(js, rows, strict=True)}

    dead = set(dead_at_start)
    walk = q.walk(snap, 0.0, lambda r: r in dead, collect)
    visited, started, taken, stopped = [], [], [], None
    for a in acts:
        r = walk.next()
        if r < 0:
            break
        assert walk.job is not None
        visited.append(walk.job.id)
        if a == 1:
            started.append(walk.job.id)
            taken.append(walk.at())
        elif a == 2:
            dead.add(r)
            walk.skip_row()
        elif a == 3:
            stopped = len(visited) - 1
            walk.stop()
            assert walk.next() == -1
            break
    else:
        while walk.next() >= 0:  # what the actions did not reach is visited, left waiting
            assert walk.job is not None
            visited.append(walk.job.id)

    # the definition: in order, a job is visited unless its row was dead by then; the walk ends at a stop
    expect, dead_now, k = [], set(dead_at_start), 0
    for j in order:
        if stopped is not None and k > stopped:
            break
        if row_of[j.id] in dead_now:
            continue
        expect.append(j.id)
        if k < len(acts) and acts[k] == 2:
            dead_now.add(row_of[j.id])
        k += 1
    assert visited == expect
    rest, beyond = walk.rest()
    waiting = [e[2] for e in rest]
    if not collect:  # a replay's walk: the same visits, nothing listed
        assert rest == [] and beyond == 0
    elif stopped is None:
        assert beyond == len(rest)
        skipped = {v for k, v in enumerate(visited) if k < len(acts) and acts[k] == 2}  # a dying row's job waits
        assert set(waiting) >= skipped and len(set(waiting)) == len(waiting)
        assert sorted(waiting + [v for v in visited if v not in skipped]) == sorted(j.id for j in js)
    else:  # from the stopped job on, every job waits after the mark; before it, the unvisited ones
        cut = [j.id for j in order[order.index(next(j for j in order if j.id == visited[stopped])):]]
        assert sorted(waiting[beyond:]) == sorted(cut)
        skipped = {v for k, v in enumerate(visited) if k < len(acts) and acts[k] == 2}
        assert sorted(waiting[:beyond] + [v for v in visited[:stopped] if v not in skipped] + cut) == sorted(
            j.id for j in js)

    q.remove_visited(walk, taken, started)
    assert q.counts.keys() >= q.lists.keys()
    assert all(counted(q.counts[g]) == Counter(q.rows.get(g, [])) for g in q.counts)
    assert sorted(q.jobs) == sorted(set(seq) - set(started))
    assert sorted(e[2] for lst in q.lists.values() for e in lst) == sorted(q.jobs)
    for g, lst in q.lists.items():
        assert lst == sorted(lst, key=lambda e: (e[0], e[1])) and lst and q.rows[g] == [e[3] for e in lst]
    assert q.rows.keys() == q.lists.keys()


class Aging:
    """A key that changes with time (re-sorted every cycle): the queue walks one merged list."""

    name = "aging"
    dynamic = True
    priority_ordered = False

    def key(self, j):
        return (j.submit_time,)

    def key_at(self, j, now):
        return (-(now - j.submit_time) * (1 + j.priority),)


@settings(max_examples=150, deadline=None)
@given(jobs_, actions, st.sets(st.integers(0, 3), max_size=2), st.sampled_from(["fair", "priority", "aging"]),
       st.booleans())
def test_leaving_a_list_whose_rows_are_all_dead_changes_nothing_the_walk_does(specs, acts, dead_at_start, sort_name,
                                                                               collect):
    """The queue counts each list's rows so the walk leaves a list once all its rows are dead: the same visits, the
    same jobs left waiting in the same order as a walk that reads every entry, and the counts right after removal."""
    sort = {"fair": FairShare(), "priority": Priority(), "aging": Aging()}[sort_name]
    tenants = {f"t{k}": TenantState(f"t{k}", usage=float(k * 7 % 3)) for k in range(3)}
    snap = Snapshot(pools=[pool()], tenants=tenants)
    q = PendingQueue(sort)
    for i, (r, t, s, p) in enumerate(specs):
        q.add(job(f"j{i}", REQ, float(s), tenant=f"t{t}", priority=p), r)
    dead = set(dead_at_start)
    fast = q.walk(snap, 5.0, lambda r: r in dead, collect)
    assert fast.present is not None
    slow = QueueWalk(fast.lists, fast.rows, fast.groups, lambda r: r in dead, collect)  # no rows known: reads all
    taken, started = [], []
    for a in [*acts, *[0] * len(specs)]:
        r = fast.next()
        assert slow.next() == r
        if r < 0:
            break
        assert fast.job is slow.job and fast.at() == slow.at()
        if a == 1:
            started.append(fast.job.id)
            taken.append(fast.at())
        elif a == 2:
            dead.add(r)
            fast.skip_row()
            slow.skip_row()
        elif a == 3:
            fast.stop()
            slow.stop()
    assert fast.rest() == slow.rest()
    q.remove_visited(fast, taken, started)
    assert q.counts.keys() >= q.lists.keys()  # a group whose list emptied keeps its (empty) counts
    for g, counts in q.counts.items():
        assert counted(counts) == Counter(q.rows.get(g, []))
    entries = sorted((e[3], e[1], e[2]) for lst in q.lists.values() for e in lst)  # (row, submission, id)
    assert q.row_counts() == dict(sorted(Counter(e[0] for e in entries).items()))
    assert q.present_rows() == {e[0] for e in entries}
    some = set(dead_at_start)
    assert q.ids_with_rows(some) == [(r, i) for r, _, i in entries if r in some]


def counted(counts: RowCount) -> Counter:
    """The counts as a Counter (every row listed has an entry)."""
    assert all(n > 0 for n in counts.by_row.values())  # a row with no entry left is not listed
    return Counter(counts.by_row)
