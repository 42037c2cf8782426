"""Carrying out a cycle's decisions on the engines: starts, and preemptions with their grace periods.

A victim gets its engine's graceful stop, a `preempted` transition and a requeue; the job that preempted
it is `held` until the victim's processes are gone, so two jobs never share a device. Every transition is
written before the engine call it announces (scheduled, then submit)."""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from typing import TYPE_CHECKING

from zhisuan.control.devices import device_ids
from zhisuan.control.jobs import Run, Stopping
from zhisuan.engines import EngineDown, Launch
from zhisuan.model import JobState
from zhisuan.scheduler import CycleResult, Preempt, Start
from zhisuan.store.jobs import Transition

if TYPE_CHECKING:
    from zhisuan.control.loop import ControlLoop

log = logging.getLogger("zhisuan.control")


class Carrier:
    def __init__(self, loop: ControlLoop) -> None:
        self.loop = loop
        self.stopping: dict[str, Stopping] = {}  # preempted runs in their grace period
        self.held: dict[str, set[str]] = {}  # job -> jobs whose runs must stop before it starts

    def carry_out(self, result: CycleResult, now: float) -> None:
        for x in result.expired:
            self.loop.settle(x.job_id, JobState.FAILED, now, f"deadline: {x.reason}")
        victims: dict[str, set[str]] = defaultdict(set)
        for pre in result.preemptions:
            if self._preempt(pre, now):
                victims[pre.by].add(pre.job_id)
        for start in result.starts:
            p = start.placement
            key, nodes = f"{p.center}/{p.pool}", set(p.nodes)
            # any run still stopping on its nodes (this cycle's victims, an earlier cycle's, one stopped because
            # its project ran out of funds): its devices are the scheduler's again, not yet the engine's
            waits = victims.get(start.job_id, set()) | ({start.job_id} if start.job_id in self.stopping else set()) | {
                j for j, st in self.stopping.items() if st.pool == key and nodes & set(st.nodes)}
            self._place(start, now, waits)

    def preempt(self, pre: Preempt, now: float) -> None:
        """Stop a run outside a cycle's decisions (control/gate.py), as a cycle's preemption stops it."""
        self._preempt(pre, now)

    def _preempt(self, pre: Preempt, now: float) -> bool:
        """Stop a victim gracefully and requeue it; True when its run must end before its devices are used."""
        loop = self.loop
        run = loop.runs.pop(pre.job_id, None)
        if run is None:
            return False
        engine = loop.fleet.of(run.center)
        self.held.pop(pre.job_id, None)
        try:
            if not run.running:  # placed, maybe queued at its center, but it never ran
                if run.handle:
                    engine.cancel(run.handle)
                loop.store.transition(pre.job_id, JobState.PENDING, now, f"preempted by {pre.by} before it started")
                loop.requeue(pre.job_id)
                return False
            if run.handle:
                engine.stop(run.handle)
                self.stopping[pre.job_id] = Stopping(pre.job_id, run.center, run.handle, now + loop.settings.grace,
                                                     pool=run.key, nodes=run.nodes)
            rec = loop.store.get(pre.job_id)
            usage = loop.meter.run_rows(rec, now) if rec is not None else []
            loop.store.transition(pre.job_id, JobState.PREEMPTED, now, f"preempted by {pre.by} on {run.key}",
                                  usage=usage)
            loop.store.transition(pre.job_id, JobState.PENDING, now,
                                  f"requeued after preemption (attempt {run.attempt}; checkpoints kept)")
        except (OSError, EngineDown) as e:
            log.warning("preempting %s on %s: %s", pre.job_id, run.center, e)
        except ValueError:
            return pre.job_id in self.stopping  # cancelled meanwhile: the feed settles it
        loop.requeue(pre.job_id)
        return pre.job_id in self.stopping

    def settle_stopping(self, now: float) -> None:
        """Preempted runs: done once their processes are gone; SIGKILL when the grace period is over. Then
        the starts that waited for them go ahead."""
        loop = self.loop
        for job_id, st in list(self.stopping.items()):
            engine = loop.fleet.of(st.center)
            try:
                alive = engine.poll(st.handle).state in ("running", "queued")
                if alive and now >= st.deadline and not st.killed:
                    engine.cancel(st.handle)  # a center's agent may carry it out later: alive until it says so
                    st.killed = True
                    alive = engine.poll(st.handle).state in ("running", "queued")
            except EngineDown:
                continue
            except (OSError, ValueError, KeyError) as e:
                log.warning("stopping %s: %s", job_id, e)
                alive = False
            if not alive:
                del self.stopping[job_id]
        for job_id, waits in list(self.held.items()):
            if not waits & self.stopping.keys():
                del self.held[job_id]
                run = loop.runs.get(job_id)
                if run is not None:
                    self.launch(run, now)

    def _place(self, start: Start, now: float, waits: set[str]) -> None:
        loop = self.loop
        p = start.placement
        key = f"{p.center}/{p.pool}"
        devices = self._device_ids(key, p.nodes, p.devices_per_node, p.milli)
        info = loop.jobs.get(start.job_id)
        try:
            if info is None:
                raise ValueError("unknown to the loop")
            loop.store.transition(start.job_id, JobState.SCHEDULED, now, f"placed on {key} (score {start.score:.1f})",
                                  center=p.center, pool=p.pool, nodes=p.nodes, devices_per_node=p.devices_per_node,
                                  devices=devices)
        except ValueError:
            loop.state.unplace(start.job_id)  # cancelled since it was queued: the feed settles it
            return
        run = Run(start.job_id, p.center, p.pool, p.nodes, tuple(tuple(d) for d in devices), now,
                  attempt=info.attempts + 1)
        loop.runs[start.job_id] = run
        if waits:
            self.held[start.job_id] = waits
            loop.waits.note(start.job_id, f"waiting for preempted {', '.join(sorted(waits))} to stop")
            return
        self.launch(run, now)

    def launch(self, run: Run, now: float) -> None:
        """Start a placed run, its inputs first if they are elsewhere (it then stays `staging` until they land)."""
        stager = self.loop.stager
        if stager is not None and run.job_id not in stager.staging:
            try:
                if stager.begin(run, self.loop.jobs[run.job_id], now):
                    return
            except Exception as e:  # the data service's trouble fails this job alone
                log.warning("staging %s: %s", run.job_id, e)
                self.fail_run(run, now, f"its inputs could not be staged: {e}")
                return
        self._launch(run, now)

    def _launch(self, run: Run, now: float) -> None:
        loop = self.loop
        info = loop.jobs[run.job_id]
        engine = loop.fleet.of(run.center)
        spec = info.spec
        launch = Launch(run.job_id, info.name, spec.run, loop.pool_of[run.key], run.nodes,
                        len(run.devices[0]) if run.devices else 0, [list(d) for d in run.devices], dict(spec.env),
                        spec.constraints.time_limit, spec.image, run.attempt, info.tenant, info.request.milli,
                        info.request.cpus, spec.on_loss,
                        loop.stager.inputs_for(run, info) if loop.stager is not None and spec.inputs else {},
                        info.request.memory_gib)
        try:
            run.handle = engine.submit(launch)
            status = engine.poll(run.handle)  # an agent in this process has started it already
        except EngineDown as e:
            loop.back_to_queue(run, now, f"requeued: {run.center} did not take it ({e})")
            return
        except Exception as e:  # whatever one job's start meets fails that job alone
            log.warning("start of %s failed: %s", run.job_id, e)
            self._failed(run, now, f"the engine could not start it: {e}")
            return
        if status.state == "running":
            if not loop.started(run, now, status.started_at):
                engine.cancel(run.handle)  # cancelled while it was being started: stop what the engine began
        elif status.state == "failed" and status.started_at is None:
            self._failed(run, now, status.reason)  # the engine could not start it
        elif status.state != "queued":
            loop.on_status(run, status, now)  # ended already, or refused (requeued)
        elif not loop.store.set_fields(run.job_id, JobState.SCHEDULED, engine_handle=run.handle,
                                       wait_reason=f"submitted to {run.center}"):
            engine.cancel(run.handle)

    def stop_cancelled(self, e: Transition) -> None:
        """A cancel another replica recorded: this one, leading, stops the run (a repeat is harmless)."""
        run = self.loop.runs.get(e.job_id)
        if e.to_state is JobState.CANCELLED and run is not None and run.handle:
            try:
                self.loop.fleet.of(run.center).cancel(run.handle)
            except (OSError, EngineDown) as err:
                log.warning("cancel of %s at %s: %s", e.job_id, run.center, err)

    def fail_run(self, run: Run, now: float, why: str) -> None:
        self._failed(run, now, why)

    def _failed(self, run: Run, now: float, why: str) -> None:
        loop = self.loop
        with contextlib.suppress(ValueError):  # cancelled meanwhile
            loop.store.transition(run.job_id, JobState.FAILED, now, why, reason=why[:500])
        loop.state.unplace(run.job_id)
        loop.drop(run.job_id)

    def _device_ids(self, key: str, nodes: tuple[int, ...], per_node: int, milli: int = 0) -> list[list[str]]:
        """Concrete device ids on each placed node, given what placed jobs hold (see devices.py)."""
        loop = self.loop
        pool = loop.pool_of[key]
        slots = pool.device_ids or [str(k) for k in range(pool.devices_per_node)]
        held = [(r.nodes, r.devices, info.request.milli if (info := loop.jobs.get(r.job_id)) else 0)
                for r in loop.runs.values() if r.key == key]
        return device_ids(slots, held, nodes, per_node, milli)
