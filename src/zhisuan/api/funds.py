"""Funds routes: a project's standing and ledger (its members and billing people), top-ups and budgets
(admins), and the month's reconciliation of the ledger with the invoices (admins)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from zhisuan.control.errors import NotFound
from zhisuan.control.service import Service
from zhisuan.store import Principal
from zhisuan.store.ledger import MAX_BUDGET_FEN, MAX_ENTRIES, fen_of

Who = Callable[..., Awaitable[Principal]]
TENANT = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Project = Annotated[str, Path(max_length=64, pattern=TENANT, description="the project (a tenant)")]


class TopUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_yuan: float = Field(description="money paid in, yuan (fen precision)")
    memo: str = Field("", max_length=200, description="e.g. the payment's reference")


class Funding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prepaid: bool | None = Field(None, description="jobs draw on a prepaid balance")
    budget_yuan: float | None = Field(None, description="monthly budget, yuan")
    no_budget: bool = Field(False, description="remove the monthly budget")
    at_zero: Literal["hold", "stop"] | None = Field(None, description="out of funds: running jobs go on, or stop")


def add_funds_routes(app: FastAPI, service: Service, principal: Who) -> None:
    funds = service.funds

    @app.get("/v1/funds")
    def standing(who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        """Funded projects' balances, budgets, holds and the share used (a tenant's token: its own)."""
        return funds.show(who, time.time())

    @app.get("/v1/funds/{tenant}")
    def one(tenant: Project, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        service.check_tenant(tenant)
        found = funds.show(who, time.time(), tenant)
        if not found:
            raise NotFound(tenant, "funded project")
        return found[0]

    @app.put("/v1/funds/{tenant}")
    def set_funding(tenant: Project, body: Funding, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        service.check_tenant(tenant)
        budget: int | bool | None = None if body.no_budget else False
        if body.budget_yuan is not None:
            budget = fen_of(body.budget_yuan, "budget_yuan", MAX_BUDGET_FEN)
        return funds.configure(who, tenant, time.time(), body.prepaid, budget, body.at_zero)

    @app.post("/v1/funds/{tenant}/topups", status_code=201)
    def topup(tenant: Project, body: TopUp, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        service.check_tenant(tenant)
        return funds.topup(who, tenant, body.amount_yuan, body.memo, time.time())

    @app.get("/v1/funds/{tenant}/ledger")
    def ledger(tenant: Project, who: Principal = Depends(principal),  # noqa: B008
               limit: int = Query(1000, ge=1, le=MAX_ENTRIES)) -> list[dict[str, Any]]:
        """The project's ledger legs, oldest first (the newest `limit`)."""
        return funds.entries(who, tenant, limit)

    @app.get("/v1/reconcile/{month}")
    def reconcile(month: str, who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        """Each funded project's invoice for the month beside its ledger charges, job by job, to the fen."""
        return funds.reconcile_month(month, who, time.time())
