"""Tables. Changing them means a new Alembic revision in migrations/versions."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_submitted", "submitted_at", "id"),
                      Index("ix_jobs_tenant_submitted", "tenant", "submitted_at", "id"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(128))
    spec: Mapped[str] = mapped_column(Text)  # the validated JobSpec as JSON
    state: Mapped[str] = mapped_column(String(16), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    submitted_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    center: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pool: Mapped[str | None] = mapped_column(String(64), nullable=True)
    nodes: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list of node indices
    devices_per_node: Mapped[int | None] = mapped_column(Integer, nullable=True)
    devices: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: device ids per gang member
    engine_handle: Mapped[str | None] = mapped_column(String(128), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    wait_reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it waits (latest cycle / its center)
    expected_start: Mapped[float | None] = mapped_column(Float, nullable=True)  # epoch s, when known
    owner: Mapped[str | None] = mapped_column(String(80), nullable=True)  # who submitted it (control/roles.py)


class TransitionRow(Base):
    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[float] = mapped_column(Float, index=True)  # the audit trail reads the newest first
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(80), default="zhisuan")  # who asked: a tenant, an admin, zhisuan
    origin: Mapped[str] = mapped_column(String(64), default="")  # the address the request came from (audit)


class TokenRow(Base):
    __tablename__ = "tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(80), default="")
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    center: Mapped[str | None] = mapped_column(String(128), nullable=True)  # a center agent's credential
    role: Mapped[str] = mapped_column(String(16), default="member")  # member | viewer | billing | operator | admin
    scope: Mapped[str] = mapped_column(Text, default="")  # an operator's centers, comma-separated


class IdempotencyRow(Base):
    """A submit a client may retry: the same (tenant, key) names the same job, never a second one."""

    __tablename__ = "idempotency"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    created_at: Mapped[float] = mapped_column(Float)


class UsageRow(Base):
    """One metered interval (a local clock hour or part of it) of one run of a job."""

    __tablename__ = "usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    center: Mapped[str] = mapped_column(String(64))
    pool: Mapped[str] = mapped_column(String(64))
    chip: Mapped[str] = mapped_column(String(64))
    start: Mapped[float] = mapped_column(Float, index=True)
    end: Mapped[float] = mapped_column(Float)
    devices: Mapped[float] = mapped_column(Float)  # a share as its fraction; 0: a CPU-only job
    allocated_device_s: Mapped[float] = mapped_column(Float)
    measured_device_s: Mapped[float] = mapped_column(Float)
    busy_device_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    busy_source: Mapped[str] = mapped_column(String(64))
    peak_memory_gib: Mapped[float | None] = mapped_column(Float, nullable=True)
    kwh: Mapped[float] = mapped_column(Float)
    energy_model: Mapped[str] = mapped_column(String(96))
    kg_co2: Mapped[float] = mapped_column(Float)
    tou_period: Mapped[str] = mapped_column(String(16))
    tou_multiplier: Mapped[float] = mapped_column(Float)
    cny: Mapped[float] = mapped_column(Float)
    price_version: Mapped[str] = mapped_column(String(96))
    assumptions: Mapped[str] = mapped_column(Text)
    cpu_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")  # CPU-seconds billed
    gib_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")  # GiB-s beyond a node share


class BusySampleRow(Base):
    """A measurement of a running job: busy fraction (and watts, memory) holding from `at` on."""

    __tablename__ = "busy_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    at: Mapped[float] = mapped_column(Float)
    busy_fraction: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(32))
    watts: Mapped[float | None] = mapped_column(Float, nullable=True)
    peak_memory_gib: Mapped[float | None] = mapped_column(Float, nullable=True)


class ServiceRow(Base):
    __tablename__ = "services"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128), index=True)
    spec: Mapped[str] = mapped_column(Text)  # the validated JobSpec (kind: service) as JSON
    desired: Mapped[int] = mapped_column(Integer)  # replicas wanted now (min..max; autoscaling moves it)
    state: Mapped[str] = mapped_column(String(16), index=True)  # active | stopped
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    # a deploy the client may retry: the same (tenant, key) names the same service, never a second one
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)

    __table_args__ = (UniqueConstraint("tenant", "idempotency_key", name="uq_services_idempotency"),)


class TokenUsageRow(Base):
    __tablename__ = "token_usage"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    hour: Mapped[float] = mapped_column(Float, primary_key=True)  # epoch s of the hour's start
    requests: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    counted_tokens: Mapped[int] = mapped_column(Integer)  # of those, counted or estimated by the gateway


class AuditRow(Base):
    """Who did what to the network, and from where: sign-ins and tokens (job actions are the transitions')."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(80), index=True)  # as transitions name who asked
    origin: Mapped[str] = mapped_column(String(64), default="")  # the client's address as the server saw it
    action: Mapped[str] = mapped_column(String(40), index=True)  # e.g. sign-in, token.create, token.revoke
    subject: Mapped[str] = mapped_column(String(200), default="")  # what it acted on: a token id, a tenant
    detail: Mapped[str] = mapped_column(Text, default="")


class FundsRow(Base):
    """A project's money (fen, integers): a prepaid balance, a monthly budget, or both. `available` and `held`
    are the ledger's two accounts for the project, kept here in the same transaction as every entry, so an
    admission checks and holds in one conditional UPDATE (two racing submits cannot both spend the last yuan)."""

    __tablename__ = "funds"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    prepaid: Mapped[bool] = mapped_column(Boolean, default=False)
    available_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # top-ups less charges less holds
    held_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # expected cost of its queued and running jobs
    budget_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # per local month; None: no budget
    month: Mapped[str] = mapped_column(String(7), default="")  # the month `spent_fen` counts (YYYY-MM)
    spent_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # charged in `month`
    at_zero: Mapped[str] = mapped_column(String(8), default="hold")  # hold: running jobs go on; stop: requeued
    alerted: Mapped[str] = mapped_column(String(16), default="")  # the last alert: "<month>:<percent>"
    updated_at: Mapped[float] = mapped_column(Float, default=0.0)


class LedgerRow(Base):
    """One leg of a double-entry transaction: the legs of a `txn` sum to zero fen."""

    __tablename__ = "ledger"
    __table_args__ = (Index("ix_ledger_tenant_at", "tenant", "at"), Index("ix_ledger_job", "job_id"),
                      Index("ix_ledger_account_at", "account", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    txn: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[float] = mapped_column(Float)
    tenant: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(16))  # available | held | revenue | payments | billed
    fen: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # topup | hold | release | charge | data
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    month: Mapped[str] = mapped_column(String(7))  # the local month it belongs to (a charge: its usage's)
    actor: Mapped[str] = mapped_column(String(80), default="zhisuan")
    memo: Mapped[str] = mapped_column(String(200), default="")


class HoldRow(Base):
    """What a queued or running job of a funded project holds until it ends."""

    __tablename__ = "holds"

    job_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    fen: Mapped[int] = mapped_column(BigInteger)


class DrainRow(Base):
    """A node its center's operator took out of service: running jobs go on, nothing new starts there."""

    __tablename__ = "drains"

    center: Mapped[str] = mapped_column(String(64), primary_key=True)
    pool: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    actor: Mapped[str] = mapped_column(String(80), default="")
    at: Mapped[float] = mapped_column(Float)


class SsoLoginRow(Base):
    """A browser sign-in under way: its state, PKCE verifier and nonce until the provider sends it back (in the
    store, so any replica can take the callback)."""

    __tablename__ = "sso_logins"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    verifier: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(64))
    next: Mapped[str] = mapped_column(String(200), default="/")
    created_at: Mapped[float] = mapped_column(Float, index=True)


class SecretRow(Base):
    """A server-wide secret every replica shares (e.g. the key of the references operators see for jobs)."""

    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
