"""`zhisuan service up | status | down`: model services over HTTP (as `sky serve up/status/down`); calls
go to the server's OpenAI-compatible endpoint (`base_url` http://HOST:8470/v1, the token as api key)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from zhisuan.cli.client import Token, Url, call, connect
from zhisuan.cli.common import console, fail

service_app = typer.Typer(help="Model services: deploy (up), list (status), stop (down).",
                          no_args_is_help=True, rich_markup_mode=None)


@service_app.command("up")
def up(spec: Annotated[Path, typer.Argument(help="service spec (YAML, kind: service)")],
       url: Url = None, token: Token = None) -> None:
    """Deploy a model service: its replicas are placed by the scheduler and started by the centers' engines."""
    if not spec.is_file():
        fail(f"service spec not found: {spec}")
    with connect(url, token) as client:
        made = call(client, "POST", "/v1/services", content=spec.read_bytes())
    console.print(f"service {made['id']} ({made['name']}) serves {made['model']}: {made['desired']} replica(s) "
                  "wanted; `zhisuan service status` shows them")


@service_app.command("status")
def status(url: Url = None, token: Token = None) -> None:
    """Your services: replicas wanted and ready per center, requests in flight, tokens, this month's ¥."""
    with connect(url, token) as client:
        rows = call(client, "GET", "/v1/services")
    t = Table(title="services")
    for col in ["id", "name", "model", "state", "wanted", "ready", "in flight", "tokens", "¥ this month", "note"]:
        t.add_column(col, justify="right" if col in ("wanted", "in flight", "tokens", "¥ this month") else "left")
    now = time.time()
    for r in rows:
        per_center: dict[str, int] = {}
        for x in r["ready"]:
            per_center[x["center"]] = per_center.get(x["center"], 0) + 1
        ready = ", ".join(f"{c} {n}" for c, n in sorted(per_center.items())) or "-"
        note = ""
        if r.get("retry_at") and r["retry_at"] > now:
            note = f"{r['failures']} replica(s) failed in a row; next try in {r['retry_at'] - now:.0f} s"
        cny = r.get("cny_month")
        t.add_row(r["id"], r["name"], r["model"], r["state"], str(r["desired"]), ready, str(r["inflight"]),
                  f"{r['tokens']:,}", f"{cny:,.2f}" if cny is not None else "-", note)
    console.print(t)


@service_app.command("down")
def down(service_id: Annotated[str, typer.Argument(help="the id `zhisuan service status` shows")],
         url: Url = None, token: Token = None) -> None:
    """Stop a service: its replicas are cancelled (their requests in flight are cut)."""
    with connect(url, token) as client:
        done = call(client, "DELETE", f"/v1/services/{service_id}")
    console.print(f"service {done['id']}: {done['state']}")
