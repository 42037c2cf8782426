"""The scheduling cycle: `cycle(snapshot, now, policy) -> CycleResult`. Pure and deterministic.

Read top to bottom (`SchedulerState.cycle` and `Assigner.run`):
1. rank every distinct request against every pool: filters and weighted scores (matrix math);
2. order the queue (the policy's QueueSort);
3. assign in order with gang semantics and admission checks, backfill around reservations,
   optional preemption;
4. return starts, preemptions, reservations, waits and unschedulable jobs, each with its why.
"""

from __future__ import annotations

from zhisuan.scheduler.decisions import CycleResult
from zhisuan.scheduler.framework import Policy
from zhisuan.scheduler.policies import DEFAULT
from zhisuan.scheduler.snapshot import Snapshot
from zhisuan.scheduler.state import SchedulerState


def cycle(snapshot: Snapshot, now: float, policy: Policy = DEFAULT) -> CycleResult:
    return SchedulerState.from_snapshot(snapshot, policy).cycle(now)
