"""Single sign-on routes (no bearer token: the provider's word is the credential): the configuration a
client needs, the browser's round trip to the provider, and the CLI's ID token exchanged for a session."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from zhisuan.control.errors import Forbidden, SignOnRefused
from zhisuan.control.sso import MAX_ID_TOKEN, SingleSignOn


class IdToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id_token: str = Field(min_length=1, max_length=MAX_ID_TOKEN)


def add_sso_routes(app: FastAPI, sso: SingleSignOn | None) -> None:
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
    def login(request: Request, next: str = Query("/", max_length=200)) -> RedirectResponse:
        """Off to the provider (authorization code with PKCE); it sends the browser back to the callback."""
        return RedirectResponse(enabled().start(callback_uri(request), next, time.time()), status_code=302)

    @app.get("/v1/sso/callback", name="sso_callback")
    def callback(request: Request, code: str = Query("", max_length=4096), state: str = Query("", max_length=128),
                 error: str = Query("", max_length=200)) -> RedirectResponse:
        """Back from the provider: the dashboard gets its session token in the URL's fragment (never sent to a
        server; the page removes it at once), or the reason it was refused."""
        try:
            if error:
                raise SignOnRefused(f"sso: the provider said {error}")
            token, next_path = enabled().callback(code, state, callback_uri(request), time.time(), origin(request))
        except (SignOnRefused, Forbidden) as e:
            return RedirectResponse("/#sso-error=" + quote(str(e)[:300]), status_code=302)
        return RedirectResponse(f"{next_path}#sso={token}", status_code=302)

    @app.post("/v1/sso/exchange", status_code=201)
    def exchange(body: IdToken, request: Request) -> dict[str, Any]:
        """The CLI's ID token (device flow) for a session token, shown once."""
        now = time.time()
        token = enabled().exchange(body.id_token, now, origin(request))
        return {"token": token}
