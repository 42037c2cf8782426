"""Admin routes: tokens (create, list, revoke) and the audit trail. Only admin tokens may call them."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from zhisuan.control.errors import Forbidden, NotFound
from zhisuan.control.service import Service
from zhisuan.model import SpecError
from zhisuan.store import Principal, TokenStore
from zhisuan.store.audit import MAX_EVENTS, By
from zhisuan.store.tokens import TokenInfo, token_id

Who = Callable[..., Awaitable[Principal]]


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    tenant: str = Field("", max_length=64, pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]*)?$",
                        description="the tenant it acts for (an operator's token acts for centers instead)")
    admin: bool = False
    role: Literal["member", "viewer", "billing", "operator", "org-admin"] = Field(
        "member", description="member: submit and see; viewer: see; billing: invoices only; operator: its "
        "centers; org-admin: its organisation's members and budgets (not with admin)")
    centers: list[str] = Field(default_factory=list, max_length=64, description="an operator's centers")
    org: str = Field("", max_length=64, description="an org-admin's organisation")
    label: str = Field("", max_length=80)
    expires_in: float | None = Field(None, gt=0, le=10 * 365 * 86400, description="seconds from now")


def by(who: Principal, request: Request) -> By:
    """Who asks and from where, as the audit trail records them."""
    return By(who.actor, request.client.host if request.client else "")


def token_json(t: TokenInfo) -> dict[str, Any]:
    return {"id": t.id, "tenant": t.tenant, "admin": t.admin, "role": t.role, "centers": list(t.centers), "org": t.org,
            "label": t.label,
            "created_at": t.created_at,
            "expires_at": t.expires_at, "revoked_at": t.revoked_at}


def add_admin_routes(app: FastAPI, service: Service, tokens: TokenStore, principal: Who) -> None:
    def admin_only(who: Principal) -> None:
        if not who.admin:
            raise Forbidden("only an admin token manages tokens")

    @app.post("/v1/tokens", status_code=201)
    def create(new: NewToken, request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        """A new token, shown once (only its hash is kept)."""
        admin_only(who)
        if new.admin and new.role != "member":
            raise SpecError([("role", "an admin token runs the network: it takes no tenant role")])
        known = {c.name for c in service.network.centers}
        if new.org and new.role != "org-admin":
            raise SpecError([("org", "only an org-admin's token names an organisation")])
        if new.role == "org-admin":
            if new.org not in service.network.orgs() or new.centers:
                raise SpecError([("org", "an org-admin's token names an organisation of the network: "
                                         + ", ".join(sorted(service.network.orgs())[:20]))])
        elif new.role == "operator":
            if not new.centers or any(c not in known for c in new.centers):
                raise SpecError([("centers", "an operator's token names centers of the network: "
                                             + ", ".join(sorted(known)))])
        elif new.centers:
            raise SpecError([("centers", "only an operator's token names centers")])
        elif not new.tenant:
            raise SpecError([("tenant", "the tenant the token acts for")])
        else:
            service.check_tenant(new.tenant)
        now = time.time()
        token = tokens.issue(new.tenant, now, new.admin, new.label, now + new.expires_in if new.expires_in else None,
                             by=by(who, request), role=new.role, centers=tuple(dict.fromkeys(new.centers)),
                             org=new.org)
        info = next(t for t in tokens.list() if t.id == token_id(token))
        return {**token_json(info), "token": token}

    @app.get("/v1/tokens")
    def listing(who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        admin_only(who)
        return [token_json(t) for t in tokens.list()]

    @app.delete("/v1/tokens/{token_id}")
    def revoke(token_id: str, request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        """Revoke a token by its id; it stops working within a second."""
        admin_only(who)
        info = tokens.revoke(token_id, time.time(), by=by(who, request))
        if info is None:
            raise NotFound(token_id, "token")
        return token_json(info)

    @app.get("/v1/audit", response_model=None)
    def audit(who: Principal = Depends(principal),  # noqa: B008
              actor: str | None = Query(None, max_length=80, description="as the trail names them"),
              action: str | None = Query(None, max_length=40, description="e.g. sign-in, token.create, job.cancelled"),
              since: float | None = Query(None, ge=0, le=1e11, description="epoch seconds"),
              until: float | None = Query(None, ge=0, le=1e11, description="epoch seconds, exclusive"),
              limit: int = Query(1000, ge=1, le=MAX_EVENTS),
              format: str = Query("json", pattern="^(json|jsonl)$")) -> list[dict[str, object]] | Response:
        """The audit trail, oldest first: sign-ins, token changes and the job actions people asked for, with who
        and from where. `format=jsonl` exports it as JSON lines."""
        if not who.admin:
            raise Forbidden("only an admin token reads the audit trail")
        events = [e.json() for e in tokens.audit.search(actor, action, since, until, limit)]
        if format == "jsonl":
            return Response("".join(json.dumps(e) + "\n" for e in events), media_type="application/x-ndjson")
        return events
