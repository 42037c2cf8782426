"""What tenants can do, independent of how they ask (HTTP today): submit, look, cancel, quote.

Every check happens before anything is written: a spec that fails validation, names an unknown chip
or asks for a gang no pool can hold is refused with the field named and leaves no trace in the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from zhisuan.control.loop import live_snapshot
from zhisuan.engines import Engine, Fleet
from zhisuan.model import JobSpec, JobState, Network, check_spec, parse_job_spec
from zhisuan.scheduler import Candidate, pending_from_spec
from zhisuan.scheduler.explain import explain
from zhisuan.store import JobRecord, JobStore, Principal, Transition


class Forbidden(PermissionError):
    """The caller may not do this (another tenant's job or name)."""


class NotFound(KeyError):
    """No such job visible to the caller."""


@dataclass
class Service:
    store: JobStore
    network: Network
    engines: Engine | Fleet
    down: dict[str, str] = field(default_factory=dict)  # the control loop's view: center -> why it is down

    def __post_init__(self) -> None:
        self.fleet = self.engines if isinstance(self.engines, Fleet) else Fleet.single(self.network, self.engines)

    def _engine(self, rec: JobRecord) -> Engine:
        return self.fleet.of(rec.center or "")

    def validate(self, text: str | bytes, who: Principal) -> JobSpec:
        spec = parse_job_spec(text)
        if spec.tenant != who.tenant and not who.admin:
            raise Forbidden(f"tenant: you act for {who.tenant!r}, the spec names {spec.tenant!r}")
        check_spec(spec, self.network)
        return spec

    def submit(self, text: str | bytes, who: Principal, now: float) -> JobRecord:
        return self.store.submit_record(self.validate(text, who), now)

    def job(self, job_id: str, who: Principal) -> JobRecord:
        rec = self.store.get(job_id)
        if rec is None or (rec.tenant != who.tenant and not who.admin):
            raise NotFound(job_id)  # another tenant's job is indistinguishable from none
        return rec

    def history(self, job_id: str, who: Principal) -> list[Transition]:
        self.job(job_id, who)
        return self.store.transitions(job_id)

    def jobs(self, who: Principal) -> list[JobRecord]:
        return self.store.find(tenant=None if who.admin else who.tenant)

    def cancel(self, job_id: str, who: Principal, now: float) -> JobRecord:
        rec = self.job(job_id, who)
        if rec.state.terminal:
            return rec
        if rec.state is JobState.RUNNING and rec.engine_handle:
            self._engine(rec).cancel(rec.engine_handle)
        return self.store.transition(job_id, JobState.CANCELLED, now, f"cancelled by {who.tenant}")

    def logs(self, job_id: str, who: Principal) -> str:
        rec = self.job(job_id, who)
        return self._engine(rec).logs(rec.engine_handle) if rec.engine_handle else ""

    async def follow_logs(self, job_id: str, who: Principal, poll: float = 0.25) -> AsyncIterator[str]:
        """A job's logs as they are written, until it ends (like `kubectl logs -f`): waits while it is
        pending, then streams whole lines, then what is left once it has ended."""
        offsets: dict[str, int] = {}
        while True:
            rec = self.job(job_id, who)
            if rec.engine_handle:
                chunk = self._engine(rec).log_delta(rec.engine_handle, offsets)
                if chunk:
                    yield chunk
            if rec.state.terminal:
                rest = self._engine(rec).log_rest(rec.engine_handle, offsets) if rec.engine_handle else ""
                if rest:
                    yield rest
                return
            await asyncio.sleep(poll)

    def centers(self) -> list[dict[str, object]]:
        """Every center with its pools: chip, size, capacity in P, devices free now."""
        held: dict[str, int] = {}
        for r in live_snapshot(self.store, self.network).running:
            held[r.pool] = held.get(r.pool, 0) + r.devices
        return [{
            "name": c.name, "name_zh": c.name_zh, "region": c.region, "engine": c.engine,
            "healthy": c.healthy and c.name not in self.down, "down_reason": self.down.get(c.name),
            "pue": c.pue, "carbon_kg_per_kwh": c.carbon_kg_per_kwh, "pflops": round(c.pflops, 3),
            "pools": [{"name": p.name, "accelerator": p.accelerator, "stack": p.chip.stack, "nodes": p.nodes,
                       "devices_per_node": p.devices_per_node, "devices": p.devices, "pflops": round(p.pflops, 3),
                       "free": p.devices - held.get(f"{c.name}/{p.name}", 0),
                       "price_per_device_hour": p.price_per_device_hour,
                       "assumptions": sorted({*p.assumptions, *c.assumptions})} for p in c.pools],
        } for c in self.network.centers]

    def tenants(self, who: Principal) -> list[dict[str, object]]:
        return [{"name": t.name, "weight": t.weight, "quota_devices": t.quota_devices}
                for t in self.network.tenants if who.admin or t.name == who.tenant]

    def quote(self, text: str | bytes, who: Principal, now: float) -> tuple[JobSpec, list[Candidate]]:
        spec = self.validate(text, who)
        snapshot = live_snapshot(self.store, self.network)
        return spec, explain(snapshot, pending_from_spec("quote", spec, now), now)
