"""Model services in the store: each deployment's spec, the replicas it wants, and whether it is active.
Its replicas are ordinary jobs (their spec's environment names the service), so they are scheduled,
started, recorded and billed as any job is."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from zhisuan.model import JobSpec
from zhisuan.store.db import dialect_insert
from zhisuan.store.schema import ServiceRow, TokenUsageRow

ACTIVE, STOPPED = "active", "stopped"
SERVICE_ENV = "ZHISUAN_SERVICE"  # in a replica job's environment: the id of its service
SERVICE_KEY_ENV = "ZHISUAN_SERVICE_KEY"  # and the bearer key the gateway calls it with (e.g. vllm --api-key)


@dataclass(frozen=True)
class ServiceRecord:
    id: str
    tenant: str
    name: str
    model: str
    spec: JobSpec
    desired: int
    state: str
    created_at: float
    updated_at: float


def _record(row: ServiceRow) -> ServiceRecord:
    return ServiceRecord(row.id, row.tenant, row.name, row.model, JobSpec.model_validate_json(row.spec), row.desired,
                         row.state, row.created_at, row.updated_at)


class ServiceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session = sessionmaker(engine, expire_on_commit=False)

    def create(self, spec: JobSpec, now: float, idempotency_key: str | None = None) -> ServiceRecord:
        """A validated `kind: service` spec as an active service wanting its minimum of replicas. With an
        idempotency key, a deploy the tenant made before with the same key returns that service instead."""
        if spec.service is None:
            raise ValueError("not a service spec")
        row = ServiceRow(id=f"s-{uuid.uuid4().hex[:12]}", tenant=spec.tenant, name=spec.name, model=spec.service.model,
                         spec=spec.model_dump_json(), desired=spec.service.replicas.min, state=ACTIVE, created_at=now,
                         updated_at=now, idempotency_key=idempotency_key)
        try:
            with self.session.begin() as s:
                s.add(row)
        except IntegrityError:
            earlier = self.by_key(spec.tenant, idempotency_key) if idempotency_key is not None else None
            if earlier is None:
                raise
            return earlier
        return _record(row)

    def by_key(self, tenant: str, idempotency_key: str) -> ServiceRecord | None:
        with self.session() as s:
            row = s.scalars(select(ServiceRow).where(ServiceRow.tenant == tenant,
                                                     ServiceRow.idempotency_key == idempotency_key)).first()
            return _record(row) if row is not None else None

    def get(self, service_id: str) -> ServiceRecord | None:
        with self.session() as s:
            row = s.get(ServiceRow, service_id)
            return _record(row) if row is not None else None

    def list(self, tenant: str | None = None, active_only: bool = False) -> list[ServiceRecord]:
        q = select(ServiceRow).order_by(ServiceRow.created_at, ServiceRow.id)
        if tenant is not None:
            q = q.where(ServiceRow.tenant == tenant)
        if active_only:
            q = q.where(ServiceRow.state == ACTIVE)
        with self.session() as s:
            return [_record(r) for r in s.scalars(q)]

    def set_desired(self, service_id: str, desired: int, now: float) -> None:
        with self.session.begin() as s:
            s.execute(update(ServiceRow).where(ServiceRow.id == service_id, ServiceRow.state == ACTIVE)
                      .values(desired=desired, updated_at=now))

    def stop(self, service_id: str, now: float) -> bool:
        """True if it was active (its replicas are then cancelled by the keeper)."""
        with self.session.begin() as s:
            done = s.execute(update(ServiceRow).where(ServiceRow.id == service_id, ServiceRow.state == ACTIVE)
                             .values(state=STOPPED, updated_at=now))
            return bool(done.rowcount)  # type: ignore[attr-defined]


TOKEN_FIELDS = ("requests", "errors", "prompt_tokens", "completion_tokens", "counted_tokens")


class TokenUsageStore:
    """The gateway's meter, kept: counts added per tenant × model × hour (one transaction per flush)."""

    def __init__(self, engine: Engine) -> None:
        self.session = sessionmaker(engine, expire_on_commit=False)

    def add(self, rows: list[tuple[str, str, dict[str, int]]], now: float) -> None:
        """(tenant, model, counts) since the last flush, into the hour of `now`. One statement per row, an upsert
        that adds in the database: API workers flush at once, and a read-then-write lost counts on SQLite (which
        ignores FOR UPDATE) and failed on both when two made the hour's row together."""
        if not rows:
            return
        hour = now - now % 3600
        with self.session.begin() as s:
            make = dialect_insert(s.get_bind().dialect.name)
            for tenant, model, counts in rows:
                stmt = make(TokenUsageRow).values(tenant=tenant, model=model, hour=hour,
                                          **{k: int(counts.get(k, 0)) for k in TOKEN_FIELDS})
                s.execute(stmt.on_conflict_do_update(
                    index_elements=["tenant", "model", "hour"],
                    set_={k: getattr(TokenUsageRow, k) + getattr(stmt.excluded, k) for k in TOKEN_FIELDS}))

    def totals(self, tenant: str, since: float, until: float) -> dict[str, dict[str, int]]:
        """Per model, the sums over hours in [since, until)."""
        cols = [func.sum(getattr(TokenUsageRow, k)) for k in TOKEN_FIELDS]
        q = (select(TokenUsageRow.model, *cols).where(TokenUsageRow.tenant == tenant, TokenUsageRow.hour >= since,
                                                        TokenUsageRow.hour < until).group_by(TokenUsageRow.model))
        with self.session() as s:
            return {r[0]: {k: int(v or 0) for k, v in zip(TOKEN_FIELDS, r[1:], strict=True)} for r in s.execute(q)}
