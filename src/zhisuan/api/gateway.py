"""The OpenAI-compatible face of the gateway: /v1/models and the three model endpoints, with the tenant's
bearer token; errors in OpenAI's shape. Routing, retries and metering live in zhisuan.gateway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from zhisuan.gateway.errors import GatewayError
from zhisuan.gateway.proxy import PATHS, Gateway
from zhisuan.store import Principal

Who = Callable[..., Awaitable[Principal]]


def add_gateway_routes(app: FastAPI, gateway: Gateway, principal: Who) -> None:
    @app.get("/v1/models")
    def models(who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        return {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "zhisuan"}
                                           for m in gateway.registry.models()]}

    async def forward(request: Request, who: Principal = Depends(principal)) -> Response:  # noqa: B008
        body = await request.body()
        try:
            return await gateway.forward(who.tenant, request.url.path, body)
        except GatewayError as e:
            return JSONResponse(e.body(), e.status)

    for path in PATHS:
        app.add_api_route(path, forward, methods=["POST"], include_in_schema=True, name=path.rsplit("/", 1)[-1])
