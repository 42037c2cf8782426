"""Client commands: talk to `zhisuan server` over HTTP (httpx). Token from $ZHISUAN_TOKEN or
~/.config/zhisuan/token; server from $ZHISUAN_URL (default http://127.0.0.1:8470)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.table import Table

from zhisuan.cli.common import LANG, L, console, err_console, fail, kilos, money

if TYPE_CHECKING:
    import httpx


TERMINAL = {"succeeded", "failed", "cancelled"}
Url = Annotated[str | None, typer.Option(
    "--url", metavar="URL", help="server URL, or several replicas' comma-separated (default $ZHISUAN_URL, else "
                                 "what login saved)")]
Token = Annotated[str | None, typer.Option(
    "--token", metavar="TOKEN", help="bearer token (default $ZHISUAN_TOKEN, else what login saved)")]
ACTIVE = ["pending", "scheduled", "staging", "running"]
STATES = [*ACTIVE, "succeeded", "failed", "cancelled", "preempted"]


StateOpt = Annotated[list[str] | None, typer.Option(
    "--state", "-s", metavar="STATE", help=f"only jobs in this state (repeat, or comma-separate: {', '.join(STATES)})")]
AllOpt = Annotated[bool, typer.Option("--all", "-a", help="ended jobs too (default: waiting and running, as squeue)")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, metavar="N",
                                       help="at most this many, newest first")]
Follow = Annotated[bool, typer.Option("--follow", "-f", help="stream state and logs until the job ends")]


LOCAL = "http://127.0.0.1:8470"


def config_dir() -> Path:
    """Where `zhisuan login` keeps the token and server URL ($XDG_CONFIG_HOME/zhisuan, else ~/.config)."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "zhisuan"


def _saved(name: str) -> str | None:
    path = config_dir() / name
    return path.read_text(encoding="utf-8").strip() or None if path.exists() else None


def connect(url: str | None, token: str | None) -> httpx.Client:
    """A client for the server: --url/--token, else $ZHISUAN_URL/$ZHISUAN_TOKEN, else what `login` saved."""
    import ssl

    import httpx

    token = token or os.environ.get("ZHISUAN_TOKEN") or _saved("token")
    if not token:
        fail("no token: run `zhisuan login`, set ZHISUAN_TOKEN, or pass --token")
    base = url or os.environ.get("ZHISUAN_URL") or _saved("url") or LOCAL
    # reasons in the language asked for (Accept-Language); the network's own CA: $ZHISUAN_CA, else the system's
    ca = os.environ.get("ZHISUAN_CA")
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if ca else True
    from zhisuan.cli.failover import Failover

    bases = [b.strip() for b in base.split(",") if b.strip()]
    transport = Failover(bases, verify) if len(bases) > 1 else None
    return httpx.Client(base_url=bases[0], headers={"Authorization": f"Bearer {token}", "Accept-Language": LANG[0]},
                        timeout=30, verify=verify, transport=transport)


def call(client: httpx.Client, method: str, path: str, retry: bool = False, **kw: Any) -> Any:
    """One request; exits with the server's problem on 4xx/5xx. `retry`: transport errors are raised to
    the caller (a submit retried with its idempotency key) instead of ending the command."""
    import httpx

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
    state = L(job["state"])
    if job["center"]:
        console.print(L("{id}: {state} on {where}", id=job["id"], state=state, where=f"{job['center']}/{job['pool']}"))
    else:
        console.print(L("{id}: {state}", id=job["id"], state=state))


def _follow(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """Show state changes until the job starts, stream its logs until it ends, then its final state."""
    import httpx

    job = call(client, "GET", f"/v1/jobs/{job_id}")
    _show_state(job)
    while job["state"] in ("pending", "scheduled", "staging"):
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


Format = Annotated[str, typer.Option("--format", metavar="FORMAT",
                                     help="zhisuan, sbatch or skypilot (default: told from the file)")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="print the zhisuan spec a script or task becomes; "
                                                         "submit nothing")]


def _translated(path: Path, kind: str) -> bytes:
    """The file as a zhisuan spec: itself, or an #SBATCH script / SkyPilot task translated (printed, with
    what was left out)."""
    import json

    import yaml

    from zhisuan.model import SpecError
    from zhisuan.model.foreign import from_sbatch, from_skypilot, looks_like_sbatch, looks_like_skypilot
    from zhisuan.model.parsing import ParseError, load_document

    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    try:
        if kind == "auto":
            kind = "sbatch" if looks_like_sbatch(text) else "zhisuan"
            if kind == "zhisuan":
                doc = load_document(raw)
                kind = "skypilot" if looks_like_skypilot(doc) else "zhisuan"
        if kind == "zhisuan":
            return raw
        spec, notes = from_sbatch(text, path.stem) if kind == "sbatch" else from_skypilot(load_document(raw), path.stem)
    except SpecError as e:
        fail(f"cannot translate {path} ({kind}): {e}")
    except ParseError as e:  # not YAML at all
        fail(f"{path}: {e}")
    console.print(f"{path} read as {'an #SBATCH script' if kind == 'sbatch' else 'a SkyPilot task'}; "
                  "as a zhisuan spec:", highlight=False)
    class Dumper(yaml.SafeDumper):
        pass

    def text_block(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, text_block)
    shown = yaml.dump(spec, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=1000)
    console.print(shown.rstrip(), highlight=False, markup=False)
    for note in notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    return json.dumps(spec).encode()


def submit_command(spec: Annotated[Path, typer.Argument(help="job spec (YAML or JSON), #SBATCH script or "
                                                             "SkyPilot task YAML")],
                   follow: Follow = False, kind: Format = "auto", dry_run: DryRun = False,
                   url: Url = None, token: Token = None) -> None:
    """Submit a job; with --follow, stream its state and logs until it ends."""
    import httpx

    if kind not in ("auto", "zhisuan", "sbatch", "skypilot"):
        fail(f"--format: expected zhisuan, sbatch or skypilot, got {kind!r}")
    if not spec.exists():
        fail(f"job spec not found: {spec}")
    body = _translated(spec, kind)
    if dry_run:
        return
    key = uuid.uuid4().hex  # the same key on every retry: stored once at most
    with connect(url, token) as client:
        for attempt in range(3):
            try:
                job = call(client, "POST", "/v1/jobs", content=body, headers={"Idempotency-Key": key}, retry=True)
                break
            except httpx.TransportError as e:
                if attempt == 2:
                    fail(f"cannot reach the server at {client.base_url}: {e}")
                time.sleep(1.0 + attempt)
        console.print(L("submitted {id} ({name}): {state}", id=job["id"], name=job["name"], state=L(job["state"])))
        if follow and _follow(client, job["id"])["state"] != "succeeded":
            raise typer.Exit(1)


def jobs_command(state: StateOpt = None, every: AllOpt = False, limit: LimitOpt = 50,
                 url: Url = None, token: Token = None) -> None:
    """List your jobs, newest first (an admin token lists everyone's)."""
    from zhisuan.model.units import format_duration

    wanted = [x.strip() for v in state or [] for x in v.split(",") if x.strip()]
    unknown = [x for x in wanted if x not in STATES]
    if unknown:
        fail(f"--state: unknown state {unknown[0]!r}; one of {', '.join(STATES)}")
    params: dict[str, Any] = {"limit": limit}
    if wanted or not every:
        params["state"] = wanted or ACTIVE
    with connect(url, token) as client:
        rows = call(client, "GET", "/v1/jobs", params=params)
    t = Table(title=L("jobs" if every or wanted else "jobs waiting or running (--all for every job)"))
    for col in ["id", "name", "tenant", "state", "where", "devices", "age", "exit", "why waiting / expected start"]:
        t.add_column(L(col))
    now = time.time()
    for j in rows:
        where = f"{j['center']}/{j['pool']}" if j["center"] else ""
        t.add_row(j["id"], j["name"], j["tenant"], j["state"], where, " ".join(",".join(d) for d in j["devices"]),
                  format_duration(now - j["submitted_at"]), "" if j["exit_code"] is None else str(j["exit_code"]),
                  _waiting(j, now))
    console.print(t)
    if len(rows) == limit:
        console.print(L("showing the newest {n}; --limit shows more", n=limit))


def _waiting(job: dict[str, Any], now: float) -> str:
    """`reason (start in 5m00s)` for jobs that wait; empty otherwise."""
    from zhisuan.model.units import format_duration

    if job["state"] not in ("pending", "scheduled") or not job.get("wait_reason"):
        return ""
    when = job.get("expected_start")
    if when is None:
        return str(job["wait_reason"])
    return L("{reason} (start in {when})", reason=job["wait_reason"], when=format_duration(when - now))


JobId = Annotated[str, typer.Argument(metavar="ID", help="the job's id (from submit or jobs)")]


def show_command(job_id: JobId, url: Url = None, token: Token = None) -> None:
    """One job: state, where it runs or why it waits and when it is expected to start, attempts, history."""
    from zhisuan.model.units import format_duration

    with connect(url, token) as client:
        j = call(client, "GET", f"/v1/jobs/{job_id}")
        moves = call(client, "GET", f"/v1/jobs/{job_id}/transfers") if j.get("inputs") else []
    now = time.time()
    rows = [("job", L("{id} ({name}) of {tenant}, priority {priority}", id=j["id"], name=j["name"], tenant=j["tenant"],
                      priority=j["priority"])), ("state", L(j["state"]))]
    if j["center"]:
        rows.append(("where", L("{where} nodes {nodes} devices {devices}", where=f"{j['center']}/{j['pool']}",
                                nodes=j["nodes"], devices=" ".join(",".join(d) for d in j["devices"]))))
    if j["state"] in ("pending", "scheduled"):
        rows.append(("waiting", j.get("wait_reason") or L("not yet considered by a cycle")))
        if j.get("expected_start") is not None:
            when = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(j["expected_start"]))
            rows.append(("expected start", f"{when} (in {format_duration(j['expected_start'] - now)})"))
    for x in moves:  # its inputs' staging: bytes done of total, rate
        rows.append(("staging", f"{x['source']} -> {x['target']}: {x['state']}, {x['bytes_done'] / 1e6:,.1f} of "
                                f"{x['bytes_total'] / 1e6:,.1f} MB at {x['rate'] / 1e6:,.1f} MB/s"))
    rows.append(("attempts", str(j["attempts"])))
    if j["exit_code"] is not None or j["reason"]:
        rows.append(("ended", f"exit {j['exit_code']}: {j['reason'] or ''}".strip(": ")))
    t = Table(show_header=False, title=L("job {id}", id=j["id"]))
    t.add_column(L("field"), style="bold")
    t.add_column(L("value"))
    for k, v in rows:
        t.add_row(L(k), v)
    console.print(t)
    h = Table(title=L("history"))
    for col in ["at", "state", "why"]:
        h.add_column(L(col))
    for e in j.get("history", []):
        h.add_row(time.strftime("%H:%M:%S", time.localtime(e["at"])), L(e["state"]), e["why"])
    console.print(h)


def logs_command(job_id: JobId,
                 follow: Follow = False,
                 url: Url = None, token: Token = None) -> None:
    """Print a job's logs; with -f, follow them until the job ends."""
    with connect(url, token) as client:
        if follow:
            _follow(client, job_id)
        else:
            console.out(call(client, "GET", f"/v1/jobs/{job_id}/logs"), end="")


def cancel_command(job_ids: Annotated[list[str], typer.Argument(metavar="ID", help="one or more job ids")],
                   url: Url = None, token: Token = None) -> None:
    """Cancel jobs (SIGTERM, then SIGKILL after a grace period, if they run); every id is tried, and the
    exit code is non-zero if any could not be cancelled."""
    failed = 0
    with connect(url, token) as client:
        for job_id in job_ids:
            r = client.post(f"/v1/jobs/{job_id}/cancel")
            if r.status_code >= 400:
                body = r.json() if r.headers.get("content-type", "").endswith("json") else {"detail": r.text}
                why = body.get("detail") or body.get("title", "")
                err_console.print(f"[bold red]error:[/] {job_id}: {r.status_code} {why}", soft_wrap=True)
                failed += 1
                continue
            job = r.json()
            console.print(L("{id}: {state}", id=job["id"], state=L(job["state"])))
    if failed:
        raise typer.Exit(2)


def quote_command(spec: Annotated[Path, typer.Argument(help="job spec")], url: Url = None, token: Token = None) -> None:
    """Ranked placements with expected start, ¥ and kgCO2 on the live network, without submitting."""
    from zhisuan.model.units import format_duration

    if not spec.exists():
        fail(f"job spec not found: {spec}")
    with connect(url, token) as client:
        q = call(client, "POST", "/v1/quote", content=spec.read_bytes())
    t = Table(title=L("quote for {job}", job=q["job"]))
    data = any(c.get("data") for c in q["candidates"])  # the job reads datasets: a column saying what moves
    for col in ["center", "pool", "start", "¥/job", "kgCO2", "score", "rejected by", "start waits for",
                *(["data"] if data else [])]:
        t.add_column(L(col))
    for c in q["candidates"]:
        start = L("never") if c["expected_start_s"] is None else L(format_duration(c["expected_start_s"]))
        t.add_row(c["center"], c["pool"], "—" if c["rejected_by"] else start, money(c["cny"]),
                  kilos(c["kg_co2"]), "—" if c["score"] is None else f"{c['score']:.1f}", ", ".join(c["rejected_by"]),
                  "; ".join(c.get("waits_for", [])), *([c.get("data", "")] if data else []))
    console.print(t)
    best = [c for c in q["candidates"] if not c["rejected_by"] and c.get("parts")][:3]
    if best:
        parts = Table(title=L("what each score contributed (normalised 0–100 × weight → points)"))
        parts.add_column(L("pool"))
        for p in best[0]["parts"]:
            parts.add_column(f"{p['score']} ×{p['weight']:g}", justify="right")
        for c in best:
            parts.add_row(f"{c['center']}/{c['pool']}",
                          *(f"{p['normalised']:.0f} → {p['contribution']:.1f}" for p in c["parts"]))
        console.print(parts)
    console.print(L("why: {margin}", margin=q.get("margin", "")), highlight=False)


def centers_command(url: Url = None, token: Token = None) -> None:
    """Centers of the network: engine, health, capacity in P, devices and free devices per chip."""
    with connect(url, token) as client:
        rows = call(client, "GET", "/v1/centers")
    t = Table(title=L("centers"))
    for col in ["center", "region", "engine", "health", "pool", "chip", "nodes", "devices", "free", "P"]:
        t.add_column(L(col), justify="right" if col in {"nodes", "devices", "free", "P"} else "left")
    for c in rows:
        for i, p in enumerate(c["pools"]):
            first = i == 0
            health = L("ok") if c["healthy"] else f"[red]{L('DOWN')}[/]"
            name = c.get("name_zh") if LANG[0].startswith("zh") and c.get("name_zh") else c["name"]
            t.add_row(name if first else "", L(c["region"]) if first else "", c["engine"] if first else "",
                      health if first else "", p["name"], p["accelerator"],
                      f"{p['nodes']}×{p['devices_per_node']}", f"{p['devices']:,}", f"{p['free']:,}",
                      f"{p['pflops']:,.1f}")
    console.print(t)
    for c in rows:
        if c.get("down_reason"):
            console.print(f"[red]{L('{name} is down:', name=c['name'])}[/] {c['down_reason']}")
