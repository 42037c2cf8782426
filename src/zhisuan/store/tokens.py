"""API tokens: handed out once in clear, kept only as SHA-256 hashes; named publicly by the first 12 hex
digits of that hash; revocable (effective within a second: a cached answer is at most that old) and
optionally expiring."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from zhisuan.store.audit import AuditLog, By, record
from zhisuan.store.schema import TokenRow

RECHECK = 1.0  # seconds a token's validity is taken from the cache before the store is asked again


ROLES = ("member", "viewer", "billing", "operator", "org-admin")  # a token's role; an admin token's is "admin"


@dataclass(frozen=True)
class Principal:
    tenant: str
    admin: bool
    role: str = "member"  # member: submit and see; viewer: see; billing: invoices only (control/roles.py)
    origin: str = field(default="", compare=False)  # the address this request came from (the audit trail's)
    centers: tuple[str, ...] = ()  # an operator's centers (role operator)
    org: str = ""  # an organisation admin's organisation (role org-admin)
    person: str = field(default="", compare=False)  # who holds the token: its label, else the token itself

    @property
    def actor(self) -> str:
        """How the audit trail names who asked."""
        if self.role == "operator":
            return f"operator of {','.join(self.centers)}"[:80]
        if self.role == "org-admin":
            return f"org-admin of {self.org}"[:80]
        return f"admin {self.tenant}" if self.admin else self.tenant


@dataclass(frozen=True)
class TokenInfo:
    id: str
    tenant: str
    admin: bool
    label: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    center: str | None = None  # a center's token: its agent's credential, good for nothing else
    role: str = "member"
    centers: tuple[str, ...] = ()  # an operator's centers
    org: str = ""  # an organisation admin's organisation


def _principal(row: TokenRow) -> Principal:
    role = "admin" if row.admin else row.role
    return Principal(row.tenant, row.admin, role,
                     centers=tuple(c for c in row.scope.split(",") if c) if role == "operator" else (),
                     org=row.scope if role == "org-admin" else "", person=row.label or f"token {row.token_hash[:12]}")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token: str) -> str:
    """The public name of a token: the first 12 hex digits of its hash."""
    return _hash(token)[:12]


class TokenStore:
    def __init__(self, engine: Engine) -> None:
        self.session = sessionmaker(engine, expire_on_commit=False)
        self._known: dict[str, tuple[Principal | str | None, float]] = {}  # hash -> (who, when the store said)
        self.audit = AuditLog(engine)  # token changes are recorded there, in their own transaction

    def issue(self, tenant: str, now: float, admin: bool = False, label: str = "",
              expires_at: float | None = None, center: str | None = None, by: By | None = None,
              role: str = "member", centers: tuple[str, ...] = (), org: str = "") -> str:
        """A new token for `tenant` (admin tokens see and act on every tenant's jobs), or for a center's agent
        (`center`: it speaks for that center only, never for a tenant). Asked `by` someone: on the audit trail."""
        if role not in ROLES:
            raise ValueError(f"no role {role!r}: one of {', '.join(ROLES)}")
        if (role == "operator") != bool(centers) or (role == "org-admin") != bool(org):
            raise ValueError("an operator's token names its centers and an org-admin's its organisation; no other")
        token = ("zc_" if center else "zs_") + secrets.token_urlsafe(24)
        admin = admin and not center
        with self.session.begin() as s:
            s.add(TokenRow(token_hash=_hash(token), tenant="" if center or centers or org else tenant, admin=admin,
                           created_at=now, label=label, expires_at=expires_at, center=center,
                           role="admin" if admin else role, scope=org or ",".join(centers)))
            if by is not None:
                kind = f"center {center}" if center else f"{'admin ' if admin else ''}{tenant}" + (
                    f" as {role}" if role != "member" and not admin else "") + (
                    f" of {org or ','.join(centers)}" if centers or org else "")
                record(s, by, "center-token.create" if center else "token.create", token_id(token), now,
                       f"for {kind}" + (f", label {label}" if label else "")
                       + (f", expires {expires_at:.0f}" if expires_at else ""))
        return token

    def principal(self, token: str, now: float | None = None) -> Principal | None:
        """Who a token speaks for, or None (unknown, revoked, expired)."""
        who = self._lookup(token, now)
        return who if isinstance(who, Principal) else None

    def cached(self, token: str) -> tuple[bool, Principal | None]:
        """(True, who) when the token was checked lately (no database read), else (False, None): an event
        loop answers from memory and asks the database off the loop."""
        hit = self._known.get(_hash(token))
        if hit is None or time.time() - hit[1] >= RECHECK:
            return False, None
        return True, hit[0] if isinstance(hit[0], Principal) else None

    def center_of(self, token: str, now: float | None = None) -> str | None:
        """The center a center token speaks for, or None (not a center token, unknown, revoked, expired)."""
        who = self._lookup(token, now)
        return who if isinstance(who, str) else None

    def _lookup(self, token: str, now: float | None) -> Principal | str | None:
        now = time.time() if now is None else now
        digest = _hash(token)
        cached = self._known.get(digest)
        if cached is not None and now - cached[1] < RECHECK:
            return cached[0]
        with self.session() as s:
            row = s.get(TokenRow, digest)
        valid = row is not None and row.revoked_at is None and (row.expires_at is None or row.expires_at > now)
        who: Principal | str | None = None
        if valid and row is not None:
            who = row.center if row.center else _principal(row)
        if len(self._known) > 100_000:  # forged tokens must not grow the cache without end
            self._known.clear()
        self._known[digest] = (who, now)
        return who

    def list(self, centers: bool = False) -> list[TokenInfo]:
        """Tenants' tokens, or (`centers`) the centers' agents' tokens."""
        with self.session() as s:
            kind = TokenRow.center.is_not(None) if centers else TokenRow.center.is_(None)
            rows = s.scalars(select(TokenRow).where(kind).order_by(TokenRow.created_at))
            return [TokenInfo(r.token_hash[:12], r.tenant, r.admin, r.label, r.created_at, r.expires_at, r.revoked_at,
                              r.center, "admin" if r.admin else r.role, _principal(r).centers, _principal(r).org)
                    for r in rows]

    def revoke(self, token_id: str, now: float, centers: bool = False, by: By | None = None) -> TokenInfo | None:
        """Revoke the token whose id (hash prefix) is `token_id` (a center's with `centers`); None when there is
        no such token. Asked `by` someone: on the audit trail."""
        if len(token_id) < 8 or not all(c in "0123456789abcdef" for c in token_id):
            return None
        with self.session.begin() as s:
            kind = TokenRow.center.is_not(None) if centers else TokenRow.center.is_(None)
            rows = list(s.scalars(select(TokenRow).where(TokenRow.token_hash.startswith(token_id), kind)))
            if len(rows) != 1:
                return None
            row = rows[0]
            if row.revoked_at is None:
                row.revoked_at = now
                if by is not None:
                    record(s, by, "center-token.revoke" if centers else "token.revoke", row.token_hash[:12], now,
                           f"of center {row.center}" if row.center else f"of {row.tenant}")
            who = _principal(row)
            return TokenInfo(row.token_hash[:12], row.tenant, row.admin, row.label, row.created_at, row.expires_at,
                             row.revoked_at, row.center, who.role, who.centers, who.org)
