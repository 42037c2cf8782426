"""The OpenAI-compatible face of the gateway: /v1/models and the three model endpoints, with the tenant's
bearer token; errors in OpenAI's shape. Routing, retries and metering live in zhisuan.gateway."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from zhisuan.control.service import Service
from zhisuan.gateway.errors import GatewayError
from zhisuan.gateway.proxy import PATHS, RELAYED, Gateway
from zhisuan.store import Principal

Who = Callable[..., Awaitable[Principal]]
REGION_HEADER = "X-Zhisuan-Region"  # the caller's region: its replicas first among equally busy ones


def add_service_routes(app: FastAPI, service: Service, principal: Who) -> None:
    """Deploy, list and stop model services (YAML `kind: service` specs, as jobs are submitted)."""

    @app.post("/v1/services", status_code=201)
    async def deploy(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        body, key = await request.body(), request.headers.get("idempotency-key")
        svc = await anyio.to_thread.run_sync(service.deploy, body, who, time.time(), key)  # the store: off the loop
        return {"id": svc.id, "name": svc.name, "model": svc.model, "state": svc.state, "desired": svc.desired}

    @app.get("/v1/services")
    def services(who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        return service.services(who)

    @app.delete("/v1/services/{service_id}")
    def stop(service_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        svc = service.stop_service(service_id, who, time.time())
        return {"id": svc.id, "state": svc.state}


def add_gateway_routes(app: FastAPI, gateway: Gateway, principal: Who) -> None:
    @app.get("/v1/models")
    def models(who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        return {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "zhisuan"}
                                           for m in gateway.registry.models(who.tenant)]}

    async def forward(request: Request, who: Principal = Depends(principal)) -> Response:  # noqa: B008
        body = await request.body()
        region = request.headers.get(REGION_HEADER, "")[:64] or None  # a name no replica has just matches none
        try:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            return await gateway.forward(who.tenant, request.url.path, body, region,
                                         token if scheme.lower() == "bearer" else "",
                                         relayed=request.headers.get(RELAYED) == "1")
        except GatewayError as e:
            return JSONResponse(e.body(), e.status)

    for path in PATHS:
        app.add_api_route(path, forward, methods=["POST"], include_in_schema=True, name=path.rsplit("/", 1)[-1])
