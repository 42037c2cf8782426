"""`zhisuan funds show | topup | set | ledger | reconcile`: projects' prepaid balances and monthly budgets over
HTTP (a tenant's token shows its own; top-ups, budgets and reconciliation need an admin token)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from zhisuan.cli.client import Token, Url, call, connect
from zhisuan.cli.common import console

funds_app = typer.Typer(help="Projects' funds: prepaid balances, monthly budgets, the ledger.",
                        no_args_is_help=True, rich_markup_mode=None)


def _yuan(fen: int | None) -> str:
    return "" if fen is None else f"¥{fen / 100:,.2f}"


def _table(rows: list[dict[str, Any]]) -> None:
    t = Table(title="funds")
    for col in ["project", "prepaid", "free", "held", "budget", "spent", "left", "used", "at zero", "state"]:
        t.add_column(col)
    for r in rows:
        t.add_row(r["tenant"], "yes" if r["prepaid"] else "no", _yuan(r["available_fen"]) if r["prepaid"] else "",
                  _yuan(r["held_fen"]), _yuan(r["budget_fen"]), _yuan(r["spent_fen"]), _yuan(r["remaining_fen"]),
                  "" if r["used_pct"] is None else f"{r['used_pct']:.0f}%", r["at_zero"],
                  "OUT OF FUNDS: jobs held" if r["out_of_funds"] else "ok")
    console.print(t)


@funds_app.command("show")
def show(project: Annotated[str | None, typer.Argument(help="one project (default: yours, or every one "
                                                       "with an admin token)")] = None,
         url: Url = None, token: Token = None) -> None:
    """Balances, budgets, what queued and running jobs hold, and the share used."""
    with connect(url, token) as client:
        rows = [call(client, "GET", f"/v1/funds/{project}")] if project else call(client, "GET", "/v1/funds")
    if not rows:
        console.print("no funded project: jobs are billed after the fact (zhisuan bill)")
        return
    _table(rows)


@funds_app.command("topup")
def topup(project: Annotated[str, typer.Argument(help="the project paid for")],
          amount: Annotated[float, typer.Argument(help="yuan paid in")],
          memo: Annotated[str, typer.Option(help="e.g. the payment's reference")] = "",
          url: Url = None, token: Token = None) -> None:
    """Record money paid in (admin token): the project's prepaid balance grows, its held jobs are released."""
    with connect(url, token) as client:
        row = call(client, "POST", f"/v1/funds/{project}/topups", json={"amount_yuan": amount, "memo": memo})
    _table([row])


@funds_app.command("set")
def set_funding(project: Annotated[str, typer.Argument(help="the project")],
                budget: Annotated[float | None, typer.Option(help="monthly budget, yuan")] = None,
                no_budget: Annotated[bool, typer.Option("--no-budget", help="remove the monthly budget")] = False,
                prepaid: Annotated[bool | None, typer.Option("--prepaid/--no-prepaid",
                                                             help="draw on a prepaid balance")] = None,
                at_zero: Annotated[str | None, typer.Option(help="out of funds: hold (running jobs go on) or stop "
                                                            "(they are stopped and requeued)")] = None,
                url: Url = None, token: Token = None) -> None:
    """Set a project's budget, prepaid balance or what happens at zero (admin token)."""
    body: dict[str, object] = {"no_budget": no_budget}
    if budget is not None:
        body["budget_yuan"] = budget
    if prepaid is not None:
        body["prepaid"] = prepaid
    if at_zero is not None:
        body["at_zero"] = at_zero
    with connect(url, token) as client:
        row = call(client, "PUT", f"/v1/funds/{project}", json=body)
    _table([row])


@funds_app.command("ledger")
def ledger(project: Annotated[str, typer.Argument(help="the project")],
           limit: Annotated[int, typer.Option(min=1, max=10_000, help="the newest this many legs")] = 200,
           url: Url = None, token: Token = None) -> None:
    """The project's ledger: each transaction's legs (they sum to zero)."""
    with connect(url, token) as client:
        legs = call(client, "GET", f"/v1/funds/{project}/ledger", params={"limit": limit})
    t = Table(title=f"ledger of {project}")
    for col in ["when", "kind", "account", "amount", "month", "job", "by", "memo"]:
        t.add_column(col)
    for x in legs:
        t.add_row(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(x["at"])), x["kind"], x["account"],
                  _yuan(x["fen"]), x["month"], x["job_id"] or "", x["actor"], x["memo"])
    console.print(t)


@funds_app.command("reconcile")
def reconcile(month: Annotated[str, typer.Argument(help="YYYY-MM (local month)")],
              url: Url = None, token: Token = None) -> None:
    """Each funded project's invoice beside its ledger, to the fen (admin token); exit 1 if any differ."""
    with connect(url, token) as client:
        rows = call(client, "GET", f"/v1/reconcile/{month}")
    t = Table(title=f"reconciliation {month}")
    for col in ["project", "invoice (ended runs)", "ledger", "still running", "differences", "trial balance"]:
        t.add_column(col)
    bad = False
    for r in rows:
        bad = bad or not r["reconciles"] or bool(r["trial"])
        t.add_row(r["tenant"], _yuan(r["invoice_fen"]), _yuan(r["ledger_fen"]), _yuan(r["open_fen"]),
                  str(len(r["differences"])), "balanced" if not r["trial"] else "; ".join(r["trial"]))
    console.print(t)
    if bad:
        raise typer.Exit(1)
