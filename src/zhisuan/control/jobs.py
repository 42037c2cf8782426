"""What the live loop keeps in memory about each job it is responsible for: the spec parsed once (when
the job first reaches the loop) and, while it holds devices, the run on its center's engine."""

from __future__ import annotations

from dataclasses import dataclass

from zhisuan.model import JobSpec, Request, request_from_spec
from zhisuan.scheduler import PendingJob
from zhisuan.scheduler.snapshot import DEFAULT_DURATION
from zhisuan.store import JobRecord


@dataclass(slots=True)
class JobInfo:
    """A job's spec as the loop needs it, parsed once."""

    id: str
    tenant: str
    name: str
    spec: JobSpec
    request: Request
    submitted_at: float
    duration: float  # expected run time on the reference chip (time_limit, or the default)
    attempts: int = 0
    deadline: float | None = None  # epoch seconds

    @classmethod
    def of(cls, rec: JobRecord) -> JobInfo:
        deadline = rec.spec.constraints.deadline
        return cls(rec.id, rec.tenant, rec.name, rec.spec, request_from_spec(rec.spec), rec.submitted_at,
                   rec.spec.constraints.time_limit or DEFAULT_DURATION, rec.attempts,
                   deadline.timestamp() if deadline is not None else None)

    def pending(self, progress: float = 0.0) -> PendingJob:
        """As the scheduler queues it; a requeued job expects only what is left after its checkpointed progress."""
        left = max(self.duration - progress, min(self.duration, 60.0))
        return PendingJob(self.id, self.tenant, self.request, self.submitted_at, left, self.spec.priority,
                          deadline=self.deadline)


@dataclass(slots=True)
class Run:
    """A placed job on its engine: scheduled (submitted, maybe queued at the center) or running."""

    job_id: str
    center: str
    pool: str
    nodes: tuple[int, ...]
    devices: tuple[tuple[str, ...], ...]  # device ids per gang member
    since: float  # when it was scheduled (running: when it started)
    handle: str | None = None
    running: bool = False
    attempt: int = 1
    poll_errors: int = 0  # in a row

    @property
    def key(self) -> str:
        return f"{self.center}/{self.pool}"


@dataclass(slots=True)
class Stopping:
    """A preempted run being given its grace period: SIGTERM sent at `since`, SIGKILL due at `deadline`."""

    job_id: str
    center: str
    handle: str
    deadline: float
    killed: bool = False  # SIGKILL asked (its center confirms the end: until then its devices are not free)
    pool: str = ""  # center/pool of its devices, and their nodes: a start there waits for it to stop
    nodes: tuple[int, ...] = ()
