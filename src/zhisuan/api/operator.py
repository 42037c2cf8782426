"""A center operator's routes: their centers' pools, load, health and anonymised jobs; drain and undrain nodes
(or the whole center). Operator tokens name their centers; admins operate every center."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from zhisuan.control.service import Service
from zhisuan.store import Principal

Who = Callable[..., Awaitable[Principal]]


class Nodes(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pool: str | None = Field(None, max_length=64, description="the pool; none: every pool of the center")
    nodes: list[int] | None = Field(None, max_length=4096, description="node indices; none: the whole pool")
    reason: str = Field("", max_length=200)


def add_operator_routes(app: FastAPI, service: Service, principal: Who) -> None:
    ops = service.operators

    @app.get("/v1/operator/centers")
    def mine(who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        """The centers the caller operates, each as its operator sees it."""
        return [ops.view(who, c, service.view(), service.down) for c in ops.centers(who)]

    @app.get("/v1/operator/centers/{center}")
    def one(center: str, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        return ops.view(who, center, service.view(), service.down)

    @app.post("/v1/operator/centers/{center}/drain")
    def drain(center: str, body: Nodes, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        """Take nodes (a pool, the center) out of service: running jobs go on, nothing new starts there."""
        return ops.drain(who, center, body.pool, body.nodes, body.reason, time.time())

    @app.post("/v1/operator/centers/{center}/undrain")
    def undrain(center: str, body: Nodes, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        return ops.undrain(who, center, body.pool, body.nodes, time.time())
