"""Organisation routes: its page (projects, members, funds with burn rate and forecast), members added and
removed, budgets set — by the organisation's admins (and the network's)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from zhisuan.control.orgs import Organisations
from zhisuan.store import Principal
from zhisuan.store.ledger import MAX_BUDGET_FEN, fen_of

Who = Callable[..., Awaitable[Principal]]


class NewMember(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    project: str = Field(min_length=1, max_length=64)
    role: str = Field("member", max_length=16, description="member, viewer or billing")
    person: str = Field(min_length=1, max_length=80, description="who: a name or an e-mail address")
    expires_in: float | None = Field(None, gt=0, le=10 * 365 * 86400, description="seconds from now")


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    budget_yuan: float | None = Field(None, description="monthly budget, yuan")
    no_budget: bool = False
    at_zero: Literal["hold", "stop"] | None = None


def add_org_routes(app: FastAPI, orgs: Organisations, principal: Who) -> None:
    @app.get("/v1/orgs")
    def listing(who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        """The organisations the caller administers (a network admin: every one), each with its page."""
        now = time.time()
        return [orgs.page(who, o, now) for o in orgs.visible(who)]

    @app.get("/v1/orgs/{org}")
    def page(org: str, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        return orgs.page(who, org, time.time())

    @app.post("/v1/orgs/{org}/members", status_code=201)
    def add(org: str, new: NewMember, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        """A person joins a project with a role; their token is shown once."""
        now = time.time()
        return orgs.add_member(who, org, new.project, new.role, new.person, now,
                               now + new.expires_in if new.expires_in else None)

    @app.delete("/v1/orgs/{org}/members/{member_id}")
    def remove(org: str, member_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        return orgs.remove_member(who, org, member_id, time.time())

    @app.put("/v1/orgs/{org}/projects/{project}/budget")
    def budget(org: str, project: str, body: Budget, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        fen: int | bool | None = None if body.no_budget else False
        if body.budget_yuan is not None:
            fen = fen_of(body.budget_yuan, "budget_yuan", MAX_BUDGET_FEN)
        return orgs.budget(who, org, project, fen, body.at_zero, time.time())
