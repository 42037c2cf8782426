"""`zhisuan agent` (run by a center's operator, inside the center) and `zhisuan center token|agents` (run by
the network's admin): how a center joins a network without giving the server its credentials or a port."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from zhisuan.cli.client import Token, Url, call, connect
from zhisuan.cli.common import console, fail, seconds

if TYPE_CHECKING:
    from zhisuan.agent.data import CenterData

center_app = typer.Typer(help="Centers: their operators' view and drains; their agents' credentials and standing.",
                         no_args_is_help=True, rich_markup_mode=None)
token_app = typer.Typer(help="Credentials of centers' agents: create, list, revoke.", no_args_is_help=True,
                        rich_markup_mode=None)
center_app.add_typer(token_app, name="token")


def agent_command(
    server: Annotated[str, typer.Option(help="the network's server, e.g. https://network.example:8470")],
    center: Annotated[str, typer.Option(help="this center's name in the network file")],
    token_file: Annotated[Path, typer.Option(help="file holding the center's credential (zhisuan center token "
                                                  "create), readable by the agent only")],
    engine: Annotated[str, typer.Option(help="the center's engine: local, slurm, ray or kubernetes")] = "local",
    engine_config: Annotated[Path | None, typer.Option(help="YAML of the engine's settings (slurm: conf, chips, "
                                                            "prices; ray: address; kubernetes: namespace...)")] = None,
    ca: Annotated[Path | None, typer.Option(help="CA file to verify the server's TLS certificate against "
                                                 "(default: the system's)")] = None,
    state: Annotated[Path, typer.Option(help="the agent's folder: its journal and the local engine's runs")] = Path(
        "zhisuan-agent"),
    tick: Annotated[float, typer.Option(help="seconds between polls of the center's runs")] = 0.5,
    log_level: Annotated[str, typer.Option(metavar="LEVEL", help="debug, info, warning or error")] = "info",
    prometheus: Annotated[str | None, typer.Option(help="the center's Prometheus (device busy, watts, memory of its "
                                                       "runs, reported to the network)")] = None,
    exporter: Annotated[str, typer.Option(help="the exporter feeding it: dcgm, npu, amd or hami")] = "dcgm",
    store: Annotated[Path | None, typer.Option(help="YAML of this center's object store: endpoint, bucket, "
                                                   "credentials_file (JSON access_key, secret_key); the keys "
                                                   "stay here")] = None,
    inventory: Annotated[bool, typer.Option("--inventory", help="print the pools the engine reports, as the "
                                            "network file's `pools:` of this center, and exit")] = False,
) -> None:
    """Join this center to a network: connect out to its server (no port opens here), run what it places here on
    this center's own engine, and report back. Runs go on when the server is out of reach."""
    import yaml

    from zhisuan.agent.client import AgentClient, Fatal
    from zhisuan.agent.core import AgentCore
    from zhisuan.agent.journal import Journal
    from zhisuan.engines import EngineDown
    from zhisuan.engines.fleet import engine_named
    from zhisuan.serve.logs import configure

    try:
        configure(log_level, "text")
        config = yaml.safe_load(engine_config.read_text(encoding="utf-8")) if engine_config else {}
        if not isinstance(config, dict):
            raise ValueError(f"--engine-config: {engine_config} must be a mapping of settings")
        if inventory:
            pools = engine_named(center, engine, config, state / "runs").inventory()
            print(yaml.safe_dump({"pools": [p.model_dump(exclude_defaults=True) for p in pools]}, sort_keys=False,
                                 allow_unicode=True), end="")
            return
        secret = token_file.read_text(encoding="utf-8").strip()
        if not secret:
            raise ValueError(f"--token-file: {token_file} is empty")
        os.umask(0o077)  # the journal and the runs' records: the agent's alone
        for folder in (state, state / "runs"):  # jobs run under uids (or accounts) of their own: they pass through
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o711)
        core = AgentCore(center, engine_named(center, engine, config, state / "runs"), Journal(state / "journal.db"),
                         leased=True)
        metrics = None
        if prometheus:
            from zhisuan.engines.prometheus import EXPORTERS, PrometheusMetrics

            if exporter not in EXPORTERS:
                raise ValueError(f"--exporter: one of {', '.join(sorted(EXPORTERS))}, got {exporter!r}")
            metrics = PrometheusMetrics(prometheus, exporter, timeout=2.0)
        client = AgentClient(core, server, secret, ca, tick_every=tick, metrics=metrics)
        if store is not None:
            core.data = center_data(center, store, state / "datasets", server, secret, ca)
            core.data.work_of = core.work_of
    except (OSError, ValueError, EngineDown, yaml.YAMLError) as e:
        fail(str(e))
    signal.signal(signal.SIGTERM, lambda *_: client.stop.set())
    console.print(f"zhisuan agent for center {center} ({engine}) -> {server}; journal in {state}/")
    try:
        client.run()
    except KeyboardInterrupt:
        client.stop.set()
    except Fatal as e:
        fail(str(e), code=3)
    finally:
        if core.data is not None:
            core.data.close()


def center_data(center: str, path: Path, folder: Path, server: str, secret: str, ca: Path | None) -> CenterData:
    """The center's store as `--store` declares it, and the folder its datasets are kept in on disk."""
    import json
    import ssl

    import yaml

    from zhisuan.agent.data import CenterData
    from zhisuan.storage import S3Store

    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not isinstance(raw.get("endpoint"), str):
        raise ValueError(f"--store: {path} must be a mapping with endpoint, bucket, credentials_file")
    keys: dict[str, str] = {}
    if raw.get("credentials_file"):
        keys = json.loads(Path(str(raw["credentials_file"])).read_text(encoding="utf-8"))
    bucket = str(raw.get("bucket") or "zhisuan")
    s3 = S3Store(center, raw["endpoint"], bucket, keys.get("access_key", ""), keys.get("secret_key", ""))
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca else True
    return CenterData(center, s3, folder, server, secret, verify)


@token_app.command("create")
def create(center: Annotated[str, typer.Argument(help="the center, as the network file names it")],
           label: Annotated[str, typer.Option(help="a note: who holds it")] = "",
           expires: Annotated[str | None, typer.Option(help="valid for, e.g. 365d (default: until revoked)")] = None,
           url: Url = None, token: Token = None) -> None:
    """Issue a center's credential; printed once: hand it to the center's operator for `zhisuan agent`."""
    body: dict[str, object] = {"center": center, "label": label}
    if expires:
        body["expires_in"] = seconds(expires, "--expires")
    with connect(url, token) as client:
        made = call(client, "POST", "/v1/center-tokens", json=body)
    note = "" if made["joins"] else " (note: the network file has it join directly, not through an agent)"
    console.print(f"credential {made['id']} for center {made['center']}{note}:")
    print(made["token"])


def _when(x: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(x)) if x else ""


@token_app.command("list")
def listing(url: Url = None, token: Token = None) -> None:
    """Every center credential: id, center, label, created, expiry, revocation (never the credential)."""
    with connect(url, token) as client:
        rows = call(client, "GET", "/v1/center-tokens")
    t = Table(title="center credentials")
    for col in ["id", "center", "label", "created", "expires", "revoked"]:
        t.add_column(col)
    for r in rows:
        t.add_row(r["id"], r["center"], r["label"], _when(r["created_at"]), _when(r["expires_at"]),
                  _when(r["revoked_at"]))
    console.print(t)


@token_app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="the id `zhisuan center token list` shows")],
           url: Url = None, token: Token = None) -> None:
    """Revoke a center's credential: its agent is disconnected within seconds and cannot connect again."""
    with connect(url, token) as client:
        done = call(client, "DELETE", f"/v1/center-tokens/{token_id}")
    console.print(f"credential {done['id']} of center {done['center']} revoked")


@center_app.command("agents")
def agents(url: Url = None, token: Token = None) -> None:
    """Each center's agent: how it joins, connected or not, silent for how long, its engine, commands waiting."""
    with connect(url, token) as client:
        rows = call(client, "GET", "/v1/agents")
    t = Table(title="agents")
    for col in ["center", "joins", "connected", "silent s", "engine", "runs", "commands waiting"]:
        t.add_column(col)
    for r in rows:
        t.add_row(r["center"], r["joins"], "yes" if r["connected"] else "no", f"{r['silent_s']:.0f}",
                  "ok" if r["engine_ok"] else r["engine_reason"][:60], str(r["runs"]), str(r["commands_waiting"]))
    console.print(t)
