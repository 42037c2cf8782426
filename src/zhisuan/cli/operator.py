"""`zhisuan center show | drain | undrain`: a center operator's view and actions (an operator token of that
center, or an admin token)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from zhisuan.cli.agent import center_app
from zhisuan.cli.client import Token, Url, call, connect
from zhisuan.cli.common import console


def _nodes(nodes: str | None) -> list[int] | None:
    if nodes is None:
        return None
    try:
        return [int(x) for x in nodes.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"node indices separated by commas, e.g. 0,3; got {nodes!r}",
                                 param_hint="--nodes") from None


def _show(c: dict[str, Any]) -> None:
    state = "healthy" if c["healthy"] else f"DOWN: {c['down_reason']}"
    console.print(f"[bold]{c['name']}[/] ({c['region']}, {c['engine']}): {state}; {c['queue_depth']} jobs could "
                  "run here and wait")
    t = Table(title="pools")
    for col in ["pool", "chip", "nodes", "devices", "zhisuan's", "own load", "drained nodes"]:
        t.add_column(col)
    for p in c["pools"]:
        drained = ", ".join(f"{d['node']} ({d['reason']})" for d in p["drained"][:8])
        more = f" and {len(p['drained']) - 8} more" if len(p["drained"]) > 8 else ""
        t.add_row(p["name"], p["accelerator"], str(p["nodes"]), str(p["devices"]), str(p["zhisuan_devices"]),
                  str(p["own_load_devices"]), drained + more)
    console.print(t)
    j = Table(title="zhisuan jobs here (by reference: tenants, specs and logs are theirs)")
    for col in ["ref", "pool", "state", "nodes", "devices", "since"]:
        j.add_column(col)
    for x in c["jobs"]:
        j.add_row(x["ref"], x["pool"] or "", x["state"], ",".join(map(str, x["nodes"])), str(x["devices"] or ""),
                  time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(x["since"])))
    console.print(j)


@center_app.command("show")
def show(center: Annotated[str | None, typer.Argument(help="one center (default: every one you operate)")] = None,
         url: Url = None, token: Token = None) -> None:
    """A center as its operator sees it: pools, load, health, drained nodes, zhisuan's jobs by reference."""
    with connect(url, token) as client:
        found = [call(client, "GET", f"/v1/operator/centers/{center}")] if center else \
            call(client, "GET", "/v1/operator/centers")
    for c in found:
        _show(c)


@center_app.command("drain")
def drain(center: Annotated[str, typer.Argument(help="the center")],
          pool: Annotated[str | None, typer.Option(help="one pool (default: the whole center)")] = None,
          nodes: Annotated[str | None, typer.Option(help="node indices, e.g. 0,3 (default: the whole pool)")] = None,
          reason: Annotated[str, typer.Option(help="why, shown to those whose jobs wait")] = "",
          url: Url = None, token: Token = None) -> None:
    """Take nodes out of service: running jobs go on, nothing new starts there."""
    body = {"pool": pool, "nodes": _nodes(nodes), "reason": reason}
    with connect(url, token) as client:
        done = call(client, "POST", f"/v1/operator/centers/{center}/drain", json=body)
    console.print(f"{done['drained']} node(s) of {center} drained ({done['new']} newly)")


@center_app.command("undrain")
def undrain(center: Annotated[str, typer.Argument(help="the center")],
            pool: Annotated[str | None, typer.Option(help="one pool (default: the whole center)")] = None,
            nodes: Annotated[str | None, typer.Option(help="node indices (default: the whole pool)")] = None,
            url: Url = None, token: Token = None) -> None:
    """Put drained nodes back in service."""
    with connect(url, token) as client:
        done = call(client, "POST", f"/v1/operator/centers/{center}/undrain",
                    json={"pool": pool, "nodes": _nodes(nodes)})
    console.print(f"{done['undrained']} node(s) of {center} back in service")
