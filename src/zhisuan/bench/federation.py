"""`zhisuan bench federation`: a network of many centers, each joined by its agent across a slow, broken WAN.

A real `zhisuan server` process; `centers` agent-joined centers, each agent connecting out through a fault
proxy of its own (50 ms RTT, its connections reset at random, a mean of once every `reset_every` seconds);
the agents share this process (threads), their engines are fast fakes (bench/timed.py: a job "runs" for its
`sleep`), so what is measured is the network around the engines. A slice of Philly, time-compressed, is
submitted over the API (a fifth of the jobs asks to be requeued when their center is lost, the others wait
for it); during the run `partitions` random centers are cut off (their proxy blackholes everything) for
longer or shorter than the center timeout. Measured: decision-to-start latency (from the server's placement
to the agent's start, dated by the server's clock), the server's CPU per 1,000 agent events, and what must
never happen — a job lost (never ended) or run twice (an attempt started twice, or two attempts at once).
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zhisuan.agent.client import AgentClient
from zhisuan.agent.core import AgentCore
from zhisuan.agent.journal import Journal
from zhisuan.bench.timed import TimedEngine
from zhisuan.bench.wan import FaultProxy
from zhisuan.serve.process import ServerProcess
from zhisuan.sim.readers import load_trace

REGIONS = ["east", "north", "west", "south", "central"]


@dataclass
class Federation:
    centers: int
    jobs: int
    rtt_ms: float
    seconds: float
    start_ms: list[float] = field(default_factory=list)  # start sent -> started at the agent, as the server dates it
    step_ms: list[float] = field(default_factory=list)  # the placing step's `now` -> started at the agent
    engine_ms: list[float] = field(default_factory=list)  # the step's `now` -> the engine's start, one machine clock
    events: int = 0
    frames: int = 0  # every message of the agents (heartbeats, acknowledgements, events)
    server_cpu_s: float = 0.0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    partitions: list[tuple[str, float]] = field(default_factory=list)  # (center, seconds cut off)
    resets: int = 0
    moved: int = 0  # jobs placed again after their center was lost (requeue, or not yet started)
    notes: list[str] = field(default_factory=list)

    def pct(self, q: float, values: list[float] | None = None) -> float:
        xs = self.start_ms if values is None else values
        return float(np.percentile(xs, q)) if xs else float("nan")

    @property
    def cpu_per_1000_events_ms(self) -> float:
        return 1000.0 * self.server_cpu_s / max(self.events, 1) * 1000.0

    @property
    def cpu_per_1000_frames_ms(self) -> float:
        return 1000.0 * self.server_cpu_s / max(self.frames, 1) * 1000.0


def network_yaml(n: int, timeout: float) -> str:
    centers = [{"name": f"c{k:02d}", "region": REGIONS[k % len(REGIONS)], "join": "agent", "pue": 1.2 + 0.01 * (k % 10),
                "carbon_kg_per_kwh": round(0.3 + 0.01 * (k % 30), 3),
                "pools": [{"name": "gpu", "accelerator": "a100", "nodes": 2, "devices_per_node": 8,
                           "price_per_device_hour": 8.0 + (k % 7)}]} for k in range(n)]
    return json.dumps({"name": "federation", "tenants": [{"name": "acme"}], "centers": centers,
                       "control": {"center_timeout": f"{timeout:g}s", "beat_every": "1s", "grace": "2s"}})


def workload(count: int, span: float, shortest: float, longest: float, seed: int) -> list[tuple[float, str]]:
    """(arrival second, spec) of `count` consecutive Philly jobs of 1-16 GPUs, arrivals squeezed into `span`
    seconds, run times mapped in rank order onto [shortest, longest]."""
    jobs = [j for j in load_trace("philly").jobs[40_000:] if j.devices in (1, 2, 4, 8, 16)][:count]
    t0, t1 = jobs[0].submit, max(jobs[-1].submit, jobs[0].submit + 1.0)
    order = sorted(range(len(jobs)), key=lambda k: (jobs[k].duration, k))
    runs = [0.0] * len(jobs)
    for rank, k in enumerate(order):
        runs[k] = shortest * (longest / shortest) ** (rank / max(len(jobs) - 1, 1))
    rng = random.Random(seed)
    out = []
    for k, j in enumerate(jobs):
        per_node, nodes = (8, j.devices // 8) if j.devices > 8 else (j.devices, 1)
        loss = "requeue" if rng.random() < 0.2 else "wait"
        spec = {"name": f"p{k}", "tenant": "acme", "resources": {"accelerators": f"a100:{per_node}", "nodes": nodes},
                "constraints": {"time_limit": f"{max(runs[k] * 3, 60):.0f}s"}, "on_center_loss": loss,
                "run": f"sleep {runs[k]:.2f}"}
        out.append(((j.submit - t0) * span / (t1 - t0), json.dumps(spec)))
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks (USER_HZ 100)


def run(centers: int = 50, count: int = 600, span: float = 240.0, shortest: float = 4.0, longest: float = 40.0,
        rtt_ms: float = 50.0, reset_every: float = 60.0, partitions: int = 10, timeout: float = 12.0,
        seed: int = 7, limit: float = 900.0, progress: Callable[[str], None] = lambda _: None) -> Federation:
    rng = random.Random(seed)
    logging.getLogger("zhisuan.agent").setLevel(logging.ERROR)  # resets are the point: counted, not printed
    folder = Path(tempfile.mkdtemp(prefix="zhisuan-bench-federation-"))
    folder.chmod(0o711)
    (folder / "net.yaml").write_text(network_yaml(centers, timeout))
    names = [f"c{k:02d}" for k in range(centers)]
    server = ServerProcess(folder / "net.yaml", f"sqlite:///{folder / 'z.db'}", folder / "runs", interval=0.2)
    proxies: dict[str, FaultProxy] = {}
    clients: list[AgentClient] = []
    engines: dict[str, TimedEngine] = {}
    threads: list[threading.Thread] = []
    result = Federation(centers, count, rtt_ms, 0.0)
    try:
        server.start()
        assert server.proc is not None
        for name in names:
            proxy = proxies[name] = FaultProxy(("127.0.0.1", server.port), seed=rng.randrange(1 << 30)).start()
            proxy.set_latency(rtt_ms / 2, jitter_ms=rtt_ms / 10)
            proxy.set_reset_rate(1.0 / reset_every)
            engines[name] = TimedEngine()
            core = AgentCore(name, engines[name], Journal(folder / "agents" / f"{name}.db"), leased=True)
            host, port = proxy.address
            client = AgentClient(core, f"http://{host}:{port}", server.token(f"center:{name}"), tick_every=0.25)
            clients.append(client)
            threads.append(threading.Thread(target=client.run, name=f"agent-{name}", daemon=True))
        for t in threads:
            t.start()
        admin = server.client("admin")
        end = time.time() + 60
        while time.time() < end and sum(a["connected"] for a in admin.get("/v1/agents").json()) < centers:
            time.sleep(0.5)
        progress(f"{centers} agents connected")
        agents = admin.get("/v1/agents").json()
        cpu0 = cpu_seconds(server.proc.pid)
        events0, frames0 = sum(a["events"] for a in agents), sum(a["frames"] for a in agents)
        jobs = workload(count, span, shortest, longest, seed)
        cuts = sorted((rng.uniform(0.1, 0.8) * span, rng.random(), rng.choice([timeout * 0.5, timeout * 2.5]))
                      for _ in range(partitions))
        ids: list[str] = []
        acme = server.client("acme")
        t0 = time.time()
        k = c = 0
        healed: list[tuple[float, str]] = []
        while k < len(jobs) or healed or c < len(cuts):
            now = time.time() - t0
            while c < len(cuts) and cuts[c][0] <= now:
                _, pick, length = cuts[c]
                busy = sorted(n for n, e in engines.items() if any(j.ended is None for j in list(e.jobs.values())))
                name = (busy or names)[int(pick * len(busy or names))]  # a center with work, where one has
                proxies[name].blackhole(True)
                healed.append((now + length, name))
                result.partitions.append((name, length))
                progress(f"cut {name} off for {length:.0f} s")
                c += 1
            for due, name in [h for h in healed if h[0] <= now]:
                proxies[name].blackhole(False)
                healed.remove((due, name))
            while k < len(jobs) and jobs[k][0] <= now:
                r = acme.post("/v1/jobs", content=jobs[k][1])
                r.raise_for_status()
                ids.append(r.json()["id"])
                k += 1
            time.sleep(0.05)
        progress(f"submitted {len(ids)} jobs; waiting for them to end")
        left = set(ids)
        while left and time.time() - t0 < limit:
            time.sleep(2.0)
            states = {x["id"]: x["state"] for x in admin.get("/v1/jobs", params={"limit": 1000}).json()}
            left = {i for i in left if states.get(i) not in ("succeeded", "failed", "cancelled")}
            progress(f"{len(ids) - len(left)}/{len(ids)} ended")
        result.seconds = time.time() - t0
        result.server_cpu_s = cpu_seconds(server.proc.pid) - cpu0
        agents = admin.get("/v1/agents").json()
        result.events = sum(a["events"] for a in agents) - events0
        result.frames = sum(a["frames"] for a in agents) - frames0
        for name in names:
            result.start_ms += [1000.0 * s for s in admin.get(f"/v1/agents/{name}/starts").json()["seconds"]]
        walls: dict[str, list[float]] = {}
        for engine in engines.values():
            for started in engine.jobs.values():
                walls.setdefault(started.job_id, []).append(started.wall)
        for job in ids:
            rec = admin.get(f"/v1/jobs/{job}").json()
            if rec["state"] != "succeeded":
                result.lost.append(f"{job}: {rec['state']} ({rec['reason']})")
            hist = rec["history"]
            result.moved += sum(1 for h in hist if h["state"] == "pending") - 1 > 0
            for a, b in itertools.pairwise(hist):
                if a["state"] == "scheduled" and b["state"] == "running":
                    result.step_ms.append(1000.0 * (b["at"] - a["at"]))
            decided = sorted(h["at"] for h in hist if h["state"] == "scheduled")
            for wall in walls.get(job, []):  # each start at an engine, from the placement it carried out
                before = [at for at in decided if at <= wall]
                if before:
                    result.engine_ms.append(1000.0 * (wall - before[-1]))
        result.duplicated = duplicates(engines)
        result.resets = sum(p.stats["resets"] for p in proxies.values())
        result.notes.append(f"{count} consecutive Philly jobs of 1-16 GPUs (from job 40,000), arrivals squeezed "
                            f"into {span:g} s, run times mapped onto {shortest:g}-{longest:g} s; a fifth "
                            "on_center_loss: requeue")
        result.notes.append(f"center timeout {timeout:g} s; partitions of {timeout * 0.5:g} s (the center stays) "
                            f"and {timeout * 2.5:g} s (declared down, placements moved)")
        return result
    finally:
        for client in clients:
            client.stop.set()
        for t in threads:
            t.join(timeout=30)
        server.close()
        for p in proxies.values():
            p.stop()
        shutil.rmtree(folder, ignore_errors=True)


def duplicates(engines: dict[str, TimedEngine]) -> list[str]:
    """Attempts started more than once, and jobs with two attempts running at once (anywhere)."""
    out: list[str] = []
    runs: dict[str, list[tuple[float, float, str]]] = {}
    for center, engine in engines.items():
        seen: dict[tuple[str, int], int] = {}
        for job in engine.jobs.values():
            seen[(job.job_id, job.attempt)] = seen.get((job.job_id, job.attempt), 0) + 1
            runs.setdefault(job.job_id, []).append((job.started, job.ended or float("inf"), center))
        out += [f"{j} attempt {a} started {n} times at {center}" for (j, a), n in seen.items() if n > 1]
    for name, spans in runs.items():
        spans.sort()
        for (_, e1, c1), (s2, _, c2) in itertools.pairwise(spans):
            if s2 < e1 - 0.05:
                out.append(f"{name} ran at {c1} and {c2} at once for {e1 - s2:.1f} s")
    return out


