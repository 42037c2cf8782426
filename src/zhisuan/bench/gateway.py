"""`zhisuan bench gateway`: what the gateway adds to a call, and how many calls a second it carries on
this machine, beside LiteLLM's proxy forwarding to the same backend in the same run.

Four sides, each a real HTTP server on loopback: the repo's minimal OpenAI-compatible backend called
directly; `zhisuan server --model-backend echo=…` (the gateway, bearer token checked, usage metered);
LiteLLM's proxy (`litellm --config`, its own virtualenv: `ZHISUAN_LITELLM` or `.venv-litellm/bin/litellm`)
with the same backend as an OpenAI-compatible model; and `tunnel`: the same backend as the replica of a
deployed service at a center that joins through its agent (`zhisuan agent`, its own process, connected
out through a fault proxy with no delay added), reached through the agent's tunnel — what the tunnel adds
over the gateway calling a backend directly. Non-streaming chat completions, the sides taking
turns in rounds so a noisy minute hits all of them, in two phases: latency — one client at a time, added
latency = the side's percentile minus the direct one's (what a call pays for the hop, not for queueing
behind other calls on 2 shared cores); throughput — a closed loop of `concurrency` clients, requests/s =
answered ÷ wall time.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from zhisuan.engines.confine import shared_folder
from zhisuan.engines.rendezvous import free_port

CHAT = {"model": "echo", "messages": [{"role": "user", "content": "the quick brown fox jumps over the lazy dog"}]}


def litellm_binary() -> str | None:
    given = os.environ.get("ZHISUAN_LITELLM")
    for candidate in (given, ".venv-litellm/bin/litellm", shutil.which("litellm")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@contextmanager
def process(args: list[str], ready: str, headers: dict[str, str] | None = None, limit: float = 120.0,
            env: dict[str, str] | None = None, log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, waited for until `ready` answers 200; stopped on exit."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    try:
        end = time.time() + limit
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited with {proc.returncode}" + (f"; see {log}" if log else ""))
            try:
                if httpx.get(ready, headers=headers, timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > end:
                raise RuntimeError(f"{args[0]} did not answer {ready} within {limit:.0f} s")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()  # type: ignore[union-attr]


@dataclass
class Side:
    name: str
    url: str
    headers: dict[str, str]
    latencies: list[float] = field(default_factory=list)
    answered: int = 0
    failed: int = 0
    seconds: float = 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")

    @property
    def rps(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0


async def _load(side: Side, n: int, concurrency: int, record: bool) -> None:
    async with httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=concurrency)) as client:
        left = n

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                t = time.perf_counter()
                try:
                    r = await client.post(side.url + "/v1/chat/completions", json=CHAT, headers=side.headers)
                    ok = r.status_code == 200 and bool(r.json()["choices"])
                except (httpx.HTTPError, ValueError, KeyError):
                    ok = False
                if record:
                    if ok:
                        side.answered += 1
                        side.latencies.append(time.perf_counter() - t)
                    else:
                        side.failed += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        if record:
            side.seconds += time.perf_counter() - start


@dataclass
class GatewayBench:
    latency: list[Side]  # one client
    throughput: list[Side]  # `concurrency` clients
    requests: int
    concurrency: int
    rounds: int

    @staticmethod
    def side(sides: list[Side], name: str) -> Side:
        return next(s for s in sides if s.name == name)


SERVICE = """name: chat
kind: service
resources: {{accelerators: a100:1}}
service: {{model: echo, ready: /health, replicas: {{min: 1, max: 1}}}}
run: exec python3 {script} --port $PORT --model echo
"""
FAR = json.dumps({"name": "tunnel", "tenants": [{"name": "acme"}], "centers": [
    {"name": "far", "region": "west", "join": "agent", "pue": 1.2, "carbon_kg_per_kwh": 0.1,
     "pools": [{"name": "gpu", "accelerator": "a100", "nodes": 1, "devices_per_node": 1,
                "price_per_device_hour": 5}]}]})


@contextmanager
def behind_an_agent(root: Path) -> Iterator[Side]:
    """A server whose only center joins through its agent, a service of the backend deployed there: the side."""
    from zhisuan.bench.wanet import Wan
    from zhisuan.gateway import backend

    folder = root / "tunnel"
    folder.mkdir(mode=0o711)
    shared = shared_folder("bench-backend-")  # not in /tmp: a job's /tmp is its own
    script = shared / "backend.py"
    shutil.copy(backend.__file__, script)
    script.chmod(0o644)
    wan = Wan(folder, FAR, one_way_ms=0.0, tls=False)
    wan.center("far", 0, namespace=False)
    try:
        server = wan.start()
        wan.start_agent("far")
        wan.wait_connected("far")
        acme = server.client("acme")
        acme.post("/v1/services", content=SERVICE.format(script=script)).raise_for_status()
        end = time.time() + 60
        while not acme.get("/v1/services").json()[0]["ready"]:
            if time.time() > end:
                raise RuntimeError(f"the replica behind the agent did not get ready; see {folder}")
            time.sleep(0.3)
        yield Side("tunnel", server.url, {"Authorization": f"Bearer {server.token('acme')}"})
        acme.delete(f"/v1/services/{acme.get('/v1/services').json()[0]['id']}")
    finally:
        wan.stop()
        shutil.rmtree(shared, ignore_errors=True)


def run(requests: int = 3000, concurrency: int = 8, rounds: int = 3,
        progress: Callable[[str], None] = lambda _: None) -> GatewayBench:
    litellm = litellm_binary()
    if litellm is None:
        raise RuntimeError("LiteLLM's proxy is not installed: `make litellm` (its own virtualenv, .venv-litellm) "
                           "or set ZHISUAN_LITELLM to its `litellm` executable")
    root = Path(tempfile.mkdtemp(prefix="zhisuan-bench-gateway-"))
    root.chmod(0o711)  # the server's jobs run under uids of their own and must pass through
    backend_port, server_port, litellm_port = free_port(), free_port(), free_port()
    backend = f"http://127.0.0.1:{backend_port}"
    master = "sk-" + secrets.token_hex(24)  # LiteLLM checks a bearer key too, as zhisuan checks its tokens
    (root / "litellm.yaml").write_text(json.dumps({"model_list": [{"model_name": "echo", "litellm_params": {
        "model": "openai/echo", "api_base": backend + "/v1", "api_key": "none"}}],
        "general_settings": {"master_key": master}}))
    network = Path(__file__).resolve().parents[3] / "examples" / "networks" / "toy3.yaml"
    progress("starting the backend, zhisuan server and LiteLLM's proxy")
    with process([sys.executable, "-m", "zhisuan.gateway.backend", "--port", str(backend_port), "--model", "echo"],
                 backend + "/health"):
        server_args = [sys.executable, "-m", "zhisuan.cli.main", "server", "--network", str(network), "--db",
                       f"sqlite:///{root / 'z.db'}", "--runs", str(root / "runs"), "--port", str(server_port),
                       "--log-level", "warning", "--model-backend", f"echo={backend}"]
        with process(server_args, f"http://127.0.0.1:{server_port}/openapi.json", log=root / "server.log"):
            token = json.loads((root / "runs" / "tokens.json").read_text())["admin"]
            with process([litellm, "--config", str(root / "litellm.yaml"), "--port", str(litellm_port),
                          "--host", "127.0.0.1", "--num_workers", "1"],
                         f"http://127.0.0.1:{litellm_port}/health/liveliness", limit=180.0,
                         env={"LITELLM_LOG": "ERROR"}, log=root / "litellm.log"), behind_an_agent(root) as tunnel:
                def sides() -> list[Side]:
                    return [Side("direct", backend, {}),
                            Side("zhisuan", f"http://127.0.0.1:{server_port}", {"Authorization": f"Bearer {token}"}),
                            Side("litellm", f"http://127.0.0.1:{litellm_port}", {"Authorization": f"Bearer {master}"}),
                            Side(tunnel.name, tunnel.url, tunnel.headers)]

                latency, throughput = sides(), sides()
                for s in latency:
                    progress(f"warming up {s.name}")
                    asyncio.run(_load(s, 200, concurrency, record=False))
                for phase, group, clients in (("latency", latency, 1), ("throughput", throughput, concurrency)):
                    for k in range(rounds):
                        for s in group:
                            progress(f"{phase}, round {k + 1}/{rounds}: {s.name}")
                            asyncio.run(_load(s, requests // rounds, clients, record=True))
    shutil.rmtree(root, ignore_errors=True)
    return GatewayBench(latency, throughput, requests, concurrency, rounds)
