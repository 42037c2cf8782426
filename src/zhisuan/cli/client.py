"""Client commands: talk to `zhisuan server` over HTTP (httpx). Token from $ZHISUAN_TOKEN or
~/.config/zhisuan/token; server from $ZHISUAN_URL (default http://127.0.0.1:8470)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.table import Table

from zhisuan.cli.common import console, fail
from zhisuan.model.units import format_duration

TERMINAL = {"succeeded", "failed", "cancelled"}
Url = Annotated[str | None, typer.Option("--url", help="server URL (default $ZHISUAN_URL or local)")]
Token = Annotated[str | None, typer.Option("--token", help="bearer token (default $ZHISUAN_TOKEN)")]


def connect(url: str | None, token: str | None) -> httpx.Client:
    token = token or os.environ.get("ZHISUAN_TOKEN")
    config = Path.home() / ".config" / "zhisuan" / "token"
    if not token and config.exists():
        token = config.read_text(encoding="utf-8").strip()
    if not token:
        fail("no token: set ZHISUAN_TOKEN, pass --token, or put it in ~/.config/zhisuan/token")
    base = url or os.environ.get("ZHISUAN_URL", "http://127.0.0.1:8470")
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def call(client: httpx.Client, method: str, path: str, retry: bool = False, **kw: Any) -> Any:
    """One request; exits with the server's problem on 4xx/5xx. `retry`: transport errors are raised to
    the caller (a submit retried with its idempotency key) instead of ending the command."""
    try:
        r = client.request(method, path, **kw)
    except httpx.TransportError:
        if retry:
            raise
        fail(f"cannot reach the server at {client.base_url}")
    except httpx.HTTPError as e:
        fail(f"cannot reach the server at {client.base_url}: {e}")
    if r.status_code >= 400:
        call_failed(r)
    return r.json() if r.headers.get("content-type", "").endswith("json") else r.text


def call_failed(r: httpx.Response) -> NoReturn:
    """Exit non-zero with the server's problem: title, and each field it names."""
    body = r.json() if r.headers.get("content-type", "").endswith("json") else {"detail": r.text}
    fields = "; ".join(f"{e['field']}: {e['message']}" for e in body.get("errors", []))
    fail(f"{r.status_code} {body.get('title', '')}: {fields or body.get('detail', '')}")


def _show_state(job: dict[str, Any]) -> None:
    where = f" on {job['center']}/{job['pool']}" if job["center"] else ""
    console.print(f"{job['id']}: {job['state']}{where}")


def _follow(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """Show state changes until the job starts, stream its logs until it ends, then its final state."""
    job = call(client, "GET", f"/v1/jobs/{job_id}")
    _show_state(job)
    while job["state"] in ("pending", "scheduled"):
        time.sleep(0.5)
        state, job = job["state"], call(client, "GET", f"/v1/jobs/{job_id}")
        if job["state"] != state:
            _show_state(job)
    try:
        with client.stream("GET", f"/v1/jobs/{job_id}/logs", params={"follow": "true"},
                           timeout=httpx.Timeout(30, read=None)) as r:
            if r.status_code >= 400:
                r.read()
                call_failed(r)
            for chunk in r.iter_text():
                console.out(chunk, end="", highlight=False)
    except httpx.HTTPError as e:
        fail(f"lost the log stream from {client.base_url}: {e}")
    final = call(client, "GET", f"/v1/jobs/{job_id}")
    if final["state"] != job["state"]:
        _show_state(final)
    return final  # type: ignore[no-any-return]


def submit_command(spec: Annotated[Path, typer.Argument(help="job spec (YAML or JSON)")],
                   follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
                   url: Url = None, token: Token = None) -> None:
    """Submit a job; with --follow, stream its state and logs until it ends."""
    if not spec.exists():
        fail(f"job spec not found: {spec}")
    body, key = spec.read_bytes(), uuid.uuid4().hex  # the same key on every retry: stored once at most
    with connect(url, token) as client:
        for attempt in range(3):
            try:
                job = call(client, "POST", "/v1/jobs", content=body, headers={"Idempotency-Key": key}, retry=True)
                break
            except httpx.TransportError as e:
                if attempt == 2:
                    fail(f"cannot reach the server at {client.base_url}: {e}")
                time.sleep(1.0 + attempt)
        console.print(f"submitted {job['id']} ({job['name']}): {job['state']}")
        if follow and _follow(client, job["id"])["state"] != "succeeded":
            raise typer.Exit(1)


def jobs_command(url: Url = None, token: Token = None) -> None:
    """List your jobs (an admin token lists everyone's)."""
    with connect(url, token) as client:
        rows = call(client, "GET", "/v1/jobs")
    t = Table(title="jobs")
    for col in ["id", "name", "tenant", "state", "where", "devices", "age", "exit", "why waiting / expected start"]:
        t.add_column(col)
    now = time.time()
    for j in rows:
        where = f"{j['center']}/{j['pool']}" if j["center"] else ""
        t.add_row(j["id"], j["name"], j["tenant"], j["state"], where, " ".join(",".join(d) for d in j["devices"]),
                  format_duration(now - j["submitted_at"]), "" if j["exit_code"] is None else str(j["exit_code"]),
                  _waiting(j, now))
    console.print(t)


def _waiting(job: dict[str, Any], now: float) -> str:
    """`reason (start in 5m00s)` for jobs that wait; empty otherwise."""
    if job["state"] not in ("pending", "scheduled") or not job.get("wait_reason"):
        return ""
    when = job.get("expected_start")
    return job["wait_reason"] + ("" if when is None else f" (start in {format_duration(when - now)})")


def show_command(job_id: str, url: Url = None, token: Token = None) -> None:
    """One job: state, where it runs or why it waits and when it is expected to start, attempts, history."""
    with connect(url, token) as client:
        j = call(client, "GET", f"/v1/jobs/{job_id}")
    now = time.time()
    rows = [("job", f"{j['id']} ({j['name']}) of {j['tenant']}, priority {j['priority']}"), ("state", j["state"])]
    if j["center"]:
        rows.append(("where", f"{j['center']}/{j['pool']} nodes {j['nodes']} devices "
                              f"{' '.join(','.join(d) for d in j['devices'])}"))
    if j["state"] in ("pending", "scheduled"):
        rows.append(("waiting", j.get("wait_reason") or "not yet considered by a cycle"))
        if j.get("expected_start") is not None:
            when = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(j["expected_start"]))
            rows.append(("expected start", f"{when} (in {format_duration(j['expected_start'] - now)})"))
    rows.append(("attempts", str(j["attempts"])))
    if j["exit_code"] is not None or j["reason"]:
        rows.append(("ended", f"exit {j['exit_code']}: {j['reason'] or ''}".strip(": ")))
    t = Table(show_header=False, title=f"job {j['id']}")
    t.add_column("field", style="bold")
    t.add_column("value")
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
    h = Table(title="history")
    for col in ["at", "state", "why"]:
        h.add_column(col)
    for e in j.get("history", []):
        h.add_row(time.strftime("%H:%M:%S", time.localtime(e["at"])), e["state"], e["why"])
    console.print(h)


def logs_command(job_id: str, follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
                 url: Url = None, token: Token = None) -> None:
    """Print a job's logs; with -f, follow them until the job ends."""
    with connect(url, token) as client:
        if follow:
            _follow(client, job_id)
        else:
            console.out(call(client, "GET", f"/v1/jobs/{job_id}/logs"), end="")


def cancel_command(job_id: str, url: Url = None, token: Token = None) -> None:
    """Cancel a job (SIGTERM, then SIGKILL after a grace period, if it runs)."""
    with connect(url, token) as client:
        job = call(client, "POST", f"/v1/jobs/{job_id}/cancel")
    console.print(f"{job['id']}: {job['state']}")


def quote_command(spec: Annotated[Path, typer.Argument(help="job spec")], url: Url = None, token: Token = None) -> None:
    """Ranked placements with expected start, ¥ and kgCO2 on the live network, without submitting."""
    if not spec.exists():
        fail(f"job spec not found: {spec}")
    with connect(url, token) as client:
        q = call(client, "POST", "/v1/quote", content=spec.read_bytes())
    t = Table(title=f"quote for {q['job']}")
    for col in ["center", "pool", "start", "¥/job", "kgCO2", "score", "rejected by", "start waits for"]:
        t.add_column(col)
    for c in q["candidates"]:
        start = "never" if c["expected_start_s"] is None else format_duration(c["expected_start_s"])
        t.add_row(c["center"], c["pool"], "—" if c["rejected_by"] else start, f"{c['cny']:,.0f}",
                  f"{c['kg_co2']:.1f}", "—" if c["score"] is None else f"{c['score']:.1f}", ", ".join(c["rejected_by"]),
                  "; ".join(c.get("waits_for", [])))
    console.print(t)


def centers_command(url: Url = None, token: Token = None) -> None:
    """Centers of the network: engine, health, capacity in P, devices and free devices per chip."""
    with connect(url, token) as client:
        rows = call(client, "GET", "/v1/centers")
    t = Table(title="centers")
    for col in ["center", "region", "engine", "health", "pool", "chip", "nodes", "devices", "free", "P"]:
        t.add_column(col, justify="right" if col in {"nodes", "devices", "free", "P"} else "left")
    for c in rows:
        for i, p in enumerate(c["pools"]):
            first = i == 0
            t.add_row(c["name"] if first else "", c["region"] if first else "", c["engine"] if first else "",
                      ("ok" if c["healthy"] else "[red]DOWN[/]") if first else "", p["name"], p["accelerator"],
                      f"{p['nodes']}×{p['devices_per_node']}", f"{p['devices']:,}", f"{p['free']:,}",
                      f"{p['pflops']:,.1f}")
    console.print(t)
    for c in rows:
        if c.get("down_reason"):
            console.print(f"[red]{c['name']} is down:[/] {c['down_reason']}")
