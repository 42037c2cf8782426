"""`zhisuan server`: API + control loop (SQLite + local engine by default)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from zhisuan.cli.common import NetworkFile, console, fail, read_network


def server_command(
    network: NetworkFile = Path("examples/networks/toy3.yaml"),
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL; default $ZHISUAN_DB or sqlite:///zhisuan.db")] = None,
    runs: Annotated[Path, typer.Option(help="folder for job runs, logs and the first tokens")] = Path("runs"),
    host: Annotated[str, typer.Option(help="listen address (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="listen port")] = 8470,
    interval: Annotated[float, typer.Option(help="seconds between control steps")] = 1.0,
    reports: Annotated[Path, typer.Option(help="folder of `zhisuan sim` reports the dashboard lists")] = Path("report"),
    policy: Annotated[str | None, typer.Option(help="scheduling policy, any the simulator has (default: the "
                                                    "network's scheduler profile)")] = None,
    log_level: Annotated[str, typer.Option(metavar="LEVEL", help="debug, info (requests, job state changes), "
                                                                 "warning or error")] = "info",
    log_format: Annotated[str, typer.Option(metavar="FORMAT", help="text (key=value) or json (one object "
                                                                   "a line)")] = "text",
    model_backend: Annotated[list[str] | None, typer.Option(metavar="MODEL=URL", help="a model the gateway "
                             "serves from a running OpenAI-compatible server (repeatable)")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="serve HTTPS with this certificate (PEM; centers' agents "
                                                       "verify it against the network's CA)")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="the certificate's private key (PEM)")] = None,
    lease: Annotated[float, typer.Option(help="seconds a replica's lead lasts unless renewed: with several "
                                              "servers on one PostgreSQL, another leads this soon after the "
                                              "leader is lost")] = 8.0,
    api_workers: Annotated[int, typer.Option(help="answer the API, dashboard and gateway from this many processes "
                                                  "of their own; this one then keeps to the control loop "
                                                  "(0: this process answers too)")] = 0,
    api_worker_of: Annotated[str | None, typer.Option(hidden=True, help="(given by a server to its API workers) "
                                                                        "the server's own URL")] = None,
    listen_fd: Annotated[int | None, typer.Option(hidden=True, help="(given by a server to its API workers) the "
                                                                    "port's socket, inherited")] = None,
) -> None:
    """Serve the REST API and run the control loop: place, start, follow and record jobs."""
    from zhisuan.engines.nvml import DiscoveryError, bind_discovered
    from zhisuan.model import SpecError
    from zhisuan.scheduler.profiles import policy_for
    from zhisuan.serve.logs import configure
    from zhisuan.serve.server import BindError, serve
    from zhisuan.serve.workers import MAX_WORKERS
    from zhisuan.store.db import NewerSchema

    try:
        configure(log_level, log_format)
    except ValueError as e:
        fail(str(e))
    from zhisuan.gateway.replicas import static_backends

    try:
        backends = static_backends(model_backend or [])
    except ValueError as e:
        fail(f"--model-backend: {e}")
    if not 1.0 <= lease <= 600.0:
        fail("--lease: 1 to 600 seconds")
    if not 0 <= api_workers <= MAX_WORKERS:
        fail(f"--api-workers: 0 to {MAX_WORKERS}")
    if (api_worker_of is None) != (listen_fd is None):
        fail("--api-worker-of and --listen-fd go together (they are given by the server to its API workers)")
    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together")
    for given in (tls_cert, tls_key):
        if given is not None and not given.is_file():
            fail(f"--tls-cert/--tls-key: no file {given}")
    net = read_network(network)
    try:
        chosen = policy_for(net.scheduler, policy)
    except SpecError as e:
        fail(f"--policy: {e}")
    try:
        net = bind_discovered(net)
    except DiscoveryError as e:
        fail(f"{network}: {e}")
    for c in net.centers:
        for p in c.pools:
            if p.discover:
                console.print(f"{c.name}/{p.name}: {p.devices_per_node}× {p.accelerator} found by NVML "
                              f"(devices {', '.join(p.device_ids)})")
    scheme = "https" if tls_cert else "http"
    front = (api_worker_of, listen_fd) if api_worker_of is not None and listen_fd is not None else None
    if front is None:
        console.print(f"zhisuan server on {scheme}://{host}:{port} — network {net.name}, policy {chosen.name}, "
                      f"runs in {runs}/, first tokens in {runs / 'tokens.json'}; dashboard at {scheme}://{host}:{port}/"
                      + (f"; {api_workers} API workers" if api_workers else ""))
    from sqlalchemy.exc import DatabaseError

    from zhisuan.engines import EngineDown

    try:
        serve(net, db, runs, host, port, interval, reports, policy, log_level, backends,
              (tls_cert, tls_key) if tls_cert and tls_key else None, lease,
              0 if front else api_workers, [sys.executable, "-m", "zhisuan.cli.main", *sys.argv[1:]], front)
    except (BindError, NewerSchema) as e:
        fail(str(e))
    except DatabaseError as e:  # not a database, corrupt, or unreachable: one line, naming it and the way out
        where = db or os.environ.get("ZHISUAN_DB") or "sqlite:///zhisuan.db"
        fail(f"{where}: the database cannot be used ({str(e.orig).splitlines()[0][:200]}); restore it from a "
             "backup, or move it aside to start with an empty one")
    except (EngineDown, ValueError, OSError) as e:  # an engine is down, its config wrong, a folder unusable
        fail(f"{network}: {e}")
