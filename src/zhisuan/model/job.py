"""A job is a spec plus a lifecycle: pending -> scheduled -> running -> an end state."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from zhisuan.model.jobspec import JobSpec
from zhisuan.model.placement import Placement


class JobState(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"

    @property
    def terminal(self) -> bool:
        return self in {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}


@dataclass
class Job:
    id: str
    spec: JobSpec
    submitted_at: float
    state: JobState = JobState.PENDING
    placement: Placement | None = None
