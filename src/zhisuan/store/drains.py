"""Nodes a center's operator took out of service, with who and why; each change on the audit trail in the
same transaction."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import sessionmaker

from zhisuan.store.audit import By, record
from zhisuan.store.schema import DrainRow


@dataclass(frozen=True)
class Drain:
    center: str
    pool: str
    node: int
    reason: str
    actor: str
    at: float

    def json(self) -> dict[str, object]:
        return asdict(self)


class DrainStore:
    def __init__(self, engine: Engine) -> None:
        self.session = sessionmaker(engine, expire_on_commit=False)

    def drain(self, center: str, nodes: list[tuple[str, int]], reason: str, by: By, now: float) -> int:
        """Take (pool, node) of `center` out of service (again: the reason is updated); how many were not yet."""
        with self.session.begin() as s:
            known = {(r.pool, r.node): r for r in s.scalars(select(DrainRow).where(DrainRow.center == center))}
            new = 0
            for pool, node in nodes:
                row = known.get((pool, node))
                if row is None:
                    s.add(DrainRow(center=center, pool=pool, node=node, reason=reason[:200], actor=by.actor[:80],
                                   at=now))
                    new += 1
                else:
                    row.reason = reason[:200]
            record(s, by, "center.drain", center, now, f"{len(nodes)} node(s) ({new} new): {reason}"
                   + "; " + ", ".join(f"{p}#{n}" for p, n in nodes[:50]))
        return new

    def undrain(self, center: str, nodes: list[tuple[str, int]], by: By, now: float) -> int:
        """Put (pool, node) of `center` back in service; how many were drained."""
        with self.session.begin() as s:
            drained = {(r.pool, r.node) for r in s.scalars(select(DrainRow).where(DrainRow.center == center))}
            gone = [(p, n) for p, n in nodes if (p, n) in drained]
            for pool, node in gone:
                s.execute(delete(DrainRow).where(DrainRow.center == center, DrainRow.pool == pool,
                                                 DrainRow.node == node))
            back = len(gone)
            record(s, by, "center.undrain", center, now, f"{back} node(s) back in service; "
                   + ", ".join(f"{p}#{n}" for p, n in nodes[:50]))
        return back

    def list(self, center: str | None = None) -> list[Drain]:
        query = select(DrainRow).order_by(DrainRow.center, DrainRow.pool, DrainRow.node)
        if center is not None:
            query = query.where(DrainRow.center == center)
        with self.session() as s:
            return [Drain(r.center, r.pool, r.node, r.reason, r.actor, r.at) for r in s.scalars(query)]
