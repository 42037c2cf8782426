"""`zhisuan server`: the API and the control loop in one process, on the embedded default or a URL.

On the first start the tokens table is empty: a token per tenant of the network and an admin token are
issued and written to `<runs>/tokens.json` (mode 600). Only their hashes are stored.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn
from sqlalchemy import select

from zhisuan.agent.protocol import MAX_FRAME_TO_SERVER
from zhisuan.api import create_app
from zhisuan.control.loop import ControlLoop
from zhisuan.control.recovery import follow
from zhisuan.control.service import Service
from zhisuan.engines import build_fleet, with_inventory
from zhisuan.gateway.proxy import Gateway
from zhisuan.gateway.replicas import Registry, Replica
from zhisuan.model import Network
from zhisuan.scheduler.profiles import policy_for
from zhisuan.serve.leader import Leadership, exit_deposed, exit_status
from zhisuan.serve.workers import MAX_WORKERS, Workers, end_with_parent
from zhisuan.store import JobStore, TokenStore, connect, migrate
from zhisuan.store.db import bound_transactions, checkpoint_apart, exclusive
from zhisuan.store.lease import Fenced, Lease
from zhisuan.store.schema import TokenRow

SWITCH_INTERVAL = 0.0005  # seconds (see serve())
log = logging.getLogger("zhisuan.server")


def private(database: str | None) -> None:
    """A SQLite database made before the umask (an older server) is made the server's alone too."""
    if not database:
        return
    for suffix in ("", "-wal", "-shm"):
        path = Path(database + suffix)
        if path.exists():
            path.chmod(0o600)


def bootstrap_tokens(tokens: TokenStore, network: Network, path: Path) -> None:
    with tokens.session() as s:
        if s.scalars(select(TokenRow).limit(1)).first() is not None:
            return
    now = time.time()
    issued = {t.name: tokens.issue(t.name, now) for t in network.tenants}
    issued["admin"] = tokens.issue("admin", now, admin=True)
    for c in network.centers:  # a credential for each center that joins through its agent
        if c.join == "agent":
            issued[f"center:{c.name}"] = tokens.issue("", now, label="first credential", center=c.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others, not even briefly
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(issued, indent=2))


def control_thread(loop: ControlLoop, interval: float, stop: threading.Event,
                   deposed: Callable[[str], None] = lambda why: None) -> threading.Thread:
    def run() -> None:
        try:
            loop.recover(time.time())
        except Fenced as e:
            deposed(str(e))
            return
        except Exception:  # the loop must run even if recovery met a bad record
            log.exception("recovery after restart failed")
        while not stop.is_set():
            try:
                loop.step(time.time())
            except Fenced as e:  # another replica leads: nothing more of this one's is written or done
                deposed(str(e))
                return
            except Exception:  # a bad step must not stop the loop; the next one retries
                log.exception("control step failed")
            stop.wait(interval)

    return threading.Thread(target=run, name="zhisuan-control", daemon=True)


def flusher(service: Service, stop: threading.Event, every: float = 5.0) -> threading.Thread:
    """Writes the gateway's token counts to the store every few seconds (the bill reads them there)."""
    def run() -> None:
        while not stop.wait(every):
            try:
                if service.flush_tokens is not None:
                    service.flush_tokens()
            except Exception:  # the store may be briefly unavailable: the counts wait for the next flush
                log.exception("token usage flush failed")

    return threading.Thread(target=run, name="zhisuan-tokens", daemon=True)


def follower(service: Service | None, leadership: Leadership | None = None,
             relay: list[str | None] | None = None) -> None:
    """What a replica that does not lead refreshes every few seconds: its gateway's replicas, and the leader's
    URL, where its gateway relays what only the leader reaches (replicas behind agents). The picture its API
    reads (queue, placements) is rebuilt when read (Leadership.fresh)."""
    if service is not None:
        service.keeper.follow()
    if leadership is not None and relay is not None:
        held = leadership.lease.current()
        relay[0] = leader_url(held.holder) if held is not None and not leadership.leading else None


def leader_url(holder: str) -> str | None:
    """The URL a replica leads from, as its lease's holder says (`host:pid:port URL`; older ones say none)."""
    url = holder.partition(" ")[2]
    return url if url.startswith(("http://", "https://")) else None


def plane(leadership: Leadership | None) -> dict[str, object]:
    """Who leads, as the store's lease says, and whether this replica does."""
    held = leadership.lease.current() if leadership is not None else None
    return {"leads": bool(leadership and leadership.leading), "leader": held.holder if held else None,
            "epoch": held.epoch if held else None, "expires_in": round(held.expires_in, 2) if held else None}


def stopped(signum: int, _: object) -> None:
    """SIGTERM once uvicorn has stopped serving: the process ends through its cleanup."""
    raise SystemExit(0)


class BindError(OSError):
    """The listen address cannot be had: nothing else was done (no database, no tokens written)."""


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise BindError(f"--port: cannot listen on {host}:{port} ({e.strerror or e})") from e
    sock.listen(2048)
    return sock


def serve(network: Network, db: str | None, runs: Path, host: str, port: int, interval: float,
          reports: Path | None = None, policy: str | None = None, log_level: str = "info",
          backends: list[Replica] | None = None, tls: tuple[Path, Path] | None = None, lease_s: float = 8.0,
          workers: int = 0, argv: list[str] | None = None, front: tuple[str, int] | None = None) -> None:
    """`policy` overrides the network profile's (`--policy`); the profile's weights and arguments still apply.
    `backends`: models served by the gateway at fixed addresses (`--model-backend`).
    `workers`: API workers started with `argv` (serve/workers.py); `front`: this is one, of the server at
    that URL, accepting on that file descriptor.
    The port is taken first: a server that cannot listen writes nothing (no tokens, no migration)."""
    chosen = policy_for(network.scheduler, policy)
    if front is not None:
        end_with_parent()
        sock = socket.socket(fileno=front[1])
    else:
        sock = listen(host, port)
    inner = listen("127.0.0.1", 0) if workers and front is None else None  # where its workers reach it
    os.umask(0o077)  # the database, its journal, tokens and logs: the server's alone (jobs run as other uids)
    engine = connect(db)
    store, tokens = JobStore(engine), TokenStore(engine)
    if front is None:
        with exclusive(engine):  # replicas starting together: one migrates and issues the first tokens
            migrate(engine)
            bootstrap_tokens(tokens, network, runs / "tokens.json")
        private(engine.url.database if engine.url.get_backend_name() == "sqlite" else None)
    bound_transactions(engine, lease_s / 2)  # a replica frozen mid-transaction holds no lock past half a lease
    fleet = build_fleet(network, runs)
    network = with_inventory(network, fleet)
    loop = ControlLoop(store, network, fleet, chosen)
    stop = threading.Event()
    checkpoint_apart(engine, stop)  # API workers too: no commit of theirs copies the journal back inline
    service: Service | None = None
    leadership: Leadership | None = None
    userver: uvicorn.Server | None = None
    relay: list[str | None] = [None]  # the leader's URL while following (read off the loop, by the follower)
    crew: Workers | None = None

    def deposed(why: str) -> None:
        stop.set()  # the control loop, the samplers: at once, before the process stops
        if leadership is not None:
            leadership.depose(why)

    try:
        service = Service(store, network, loop, reports)
        service.keeper.start()  # readiness probes of service replicas, off the control loop
        mover = service.mover
        if mover is not None:
            mover.cache = runs / "datasets"  # where this server's centers' jobs read their inputs
            mover.relay_root = runs / "relay"  # files between the two legs of a move through agents

        def lead(epoch: int) -> None:
            control_thread(loop, interval, stop, deposed).start()
            loop.start_sampling(stop)  # device measurements off the control loop
            if mover is not None:
                mover.start()  # transfers between centers' stores, off the control loop

        def on_deposed(why: str) -> None:
            stop.set()

            def stop_serving() -> None:
                if userver is not None:
                    userver.should_exit = True  # uvicorn stops as on a signal, and `serve` returns
            exit_deposed(why, stop_serving)

        if front is not None:  # an API worker: it follows, and hands its server what only the leader does
            leadership = Leadership(Lease(engine, "", lease_s), engine, lambda _: None, candidate=False,
                                    follow=lambda: follower(service), picture=lambda: follow(loop))
            service.leading = lambda: False  # /v1/control-plane: its server's answer (api/leader_relay.py)
            service.fresh = leadership.fresh
            leadership.start()
        elif engine.dialect.name == "sqlite":
            lead(0)  # the embedded default: one server, no lease
        else:  # replicas on PostgreSQL: whoever holds the lease leads
            named = host if host not in ("", "0.0.0.0", "::") else socket.gethostname()
            named = f"[{named}]" if ":" in named else named
            holder = f"{socket.gethostname()}:{os.getpid()}:{port} {'https' if tls else 'http'}://{named}:{port}"
            leadership = Leadership(Lease(engine, holder[:200], lease_s), engine, lead,
                                    follow=lambda: follower(service, leadership, relay), picture=lambda: follow(loop),
                                    on_deposed=on_deposed)
            service.leading = lambda: leadership is not None and leadership.leading
            service.control_plane = lambda: plane(leadership)
            service.fresh = leadership.fresh
            leadership.start()
        # keep-alive 75 s (as nginx): clients that pause between calls seldom meet a connection just closed
        registry = Registry()
        for replica in backends or []:
            registry.add(replica)
        gateway = Gateway(registry, links=loop.links.get, front=front is not None,
                          leader=(lambda: front[0]) if front is not None else
                          (lambda: None if service is None or service.leading() else relay[0]))
        app = create_app(service, tokens, gateway, agents_at=front[0] if front is not None else None)
        flusher(service, stop).start()
        config = uvicorn.Config(app, log_config=None, log_level=log_level,
                                timeout_keep_alive=75,
                                # a client's address is the connection's: X-Forwarded-For from loopback (where
                                # jobs run) is not believed (a TCP load balancer in front adds none anyway)
                                proxy_headers=False, access_log=log_level == "debug" or log_level == "info",
                                ws_max_size=MAX_FRAME_TO_SERVER, ws_ping_interval=10, ws_ping_timeout=20,
                                # agents' connections over TLS may not finish their closing handshake: cut after 3 s
                                timeout_graceful_shutdown=3,
                                # its workers reach a server on loopback, in plain HTTP
                                ssl_certfile=str(tls[0]) if tls and not inner else None,
                                ssl_keyfile=str(tls[1]) if tls and not inner else None)
        scheme = "https" if tls else "http"
        log.info("listening", extra={"fields": {"url": f"{scheme}://{host}:{port}", "network": network.name,
                                                 "policy": chosen.name, "centers": len(network.centers)}})
        userver = uvicorn.Server(config)
        # uvicorn stops gracefully on SIGTERM, then raises it again with the handler it found: the default one
        # would end the process there, before the `finally` below (its workers, the lease, the last token counts)
        signal.signal(signal.SIGTERM, stopped)
        # what start-up made lives as long as the server: full collections no longer walk it; and they come
        # less often (a young generation of 20,000, not 700): under many clients their pauses were the API's p99
        gc.freeze()
        gc.set_threshold(20_000, 10, 10)
        # the leader's loop and the API share the GIL: a thread that wants it waits up to this long. CPython's
        # 5 ms put the API's p99 at 116-187 ms under 16 clients while the loop worked 10,000 jobs; 0.5 ms:
        # 63-83 ms at about the same submits/s; 0.2 ms: 48-72 ms but ~20% fewer (`zhisuan bench api`)
        sys.setswitchinterval(SWITCH_INTERVAL)
        if inner is not None:
            crew = Workers(min(workers, MAX_WORKERS), argv or [], sock, f"http://127.0.0.1:{inner.getsockname()[1]}",
                           serving=lambda: userver is not None and not userver.should_exit).start()
        userver.run(sockets=[inner or sock])
    finally:
        stop.set()
        if crew is not None:
            crew.close()
        if inner is not None:
            inner.close()
        if leadership is not None:
            leadership.close()
        sock.close()
        if service is not None and service.mover is not None:
            service.mover.close()  # a running copy is cut; the next start resumes it
        if service is not None and service.flush_tokens is not None:
            try:
                service.flush_tokens()  # the last tokens served are on the bill too
            except Fenced:
                log.warning("the last token counts were not written: another replica leads")
    if exit_status():
        raise SystemExit(exit_status())
