"""Failover: every `health_every` seconds each center's link is asked whether its agent and engine answer.
After `misses` failed checks in a row the center is down: its pools leave the next cycles (pending jobs go
elsewhere), its placements that had not started are placed again, and its running jobs follow their spec's
`on_center_loss` (wait for the center, requeue elsewhere, or fail). A center that answers again is back from
the next cycle on, and copies of requeued jobs still running there are stopped (the link's fencing), so a
requeued job does not run twice."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from zhisuan.engines import EngineDown
from zhisuan.model import JobState

if TYPE_CHECKING:
    from zhisuan.control.loop import ControlLoop

log = logging.getLogger("zhisuan.control")


class Failover:
    def __init__(self, loop: ControlLoop, health_every: float, misses: int) -> None:
        self.loop, self.health_every, self.misses = loop, health_every, misses
        self.failures: dict[str, int] = {}
        self.down: dict[str, str] = {}  # center -> why it is considered down
        self.orphans: dict[str, list[str]] = {}  # center -> handles of jobs requeued away from it while down
        self.unreached: set[str] = set()  # remote centers whose agent is not connected: no new placements
        self._checked = float("-inf")

    def check(self, now: float, force: bool = False) -> None:
        for center in self.loop.network.centers:
            self._placeable(center.name)
        if not force and now - self._checked < self.health_every:
            return
        self._checked = now
        for center in self.loop.network.centers:
            try:
                self.loop.fleet.of(center.name).health()
            except EngineDown as e:
                self.failures[center.name] = self.failures.get(center.name, 0) + 1
                if self.failures[center.name] >= self.misses and center.name not in self.down:
                    self.down[center.name] = str(e)
                    log.warning("center %s is down: %s", center.name, e)
                    self._fail_over(center.name, str(e), now)
                continue
            self.failures.pop(center.name, None)
            if self.down.pop(center.name, None) is not None:
                log.warning("center %s answers again", center.name)
                if center.name not in self.unreached:
                    self.loop.state.set_healthy(center.name, True)
                self._stop_orphans(center.name)

    def _placeable(self, center: str) -> None:
        """A remote center whose agent is not connected (not yet, or not now) takes no new placements; it is
        declared down — and its placements moved — only after `control.center_timeout` of silence."""
        link = self.loop.links[center]
        if link.remote and not link.connected and center not in self.unreached:
            self.unreached.add(center)
            self.loop.state.set_healthy(center, False)
        elif center in self.unreached and link.connected:
            self.unreached.discard(center)
            if center not in self.down:
                self.loop.state.set_healthy(center, True)

    def _stop_orphans(self, center: str) -> None:
        for handle in self.orphans.pop(center, []):
            try:
                self.loop.fleet.of(center).cancel(handle)
            except (OSError, EngineDown) as e:
                log.warning("could not stop %s on %s: %s", handle, center, e)

    def _fail_over(self, center: str, why: str, now: float) -> None:
        """Placements that had not started go elsewhere; running jobs follow their `on_center_loss`: wait
        (they go on there; the center's agent reports how they ended when it is back), requeue, or fail."""
        loop = self.loop
        loop.state.set_healthy(center, False)
        for job_id in [j for j, st in loop.carrier.stopping.items() if st.center == center]:
            del loop.carrier.stopping[job_id]  # its center cannot say when it stops; its link fences it on return
        for run in [r for r in loop.runs.values() if r.center == center]:
            if not run.running and run.handle:  # what its agent said last, before it went silent
                try:
                    status = loop.fleet.of(center).poll(run.handle)
                except Exception:  # nothing more is known of it
                    status = None
                if status is not None and status.state == "running":
                    loop.started(run, now, status.started_at)
            rec = loop.store.get(run.job_id)
            if rec is None or rec.state.terminal:
                continue
            info = loop.jobs[run.job_id]
            policy = info.spec.on_loss
            if run.running and policy == "wait":
                continue
            if run.handle:
                self.orphans.setdefault(center, []).append(run.handle)
            requeue = policy != "fail" or not run.running
            try:
                if run.running:
                    usage = loop.meter.run_rows(rec, now)  # billed up to when the center was declared down
                    if requeue:
                        loop.store.transition(run.job_id, JobState.PREEMPTED, now, f"center {center} down: {why}",
                                              usage=usage)
                        loop.store.transition(run.job_id, JobState.PENDING, now,
                                              "requeued elsewhere from scratch (on_center_loss: requeue)")
                    else:
                        loop.store.transition(run.job_id, JobState.FAILED, now, f"center {center} down: {why}",
                                              usage=usage, reason=f"center {center} down (on_center_loss: fail)")
                else:
                    loop.store.transition(run.job_id, JobState.PENDING, now,
                                          f"center {center} down before it started: placed again")
            except ValueError:
                continue  # ended or cancelled meanwhile: the feed settles it
            loop.runs.pop(run.job_id, None)
            if run.running:
                loop.state.end(run.job_id, now, requeue=requeue, keep_progress=False)
            else:
                loop.state.unplace(run.job_id)
            if requeue:
                loop.requeue(run.job_id)
            else:
                loop.drop(run.job_id)
