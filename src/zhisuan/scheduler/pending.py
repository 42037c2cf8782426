"""A job waiting in the scheduler's queue (re-exported by `snapshot`).

Compiled with the scheduler: the assigner reads a job's fields at every visit and start, and a compiled class's
fields are read in C, where a Python object's attribute goes through a lookup by name each time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from zhisuan.model import Request


@dataclass(slots=True, init=False)
class PendingJob:
    """`duration` is the expected run time on the request's reference chip (seconds)."""

    id: str
    tenant: str
    request: Request
    submit_time: float
    duration: float
    priority: int = 0
    attained: float = 0.0  # device-seconds already received (preempted/requeued jobs; 2D-LAS)
    deadline: float | None = None  # must have ended by then (the driver's clock); None: no deadline
    release: float = -math.inf  # not before (a deferred job waits for a cheaper hour until then)
    # written by the policy's book (framework.Book), read by its plugins:
    entered: float | None = None  # when it entered its current LAS queue (None: at submission)
    base: float = 0.0  # device-seconds received before its last promotion (Tiresias' starvation guard)
    rank: float = 0.0  # its priority this round (Gavel: allocated share / share received)

    def __init__(self, id: str, tenant: str, request: Request, submit_time: float, duration: float,
                 priority: int = 0, attained: float = 0.0, deadline: float | None = None, release: float = -math.inf,
                 entered: float | None = None, base: float = 0.0, rank: float = 0.0) -> None:
        # written out: mypyc compiles this one (the dataclass's is interpreted, and a replay makes one per arrival)
        self.id, self.tenant, self.request, self.submit_time, self.duration = id, tenant, request, submit_time, duration
        self.priority, self.attained, self.deadline, self.release = priority, attained, deadline, release
        self.entered, self.base, self.rank = entered, base, rank

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled and copied field by field (a compiled class has no default way)."""
        return (PendingJob, (self.id, self.tenant, self.request, self.submit_time, self.duration, self.priority,
                             self.attained, self.deadline, self.release, self.entered, self.base, self.rank))
