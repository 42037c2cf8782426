"""The scheduling cycle: `cycle(snapshot, now, policy) -> CycleResult`. Pure and deterministic.

Read top to bottom:
1. group pending jobs by distinct request (jobs with equal requests are interchangeable to plugins);
2. filter and score every request against every pool (matrix math, `ranking.rank`);
3. order the queue (the policy's QueueSort);
4. assign in order with gang semantics, backfill around reservations, optional preemption.
"""

from __future__ import annotations

import numpy as np

from zhisuan.model import Request
from zhisuan.scheduler.assign import Assigner
from zhisuan.scheduler.capacity import PoolCapacity, capacities
from zhisuan.scheduler.decisions import CycleResult
from zhisuan.scheduler.framework import Policy
from zhisuan.scheduler.policies import DEFAULT
from zhisuan.scheduler.ranking import rank
from zhisuan.scheduler.snapshot import Snapshot
from zhisuan.scheduler.tables import I, PoolTable, RequestTable


def histograms(caps: list[PoolCapacity]) -> I:
    """[pool, free level] node counts, padded to the largest node size."""
    width = max((c.size for c in caps), default=0) + 1
    out: I = np.zeros((len(caps), width), dtype=np.int64)
    for i, c in enumerate(caps):
        h = c.histogram()
        out[i, : len(h)] = h
    return out


def distinct_requests(snapshot: Snapshot) -> tuple[list[Request], list[int]]:
    index: dict[Request, int] = {}
    request_of = [index.setdefault(j.request, len(index)) for j in snapshot.pending]
    return list(index), request_of


def cycle(snapshot: Snapshot, now: float, policy: Policy = DEFAULT) -> CycleResult:
    caps = capacities(snapshot)
    requests, request_of = distinct_requests(snapshot)
    ranking = rank(RequestTable.build(requests), PoolTable.build(snapshot.pools), policy, histograms(caps))
    order = policy.queue_sort.order(snapshot.pending, snapshot, now)
    return Assigner(snapshot, now, policy, ranking, caps, request_of).run(order)
