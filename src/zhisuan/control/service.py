"""What tenants can do, independent of how they ask (HTTP today): submit, look, cancel, quote.

Every check happens before anything is written: a spec that fails validation, names an unknown chip
or asks for a gang no pool can hold is refused with the field named and leaves no trace in the store.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhisuan.control.errors import Conflict, Forbidden, NotFound, TooMany, Unavailable, check_key
from zhisuan.control.funds import Funds
from zhisuan.control.gate import FundsGate
from zhisuan.control.intake import Intake
from zhisuan.control.keeper import ServiceKeeper
from zhisuan.control.loop import ControlLoop
from zhisuan.control.metering import Meter
from zhisuan.control.observe import CycleStats, Labels, gauges, sim_reports
from zhisuan.control.operator import Operators
from zhisuan.control.overview import DayTotal, centers_json, local_midnight, overview
from zhisuan.control.staging import data_services
from zhisuan.control.view import LiveView
from zhisuan.engines import Engine, EngineDown
from zhisuan.metering.invoice import Invoice, invoice, local_month, month_window, services_section
from zhisuan.metering.usage import UsageInterval
from zhisuan.metering.utilization import by_tenant, utilization
from zhisuan.model import JobSpec, JobState, Network, SpecError
from zhisuan.model.units import format_duration
from zhisuan.scheduler import Candidate, pending_from_spec
from zhisuan.scheduler.explain import explain
from zhisuan.store import (
    JobRecord,
    JobStore,
    Principal,
    ServiceRecord,
    ServiceStore,
    TokenUsageStore,
    Transition,
    UsageStore,
)
from zhisuan.store.datasets import DatasetStore
from zhisuan.store.services import SERVICE_ENV

SYSTEM = Principal("zhisuan", True)  # who acts when zhisuan itself cancels (a stopped service's replicas)


MAX_FOLLOWS = 8  # log follow streams a tenant may hold open at once
COST_EVERY = 30.0  # seconds a service list's cost figures are reused
MAX_SERVICES = 32  # active model services per tenant (the keeper visits each every step)
MAX_WINDOW = 400 * 86400.0  # seconds a utilization report may span
MAX_BUCKETS = 10_000


@dataclass
class Service:
    """Tenant-facing operations over the store and the live loop's published view (never its locks)."""

    store: JobStore
    network: Network
    loop: ControlLoop
    reports: Path | None = None  # folder of `zhisuan sim` reports shown by the dashboard
    usage: UsageStore = field(init=False)
    meter: Meter = field(init=False)

    def __post_init__(self) -> None:
        self.follows: dict[str, int] = {}  # tenant -> log follow streams open
        self.fleet = self.loop.fleet
        self.usage = UsageStore(self.store.engine)
        self.meter = Meter(self.network, self.usage)
        self.service_store = ServiceStore(self.store.engine)
        self.token_usage = TokenUsageStore(self.store.engine)
        self._costs: dict[str, tuple[float, dict[tuple[str, str], float]]] = {}  # tenant -> (when, cost)
        self.flush_tokens: Callable[[], None] | None = None  # the gateway's meter into the store (set with it)
        self.keeper = ServiceKeeper(self.store, self.service_store, self.network, self.fleet,
                                    lambda job_id, now: self.cancel(job_id, SYSTEM, now))
        self.leading: Callable[[], bool] = lambda: True  # this replica runs the loop (serve/leader.py)
        # before the picture (loop.view) is read: a follower's is rebuilt then if it is old (serve/leader.py)
        self.fresh: Callable[[], None] = lambda: None
        self.control_plane: Callable[[], dict[str, Any]] = lambda: {"leads": True, "leader": None, "epoch": None}
        self.loop.keeper = self.keeper
        self.data, self.mover = data_services(self.loop, self.network, DatasetStore(self.store.engine))
        self.intake = Intake(self.store, self.network, self.loop.policy, self.data, self.mover is not None)
        self.funds = self.intake.funds = Funds(self.store, self.network, self.intake.feasible, self.meter)
        self.loop.gate = gate = FundsGate(self.loop, self.funds.check)
        self.funds.changed = gate.touch
        self.funds.data_bill = self.data.month_cost
        self.funds.invoice = lambda tenant, month, now: self.invoice(tenant, month, SYSTEM, now)
        self.operators = Operators(self.store, self.network, self.loop.drains.touch)

    @property
    def down(self) -> dict[str, str]:
        """Centers the control loop considers down, and why."""
        return self.view().down

    def view(self) -> LiveView:
        """The control loop's picture (a follower's: rebuilt now if it is old)."""
        self.fresh()
        return self.loop.view

    @property
    def cycles(self) -> CycleStats:
        return self.loop.cycles

    def _engine(self, rec: JobRecord) -> Engine:
        return self.fleet.of(rec.center or "")

    def validate(self, text: str | bytes, who: Principal, now: float | None = None) -> JobSpec:
        return self.intake.validate(text, who, now)

    def check_tenant(self, tenant: str) -> None:
        self.intake.check_tenant(tenant)

    def submit(self, text: str | bytes, who: Principal, now: float, idempotency_key: str | None = None) -> JobRecord:
        """Store a job; a retry with the same idempotency key returns the job the first try stored."""
        return self.intake.submit(text, who, now, idempotency_key)

    async def submit_async(self, text: bytes, who: Principal, now: float, key: str | None = None) -> JobRecord:
        return await self.intake.submit_async(text, who, now, key)

    def deploy(self, text: str | bytes, who: Principal, now: float,
               idempotency_key: str | None = None) -> ServiceRecord:
        """Store a model service (`kind: service`); the keeper starts its replicas as jobs. A retry with the
        same idempotency key returns the service the first try stored."""
        check_key(idempotency_key)
        spec = self.validate(text, who, now)
        if spec.kind != "service":
            raise SpecError([("kind", "a service spec says kind: service (jobs go to POST /v1/jobs)")])
        if idempotency_key is not None and (earlier := self.service_store.by_key(spec.tenant, idempotency_key)):
            return earlier
        if len(self.service_store.list(spec.tenant, active_only=True)) >= MAX_SERVICES:
            raise TooMany(f"tenant {spec.tenant} has {MAX_SERVICES} active services; stop one first")
        if spec.service is not None:
            self.funds.check_deploy(spec, spec.service.replicas.min, now)
        return self.service_store.create(spec, now, idempotency_key)

    def service(self, service_id: str, who: Principal) -> ServiceRecord:
        svc = self.service_store.get(service_id)
        if svc is None or (svc.tenant != who.tenant and not who.admin):
            raise NotFound(service_id, "service")
        return svc

    def services(self, who: Principal, now: float | None = None) -> list[dict[str, Any]]:
        """The caller's services with their replicas (job ids, centers, ready or not), their load (requests
        in flight, tokens served since the server started) and this month's cost of their replicas."""
        now = time.time() if now is None else now
        _, endpoints = self.keeper.endpoints()
        load = self.keeper.load() if self.keeper.load is not None else {}
        retired = self.keeper.retired_tokens or (lambda _: 0)
        mine_all = self.service_store.list(None if who.admin else who.tenant)
        cost: dict[tuple[str, str], float] = {}
        for tenant in sorted({s.tenant for s in mine_all if s.state == "active"}):
            cost.update(self._service_cost(tenant, now))
        out = []
        for svc in mine_all:
            mine = [e for e in endpoints if e.service == svc.id]
            replicas = sorted(self.keeper.replicas.get(svc.id, ()))
            out.append({"id": svc.id, "name": svc.name, "tenant": svc.tenant, "model": svc.model, "state": svc.state,
                        "desired": svc.desired, "replicas": replicas,
                        "ready": [{"job": e.replica, "center": e.center} for e in mine if e.ready],
                        "inflight": sum(load.get(j, (0, 0))[0] for j in replicas),
                        "tokens": sum(load.get(j, (0, 0))[1] for j in replicas) + retired(svc.id),
                        "cny_month": cost.get((svc.tenant, svc.model)), "created_at": svc.created_at,
                        "failures": self.keeper.failures.get(svc.id, 0), "retry_at": self.keeper.retry_at.get(svc.id)})
        return out

    def _service_cost(self, tenant: str, now: float) -> dict[tuple[str, str], float]:
        """This month's ¥ per (tenant, model), from the invoice, kept for COST_EVERY seconds: the dashboard
        polls the service list every second or two, and a month's invoice reads every run of the tenant."""
        known = self._costs.get(tenant)
        if known is None or now - known[0] >= COST_EVERY:
            lines = self.invoice(tenant, local_month(now), SYSTEM, now).services
            known = self._costs[tenant] = (now, {(tenant, x.model): x.cny for x in lines})
        return known[1]

    def stop_service(self, service_id: str, who: Principal, now: float) -> ServiceRecord:
        self.service(service_id, who)
        self.service_store.stop(service_id, now)
        return self.service(service_id, who)

    def job(self, job_id: str, who: Principal) -> JobRecord:
        rec = self.store.get(job_id)
        if rec is None or (rec.tenant != who.tenant and not who.admin):
            raise NotFound(job_id)  # another tenant's job is indistinguishable from none
        return rec

    def history(self, job_id: str, who: Principal) -> list[Transition]:
        self.job(job_id, who)
        return self.store.transitions(job_id)

    def jobs(self, who: Principal, states: set[JobState] | None = None, before: str | None = None,
             limit: int = 500) -> list[JobRecord]:
        """The caller's jobs (an admin's: everyone's), newest first, a page at a time."""
        return self.store.page(None if who.admin else who.tenant, states, before, limit)

    def cancel(self, job_id: str, who: Principal, now: float) -> JobRecord:
        """Record the cancel first, then stop the job on its engine: written before acting, so the control
        loop, which only polls running jobs, cannot meanwhile record the killed job as failed."""
        rec = self.job(job_id, who)
        if rec.state.terminal:
            return rec
        if not who.admin and rec.owner and who.person and rec.owner != who.person:
            raise Forbidden(f"job: you may cancel the jobs you submitted; {job_id} is another member's of project "
                            f"{rec.tenant}")
        try:
            done = self.store.transition(job_id, JobState.CANCELLED, now, f"cancelled by {who.actor}",
                                         usage=self.meter.run_rows(rec, now), actor=who.actor, origin=who.origin)
        except ValueError:  # it ended (or moved on) between the read and the write: report how it stands
            return self.job(job_id, who)
        if rec.state in (JobState.RUNNING, JobState.SCHEDULED) and rec.engine_handle and self.leading():
            self._engine(rec).cancel(rec.engine_handle)  # elsewhere the leader does, reading the cancel
        return done

    def logs(self, job_id: str, who: Principal) -> str:
        rec = self.job(job_id, who)
        try:
            return self._engine(rec).logs(rec.engine_handle) if rec.engine_handle else ""
        except (OSError, EngineDown) as e:
            raise Unavailable(f"the logs of {job_id} are at center {rec.center}, which cannot give them now: "
                              f"{str(e)[:300]}") from e

    def follow_logs(self, job_id: str, who: Principal, poll: float = 0.25) -> AsyncIterator[str]:
        """A job's logs as they are written, until it ends (like `kubectl logs -f`): waits while it is
        pending, then streams whole lines, then what is left once it has ended. Refused (TooMany) before
        anything is sent when the tenant already holds MAX_FOLLOWS streams."""
        if self.follows.get(who.tenant, 0) >= MAX_FOLLOWS:
            raise TooMany(f"at most {MAX_FOLLOWS} log streams at once per tenant; close one first")
        return self._counted(job_id, who, poll)

    async def _counted(self, job_id: str, who: Principal, poll: float) -> AsyncIterator[str]:
        """Counted while it streams (a stream never started never counts: nothing to leak)."""
        self.follows[who.tenant] = self.follows.get(who.tenant, 0) + 1
        try:
            async for chunk in self._follow(job_id, who, poll):
                yield chunk
        finally:
            self.follows[who.tenant] -= 1

    async def _follow(self, job_id: str, who: Principal, poll: float) -> AsyncIterator[str]:
        """Off the event loop: the store, and the center (its agent, across a WAN) are asked from a thread."""
        offsets: dict[str, int] = {}
        while True:
            rec = await asyncio.to_thread(self.job, job_id, who)
            if rec.engine_handle and not rec.state.terminal:
                try:
                    chunk = await asyncio.to_thread(self._engine(rec).log_delta, rec.engine_handle, offsets)
                except (OSError, EngineDown):  # its start not yet at the center, or the center out of reach
                    chunk = ""  # asked again at the next poll, as long as the job runs
                if chunk:
                    yield chunk
            if rec.state.terminal:
                if rec.engine_handle:
                    try:
                        rest = await asyncio.to_thread(self._engine(rec).log_rest, rec.engine_handle, offsets)
                    except (OSError, EngineDown) as e:
                        rest = f"[zhisuan] the rest of the logs are at center {rec.center}, which cannot give " \
                               f"them now: {str(e)[:300]}\n"
                    if rest:
                        yield rest
                return
            await asyncio.sleep(poll)

    def centers(self) -> list[dict[str, object]]:
        """Every center with its pools: chip, size, capacity in P, devices free now and held by the center's
        own load (its users' jobs, nodes drained or down)."""
        return centers_json(self.network, self.view().held(), self.down)

    def overview(self, who: Principal, now: float) -> dict[str, Any]:
        """The console's KPIs, per-center occupancy and queue, job flows and alerts (`control/overview.py`)."""
        since = local_midnight(now)
        running = self.store.find(states={JobState.RUNNING})
        today = [*(DayTotal(**row) for row in self.usage.totals(since, now)),
                 *(DayTotal.of(u) for u in self.meter.open_intervals(running, now, since, now))]
        out = overview(self.network, self.view(), self.down, today, running, self.store.ended_since(now - 3600),
                       now, None if who.admin else who.tenant)
        out["alerts"] += self.funds.alerts(now, None if who.admin else who.tenant)
        return out

    def tenants(self, who: Principal) -> list[dict[str, object]]:
        return [{"name": t.name, "weight": t.weight, "quota_devices": t.quota_devices} for t in self.network.tenants
                if who.admin or t.name == who.tenant]

    def quote(self, text: str | bytes, who: Principal, now: float) -> tuple[JobSpec, list[Candidate]]:
        spec = self.validate(text, who, now)
        view = self.view()
        pending = pending_from_spec("quote", spec, now, inputs=self.data.inputs_of(spec))
        return spec, self._described(explain(view.snapshot(), pending, now, self.loop.policy, now,
                                             view.reservations), view, who, now)

    def _described(self, candidates: list[Candidate], view: LiveView, who: Principal, now: float,
                   job_id: str | None = None) -> list[Candidate]:
        """What each pool's expected start waits for, in words: the center's own jobs by what their engine
        calls them, zhisuan jobs by id only when they are the caller's own; then the pool's reservations
        (EASY), the job's own first."""
        mine = {r.id for r in view.running if r.tenant == who.tenant} if not who.admin else None
        for c in candidates:
            words: dict[str, None] = {}
            for held_by in c.waits_for:
                own = view.labels.get(held_by.rsplit("@", 1)[0])
                if own is not None:
                    words[f"{c.center}'s own load: {own}"] = None
                elif mine is None or held_by in mine:
                    words[f"zhisuan job {held_by}"] = None
                else:
                    words["zhisuan jobs of other tenants"] = None
            for reserved_for, tenant, start in sorted(c.reserved, key=lambda r: r[0] != job_id):
                when = "now" if start - now <= 0.5 else f"in {format_duration(start - now)}"
                if reserved_for == job_id:
                    words[f"reserved for this job (it starts {when}): later jobs only backfill around it"] = None
                elif who.admin or tenant == who.tenant:
                    words[f"reserved for zhisuan job {reserved_for} (it starts {when})"] = None
                else:
                    words[f"reserved for a job of another tenant (it starts {when})"] = None
            c.waits_for = tuple(words)
        return candidates

    def report_usage(self, job_id: str, who: Principal, now: float, busy_fraction: float,
                     peak_memory_gib: float | None = None, watts: float | None = None) -> None:
        """A running job's own measurement (for chips without a driver sampler): holds until the next one."""
        rec = self.job(job_id, who)
        if rec.state is not JobState.RUNNING:
            raise Conflict(f"job {job_id} is {rec.state.value}: only a running job reports its usage")
        self.usage.add_sample(job_id, now, busy_fraction, "self-report", watts, peak_memory_gib)

    def _metered(self, now: float, since: float, until: float, tenant: str | None = None,
                 center: str | None = None) -> list[UsageInterval]:
        """Stored intervals, and those of runs still going up to `now` (open, not yet billed for good)."""
        running = self.store.find(tenant=tenant, states={JobState.RUNNING})
        return [*self.meter.intervals(tenant=tenant, since=since, until=until, center=center),
                *self.meter.open_intervals(running, now, since, until, center)]

    def invoice(self, tenant: str, month: str, who: Principal, now: float | None = None) -> Invoice:
        """A month's invoice; runs still going are on it up to `now` (the final figure comes when they end)."""
        if tenant != who.tenant and not who.admin:
            raise Forbidden(f"tenant: you act for {who.tenant!r}, not {tenant!r}")
        since, until = month_window(month)
        records = self.store.find(tenant=tenant)
        names = {r.id: r.name for r in records}
        bill = invoice(self._metered(time.time() if now is None else now, since, until, tenant), tenant, month, names)
        if self.flush_tokens is not None:
            self.flush_tokens()
        models = {s.id: s.model for s in self.service_store.list(tenant)}
        model_of = {r.id: models[sid] for r in records if (sid := r.spec.env.get(SERVICE_ENV)) in models}
        bill.services = services_section(bill.lines, model_of, self.token_usage.totals(tenant, since, until))
        bill.add_data(*self.data.bill(tenant, since, until, time.time() if now is None else now))
        return bill

    def utilization(self, who: Principal, since: float, until: float, bucket: float,
                    center: str | None = None, now: float | None = None) -> dict[str, object]:
        """Allocated, busy and idle-while-allocated per center × chip over time, and per tenant (a tenant
        sees every center's totals but only its own tenant line)."""
        for name, value in (("since", since), ("until", until), ("bucket", bucket)):
            if not math.isfinite(value):
                raise SpecError([(name, f"must be a finite number, got {value}")])
        if until <= since:
            raise SpecError([("until", "the window must end after it starts")])
        if until - since > MAX_WINDOW:
            raise SpecError([("until", f"a report spans at most {MAX_WINDOW / 86400:.0f} days")])
        if bucket < 60 or (until - since) / bucket > MAX_BUCKETS:
            raise SpecError([("bucket", f"at least 60 s, and at most {MAX_BUCKETS} buckets in the window")])
        if center is not None and center not in {c.name for c in self.network.centers}:
            raise SpecError([("center", f"no center {center!r} in the network")])
        capacity: dict[tuple[str, str], int] = {}
        for c in self.network.centers:
            for p in c.pools:
                capacity[(c.name, p.accelerator)] = capacity.get((c.name, p.accelerator), 0) + p.devices
        intervals = self._metered(time.time() if now is None else now, since, until, center=center)
        rows = utilization(intervals, capacity, since, until, bucket, center)
        tenants = {t: v for t, v in by_tenant(intervals, since, until).items() if who.admin or t == who.tenant}
        return {"since": since, "until": until, "bucket_s": bucket, "price_version": self.meter.book.version,
                "rows": [{"bucket_start": r.bucket_start, "center": r.center, "chip": r.chip,
                          "capacity_device_hours": r.capacity_device_s / 3600,
                          "allocated_device_hours": r.allocated_device_s / 3600,
                          "measured_device_hours": r.measured_device_s / 3600,
                          "busy_device_hours": r.busy_device_s / 3600, "allocated_pct": r.allocated_pct,
                          "busy_pct": r.busy_pct, "idle_while_allocated_pct": r.idle_while_allocated_pct,
                          "measured_pct": r.measured_pct} for r in rows],
                "tenants": tenants}

    def metrics(self) -> tuple[dict[str, list[tuple[Labels, float]]], CycleStats]:
        """Values for /metrics (gauges and counters) and the scheduling-cycle histogram."""
        return gauges(self.store, self.usage, self.network, self.view()), self.cycles

    def candidates(self, job_id: str, who: Principal, now: float) -> list[Candidate]:
        """Where a pending job could run, best first, with expected start, price and carbon (its "why")."""
        rec = self.job(job_id, who)
        if rec.state is not JobState.PENDING:
            raise Conflict(f"job {job_id} is {rec.state.value}: candidates are shown for pending jobs")
        view = self.view()
        pending = pending_from_spec(rec.id, rec.spec, rec.submitted_at, inputs=self.data.inputs_of(rec.spec))
        return self._described(explain(view.snapshot(), pending, now, self.loop.policy, now, view.reservations),
                               view, who, now, rec.id)

    def sim_reports(self) -> list[dict[str, object]]:
        return sim_reports(self.reports)
