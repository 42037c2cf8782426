"""The live driver of the scheduler: reconcile store <-> scheduler <-> engines, one `step(now)` at a time.

It keeps one `SchedulerState` in memory, as the simulator does, rebuilt from the store in `recover()`
and then told what happens — the same driver contract, so the same events give the same decisions:
- the transitions the store records (submissions, cancels: the API writes them) arrive as a feed;
- engines are polled: a run that starts, ends, or waits too long in its center's own queue;
- engines report their centers' own load (other users' jobs, drained nodes), which the state holds;
- health checks take a silent center's pools out (failover).
Each step then runs a cycle and carries out every decision: starts, and preemptions — the victim gets
its engine's graceful stop, its grace period, a `preempted` transition and a requeue, and the job that
preempted it starts once the victim's processes are gone.

Every transition is written *before* the action it announces (scheduled, then submit to the engine),
so a process killed at any point restarts with `recover()` and loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from zhisuan.agent.protocol import handle_of, split
from zhisuan.control.carry import Carrier
from zhisuan.control.drains import DrainBoard
from zhisuan.control.failover import Failover
from zhisuan.control.gate import FundsGate
from zhisuan.control.inproc import links
from zhisuan.control.jobs import JobInfo, Run
from zhisuan.control.keeper import ServiceKeeper
from zhisuan.control.metering import Meter
from zhisuan.control.observe import CycleStats
from zhisuan.control.recovery import rebuild
from zhisuan.control.sampler import DeviceSampler, Sampled, sample_in_thread
from zhisuan.control.staging import Stager
from zhisuan.control.view import LiveView
from zhisuan.control.waits import WaitBoard
from zhisuan.engines import Engine, EngineDown, EngineStatus, Fleet
from zhisuan.model import JobState, Network, SpecError
from zhisuan.scheduler import CycleResult, Policy, pools_from_network
from zhisuan.scheduler.decisions import Reserve
from zhisuan.scheduler.profiles import policy_for
from zhisuan.scheduler.state import SchedulerState
from zhisuan.store import JobRecord, JobStore, Transition, UsageStore
from zhisuan.store.feed import TransitionFeed

log = logging.getLogger("zhisuan.control")
POLL_ERRORS = 3  # polls in a row that fail before a job is given up as untrackable


class ControlLoop:
    def __init__(self, store: JobStore, network: Network, engines: Engine | Fleet, policy: Policy | None = None,
                 health_every: float = 2.0, misses: int = 2) -> None:
        self.store, self.network = store, network
        self.policy = policy or policy_for(network.scheduler)
        self.settings = network.control
        self.keeper: ServiceKeeper | None = None  # set by the Service that owns the services
        self.stager: Stager | None = None  # set by the Service when centers have stores: stages inputs
        self.gate: FundsGate | None = None  # set by the Service: projects out of funds wait (control/gate.py)
        self.drains = DrainBoard(self)  # nodes their operators drained (control/drains.py)
        given = engines if isinstance(engines, Fleet) else Fleet.single(network, engines)
        self.links = links(network, given)  # every center through its agent: in this process, or remote
        self.fleet = Fleet(self.links)
        self.pools = pools_from_network(network)
        self.pool_of = {f"{c.name}/{p.name}": p for c in network.centers for p in c.pools}
        self.meter = Meter(network, UsageStore(store.engine))
        self.cycles = CycleStats()
        self.failover = Failover(self, health_every, misses)
        self.lock = threading.RLock()  # one step at a time; the API reads `view`, published after each step
        self.state = SchedulerState(self.pools, self.policy)
        self.view = LiveView.empty(self.pools)
        self.feed: TransitionFeed | None = None
        self.jobs: dict[str, JobInfo] = {}  # every job the loop is responsible for, spec parsed once
        self.runs: dict[str, Run] = {}  # jobs holding devices: scheduled (maybe queued at the center) or running
        self.carrier = Carrier(self)  # carries out decisions; holds runs in their grace period
        self.labels: dict[str, dict[str, str]] = {}  # center -> its own load's ids -> what they are
        self.waits = WaitBoard(store)
        self.sample_every = 10.0
        self._sampled = self._loaded = float("-inf")
        self.sampler = DeviceSampler(network, self.meter.usage)
        self._sampling_thread = False  # True once the server samples off the loop

    @property
    def down(self) -> dict[str, str]:
        return self.failover.down

    # ---- start -------------------------------------------------------------------------------------

    def recover(self, now: float) -> None:
        """Build the scheduler state from the store and settle jobs caught between 'scheduled' and a handle."""
        with self.lock:
            rebuilt = rebuild(self.store, self.meter.usage, self.network, self.pools, self.policy)
            self.state, self.jobs, self.runs = rebuilt.state, rebuilt.jobs, rebuilt.runs
            self.feed = TransitionFeed(self.store, rebuilt.floor)
            for job_id in rebuilt.lost:
                self.settle(job_id, JobState.FAILED, now, "its pool is no longer in the network")
            for job_id in rebuilt.requeue:
                self.settle(job_id, JobState.PENDING, now, "requeued after a restart (it had been preempted)")
            if self.stager is not None:
                self.stager.recover(now)
            self.track()
            self._readopt(now)
            self._publish()

    def _readopt(self, now: float) -> None:
        """Runs caught between 'scheduled' and their start (a restart): their center's agent says whether it
        has them; one that cannot tell yet is asked again next step (failover settles a silent center)."""
        staging = self.stager.staging if self.stager is not None else {}
        for run in [r for r in self.runs.values()
                    if r.handle is None and r.job_id not in self.carrier.held and r.job_id not in staging]:
            try:
                handle = self.fleet.of(run.center).handle_of(run.job_id, run.attempt)
            except EngineDown as e:
                log.debug("cannot re-adopt %s yet: %s", run.job_id, e)
                continue
            if handle is not None:
                run.handle = handle
                self.store.set_fields(run.job_id, JobState.SCHEDULED, engine_handle=handle)
            else:
                self.back_to_queue(run, now, "requeued: not submitted before a restart")

    def track(self) -> None:
        """Tell every center's link which runs the network holds there now (it stops the others)."""
        held: dict[str, set[str]] = {c.name: set() for c in self.network.centers}
        for run in self.runs.values():  # one not yet submitted (held, or caught by a restart) by its future name
            held[run.center].add(run.handle or handle_of(run.job_id, run.attempt))
        for st in self.carrier.stopping.values():
            held[st.center].add(st.handle)
        for center, handles in held.items():
            self.links[center].track(handles)

    def settle(self, job_id: str, target: JobState, now: float, why: str) -> None:
        try:
            self.store.transition(job_id, target, now, why, reason=why if target is JobState.FAILED else None)
        except ValueError:
            return
        if target is JobState.PENDING:
            self.requeue(job_id)
        else:
            self.drop(job_id)

    # ---- one step ----------------------------------------------------------------------------------

    def step(self, now: float) -> CycleResult:
        with self.lock:
            if self.feed is None:
                self.recover(now)
            assert self.feed is not None
            self.failover.check(now)
            self._readopt(now)
            if not self._sampling_thread and now - self._sampled >= self.sample_every:
                self._sampled = now
                self.sampler.sample(self.sampled(), now)
                self.agent_samples()
            self._poll(now)
            if self.stager is not None:
                self.stager.step(now)
            if now - self._loaded >= self.settings.load_every:
                self._loaded = now
                self.drains.observe(now)
            self.carrier.settle_stopping(now)
            self._apply(self.feed.read(now))
            if self.gate is not None:
                self.gate.step(now)
            self.drains.step(now)
            t0 = time.perf_counter()
            result = self.state.cycle(now)
            took = time.perf_counter() - t0
            self.cycles.observe(took)
            if result.starts or result.preemptions:
                log.debug("cycle", extra={"fields": {"placed": len(result.starts), "preempted": len(result.preemptions),
                                                      "waiting": result.waiting_jobs, "ms": round(took * 1000, 2)}})
            self.carrier.carry_out(result, now)
            self.track()
            self.waits.record(result, self.state, now)
            self._publish(result.reservations)
        if self.keeper is not None:  # after the loop's lock: it submits and cancels through the store
            self.keeper.step(now)
        return result

    def _publish(self, reservations: list[Reserve] | None = None) -> None:
        self.view = LiveView.of(self.state, self.failover.down,
                                {k: v for labels in self.labels.values() for k, v in labels.items()},
                                frozenset(j for j, r in self.runs.items() if r.running), reservations)

    # ---- events from the store ---------------------------------------------------------------------

    def _apply(self, events: list[Transition]) -> None:
        """Transitions others wrote (the API: submissions, cancels) and echoes of the loop's own (no-ops).
        New jobs are read in a few queries and queued in one batch, whatever the burst. Each is logged once
        (the feed delivers each once): the server log's record of every state change, whoever made it."""
        if log.isEnabledFor(logging.INFO):
            for e in events:
                log.info("job %s", e.to_state.value, extra={"fields": {
                    "job": e.job_id, "from": e.from_state.value if e.from_state else "", "by": e.actor,
                    "why": e.reason[:200]}})
        new = {e.job_id: None for e in events if e.to_state is JobState.PENDING
               and not self.state.is_pending(e.job_id) and self.state.allocation(e.job_id) is None}
        fresh = self.store.get_many([j for j in new if j not in self.jobs]) if new else {}
        batch: dict[str, None] = {}
        for e in events:
            if e.to_state is JobState.PENDING and e.job_id in new:
                rec = fresh.get(e.job_id)
                if e.job_id not in self.jobs:
                    if rec is None or rec.state is not JobState.PENDING:
                        continue  # it moved on already (cancelled): a later event says so
                    if self._info(rec, e.at) is None:
                        continue
                batch[e.job_id] = None
            elif e.to_state.terminal:
                batch.pop(e.job_id, None)
                self.carrier.stop_cancelled(e)
                if self.state.allocation(e.job_id) is not None:
                    ran = e.from_state is JobState.RUNNING
                    self.state.end(e.job_id, e.at) if ran else self.state.unplace(e.job_id)
                self.drop(e.job_id)
        progress = self.state.ledger.progress
        self.state.submit_many([self.jobs[j].pending(progress.get(j, 0.0)) for j in batch
                                if j in self.jobs and not self.state.is_pending(j)])

    def requeue(self, job_id: str) -> None:
        """Queue a job (again): what is left of it, after the progress its checkpoints kept."""
        info = self.jobs.get(job_id)
        if info is None:
            rec = self.store.get(job_id)
            if rec is None:
                return
            info = self._info(rec, time.time())
            if info is None:
                return
        if not self.state.is_pending(job_id):
            self.state.submit(info.pending(self.state.ledger.progress.get(job_id, 0.0)))

    def _info(self, rec: JobRecord, now: float) -> JobInfo | None:
        """The job as the loop keeps it, its inputs resolved (None: they no longer can be, and it failed)."""
        info = self.jobs[rec.id] = JobInfo.of(rec)
        try:
            if self.stager is not None:
                self.stager.refresh(info)
        except SpecError as e:
            self.settle(rec.id, JobState.FAILED, now, f"inputs: {e}")
            return None
        return info

    def drop(self, job_id: str) -> None:
        """The job has ended for good: nothing of it stays in the loop (its stopping run still gets stopped)."""
        self.state.withdraw(job_id)
        if self.state.allocation(job_id) is not None:
            self.state.unplace(job_id)
        self.state.forget(job_id)
        self.runs.pop(job_id, None)
        self.carrier.held.pop(job_id, None)
        self.jobs.pop(job_id, None)
        self.waits.forget(job_id)

    # ---- engines -----------------------------------------------------------------------------------

    def _poll(self, now: float) -> None:
        for run in list(self.runs.values()):
            if run.handle is None or run.center in self.failover.down:
                continue
            try:
                status = self.fleet.of(run.center).poll(run.handle)
            except EngineDown:
                continue  # the health check decides what a silent center means
            except Exception as e:  # one job's trouble is its own: it must not stop the loop for the others
                run.poll_errors += 1
                log.warning("poll of %s failed (%d): %s", run.job_id, run.poll_errors, e)
                if run.poll_errors >= POLL_ERRORS:
                    status = EngineStatus("failed", None, f"cannot be tracked on {run.center}: {str(e)[:200]}")
                    with contextlib.suppress(Exception):
                        self.fleet.of(run.center).cancel(run.handle)
                    if not run.running:
                        self.started(run, now)
                    self._ended(run, status, now)
                continue
            run.poll_errors = 0
            self.on_status(run, status, now)

    def on_status(self, run: Run, status: EngineStatus, now: float) -> None:
        """What a run's engine says of it, carried into the store and the scheduler's state."""
        if status.state == "queued":
            if not run.running:
                self._queued(run, status, now)
            return
        if status.state == "lost":  # the center does not have it: never started there, or gone
            if not run.running:
                self.back_to_queue(run, now, f"requeued: {status.reason}")
                return
            status = EngineStatus("failed", None, f"lost at {run.center}: {status.reason}", ended_at=status.ended_at)
        if not run.running and not self.started(run, now, status.started_at):
            return
        if status.state in ("succeeded", "failed"):
            self._ended(run, status, now)

    def _queued(self, run: Run, status: EngineStatus, now: float) -> None:
        waited = now - run.since
        if waited <= self.settings.queue_limit:
            self.waits.note(run.job_id, f"queued at {run.center}: {status.reason}", status.expected_start)
            return
        try:
            self.fleet.of(run.center).cancel(run.handle or "")
        except (OSError, EngineDown) as e:
            log.warning("could not withdraw %s from %s: %s", run.job_id, run.center, e)
            return
        self.back_to_queue(run, now, f"withdrawn from {run.center}'s queue after {waited:.0f} s ({status.reason})")
        self.drains.observe(now, only=run.center)  # its view of that center was stale

    def back_to_queue(self, run: Run, now: float, why: str) -> None:
        try:
            self.store.transition(run.job_id, JobState.PENDING, now, why)
        except ValueError:
            return  # cancelled meanwhile: the feed settles it
        self.runs.pop(run.job_id, None)
        self.carrier.held.pop(run.job_id, None)
        self.waits.forget(run.job_id)
        self.state.unplace(run.job_id)
        self.requeue(run.job_id)

    def started(self, run: Run, now: float, at: float | None = None) -> bool:
        """The run started `at` (its center said when: a report that arrived late), never before it was
        placed nor after now."""
        at = now if at is None else min(now, max(at, run.since))
        try:
            self.store.transition(run.job_id, JobState.RUNNING, at, f"started on {run.key}",
                                  engine_handle=run.handle, attempts=run.attempt)
        except ValueError:
            return False  # cancelled meanwhile
        run.running, run.since = True, at
        self.jobs[run.job_id].attempts = run.attempt
        self.waits.forget(run.job_id)
        self.state.started(run.job_id, at)
        return True

    def _ended(self, run: Run, status: EngineStatus, now: float) -> None:
        rec = self.store.get(run.job_id)
        if rec is None or rec.state is not JobState.RUNNING:
            return  # cancelled meanwhile: its end is already recorded
        if status.ended_at is not None:  # it ended while its center could not tell (a partition): metered to then
            now = min(now, max(status.ended_at, rec.updated_at))
        usage = self._usage(run, rec, now)
        try:
            if status.state == "succeeded":
                self.store.transition(run.job_id, JobState.SUCCEEDED, now, "exit 0", usage=usage, exit_code=0)
                if self.stager is not None and run.job_id in self.jobs:
                    self.stager.succeeded(run, self.jobs[run.job_id])
            else:
                self.store.transition(run.job_id, JobState.FAILED, now, status.reason, usage=usage,
                                      exit_code=status.exit_code, reason=status.reason)
        except ValueError:
            return
        self.state.end(run.job_id, now)
        self.drop(run.job_id)

    def _usage(self, run: Run, rec: object, now: float) -> list[dict[str, object]]:
        """Usage rows of a run that ended, with what the engine measured of it when it did."""
        try:
            measured = self.fleet.of(run.center).usage(run.handle) if run.handle else None
        except Exception:  # billing must not wait for (or fail with) an engine's accounting
            measured = None
        return self.meter.run_rows(rec, now, measured)  # type: ignore[arg-type]

    def agent_samples(self) -> int:
        """What remote centers' agents measured of their runs (their own Prometheus), into the store."""
        n = 0
        for link in self.links.values():
            for sample, at in link.take_samples():
                self.meter.usage.add_sample(split(sample.handle)[0], at, sample.busy, f"{sample.source} (via agent)",
                                            sample.watts, sample.memory_gib)
                n += 1
        return n

    def sampled(self) -> list[Sampled]:
        """The running jobs, as the device sampler reads them."""
        with self.lock:
            return [Sampled(r.job_id, r.center, r.pool, r.nodes, r.devices) for r in self.runs.values() if r.running]

    def start_sampling(self, stop: threading.Event) -> threading.Thread:
        """Sample devices on a thread of its own from now on (the step no longer does)."""
        self._sampling_thread = True

        def sample() -> None:
            self.sampler.sample(self.sampled(), time.time())
            self.agent_samples()
        return sample_in_thread(sample, self.sample_every, stop)
