"""Jobs in the store. Every state change is one transaction that checks the lifecycle, updates the job
and appends a timestamped transition, so the store never holds a half-made change: a control process
killed at any point restarts from a consistent record."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from zhisuan.model import JobSpec, JobState, check_transition
from zhisuan.store.ledger import InsufficientFunds, hold, settle
from zhisuan.store.schema import IdempotencyRow, JobRow, TransitionRow, UsageRow

UPDATABLE = {"center", "pool", "nodes", "devices_per_node", "devices", "engine_handle", "exit_code", "reason",
             "attempts"}
JSON_FIELDS = {"nodes", "devices"}


@dataclass(frozen=True)
class JobRecord:
    id: str
    tenant: str
    name: str
    spec: JobSpec
    state: JobState
    priority: int
    submitted_at: float
    updated_at: float
    center: str | None
    pool: str | None
    nodes: tuple[int, ...]
    devices_per_node: int | None
    devices: tuple[tuple[str, ...], ...]
    engine_handle: str | None
    exit_code: int | None
    reason: str | None
    attempts: int
    wait_reason: str | None = None
    expected_start: float | None = None
    owner: str | None = None  # who of its project submitted it (None: the control plane, or before owners)


@dataclass(frozen=True)
class Transition:
    job_id: str
    from_state: JobState | None
    to_state: JobState
    at: float
    reason: str
    id: int = 0
    actor: str = "zhisuan"


class Insert:
    """An insert of named columns compiled once for the store's dialect and run as the driver's own statement:
    the API's submit is the control plane's hot path, and SQLAlchemy's per-call compile-and-cache walk cost
    more than SQLite's insert and commit together (about 0.2 ms of a 0.45 ms batch of one). Still inside the
    connection's transaction, its events (the lease's fence) and its error wrapping (IntegrityError)."""

    def __init__(self, engine: Engine, row: Any, columns: tuple[str, ...]) -> None:
        compiled = insert(row).compile(dialect=engine.dialect, column_keys=list(columns))
        self.sql = compiled.string
        self.order = compiled.positiontup  # positional drivers (SQLite: ?), else None (psycopg: %(name)s)
        table = row.__table__
        self.convert = {c: f for c in columns if (f := table.c[c].type.bind_processor(engine.dialect)) is not None}

    def run(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.convert:
            rows = [{k: (self.convert[k](v) if k in self.convert else v) for k, v in r.items()} for r in rows]
        conn.exec_driver_sql(self.sql, [tuple(r[k] for k in self.order) for r in rows] if self.order else rows)


ACTIVE = {JobState.PENDING, JobState.SCHEDULED, JobState.STAGING, JobState.RUNNING, JobState.PREEMPTED}


def _record(row: JobRow) -> JobRecord:
    return JobRecord(
        id=row.id, tenant=row.tenant, name=row.name, spec=JobSpec.model_validate_json(row.spec),
        state=JobState(row.state), priority=row.priority, submitted_at=row.submitted_at,
        updated_at=row.updated_at, center=row.center, pool=row.pool,
        nodes=tuple(json.loads(row.nodes)) if row.nodes else (), devices_per_node=row.devices_per_node,
        devices=tuple(tuple(d) for d in json.loads(row.devices)) if row.devices else (),
        engine_handle=row.engine_handle, exit_code=row.exit_code, reason=row.reason, attempts=row.attempts,
        wait_reason=row.wait_reason, expected_start=row.expected_start, owner=row.owner,
    )


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session = sessionmaker(engine, expire_on_commit=False)
        self._hot: tuple[Insert, Insert, Insert] | None = None  # the submit's inserts, compiled once

    def submit(self, spec: JobSpec, now: float) -> str:
        """Store a validated spec as a pending job; returns its id."""
        return self.submit_record(spec, now).id

    def submit_record(self, spec: JobSpec, now: float, actor: str = "zhisuan", idempotency_key: str | None = None,
                      origin: str = "", hold_fen: int | None = None, owner: str | None = None) -> JobRecord:
        """Store a validated spec as a pending job; returns the stored record (one transaction, no re-read).
        With an idempotency key, a submit the tenant made before with the same key returns that job instead."""
        try:
            return self.submit_many([(spec, now, actor, idempotency_key, origin)], [hold_fen], [owner])[0]
        except (IntegrityError, InsufficientFunds):  # a retry of a stored submit: its hold was taken then
            if idempotency_key is None:
                raise
            with self.engine.connect() as conn:
                earlier = conn.execute(select(IdempotencyRow.job_id).where(
                    IdempotencyRow.tenant == spec.tenant, IdempotencyRow.key == idempotency_key)).scalar()
            rec = self.get(earlier) if earlier else None
            if rec is None:
                raise
            return rec

    def submit_many(self, items: list[tuple[JobSpec, float, str, str | None, str]],
                    holds: list[int | None] | None = None, owners: list[str | None] | None = None) -> list[JobRecord]:
        """Store validated specs (spec, now, actor, idempotency key, origin) as pending jobs in one transaction: all or
        none (a key used before fails the whole batch with IntegrityError). `holds`: fen each job of a funded
        project holds, taken first (InsufficientFunds: nothing stored)."""
        ids = [f"j-{uuid.uuid4().hex[:12]}" for _ in items]
        jobs, transitions, keys = self._inserts()
        with self.engine.begin() as conn:
            for i, (spec, now, actor, _, _), fen in zip(ids, items, holds or [None] * len(items), strict=True):
                if fen is not None:
                    hold(conn, spec.tenant, i, fen, now, actor)
            who = owners or [None] * len(items)
            jobs.run(conn, [{"id": i, "tenant": spec.tenant, "name": spec.name, "spec": spec.model_dump_json(),
                             "state": JobState.PENDING.value, "priority": spec.priority, "submitted_at": now,
                             "updated_at": now, "attempts": 0, "owner": owner}
                            for i, (spec, now, _, _, _), owner in zip(ids, items, who, strict=True)])
            transitions.run(conn, [{"job_id": i, "from_state": None, "to_state": JobState.PENDING.value, "at": now,
                                    "reason": "submitted", "actor": actor, "origin": origin[:64]}
                                   for i, (_, now, actor, _, origin) in zip(ids, items, strict=True)])
            keys.run(conn, [{"tenant": spec.tenant, "key": key, "job_id": i, "created_at": now}
                            for i, (spec, now, _, key, _) in zip(ids, items, strict=True) if key is not None])
        return [JobRecord(i, spec.tenant, spec.name, spec, JobState.PENDING, spec.priority, now, now, None, None, (),
                          None, (), None, None, None, 0, owner=owner)
                for i, (spec, now, _, _, _), owner in zip(ids, items, who, strict=True)]

    def _inserts(self) -> tuple[Insert, Insert, Insert]:
        if self._hot is None:
            self._hot = (Insert(self.engine, JobRow, ("id", "tenant", "name", "spec", "state", "priority",
                                                      "submitted_at", "updated_at", "attempts", "owner")),
                         Insert(self.engine, TransitionRow, ("job_id", "from_state", "to_state", "at", "reason",
                                                             "actor", "origin")),
                         Insert(self.engine, IdempotencyRow, ("tenant", "key", "job_id", "created_at")))
        return self._hot

    def transition(self, job_id: str, target: JobState, now: float, why: str = "",
                   usage: list[dict[str, Any]] | None = None, actor: str = "zhisuan", origin: str = "",
                   **fields: Any) -> JobRecord:
        """Move a job to `target` if its lifecycle allows, setting `fields` in the same transaction;
        `why` goes into the transition record; `usage` rows (the run that ends) are stored with it, so a
        run is metered exactly once whatever crashes when."""
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot set {sorted(unknown)} on a job")
        with self.session.begin() as s:
            if s.get_bind().dialect.name == "sqlite":
                # SQLite ignores FOR UPDATE, and its driver reads outside a transaction until the first write: a
                # cancel committed between the read and the write below was overwritten (a cancelled job placed
                # and run). A no-op write of the row first takes the database's write lock for this transaction.
                s.execute(update(JobRow).where(JobRow.id == job_id).values(state=JobRow.state))
            row = s.get(JobRow, job_id, with_for_update=True)
            if row is None:
                raise KeyError(f"no job {job_id}")
            current = JobState(row.state)
            check_transition(current, target)
            for key, value in fields.items():
                setattr(row, key, json.dumps([list(v) if isinstance(v, tuple | list) else v for v in value])
                        if key in JSON_FIELDS and value is not None else value)
            row.state, row.updated_at = target.value, now
            if target is not JobState.PENDING:
                row.wait_reason, row.expected_start = None, None
            s.add(TransitionRow(job_id=job_id, from_state=current.value, to_state=target.value, at=now,
                                reason=why, actor=actor, origin=origin[:64]))
            for u in usage or []:
                s.add(UsageRow(**u))
            if usage or target.terminal:  # the run's charge and the job's hold, if its project is funded
                s.flush()
                settle(s.connection(), job_id, row.tenant, target.terminal, bool(usage), now)
            return _record(row)

    def set_fields(self, job_id: str, state: JobState, **fields: Any) -> bool:
        """Set `fields` of a job that is still in `state`, without a transition (an engine handle, why a
        scheduled job waits in its center's queue); False when it has moved on meanwhile."""
        unknown = set(fields) - UPDATABLE - {"wait_reason", "expected_start"}
        if unknown:
            raise ValueError(f"cannot set {sorted(unknown)} on a job")
        with self.engine.begin() as conn:
            done = conn.execute(update(JobRow).where(JobRow.id == job_id, JobRow.state == state.value).values(**fields))
            return bool(done.rowcount)

    def set_waits(self, waits: list[tuple[str, str | None, float | None]]) -> None:
        """(job id, why it waits, expected start) for jobs still pending or scheduled, in one statement."""
        if not waits:
            return
        waiting = or_(JobRow.state == JobState.PENDING.value, JobRow.state == JobState.SCHEDULED.value)
        stmt = (update(JobRow).where(JobRow.id == bindparam("jid"), waiting)
                .values(wait_reason=bindparam("why"), expected_start=bindparam("when")))
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"jid": j, "why": w, "when": t} for j, w, t in waits])

    def last_transition_id(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(TransitionRow.id))).scalar() or 0)

    def transitions_after(self, floor: int) -> list[Transition]:
        """Every transition with an id above `floor`, in id order (the control loop's event feed)."""
        query = (select(TransitionRow.id, TransitionRow.job_id, TransitionRow.from_state, TransitionRow.to_state,
                        TransitionRow.at, TransitionRow.reason, TransitionRow.actor)
                 .where(TransitionRow.id > floor).order_by(TransitionRow.id))
        with self.engine.connect() as conn:
            return [Transition(job, JobState(a) if a else None, JobState(b), at, why, i, actor)
                    for i, job, a, b, at, why, actor in conn.execute(query)]

    def get(self, job_id: str) -> JobRecord | None:
        with self.session() as s:
            row = s.get(JobRow, job_id)
            return _record(row) if row else None

    def get_many(self, job_ids: list[str]) -> dict[str, JobRecord]:
        """Records of `job_ids` that exist, in few queries (the control loop reading a burst of submissions)."""
        out: dict[str, JobRecord] = {}
        with self.session() as s:
            for i in range(0, len(job_ids), 500):
                for row in s.scalars(select(JobRow).where(JobRow.id.in_(job_ids[i:i + 500]))):
                    out[row.id] = _record(row)
        return out

    def find(self, tenant: str | None = None, states: set[JobState] | None = None) -> list[JobRecord]:
        query = select(JobRow).order_by(JobRow.submitted_at, JobRow.id)
        if tenant is not None:
            query = query.where(JobRow.tenant == tenant)
        if states:
            query = query.where(JobRow.state.in_([st.value for st in states]))
        with self.session() as s:
            return [_record(r) for r in s.scalars(query)]

    def find_naming(self, words: list[str], states: set[JobState]) -> list[JobRecord]:
        """Jobs in `states` whose spec mentions one of `words` (a service's id, in its replicas' environment):
        a narrowing the caller checks exactly, so that finding a few replicas reads a few rows, not the queue."""
        if not words:
            return []
        query = (select(JobRow).where(JobRow.state.in_([st.value for st in states]))
                 .where(or_(*(JobRow.spec.contains(w, autoescape=True) for w in words)))
                 .order_by(JobRow.submitted_at, JobRow.id))
        with self.session() as s:
            return [_record(r) for r in s.scalars(query)]

    def page(self, tenant: str | None, states: set[JobState] | None, before: str | None, limit: int) -> list[JobRecord]:
        """Newest first, at most `limit`, submitted before the job `before` (a cursor: pages stay stable while
        jobs are added)."""
        query = select(JobRow).order_by(JobRow.submitted_at.desc(), JobRow.id.desc()).limit(limit)
        if tenant is not None:
            query = query.where(JobRow.tenant == tenant)
        if states:
            query = query.where(JobRow.state.in_([st.value for st in states]))
        with self.session() as s:
            if before is not None:
                anchor = s.get(JobRow, before)
                if anchor is None:
                    return []
                query = query.where(or_(JobRow.submitted_at < anchor.submitted_at,
                                        (JobRow.submitted_at == anchor.submitted_at) & (JobRow.id < anchor.id)))
            return [_record(r) for r in s.scalars(query)]

    def count_by_state(self) -> dict[str, int]:
        """Jobs per state, counted by the database (for /metrics: no rows are loaded)."""
        query = select(JobRow.state, func.count()).group_by(JobRow.state)
        with self.session() as s:
            return {state: int(n) for state, n in s.execute(query)}

    def ended_since(self, since: float) -> int:
        """Jobs that ended (succeeded, failed, cancelled) at or after `since`, counted by the database."""
        query = (select(func.count()).select_from(JobRow)
                 .where(JobRow.state.in_(["succeeded", "failed", "cancelled"]), JobRow.updated_at >= since))
        with self.session() as s:
            return int(s.scalar(query) or 0)

    def transitions(self, job_id: str) -> list[Transition]:
        query = select(TransitionRow).where(TransitionRow.job_id == job_id).order_by(TransitionRow.id)
        with self.session() as s:
            return [Transition(r.job_id, JobState(r.from_state) if r.from_state else None, JobState(r.to_state),
                               r.at, r.reason, r.id, r.actor) for r in s.scalars(query)]
