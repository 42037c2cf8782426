"""Where remote centers' agents connect (`/v1/agent`, a WebSocket they open: no port at the center) and the
admin routes for their credentials (`/v1/center-tokens`). The connection itself is served by
`control/sessions.py`; this only checks the credential and hands the socket over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field

from zhisuan.agent.protocol import Refused
from zhisuan.api.admin import by
from zhisuan.api.agent_relay import relay_agent
from zhisuan.control.errors import Forbidden, NotFound
from zhisuan.control.service import Service
from zhisuan.control.sessions import serve_agent
from zhisuan.model import SpecError
from zhisuan.store import Principal, TokenStore
from zhisuan.store.tokens import TokenInfo, token_id

log = logging.getLogger("zhisuan.api")
Who = Callable[..., Awaitable[Principal]]


class NewCenterToken(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    center: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    label: str = Field("", max_length=80)
    expires_in: float | None = Field(None, gt=0, le=10 * 365 * 86400, description="seconds from now")


def center_token_json(t: TokenInfo) -> dict[str, Any]:
    return {"id": t.id, "center": t.center, "label": t.label, "created_at": t.created_at,
            "expires_at": t.expires_at, "revoked_at": t.revoked_at}


def add_agent_routes(app: FastAPI, service: Service, tokens: TokenStore, principal: Who,
                     agents_at: str | None = None) -> None:
    """`agents_at`: an API worker's own server, where it hands every agent (api/agent_relay.py)."""
    links = service.loop.links

    @app.websocket("/v1/agent")
    async def agent(ws: WebSocket) -> None:
        auth = ws.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        center = await asyncio.to_thread(tokens.center_of, token) if token else None
        link = links.get(center or "")
        if center is None or link is None or not link.remote:
            log.warning("agent refused", extra={"fields": {"center": center or "", "why": "credential"}})
            await ws.close(code=1008, reason="not a center's credential, or its center does not join through "
                                               "an agent")  # before accept: the agent sees HTTP 403
            return
        await ws.accept()
        if agents_at is not None:
            why = await relay_agent(ws, agents_at, auth)
            log.info("agent handed back", extra={"fields": {"center": center, "why": why}})
            return
        if not service.leading():  # the agent tries again (another replica, behind the same address, leads)
            await ws.send_text(Refused(reason="this replica of the control plane does not lead: another does",
                                       retry=True).model_dump_json())
            await ws.close(code=1013)
            return
        log.info("agent connected", extra={"fields": {"center": center, "peer": str(ws.client)}})

        async def still_valid() -> bool:
            return await asyncio.to_thread(tokens.center_of, token) == center

        try:
            why = await serve_agent(link, ws.receive_text, ws.send_text, still_valid)
        except WebSocketDisconnect as e:
            why = f"disconnected ({e.code})"
        except (OSError, RuntimeError, TimeoutError) as e:
            why = f"connection failed: {e or type(e).__name__}"
        log.info("agent gone", extra={"fields": {"center": center, "why": why}})
        with contextlib.suppress(RuntimeError):  # already closed
            await ws.close(code=1000)

    def admin_only(who: Principal) -> None:
        if not who.admin:
            raise Forbidden("only an admin token manages centers' credentials")

    @app.post("/v1/center-tokens", status_code=201)
    def create(new: NewCenterToken, request: Request,
               who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        """A credential for a center's agent, shown once: it speaks for that center only."""
        admin_only(who)
        if new.center not in links:
            raise SpecError([("center", f"no center {new.center!r} in network {service.network.name}")])
        now = time.time()
        token = tokens.issue("", now, label=new.label, expires_at=now + new.expires_in if new.expires_in else None,
                             center=new.center, by=by(who, request))
        info = next(t for t in tokens.list(centers=True) if t.id == token_id(token))
        return {**center_token_json(info), "token": token, "joins": links[new.center].remote}

    @app.get("/v1/center-tokens")
    def listing(who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        admin_only(who)
        return [center_token_json(t) for t in tokens.list(centers=True)]

    @app.delete("/v1/center-tokens/{token_id}")
    def revoke(token_id: str, request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        """Revoke a center's credential: its agent is disconnected within seconds and cannot come back."""
        admin_only(who)
        info = tokens.revoke(token_id, time.time(), centers=True, by=by(who, request))
        if info is None:
            raise NotFound(token_id, "token")
        return center_token_json(info)

    @app.get("/v1/agents/{center}/starts")
    def starts(center: str, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        """Seconds from each start the server sent this center to the run starting there (the latest 10,000),
        as the agent's reports date it: how quickly a center carries out what it is given."""
        admin_only(who)
        link = links.get(center)
        if link is None:
            raise NotFound(center, "center")
        with link.lock:
            return {"center": center, "seconds": list(link.started_after)}

    @app.get("/v1/agents")
    def agents(who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        """Each center's agent: connected or not, last heard from, its engine's health, commands waiting."""
        admin_only(who)
        return [link.status() for link in links.values()]
