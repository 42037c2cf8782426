"""`zhisuan demo`: the main job on the embedded default — a real `zhisuan server` (SQLite + local engine,
the 3-center sample network), example jobs submitted over HTTP, followed to their end; prints where
each ran and why. Ends by itself and cleans up."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from zhisuan.cli.common import NetworkFile, console, fail, read_network
from zhisuan.cli.demo_data import data_demo, with_stores
from zhisuan.cli.demo_services import services_demo

TERMINAL = {"succeeded", "failed", "cancelled"}


def demo_command(
    network: NetworkFile = Path("examples/networks/toy3.yaml"),
    jobs: Annotated[Path, typer.Option(help="folder of job specs to submit")] = Path("examples/demo"),
) -> None:
    """Start a server on the sample network, submit the example jobs, follow them, show where and why."""
    import httpx

    from zhisuan.model import parse_job_spec
    from zhisuan.serve.process import ServerProcess

    read_network(network)
    work = Path(tempfile.mkdtemp(prefix="zhisuan-demo-"))
    work.chmod(0o711)  # jobs run under uids of their own and pass through to their folders
    stores = contextlib.ExitStack()  # the centers' S3 servers, stopped with the demo
    served = with_stores(network, work, stores)
    server = ServerProcess(served, f"sqlite:///{work / 'demo.db'}", work / "runs")
    console.print(f"[bold]1.[/] zhisuan server on {server.url} (SQLite + local engine, network {network.name})")
    try:
        server.start()
    except RuntimeError as e:
        fail(str(e))
    try:
        tokens = json.loads((server.runs / "tokens.json").read_text(encoding="utf-8"))
        base = server.url
        submitted: list[tuple[str, dict[str, Any]]] = []
        console.print("[bold]2.[/] submitting the example jobs")
        for path in sorted(jobs.glob("*.yaml")):
            tenant = parse_job_spec(path.read_text(encoding="utf-8")).tenant
            client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens[tenant]}"}, timeout=10)
            r = client.post("/v1/jobs", content=path.read_bytes())
            if r.status_code == 201:
                quote = client.post("/v1/quote", content=path.read_bytes()).json()
                submitted.append((tenant, {**r.json(), "quote": quote}))
                console.print(f"   {path.name}: accepted as {r.json()['id']}")
            else:
                errors = "; ".join(f"{e['field']}: {e['message']}" for e in r.json().get("errors", []))
                console.print(f"   {path.name}: [yellow]rejected[/] ({r.status_code}) {errors or r.json()['detail']}")
        console.print("[bold]3.[/] following them to the end")
        final = _follow_all(base, tokens, submitted)
        _report(final, submitted)
        failed = [j for j in final if j["state"] != "succeeded"]
        if failed:
            fail(f"{len(failed)} job(s) did not succeed; server log: {work / 'runs' / 'server.log'}", code=1)
        console.print("[green]every accepted job succeeded, the oversize one was refused[/]")
        tenant = next(t for t in tokens if t != "admin")
        services_demo(base, tokens[tenant], tenant, 4)
        if served != network:
            data_demo(base, tokens[tenant], tenant, 6)
        console.print("[green]demo finished: jobs placed and run, a model served across centers, data staged "
                      "between centers, all billed[/]")
        console.print("next: `.venv/bin/zhisuan server` keeps a server running, with the dashboard at "
                      "http://127.0.0.1:8470/ (tokens in runs/tokens.json)")
    except RuntimeError as e:
        fail(str(e), code=1)
    finally:
        server.close()
        stores.close()
        shutil.rmtree(work, ignore_errors=True)


def _follow_all(base: str, tokens: dict[str, str], submitted: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    import httpx

    end = time.time() + 120
    seen: dict[str, str] = {}
    while True:
        final = []
        for tenant, job in submitted:
            c = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens[tenant]}"}, timeout=10)
            now = c.get(f"/v1/jobs/{job['id']}").json()
            if seen.get(now["id"]) != now["state"]:
                seen[now["id"]] = now["state"]
                where = f" on {now['center']}/{now['pool']}" if now["center"] else ""
                console.print(f"   {now['name']}: {now['state']}{where}")
            final.append({**now, "logs": c.get(f"/v1/jobs/{job['id']}/logs").text})
        if all(j["state"] in TERMINAL for j in final) or time.time() > end:
            return final
        time.sleep(0.3)


def _report(final: list[Any], submitted: list[tuple[str, dict[str, Any]]]) -> None:
    quotes = {job["id"]: job["quote"] for _, job in submitted}
    t = Table(title="where each job ran, and why")
    for col in ["job", "tenant", "state", "center/pool", "devices", "why (scheduler)", "why, in words (the quote)"]:
        t.add_column(col)
    for j in final:
        placed = next((h["why"] for h in j["history"] if h["state"] == "scheduled"), "")
        t.add_row(j["name"], j["tenant"], j["state"], f"{j['center']}/{j['pool']}",
                  " | ".join(",".join(d) for d in j["devices"]), placed, quotes[j["id"]].get("margin", ""))
    console.print(t)
    for j in final:
        console.print(f"[dim]--- {j['name']} logs ---[/]")
        console.out(j["logs"].rstrip())
