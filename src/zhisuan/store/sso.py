"""Browser sign-ins under way, kept until the provider sends the browser back (at most LOGIN_TTL)."""

from __future__ import annotations

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from zhisuan.store.schema import SsoLoginRow

LOGIN_TTL = 600.0  # seconds a sign-in may take at the provider
MAX_PENDING = 10_000  # sign-ins under way at once: a flood of /v1/sso/login fills no disk


class TooManyLogins(RuntimeError):
    pass


class PendingLogins:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, state: str, verifier: str, nonce: str, next_path: str, now: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(SsoLoginRow).where(SsoLoginRow.created_at < now - LOGIN_TTL))
            if (conn.execute(select(func.count()).select_from(SsoLoginRow)).scalar() or 0) >= MAX_PENDING:
                raise TooManyLogins(f"{MAX_PENDING} sign-ins are under way; try again in a few minutes")
            conn.execute(insert(SsoLoginRow), {"state": state, "verifier": verifier, "nonce": nonce,
                                               "next": next_path, "created_at": now})

    def spend(self, key: str, until: float) -> bool:
        """Record a one-time credential (an ID token's hash) as used until `until`; False if it already was."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(SsoLoginRow), {"state": key[:64], "verifier": "", "nonce": "", "next": "",
                                                   "created_at": until})  # kept until it expires (LOGIN_TTL after)
        except IntegrityError:
            return False
        return True

    def take(self, state: str, now: float) -> tuple[str, str, str] | None:
        """(verifier, nonce, next) of a sign-in, once: a callback replayed finds nothing."""
        with self.engine.begin() as conn:
            row = conn.execute(select(SsoLoginRow).where(SsoLoginRow.state == state)).first()
            if row is None:
                return None
            gone = conn.execute(delete(SsoLoginRow).where(SsoLoginRow.state == state))
            if gone.rowcount != 1:  # another replica took it meanwhile
                return None
        if row.created_at < now - LOGIN_TTL:
            return None
        return row.verifier, row.nonce, row.next
