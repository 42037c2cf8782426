"""The audit trail: who did what to the network, when and from where.

Sign-ins and token changes are rows of their own, written in the same transaction as the change they record
(a token issued is never missing from the trail, nor the trail from the token). Job actions are already
recorded with who asked (`transitions.actor`): the trail reads them from there rather than writing each submit
twice, so the hot submit path pays nothing for it. Every field is bounded; an export is JSON lines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Select, and_, insert, or_, select
from sqlalchemy.orm import Session, sessionmaker

from zhisuan.store.schema import AuditRow, TransitionRow

# What the control plane does by itself is not a person's act: its own actors (the loop; the service object
# stopping a service's replicas) and a service's replicas, none asked over the API (no origin). A tenant may be
# named "zhisuan": its requests come from somewhere, and are shown.
SYSTEM = ("zhisuan", "admin zhisuan")
SIGN_IN_EVERY = 600.0  # seconds: a dashboard reloaded again and again signs in once in the trail, not each time
MAX_EVENTS = 10_000  # one answer's most events


@dataclass(frozen=True)
class By:
    """Who asks, as the trail names them (Principal.actor), and the address the request came from."""

    actor: str
    origin: str = ""


@dataclass(frozen=True)
class AuditEvent:
    at: float
    actor: str
    origin: str
    action: str
    subject: str
    detail: str = ""

    def json(self) -> dict[str, object]:
        return asdict(self)


def record(s: Session, by: By, action: str, subject: str, now: float, detail: str = "") -> None:
    """Add one event to the session's transaction (the caller's change and its record commit together)."""
    s.add(AuditRow(at=now, actor=by.actor[:80], origin=by.origin[:64], action=action[:40], subject=subject[:200],
                   detail=detail[:1000]))


def record_conn(conn: Connection, by: By, action: str, subject: str, now: float, detail: str = "") -> None:
    """`record` in a Core transaction (the ledger's)."""
    conn.execute(insert(AuditRow), {"at": now, "actor": by.actor[:80], "origin": by.origin[:64],
                                    "action": action[:40], "subject": subject[:200], "detail": detail[:1000]})


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.session = sessionmaker(engine, expire_on_commit=False)
        self._signed_in: dict[tuple[str, str], float] = {}  # (actor, origin) -> when last recorded

    def signed_in(self, by: By, tenant: str, now: float, detail: str = "") -> None:
        """A sign-in, unless the same actor signed in from the same address within SIGN_IN_EVERY: any token
        may sign in, and must not push everyone else's events out of the trail by repeating it."""
        last = self._signed_in.get((by.actor, by.origin))
        if last is not None and now - last < SIGN_IN_EVERY:
            return
        if len(self._signed_in) > 10_000:
            self._signed_in.clear()
        self._signed_in[(by.actor, by.origin)] = now
        self.record(by, "sign-in", tenant, now, detail)

    def record(self, by: By, action: str, subject: str, now: float, detail: str = "") -> None:
        with self.session.begin() as s:
            record(s, by, action, subject, now, detail)

    def search(self, actor: str | None = None, action: str | None = None, since: float | None = None,
               until: float | None = None, limit: int = 1000) -> list[AuditEvent]:
        """Events oldest first within [since, until), at most `limit` (the newest ones when there are more):
        the trail's own rows and the job actions people asked for (`job.<state>`, subject the job)."""
        limit = max(1, min(limit, MAX_EVENTS))

        def newest(query: Select[Any], at: Any, who: Any) -> Select[Any]:
            query = query.order_by(at.desc()).limit(limit)
            if actor is not None:
                query = query.where(who == actor)
            if since is not None:
                query = query.where(at >= since)
            return query if until is None else query.where(at < until)

        with self.session() as s:
            rows = newest(select(AuditRow), AuditRow.at, AuditRow.actor)
            if action is not None:
                rows = rows.where(AuditRow.action == action)
            own = [AuditEvent(r.at, r.actor, r.origin, r.action, r.subject, r.detail) for r in s.scalars(rows)]
            jobs: list[AuditEvent] = []
            if action is None or action.startswith("job."):
                person = or_(TransitionRow.origin != "", and_(TransitionRow.actor.not_in(SYSTEM),
                                                                     TransitionRow.actor.not_like("service %")))
                moves = newest(select(TransitionRow).where(person), TransitionRow.at, TransitionRow.actor)
                if action is not None:
                    moves = moves.where(TransitionRow.to_state == action.removeprefix("job."))
                jobs = [AuditEvent(t.at, t.actor, t.origin, f"job.{t.to_state}", t.job_id, t.reason[:1000])
                        for t in s.scalars(moves)]
        events = sorted(own + jobs, key=lambda e: e.at)
        return events[-limit:]
