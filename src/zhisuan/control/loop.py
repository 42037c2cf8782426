"""Reconcile store <-> scheduler <-> engine, one `step(now)` at a time.

A step polls running jobs and records their ends, builds a snapshot from the store (the source of
truth), runs the scheduling cycle and starts what it placed. Each transition is written *before* the
action it announces (scheduled, then submit to the engine, then running), so a process killed at any
point restarts with `recover()`: a job left `scheduled` is re-adopted if the engine had started it,
else requeued; a `running` job whose processes died without an exit code is failed with the reason.

Failover: every `health_every` seconds each center's engine is asked whether it answers. After
`misses` failed checks in a row the center is down: its pools leave the next cycles (pending jobs go
elsewhere) and its running jobs follow their spec's `recovery` (requeue elsewhere, or fail). A
center that answers again is back from the next cycle on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from zhisuan.control.metering import Meter
from zhisuan.control.observe import CycleStats
from zhisuan.engines import Engine, EngineDown, Fleet, Launch, nvml
from zhisuan.model import JobState, Network
from zhisuan.scheduler import (
    DEFAULT,
    CycleResult,
    Policy,
    PoolState,
    RunningJob,
    Snapshot,
    Start,
    TenantState,
    cycle,
    pending_from_spec,
    pools_from_network,
)
from zhisuan.scheduler.snapshot import DEFAULT_DURATION
from zhisuan.store import JobRecord, JobStore, UsageStore

HELD = {JobState.SCHEDULED, JobState.RUNNING}
log = logging.getLogger("zhisuan.control")


def live_snapshot(store: JobStore, network: Network, pools: list[PoolState] | None = None) -> Snapshot:
    """The network as the store has it now: held devices, pending jobs, tenants."""
    running = [
        RunningJob(r.id, r.tenant, f"{r.center}/{r.pool}", r.nodes, r.devices_per_node or 0, r.updated_at,
                   r.updated_at + (r.spec.constraints.time_limit or DEFAULT_DURATION), r.priority)
        for r in store.find(states=HELD)
    ]
    pending = [pending_from_spec(r.id, r.spec, r.submitted_at) for r in store.find(states={JobState.PENDING})]
    tenants = {t.name: TenantState(t.name, t.weight, t.quota_devices) for t in network.tenants}
    return Snapshot(pools if pools is not None else pools_from_network(network), running, pending, tenants)


class ControlLoop:
    def __init__(self, store: JobStore, network: Network, engines: Engine | Fleet, policy: Policy = DEFAULT,
                 health_every: float = 2.0, misses: int = 2) -> None:
        self.store, self.network, self.policy = store, network, policy
        self.fleet = engines if isinstance(engines, Fleet) else Fleet.single(network, engines)
        self.pools = pools_from_network(network)
        self.pool_of = {f"{c.name}/{p.name}": p for c in network.centers for p in c.pools}
        self.health_every, self.misses = health_every, misses
        self.meter = Meter(network, UsageStore(store.engine))
        self.cycles = CycleStats()
        self.failures: dict[str, int] = {}
        self.down: dict[str, str] = {}  # center -> why it is considered down
        self.orphans: dict[str, list[str]] = {}  # center -> handles of jobs requeued away from it while down
        self._checked = float("-inf")
        self._sampled = float("-inf")
        self.sample_every = 10.0

    def recover(self, now: float) -> None:
        """After a restart: settle jobs caught between 'scheduled' and 'running'."""
        for rec in self.store.find(states={JobState.SCHEDULED}):
            try:
                handle = self.fleet.of(rec.center or "").handle_of(rec.id)
            except EngineDown as e:  # cannot tell yet: failover settles it if the center stays silent
                log.warning("cannot re-adopt %s: %s", rec.id, e)
                continue
            if handle is not None:
                self.store.transition(rec.id, JobState.RUNNING, now, "re-adopted after a restart", engine_handle=handle)
            else:
                self.store.transition(rec.id, JobState.PENDING, now, "requeued: not started before a restart")

    def step(self, now: float) -> CycleResult:
        if now - self._checked >= self.health_every:
            self._checked = now
            self.check_health(now)
        if now - self._sampled >= self.sample_every:
            self._sampled = now
            self.sample_devices(now)
        self._poll(now)
        snapshot = self._snapshot()
        t0 = time.perf_counter()
        result = cycle(snapshot, now, self.policy)
        self.cycles.observe(time.perf_counter() - t0)
        for start in result.starts:
            self._start(start, now)
        return result

    def check_health(self, now: float) -> None:
        for center in self.network.centers:
            try:
                self.fleet.of(center.name).health()
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
                self._stop_orphans(center.name)

    def _stop_orphans(self, center: str) -> None:
        """Jobs that were requeued elsewhere may still run on a center that comes back: stop them there,
        so a requeued job does not run twice."""
        for handle in self.orphans.pop(center, []):
            try:
                self.fleet.of(center).cancel(handle)
            except (OSError, EngineDown) as e:
                log.warning("could not stop %s on %s: %s", handle, center, e)

    def sample_devices(self, now: float) -> None:
        """NVML samples of running jobs on NVML-discovered pools: busy, watts and memory, stored as measured."""
        for rec in self.store.find(states={JobState.RUNNING}):
            pool = self.pool_of.get(f"{rec.center}/{rec.pool}")
            if pool is None or pool.discover != "nvml" or not rec.devices:
                continue
            try:
                s = nvml.sample([int(d) for ids in rec.devices for d in ids])
            except Exception as e:  # NVML's errors are classes of their own; a sampler must not stop the loop
                log.warning("NVML sample of %s failed: %s", rec.id, e)
                continue
            self.meter.usage.add_sample(rec.id, now, s.busy_fraction, "nvml", s.watts, s.memory_gib)

    def _fail_over(self, center: str, why: str, now: float) -> None:
        """Running jobs of a down center follow their recovery policy."""
        for rec in self.store.find(states=HELD):
            if rec.center != center:
                continue
            try:
                if rec.engine_handle:
                    self.orphans.setdefault(center, []).append(rec.engine_handle)
                usage = self.meter.run_rows(rec, now)  # billed up to when the center was declared down
                if rec.spec.recovery == "requeue" and rec.state is JobState.RUNNING:
                    self.store.transition(rec.id, JobState.PREEMPTED, now, f"center {center} down: {why}",
                                          usage=usage)
                    self.store.transition(rec.id, JobState.PENDING, now, "requeued elsewhere (recovery: requeue)")
                elif rec.spec.recovery == "requeue":
                    self.store.transition(rec.id, JobState.PENDING, now, f"center {center} down before start")
                else:
                    self.store.transition(rec.id, JobState.FAILED, now, f"center {center} down: {why}",
                                          usage=usage, reason=f"center {center} down (recovery: fail)")
            except ValueError:
                continue  # ended or cancelled meanwhile

    def _poll(self, now: float) -> None:
        for rec in self.store.find(states={JobState.RUNNING}):
            if rec.engine_handle is None or rec.center in self.down:
                continue
            try:
                status = self.fleet.of(rec.center or "").poll(rec.engine_handle)
            except EngineDown:
                continue  # the health check decides what a silent center means
            try:
                if status.state == "succeeded":
                    self.store.transition(rec.id, JobState.SUCCEEDED, now, "exit 0",
                                          usage=self._usage(rec, now), exit_code=0)
                elif status.state == "failed":
                    self.store.transition(rec.id, JobState.FAILED, now, status.reason, usage=self._usage(rec, now),
                                          exit_code=status.exit_code, reason=status.reason)
            except ValueError:
                continue  # cancelled meanwhile: its end is already recorded

    def _usage(self, rec: JobRecord, now: float) -> list[dict[str, object]]:
        """Usage rows of a run that ended, with what the engine measured of it when it did."""
        try:
            measured = self.fleet.of(rec.center or "").usage(rec.engine_handle) if rec.engine_handle else None
        except (OSError, EngineDown, KeyError, ValueError):
            measured = None  # billing must not wait for an engine's accounting
        return self.meter.run_rows(rec, now, measured)

    def _snapshot(self) -> Snapshot:
        pools = [replace(p, healthy=False) if p.center in self.down else p for p in self.pools]
        return live_snapshot(self.store, self.network, pools)

    def _device_ids(self, key: str, nodes: tuple[int, ...], per_node: int) -> list[list[str]]:
        """Concrete device ids on each placed node: the first free slots, given what running jobs hold."""
        pool = self.pool_of[key]
        slots = pool.device_ids or [str(k) for k in range(pool.devices_per_node)]
        used: dict[int, set[str]] = {}
        for r in self.store.find(states=HELD):
            if f"{r.center}/{r.pool}" == key:
                for n, ids in zip(r.nodes, r.devices, strict=False):
                    used.setdefault(n, set()).update(ids)
        return [[s for s in slots if s not in used.get(n, set())][:per_node] for n in nodes]

    def _start(self, start: Start, now: float) -> None:
        p = start.placement
        key = f"{p.center}/{p.pool}"
        devices = self._device_ids(key, p.nodes, p.devices_per_node)
        try:
            rec: JobRecord = self.store.transition(
                start.job_id, JobState.SCHEDULED, now, f"placed on {key} (score {start.score:.1f})", center=p.center,
                pool=p.pool, nodes=p.nodes, devices_per_node=p.devices_per_node, devices=devices)
        except ValueError:
            return  # cancelled since the snapshot was taken
        engine = self.fleet.of(p.center)
        launch = Launch(rec.id, rec.name, rec.spec.run, self.pool_of[key], p.nodes, p.devices_per_node, devices,
                        dict(rec.spec.env), rec.spec.constraints.time_limit, rec.spec.image)
        try:
            handle = engine.submit(launch)
        except EngineDown as e:
            self.store.transition(rec.id, JobState.PENDING, now, f"requeued: {p.center} did not take it ({e})")
            return
        except OSError as e:
            self.store.transition(rec.id, JobState.FAILED, now, f"the engine could not start it: {e}", reason=str(e))
            return
        try:
            self.store.transition(rec.id, JobState.RUNNING, now, "started", engine_handle=handle,
                                  attempts=rec.attempts + 1)
        except ValueError:
            engine.cancel(handle)  # cancelled while it was being started: stop what the engine began
