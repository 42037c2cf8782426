"""Single sign-on routes (no bearer token: the provider's word is the credential): the configuration a
client needs, the browser's round trip to the provider, and the CLI's ID token exchanged for a session."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from zhisuan.control.errors import Forbidden, SignOnRefused, TooMany
from zhisuan.control.sso import MAX_ID_TOKEN, SingleSignOn


class IdToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id_token: str = Field(min_length=1, max_length=MAX_ID_TOKEN)


STATE_COOKIE = "zs_sso_state"
LOGINS_PER_MINUTE = 20  # sign-ins one address may start a minute (each is a row in the store until used)


def add_sso_routes(app: FastAPI, sso: SingleSignOn | None) -> None:
    recent: dict[str, list[float]] = {}  # address -> when it started sign-ins lately (this process)

    def enabled() -> SingleSignOn:
        if sso is None:
            raise SignOnRefused("sso: this network has no single sign-on (the network file's sso:)")
        return sso

    def callback_uri(request: Request) -> str:
        return str(request.url_for("sso_callback"))

    def origin(request: Request) -> str:
        return request.client.host if request.client else ""

    @app.get("/v1/sso")
    def config() -> dict[str, Any]:
        """Whether the network signs people in through an OpenID provider, and how."""
        return {"enabled": False} if sso is None else sso.config()

    @app.get("/v1/sso/login")
    def login(request: Request, bind: str = Query(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                                 description="the page's own secret: it accepts the session only "
                                                             "when it comes back with it")) -> RedirectResponse:
        """Off to the provider (authorization code with PKCE); it sends the browser back to the callback."""
        client = origin(request)
        now = time.time()
        if len(recent) > 10_000:
            recent.clear()
        times = [t for t in recent.get(client, []) if now - t < 60.0]
        if len(times) >= LOGINS_PER_MINUTE:
            raise TooMany(f"at most {LOGINS_PER_MINUTE} sign-ins a minute from one address")
        recent[client] = [*times, now]
        where, state = enabled().start(callback_uri(request), bind, now)
        reply = RedirectResponse(where, status_code=302)
        reply.set_cookie(STATE_COOKIE, state, max_age=600, httponly=True, samesite="lax", path="/v1/sso",
                         secure=request.url.scheme == "https")
        return reply

    @app.get("/v1/sso/callback", name="sso_callback")
    def callback(request: Request, code: str = Query("", max_length=4096), state: str = Query("", max_length=128),
                 error: str = Query("", max_length=200)) -> RedirectResponse:
        """Back from the provider: the dashboard gets its session token in the URL's fragment (never sent to a
        server; the page that started the sign-in takes it and removes it at once), or the reason it was
        refused."""
        try:
            if error:
                raise SignOnRefused("sso: the provider refused the sign-in ("
                                    + (error if re.fullmatch(r"[a-z_]{1,40}", error) else "error") + ")")
            token, next_path = enabled().callback(code, state, request.cookies.get(STATE_COOKIE, ""),
                                                  callback_uri(request), time.time(), origin(request))
            reply = RedirectResponse(f"{next_path}#sso={token}", status_code=302)
        except (SignOnRefused, Forbidden) as e:
            reply = RedirectResponse("/#sso-error=" + quote(str(e)[:300]), status_code=302)
        reply.delete_cookie(STATE_COOKIE, path="/v1/sso")
        return reply

    @app.post("/v1/sso/exchange", status_code=201)
    def exchange(body: IdToken, request: Request) -> dict[str, Any]:
        """The CLI's ID token (device flow) for a session token, shown once."""
        now = time.time()
        token = enabled().exchange(body.id_token, now, origin(request))
        return {"token": token}
