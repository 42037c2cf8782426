"""Projects out of funds, in the leader's loop: their queued jobs wait outside the scheduler's queue (the
scheduler never sees them, so nothing it decides is a second copy of a money rule), and with `at_zero: stop`
their running jobs are stopped as a preemption stops them (SIGTERM, the grace, requeued with checkpoints).
When the project has money again its jobs go back to the queue where they were."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from zhisuan.scheduler.decisions import Preempt
from zhisuan.scheduler.snapshot import PendingJob

if TYPE_CHECKING:
    from zhisuan.control.loop import ControlLoop

EVERY = 2.0  # seconds between readings of the projects' funds


class FundsGate:
    def __init__(self, loop: ControlLoop, check: Callable[[float], dict[str, tuple[str, bool]]]) -> None:
        self.loop, self.check = loop, check
        self.out: dict[str, tuple[str, bool]] = {}  # project -> (why its jobs wait, stop its running ones)
        self.parked: dict[str, PendingJob] = {}
        self._at = -math.inf

    def touch(self) -> None:
        """Read the projects' funds at the next step (a top-up made in this process; others' within EVERY)."""
        self._at = -math.inf

    def step(self, now: float) -> None:
        loop = self.loop
        if now - self._at >= EVERY or now < self._at:
            self._at = now
            self.out = self.check(now)
        for job_id, job in list(self.parked.items()):
            if job.tenant in self.out and job_id in loop.jobs:
                continue
            del self.parked[job_id]
            loop.waits.forget(job_id)
            if job_id in loop.jobs and not loop.state.is_pending(job_id):
                loop.state.submit(job)
        if not self.out:
            return
        for job_id, run in list(loop.runs.items()):
            info = loop.jobs.get(job_id)
            if info is not None and run.running and self.out.get(info.tenant, ("", False))[1]:
                loop.state.end(job_id, now, requeue=True)
                loop.carrier.preempt(Preempt(job_id, "a funds hold (its project is out of funds)", run.key), now)
        for job_id in [j for j, p in loop.state.pending.items() if p.tenant in self.out]:
            parked = loop.state.withdraw(job_id)
            if parked is not None:
                self.parked[job_id] = parked
                loop.waits.note(job_id, self.out[parked.tenant][0])
