"""`zhisuan token create | list | revoke`: manage API tokens over HTTP (an admin token is needed); `zhisuan audit`:
the audit trail."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table

from zhisuan.cli.client import Token, Url, call, connect
from zhisuan.cli.common import console, seconds

token_app = typer.Typer(help="API tokens: create, list, revoke (with an admin token).",
                         no_args_is_help=True, rich_markup_mode=None)


@token_app.command("create")
def create(tenant: Annotated[str, typer.Argument(help="the tenant the token acts for ('' for an operator)")],
           admin: Annotated[bool, typer.Option("--admin", help="an admin token (every tenant's jobs)")] = False,
           role: Annotated[str, typer.Option(help="member (submit and see), viewer (see), billing (invoices "
                                             "only), operator (of --centers) or org-admin (of --org)")] = "member",
           centers: Annotated[str | None, typer.Option(help="an operator's centers, e.g. alpha,beta")] = None,
           org: Annotated[str, typer.Option(help="an org-admin's organisation")] = "",
           label: Annotated[str, typer.Option(help="a note: who holds it")] = "",
           expires: Annotated[str | None, typer.Option(help="valid for, e.g. 30d (default: until revoked)")] = None,
           url: Url = None, token: Token = None) -> None:
    """Issue a token; it is printed once, keep it (only its hash is stored)."""
    body: dict[str, object] = {"tenant": tenant, "admin": admin, "role": role, "label": label}
    if centers:
        body["centers"] = [c.strip() for c in centers.split(",") if c.strip()]
    if org:
        body["org"] = org
    if expires:
        body["expires_in"] = seconds(expires, "--expires")
    with connect(url, token) as client:
        made = call(client, "POST", "/v1/tokens", json=body)
    console.print(f"token {made['id']} for {made['tenant'] or made['org'] or ', '.join(made['centers'])} "
                  f"({made['role']}):")
    print(made["token"])


@token_app.command("list")
def listing(url: Url = None, token: Token = None) -> None:
    """Every token: id, tenant, label, created, expiry, revocation (never the token itself)."""
    with connect(url, token) as client:
        rows = call(client, "GET", "/v1/tokens")
    t = Table(title="tokens")
    for col in ["id", "tenant", "role", "label", "created", "expires", "revoked"]:
        t.add_column(col)

    def when(x: float | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(x)) if x else ""

    for r in rows:
        t.add_row(r["id"], r["tenant"], r["role"], r["label"], when(r["created_at"]),
                  when(r["expires_at"]), when(r["revoked_at"]))
    console.print(t)


@token_app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="the id `zhisuan token list` shows")],
           url: Url = None, token: Token = None) -> None:
    """Revoke a token: it stops working within a second."""
    with connect(url, token) as client:
        done = call(client, "DELETE", f"/v1/tokens/{token_id}")
    console.print(f"token {done['id']} of {done['tenant']} revoked")


def audit_command(actor: Annotated[str | None, typer.Option(help="only this actor, as the trail names them "
                                                            "(a tenant, or 'admin NAME')")] = None,
                  action: Annotated[str | None, typer.Option(help="only this action: sign-in, token.create, "
                                                             "token.revoke, job.pending (a submit), "
                                                             "job.cancelled…")] = None,
                  since: Annotated[str | None, typer.Option(help="only the last, e.g. 2h or 7d")] = None,
                  limit: Annotated[int, typer.Option(min=1, max=10_000, help="at most this many (the newest)")] = 1000,
                  jsonl: Annotated[bool, typer.Option("--jsonl", help="JSON lines, for export")] = False,
                  url: Url = None, token: Token = None) -> None:
    """The audit trail (admin token): sign-ins, token changes and job actions, with who and from where."""
    params: dict[str, str | int | float] = {"limit": limit}
    if actor:
        params["actor"] = actor
    if action:
        params["action"] = action
    if since:
        params["since"] = time.time() - seconds(since, "--since")
    with connect(url, token) as client:
        events = call(client, "GET", "/v1/audit", params=params)
    if jsonl:
        for e in events:
            print(json.dumps(e, ensure_ascii=False))
        return
    t = Table(title="audit trail")
    for col in ["when", "actor", "from", "action", "subject", "detail"]:
        t.add_column(col)
    for e in events:
        t.add_row(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["at"])), e["actor"], e["origin"], e["action"],
                  e["subject"], e["detail"])
    console.print(t)
