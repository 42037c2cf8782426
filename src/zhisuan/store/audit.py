"""The audit trail: who did what to the network, when and from where.

Sign-ins and token changes are rows of their own, written in the same transaction as the change they record
(a token issued is never missing from the trail, nor the trail from the token). Job actions are already
recorded with who asked (`transitions.actor`): the trail reads them from there rather than writing each submit
twice, so the hot submit path pays nothing for it. Every field is bounded; an export is JSON lines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session, sessionmaker

from zhisuan.store.schema import AuditRow, TransitionRow

SYSTEM = "zhisuan"  # the actor of what the control plane does by itself (not audited as a person's action)
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


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.session = sessionmaker(engine, expire_on_commit=False)

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
                moves = newest(select(TransitionRow).where(TransitionRow.actor != SYSTEM), TransitionRow.at,
                               TransitionRow.actor)
                if action is not None:
                    moves = moves.where(TransitionRow.to_state == action.removeprefix("job."))
                jobs = [AuditEvent(t.at, t.actor, t.origin, f"job.{t.to_state}", t.job_id, t.reason[:1000])
                        for t in s.scalars(moves)]
        events = sorted(own + jobs, key=lambda e: e.at)
        return events[-limit:]
