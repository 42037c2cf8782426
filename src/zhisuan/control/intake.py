"""What a spec goes through before the store: parsed, its tenant checked, asked of the scheduler's own filters
(shape, chip, region, price; the deadline), its inputs found readable — then stored with the other submits
arriving at the same moment (store/submits.py: one transaction for them all).

The API's submit is the hot path of the control plane: a small spec without inputs is checked on the event
loop itself (CPU only, well under a millisecond) and waits for its batch there, so sixteen clients at once
cost no thread each; a large spec, or one whose inputs must be looked up in the store, is checked on a
worker thread."""

from __future__ import annotations

import anyio

from zhisuan.control.datasets import DataService
from zhisuan.control.errors import Forbidden, PaymentRequired, TooMany, check_key
from zhisuan.control.funds import Funds
from zhisuan.model import JobSpec, Network, SpecError, parse_job_spec
from zhisuan.scheduler.feasibility import Feasibility
from zhisuan.scheduler.framework import Policy
from zhisuan.store import JobRecord, JobStore, Principal
from zhisuan.store.ledger import InsufficientFunds
from zhisuan.store.submits import StoreBehind, SubmitBatcher

INLINE = 4096  # bytes: a spec at most this long is parsed on the event loop


class Intake:
    def __init__(self, store: JobStore, network: Network, policy: Policy, data: DataService,
                 has_stores: bool) -> None:
        self.network, self.data, self.has_stores = network, data, has_stores
        self.feasible = Feasibility(network, policy)  # the pools' table built once
        self.submits = SubmitBatcher(store)
        self.store = store
        self.funds: Funds | None = None  # set by the Service: funded projects' jobs hold their expected cost

    def check_tenant(self, tenant: str) -> None:
        """A tenant must be one of the network's (a network that names none is open to any)."""
        known = {t.name for t in self.network.tenants}
        if known and tenant not in known:
            raise SpecError([("tenant", f"no tenant {tenant!r} in network {self.network.name}")])

    def parse(self, text: str | bytes, who: Principal, now: float | None = None) -> JobSpec:
        """Every check that needs no store: CPU only."""
        spec = parse_job_spec(text, None if who.admin else who.tenant)
        if spec.tenant != who.tenant and not who.admin:
            raise Forbidden(f"tenant: you act for {who.tenant!r}, the spec names {spec.tenant!r}")
        self.check_tenant(spec.tenant)
        self.feasible.check(spec, now)
        if spec.outputs and not self.has_stores:
            raise SpecError([("outputs", "no center of this network has a store to keep them in")])
        return spec

    def validate(self, text: str | bytes, who: Principal, now: float | None = None) -> JobSpec:
        spec = self.parse(text, who, now)
        if spec.inputs:
            self.data.inputs_of(spec)  # each readable and whole, or the error names inputs.<mount>
        return spec

    def _job(self, text: str | bytes, who: Principal, now: float, key: str | None, lookups: bool = True) -> JobSpec:
        check_key(key)
        spec = self.validate(text, who, now) if lookups else self.parse(text, who, now)
        if spec.kind == "service":
            raise SpecError([("kind", "a service is deployed with POST /v1/services (its replicas become jobs)")])
        return spec

    def _held(self, spec: JobSpec, who: Principal, now: float, key: str | None) -> JobRecord | None:
        """A funded project's job, stored with its hold in one transaction (None: the project has no funds,
        the batch stores it). Blocking: a worker thread's."""
        fen = self.funds.hold_for(spec, now) if self.funds is not None else None
        if fen is None:
            return None
        try:
            return self.store.submit_record(spec, now, who.actor, key, who.origin, hold_fen=fen,
                                            owner=who.person or None)
        except InsufficientFunds as e:
            raise PaymentRequired(str(e)) from None

    def submit(self, text: str | bytes, who: Principal, now: float, key: str | None = None) -> JobRecord:
        """Store a job; a retry with the same idempotency key returns the job the first try stored."""
        spec = self._job(text, who, now, key)
        if (held := self._held(spec, who, now, key)) is not None:
            return held
        try:
            return self.submits.submit(spec, now, who.actor, key, who.origin, who.person or None)
        except StoreBehind as e:
            raise TooMany(str(e)) from None

    async def submit_async(self, text: bytes, who: Principal, now: float, key: str | None = None) -> JobRecord:
        """`submit` from the event loop: blocks it for no store call and no large parse."""
        if len(text) > INLINE:
            spec = await anyio.to_thread.run_sync(self._job, text, who, now, key)
        else:
            spec = self._job(text, who, now, key, lookups=False)
            if spec.inputs:
                await anyio.to_thread.run_sync(self.data.inputs_of, spec)
        if self.funds is not None and (not self.funds.is_fresh(now) or spec.tenant in self.funds.funded(now)):
            held = await anyio.to_thread.run_sync(self._held, spec, who, now, key)
            if held is not None:
                return held
        try:
            return await self.submits.submit_async(spec, now, who.actor, key, who.origin, who.person or None)
        except StoreBehind as e:
            raise TooMany(str(e)) from None
