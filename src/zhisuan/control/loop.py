"""Reconcile store <-> scheduler <-> engine, one `step(now)` at a time.

A step polls running jobs and records their ends, builds a snapshot from the store (the source of
truth), runs the scheduling cycle and starts what it placed. Each transition is written *before* the
action it announces (scheduled, then submit to the engine, then running), so a process killed at any
point restarts with `recover()`: a job left `scheduled` is re-adopted if the engine had started it,
else requeued; a `running` job whose processes died without an exit code is failed with the reason.
"""

from __future__ import annotations

from zhisuan.engines import LocalEngine
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
from zhisuan.store import JobRecord, JobStore

HELD = {JobState.SCHEDULED, JobState.RUNNING}


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
    def __init__(self, store: JobStore, network: Network, engine: LocalEngine, policy: Policy = DEFAULT) -> None:
        self.store, self.network, self.engine, self.policy = store, network, engine, policy
        self.pools = pools_from_network(network)
        self.pool_of = {f"{c.name}/{p.name}": p for c in network.centers for p in c.pools}

    def recover(self, now: float) -> None:
        """After a restart: settle jobs caught between 'scheduled' and 'running'."""
        for rec in self.store.find(states={JobState.SCHEDULED}):
            handle = self.engine.handle_of(rec.id)
            if handle is not None:
                self.store.transition(rec.id, JobState.RUNNING, now, "re-adopted after a restart", engine_handle=handle)
            else:
                self.store.transition(rec.id, JobState.PENDING, now, "requeued: not started before a restart")

    def step(self, now: float) -> CycleResult:
        self._poll(now)
        result = cycle(self._snapshot(), now, self.policy)
        for start in result.starts:
            self._start(start, now)
        return result

    def _poll(self, now: float) -> None:
        for rec in self.store.find(states={JobState.RUNNING}):
            if rec.engine_handle is None:
                continue
            status = self.engine.poll(rec.engine_handle)
            try:
                if status.state == "succeeded":
                    self.store.transition(rec.id, JobState.SUCCEEDED, now, "exit 0", exit_code=0)
                elif status.state == "failed":
                    self.store.transition(rec.id, JobState.FAILED, now, status.reason, exit_code=status.exit_code,
                                          reason=status.reason)
            except ValueError:
                continue  # cancelled meanwhile: its end is already recorded

    def _snapshot(self) -> Snapshot:
        return live_snapshot(self.store, self.network, self.pools)

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
        try:
            handle = self.engine.submit(rec.id, rec.spec.run, devices, self.pool_of[key].chip.stack,
                                        env=rec.spec.env, timeout=rec.spec.constraints.time_limit)
        except OSError as e:
            self.store.transition(rec.id, JobState.FAILED, now, f"the engine could not start it: {e}", reason=str(e))
            return
        try:
            self.store.transition(rec.id, JobState.RUNNING, now, "started", engine_handle=handle,
                                  attempts=rec.attempts + 1)
        except ValueError:
            self.engine.cancel(handle)  # cancelled while it was being started: stop what the engine began
