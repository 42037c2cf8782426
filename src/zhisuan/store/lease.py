"""Who leads the control plane: a lease row in the store, as Kubernetes controllers' leader election keeps one
in the API server. Several `zhisuan server` replicas on one database; the one holding the lease runs the
control loop. Time is the database's clock, never a replica's, so replicas whose clocks disagree still agree on
who holds it.

Each new leader takes a larger epoch. `fence` makes every transaction on an engine first check that the lease
still carries that epoch (PostgreSQL: under a key-share row lock, so a new leader's take, FOR UPDATE, waits for
a transaction already checked, and any later one sees the new epoch; the holder's renewals change no key and
never wait behind its own busy transactions): a leader that was paused, or cut off, and comes back
after another took over can write nothing — no start, stop or bill — and learns it was replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import Connection

CONTROL = "control"


class Fenced(RuntimeError):
    """This replica's lease was taken by another: what it meant to write is refused."""


@dataclass(frozen=True)
class Holder:
    holder: str
    epoch: int
    expires_in: float  # seconds, by the database's clock (negative: lapsed)


def _now(conn: Connection) -> float:
    if conn.dialect.name == "postgresql":
        return float(conn.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())
    return float(conn.execute(text("SELECT (julianday('now') - 2440587.5) * 86400.0")).scalar_one())


def _row(conn: Connection, name: str, lock: str | None) -> Any:
    clause = f" FOR {lock}" if lock and conn.dialect.name == "postgresql" else ""
    return conn.execute(text(f"SELECT holder, epoch, expires_at FROM leases WHERE name = :n{clause}"),
                        {"n": name}).first()


class Lease:
    def __init__(self, engine: Engine, holder: str, ttl: float = 10.0, name: str = CONTROL) -> None:
        self.engine, self.holder, self.ttl, self.name = engine, holder, ttl, name
        self.epoch: int | None = None  # held, with this epoch (as of the last acquire)

    def acquire(self) -> int | None:
        """Take the lease if it is free or lapsed, renew it if it is ours: its epoch, or None when another
        holds it (then `epoch` is None too: a lease lost is never renewed)."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # behind a frozen replica's lock: give up, try again next round
                conn.execute(text(f"SET LOCAL lock_timeout = {max(1, int(self.ttl * 1000 / 3))}"))
            now = _now(conn)
            until = now + self.ttl
            if self.epoch is not None and conn.execute(text(
                    "UPDATE leases SET expires_at = :e WHERE name = :n AND holder = :h AND epoch = :p"),
                    {"n": self.name, "h": self.holder, "p": self.epoch, "e": until}).rowcount == 1:
                return self.epoch  # renewed: an update of no key, beside the fence's key-share locks
            row = _row(conn, self.name, "UPDATE")
            if row is None:
                conn.execute(text("INSERT INTO leases (name, holder, epoch, expires_at) VALUES (:n, :h, 1, :e)"),
                             {"n": self.name, "h": self.holder, "e": until})
                self.epoch = 1
            elif row.expires_at <= now and (self.epoch is None or row.epoch == self.epoch):
                self.epoch = int(row.epoch) + 1
                conn.execute(text("UPDATE leases SET holder = :h, epoch = :p, expires_at = :e WHERE name = :n"),
                             {"n": self.name, "h": self.holder, "p": self.epoch, "e": until})
            else:
                self.epoch = None
        return self.epoch

    def release(self) -> None:
        """Let the lease go at once (a clean stop): another replica need not wait for it to lapse."""
        if self.epoch is None:
            return
        with self.engine.begin() as conn:
            conn.execute(text("UPDATE leases SET expires_at = 0 WHERE name = :n AND holder = :h AND epoch = :p"),
                         {"n": self.name, "h": self.holder, "p": self.epoch})
        self.epoch = None

    def current(self) -> Holder | None:
        with self.engine.begin() as conn:
            now = _now(conn)
            row = _row(conn, self.name, None)
        return None if row is None else Holder(row.holder, int(row.epoch), float(row.expires_at) - now)


def fence(engine: Engine, epoch: int, name: str = CONTROL) -> None:
    """Every transaction on `engine` first checks that the lease still carries `epoch` (else Fenced)."""

    @event.listens_for(engine, "begin")
    def _check(conn: Connection) -> None:
        row = _row(conn, name, "KEY SHARE")
        if row is None or int(row.epoch) != epoch:
            now = None if row is None else int(row.epoch)
            raise Fenced(f"the control plane's lease is at epoch {now}, this replica led at epoch {epoch}: "
                         "another replica leads now")
