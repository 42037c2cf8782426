"""Why each job waits and when it is expected to start, kept on its record for `zhisuan jobs`, `zhisuan
show` and the API — like Slurm's Reason and `squeue --start`.

Pending jobs take the latest cycle's view: its wait reason, a reservation's start, or — for the rest —
the earliest time any accepted pool could hold the gang if nothing ahead of it in the queue took the
devices first ("not before"). Scheduled jobs take what their center's own queue says. Only changes are
written, in one statement per step, so a long queue costs a write once, not every step.
"""

from __future__ import annotations

import math

from zhisuan.scheduler import CycleResult
from zhisuan.scheduler.decisions import NO_CAPACITY
from zhisuan.scheduler.shape import Shape
from zhisuan.scheduler.state import SchedulerState
from zhisuan.scheduler.timeline import earliest_start
from zhisuan.store import JobStore

Wait = tuple[str | None, float | None]


def _changed(old: Wait | None, new: Wait) -> bool:
    """Worth a write: another reason, or a start that moved by more than a minute."""
    if old is None or old[0] != new[0] or (old[1] is None) != (new[1] is None):
        return True
    return old[1] is not None and new[1] is not None and abs(old[1] - new[1]) > 60.0


class WaitBoard:
    def __init__(self, store: JobStore, every: float = 5.0) -> None:
        self.store, self.every = store, every
        self.written: dict[str, Wait] = {}
        self.notes: dict[str, Wait] = {}  # scheduled jobs: what their center (or a preemption) says
        self._starts: dict[int, float | None] = {}  # request row -> earliest start over its pools
        self._at = -math.inf

    def force_refresh(self) -> None:
        """The next `record` refreshes every waiting job (benchmarks; tests)."""
        self._at = -math.inf

    def note(self, job_id: str, reason: str, expected_start: float | None = None) -> None:
        self.notes[job_id] = (reason, expected_start)

    def forget(self, job_id: str) -> None:
        self.written.pop(job_id, None)
        self.notes.pop(job_id, None)

    def record(self, result: CycleResult, state: SchedulerState, now: float) -> None:
        """Reservations, refusals and notes every step; the long tail of jobs waiting for room (and their
        earliest possible starts) every `every` seconds, so a deep queue costs little per step."""
        refresh = now - self._at >= self.every
        if refresh:
            self._at = now
            self._starts = {}
        wanted: dict[str, Wait] = {}
        for r in result.reservations:
            wanted[r.job_id] = (f"reserved on {r.pool} (backfill goes around it)", r.start)
        for u in result.unschedulable:
            wanted[u.job_id] = (u.reason, None)
        for reason, ids in result.waits.items():
            if reason != NO_CAPACITY:
                for job_id in ids:
                    wanted.setdefault(job_id, (reason, None))
            elif refresh:
                for job_id in ids:
                    wanted.setdefault(job_id, (reason, self._not_before(state, job_id, now)))
        if refresh:
            for k, entry in enumerate(result.rest):
                if entry[3] not in result.rest_skip:
                    reason = NO_CAPACITY if k < result.beyond else result.beyond_reason
                    wanted.setdefault(entry[2], (reason, self._not_before(state, entry[2], now)))
        for release, _, job in state.deferred:
            wanted[job.id] = ("deferred to a cheaper tariff hour, within its deadline", release)
        wanted.update(self.notes)
        changes = [(j, w[0], w[1]) for j, w in wanted.items() if _changed(self.written.get(j), w)]
        if changes:
            self.store.set_waits(changes)
            for j, why, when in changes:
                self.written[j] = (why, when)

    def _not_before(self, state: SchedulerState, job_id: str, now: float) -> float | None:
        found = state.queue.where.get(job_id)
        if found is None:
            return None
        row = found[3]
        if row not in self._starts:
            req = state.cache.ranking.reqs.reqs[row]
            best = min((earliest_start(state.caps[p], Shape.of(req), now)
                        for p in state.cache.ranking.prefs[row]), default=math.inf)
            self._starts[row] = best if math.isfinite(best) else None
        return self._starts[row]
