"""The pure scheduling core: a snapshot and a time in, decisions out. No I/O, no clock, no store."""

from zhisuan.scheduler.cycle import cycle
from zhisuan.scheduler.decisions import (
    Candidate,
    CycleResult,
    Preempt,
    Reserve,
    Start,
    Unschedulable,
    Why,
)
from zhisuan.scheduler.framework import Policy
from zhisuan.scheduler.policies import DEFAULT, POLICIES, get_policy
from zhisuan.scheduler.snapshot import (
    PendingJob,
    PoolState,
    RunningJob,
    Snapshot,
    TenantState,
    pending_from_spec,
    pools_from_network,
    snapshot_from_network,
)

__all__ = [
    "DEFAULT",
    "POLICIES",
    "Candidate",
    "CycleResult",
    "PendingJob",
    "Policy",
    "PoolState",
    "Preempt",
    "Reserve",
    "RunningJob",
    "Snapshot",
    "Start",
    "TenantState",
    "Unschedulable",
    "Why",
    "cycle",
    "get_policy",
    "pending_from_spec",
    "pools_from_network",
    "snapshot_from_network",
]
