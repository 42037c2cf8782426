"""API tokens: handed out once in clear, kept only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from zhisuan.store.schema import TokenRow


@dataclass(frozen=True)
class Principal:
    tenant: str
    admin: bool


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, engine: Engine) -> None:
        self.session = sessionmaker(engine, expire_on_commit=False)
        self._known: dict[str, Principal] = {}  # valid tokens seen; tokens are immutable (no revocation yet)

    def issue(self, tenant: str, now: float, admin: bool = False) -> str:
        """A new token for `tenant` (admin tokens see and act on every tenant's jobs)."""
        token = "zs_" + secrets.token_urlsafe(24)
        with self.session.begin() as s:
            s.add(TokenRow(token_hash=_hash(token), tenant=tenant, admin=admin, created_at=now))
        return token

    def principal(self, token: str) -> Principal | None:
        digest = _hash(token)
        known = self._known.get(digest)
        if known is not None:
            return known
        with self.session() as s:
            row = s.get(TokenRow, digest)
        if row is None:
            return None
        self._known[digest] = Principal(row.tenant, row.admin)
        return self._known[digest]
