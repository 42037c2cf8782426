"""`zhisuan bench fidelity`: does the live network decide as the simulator predicts?

A window of consecutive Philly jobs, time-compressed (arrivals squeezed into `span` seconds, run times
mapped in rank order onto [`shortest`, `longest`] seconds), is run live through `zhisuan server` on
the two real Slurm clusters plus a local center — jobs that sleep for their run time on the chip they
got — and replayed by the simulator on the same network, policy and cycle interval, with the arrival
times the server recorded. Compared per job: where it ran and its JCT.

Two agreements are measured. Open loop, per job: the same pool live and simulated. Under queueing this
is chaotic — a second's difference in when a job ends changes which pool frees first and everything
after — so the simulator is also compared with itself, run times jittered by up to `jitter` seconds
(the engines' start and end latency): the ceiling any driver could reach. Closed loop, per decision
(the headline): the live run's own events (arrivals, starts, ends, as the live loop observed them) are
replayed into a fresh scheduler state, and at each instant the live loop placed jobs, the replica is
asked what it would place, then made to follow the live run: same events in, same decisions out?
"""

from __future__ import annotations

import math
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from zhisuan.bench.wanet import ROOT, Wan
from zhisuan.catalog import load_catalog
from zhisuan.model import Network, parse_job_spec, parse_network
from zhisuan.scheduler import RunningJob, pending_from_spec, pools_from_network
from zhisuan.scheduler.profiles import policy_for
from zhisuan.scheduler.state import SchedulerState
from zhisuan.serve.process import ServerProcess
from zhisuan.sim.engine import Simulator
from zhisuan.sim.readers import load_trace
from zhisuan.sim.scenario import network_scenario
from zhisuan.sim.trace import Trace, TraceJob

CHIP = "A100 SXM4 80GB"  # the run times refer to it; every job may also run on Ascend (cuda and cann)
SIZES = {1, 2, 4, 8, 16}


@dataclass
class Outcome:
    id: str
    tenant: str
    devices: int
    run_s: float  # on the reference chip
    submit: float  # seconds after the first arrival, as the server recorded it
    live_pool: str = ""
    live_start: float = math.nan
    live_end: float = math.nan
    sim_pool: str = ""
    sim_start: float = math.nan
    sim_end: float = math.nan
    live_story: str = ""  # the live job's states and their reasons, to say why one did not finish

    @property
    def live_jct(self) -> float:
        return self.live_end - self.submit

    @property
    def sim_jct(self) -> float:
        return self.sim_end - self.submit


@dataclass
class Fidelity:
    jobs: list[Outcome]
    live_seconds: float
    interval: float
    notes: list[str]
    decisions: tuple[int, int] = (0, 0)  # live placements the replica also chose, of all live placements
    ceiling_pct: float = math.nan  # open-loop agreement of the simulator with itself, run times jittered

    @property
    def done(self) -> list[Outcome]:
        return [j for j in self.jobs if math.isfinite(j.live_end) and math.isfinite(j.sim_end)]

    @property
    def mean_jct_error_pct(self) -> float:
        live, sim = (statistics.fmean(getattr(j, k) for j in self.done) for k in ("live_jct", "sim_jct"))
        return 100.0 * abs(live - sim) / sim

    @property
    def per_job_agreement_pct(self) -> float:
        """Open loop: jobs on the same pool live and simulated."""
        return 100.0 * sum(j.live_pool == j.sim_pool for j in self.done) / max(len(self.done), 1)

    @property
    def placement_agreement_pct(self) -> float:
        """Closed loop: live placements the scheduler replica, fed the live events, chose too."""
        return 100.0 * self.decisions[0] / max(self.decisions[1], 1)


SLURM = {"alpha": ({"a100": "A100 SXM4 80GB", "910b": "Ascend 910B3"}, {"a100": 10.0, "910b": 8.0}, "east", 1.25,
                   0.5849),
         "beta": ({"910b": "Ascend 910B3"}, {"910b": 7.0}, "west", 1.2, 0.4772)}


def network_yaml(pools: dict[str, list[dict[str, Any]]], tenants: list[str] | None = None) -> str:
    """The two Slurm clusters of scripts/slurm-up.sh, joined through their agents with the pools the agents
    report, and one local center of 8 devices (one node) the server runs itself."""
    centers: list[dict[str, Any]] = [
        {"name": name, "region": region, "pue": pue, "carbon_kg_per_kwh": grid, "engine": "slurm", "join": "agent",
         "pools": pools[name]} for name, (_, _, region, pue, grid) in SLURM.items()]
    centers.append({"name": "lab", "region": "east", "pue": 1.5, "carbon_kg_per_kwh": 0.5849, "pools": [
        {"name": "a100", "accelerator": "a100", "nodes": 1, "devices_per_node": 8, "price_per_device_hour": 12.0}]})
    return yaml.safe_dump({"name": "fidelity", "centers": centers, "tenants": [{"name": t} for t in tenants or []],
                           "control": {"center_timeout": "30s", "beat_every": "1s"}})


def workload(count: int, span: float, shortest: float, longest: float, offset: int) -> list[TraceJob]:
    """`count` consecutive Philly jobs of 1-16 GPUs from `offset`, arrivals squeezed into `span` seconds and
    run times mapped in rank order onto [shortest, longest] (log-spaced: long stays long)."""
    jobs = [j for j in load_trace("philly").jobs[offset:] if j.devices in SIZES][:count]
    t0, t1 = jobs[0].submit, max(jobs[-1].submit, jobs[0].submit + 1.0)
    order = sorted(range(len(jobs)), key=lambda k: (jobs[k].duration, k))
    runs = [0.0] * len(jobs)
    for rank, k in enumerate(order):
        runs[k] = round(shortest * (longest / shortest) ** (rank / max(len(jobs) - 1, 1)), 1)
    return [TraceJob(j.id, (j.submit - t0) * span / (t1 - t0), runs[k], j.devices, j.tenant, CHIP)
            for k, j in enumerate(jobs)]


def command(run_s: float) -> str:
    """Sleep for the run time on the chip the job got (Ascend's speed factor vs the reference A100)."""
    cat = load_catalog()
    ascend = run_s * cat.lookup(CHIP).fp16_tflops / cat.lookup("Ascend 910B3").fp16_tflops
    return f'if [ -n "$ASCEND_RT_VISIBLE_DEVICES" ]; then sleep {ascend:.3f}; else sleep {run_s:.3f}; fi'


def spec(job: TraceJob) -> str:
    per_node, nodes = (8, job.devices // 8) if job.devices > 8 else (job.devices, 1)
    return yaml.safe_dump({"name": job.id, "tenant": job.tenant, "resources": {
        "accelerators": f"A100-80GB:{per_node}", "nodes": nodes, "portable": ["cuda", "cann"]},
        "constraints": {"time_limit": max(job.duration * 3, 60.0)}, "run": command(job.duration)})


def live(jobs: list[TraceJob], server: ServerProcess, progress: Callable[[str], None],
         limit: float = 1800.0) -> tuple[list[Outcome], float, dict[str, dict[str, Any]]]:
    """Run the jobs through a real server; stop waiting after `limit` seconds (a stalled loop)."""
    out = {j.id: Outcome(j.id, j.tenant, j.devices, j.duration, 0.0) for j in jobs}
    ids: dict[str, str] = {}
    with server.client("admin") as client:
        t0 = time.time()
        for k, j in enumerate(jobs):
            time.sleep(max(0.0, t0 + j.submit - time.time()))
            r = client.post("/v1/jobs", content=spec(j))
            r.raise_for_status()
            ids[j.id] = r.json()["id"]
            progress(f"live: submitted {k + 1}/{len(jobs)}")
        left = set(ids.values())
        while left and time.time() - t0 < limit:
            time.sleep(2.0)
            states = {x["id"]: x["state"] for x in client.get("/v1/jobs").json()}
            left = {i for i in left if states.get(i) not in ("succeeded", "failed", "cancelled")}
            progress(f"live: {len(ids) - len(left)}/{len(ids)} ended")
        seconds = time.time() - t0
        records = {name: client.get(f"/v1/jobs/{i}").json() for name, i in ids.items()}
    first = min(r["submitted_at"] for r in records.values())
    for name, rec in records.items():
        o = out[name]
        o.submit = rec["submitted_at"] - first
        o.live_pool = f"{rec['center']}/{rec['pool']}" if rec["center"] else ""
        started = [h["at"] for h in rec["history"] if h["state"] == "running"]
        ended = [h["at"] for h in rec["history"] if h["state"] == "succeeded"]
        o.live_start = started[-1] - first if started else math.nan
        o.live_end = ended[-1] - first if ended else math.nan
        o.live_story = "; ".join(f"{h['state']} {h['at'] - first:.1f}s {h.get('why') or ''}".strip()
                                 for h in rec["history"])
    return list(out.values()), seconds, records


def simulate(outcomes: list[Outcome], network: Network, interval: float, jitter: float = 0.0, seed: int = 0) -> None:
    """Replay the same jobs, arriving when the server recorded them, through the simulator (run times
    lengthened by up to `jitter` seconds each, at random, when asked)."""
    rng = random.Random(seed)
    trace = Trace("fidelity", [TraceJob(o.id, o.submit, o.run_s + jitter * rng.random(), o.devices, o.tenant, CHIP)
                               for o in outcomes], CHIP, start=time.time())
    result = Simulator(trace, network_scenario(network, siloed=False), policy_for(network.scheduler),
                       interval=interval, stacks=frozenset({"cuda", "cann"})).run()
    pools = result.scenario.pools
    by_id = {o.id: o for o in outcomes}
    for j in result.jobs:
        o = by_id[j.trace.id]
        o.sim_pool = pools[j.pool].key if j.pool >= 0 else ""
        o.sim_start, o.sim_end = j.first_start, j.end


def replay(jobs: list[TraceJob], records: dict[str, dict[str, Any]], network: Network) -> tuple[int, int]:
    """Teacher-forced replay of the live run's events into a fresh scheduler state: at each instant the
    live loop placed jobs, what would the replica place? (agreeing, all) live placements."""
    policy = policy_for(network.scheduler)
    state = SchedulerState(pools_from_network(network), policy)
    pending = {j.id: pending_from_spec(j.id, parse_job_spec(spec(j)), records[j.id]["submitted_at"]) for j in jobs}
    # each change in the order the live loop learned of it (the transitions' sequence), with its time: a run
    # that ended during a step is known from the next step on, even if its center dated the end earlier
    events: list[tuple[int, float, str, str]] = []  # (seq, at, what, job)
    decided: dict[float, list[str]] = {}
    first_seq: dict[float, int] = {}
    for name, rec in records.items():
        for i, h in enumerate(rec["history"]):
            what = "requeued" if h["state"] == "pending" and i else h["state"]
            if what in ("pending", "requeued", "running", "succeeded", "failed", "cancelled"):
                events.append((h["seq"], h["at"], what, name))
            if h["state"] == "scheduled":
                decided.setdefault(h["at"], []).append(name)
                first_seq[h["at"]] = min(first_seq.get(h["at"], h["seq"]), h["seq"])
    events.sort()
    agree = total = k = 0
    known: set[str] = set()
    for at in sorted(decided, key=lambda t: first_seq[t]):
        # a step takes its `now` when it begins and reads the feed later: a job it placed at `now` may have
        # been submitted a moment after it
        early = [n for n in decided[at] if n not in known]
        while k < len(events) and events[k][0] < first_seq[at]:
            _, when, what, name = events[k]
            k += 1
            if what == "pending" and name not in known:
                known.add(name)
                state.submit(pending[name])
            elif what == "requeued" and state.allocation(name) is not None:
                state.unplace(name)
                state.submit(pending[name])
            elif what == "running":
                state.started(name, when)
            elif what in ("succeeded", "failed", "cancelled"):
                state.end(name, when)
        for name in early:
            if name not in known:
                known.add(name)
                state.submit(pending[name])
        result = state.cycle(at)
        mine = {s.job_id: f"{s.placement.center}/{s.placement.pool}" for s in result.starts}
        for s in result.starts:  # follow the live run from here
            state.unplace(s.job_id)
            state.submit(pending[s.job_id])
        for name in decided[at]:
            rec = records[name]
            key = f"{rec['center']}/{rec['pool']}"
            total += 1
            agree += mine.get(name) == key
            state.withdraw(name)
            job = pending[name]
            speed = job.request.speed(state.pools[state.pool_index(key)].chip)
            try:
                state.hold(RunningJob(name, job.tenant, key, tuple(rec["nodes"]), job.request.devices_per_node, at,
                                      at + job.duration / speed, speed=speed, milli=job.request.milli,
                                      cpus=job.request.cpus, memory_gib=job.request.memory_gib))
            except ValueError:  # the replica thinks those devices are taken: the two have parted ways
                agree -= mine.get(name) == key
    return agree, total


def run(count: int = 200, span: float = 180.0, shortest: float = 12.0, longest: float = 60.0,
        interval: float = 1.0, offset: int = 68_000, slurm_root: Path = Path("/tmp/zhisuan-slurm"),
        jitter: float = 1.5, limit: float = 1800.0, progress: Callable[[str], None] = lambda _: None,
        rtt_ms: float = 50.0) -> Fidelity:
    """The clusters are started (scripts/slurm-up.sh) when they are not up, and stopped again afterwards."""
    up = (slurm_root / "alpha" / "etc" / "slurm.conf").exists() and Path("/var/run/netns/zs-alpha").exists()
    env = {**os.environ, "ZHISUAN_SLURM_ROOT": str(slurm_root)}
    if not up:
        progress("starting the two Slurm clusters (scripts/slurm-up.sh)")
        subprocess.run(["bash", str(ROOT / "scripts" / "slurm-up.sh")], check=True, capture_output=True, env=env)
    try:
        return _run(count, span, shortest, longest, interval, offset, slurm_root, jitter, limit, progress, rtt_ms)
    finally:
        if not up:
            subprocess.run(["bash", str(ROOT / "scripts" / "slurm-down.sh")], check=False, capture_output=True,
                           env=env)


def _run(count: int, span: float, shortest: float, longest: float, interval: float, offset: int, slurm_root: Path,
         jitter: float, limit: float, progress: Callable[[str], None], rtt_ms: float) -> Fidelity:
    folder = Path(tempfile.mkdtemp(prefix="zhisuan-bench-fidelity-"))
    folder.chmod(0o711)  # jobs run under uids of their own and pass through to their folders
    wan = Wan(folder, "", one_way_ms=rtt_ms / 2, tls=False)
    try:
        jobs = workload(count, span, shortest, longest, offset)
        tenants = sorted({j.tenant for j in jobs})
        for index, (name, (chips, prices, *_)) in enumerate(SLURM.items(), start=1):
            wan.center(name, index, engine="slurm", owned=False, config={
                "conf": str(slurm_root / name / "etc" / "slurm.conf"), "chips": chips, "prices": prices})
        pools = {name: yaml.safe_load(wan.inventory(name))["pools"] for name in SLURM}
        wan.write_network(network_yaml(pools, tenants))
        network = parse_network(network_yaml(pools, tenants))
        progress("starting the server and the clusters' agents")
        server = wan.start(interval)
        for name in SLURM:
            wan.start_agent(name)
        wan.wait_connected(*SLURM)
        time.sleep(2 * interval + 2.5)  # the loop sees them connected: they take placements
        outcomes, seconds, records = live(jobs, server, progress, limit)
        wan.stop()
        progress("replaying the same jobs in the simulator")
        simulate(outcomes, network, interval)
        base = {o.id: o.sim_pool for o in outcomes}
        ceiling = []
        for seed in (1, 2, 3):
            shaken = [Outcome(o.id, o.tenant, o.devices, o.run_s, o.submit) for o in outcomes]
            simulate(shaken, network, interval, jitter, seed)
            ceiling.append(100.0 * sum(base[o.id] == o.sim_pool for o in shaken) / len(shaken))
        progress("replaying the live events into a scheduler replica")
        decisions = replay(jobs, records, network)
        notes = [f"{len(jobs)} consecutive Philly jobs of 1-16 GPUs from job {offset:,}; arrivals squeezed into "
                 f"{span:g} s and run times mapped in rank order onto {shortest:g}-{longest:g} s",
                 "every job may run on A100 or Ascend 910B3 (portable: cuda, cann); on Ascend it sleeps its run "
                 "time / the FP16 TFLOPS ratio, as the simulator models it"]
        notes.append(f"alpha and beta joined through their agents, each in the cluster's own network namespace, "
                     f"{rtt_ms:g} ms round trip to the server through a fault proxy; lab run by the server itself")
        return Fidelity(outcomes, seconds, interval, notes, decisions, statistics.median(ceiling))
    finally:
        wan.stop()
        shutil.rmtree(folder, ignore_errors=True)
