"""`zhisuan bench fidelity`: does the live network decide as the simulator predicts?

A window of consecutive Philly jobs, time-compressed (arrivals squeezed into `span` seconds, run times
mapped in rank order onto [`shortest`, `longest`] seconds), is run live through `zhisuan server` on
the two real Slurm clusters plus a local center — jobs that sleep for their run time on the chip they
got — and replayed by the simulator on the same network, policy and cycle interval, with the arrival
times the server recorded. Compared per job: where it ran and its JCT; in summary: the mean JCT and
the share of jobs placed on the same pool.
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from zhisuan.catalog import load_catalog
from zhisuan.engines import build_fleet, with_inventory
from zhisuan.model import Network, parse_network
from zhisuan.scheduler.profiles import policy_for
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

    @property
    def done(self) -> list[Outcome]:
        return [j for j in self.jobs if math.isfinite(j.live_end) and math.isfinite(j.sim_end)]

    @property
    def mean_jct_error_pct(self) -> float:
        live, sim = (statistics.fmean(getattr(j, k) for j in self.done) for k in ("live_jct", "sim_jct"))
        return 100.0 * abs(live - sim) / sim

    @property
    def placement_agreement_pct(self) -> float:
        return 100.0 * sum(j.live_pool == j.sim_pool for j in self.done) / max(len(self.done), 1)


def network_yaml(slurm_root: Path) -> str:
    """The two Slurm clusters of scripts/slurm-up.sh and one local center of 8 devices (one node)."""
    return f"""
name: fidelity
centers:
  - name: alpha
    region: east
    pue: 1.25
    carbon_kg_per_kwh: 0.5849
    engine: slurm
    engine_config: {{conf: {slurm_root}/alpha/etc/slurm.conf, chips: {{a100: A100 SXM4 80GB, 910b: Ascend 910B3}},
                    prices: {{a100: 10.0, 910b: 8.0}}}}
  - name: beta
    region: west
    pue: 1.2
    carbon_kg_per_kwh: 0.4772
    engine: slurm
    engine_config: {{conf: {slurm_root}/beta/etc/slurm.conf, chips: {{910b: Ascend 910B3}}, prices: {{910b: 7.0}}}}
  - name: lab
    region: east
    pue: 1.5
    carbon_kg_per_kwh: 0.5849
    pools: [{{name: a100, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 12.0}}]
tenants: []
"""


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


def live(jobs: list[TraceJob], network_file: Path, folder: Path, interval: float,
         progress: Callable[[str], None]) -> tuple[list[Outcome], float]:
    server = ServerProcess(network_file, f"sqlite:///{folder / 'live.db'}", folder / "runs", interval=interval).start()
    out = {j.id: Outcome(j.id, j.tenant, j.devices, j.duration, 0.0) for j in jobs}
    ids: dict[str, str] = {}
    try:
        with server.client("admin") as client:
            t0 = time.time()
            for k, j in enumerate(jobs):
                time.sleep(max(0.0, t0 + j.submit - time.time()))
                r = client.post("/v1/jobs", content=spec(j))
                r.raise_for_status()
                ids[j.id] = r.json()["id"]
                progress(f"live: submitted {k + 1}/{len(jobs)}")
            left = set(ids.values())
            while left:
                time.sleep(2.0)
                states = {x["id"]: x["state"] for x in client.get("/v1/jobs").json()}
                left = {i for i in left if states.get(i) not in ("succeeded", "failed", "cancelled")}
                progress(f"live: {len(ids) - len(left)}/{len(ids)} ended")
            seconds = time.time() - t0
            records = {name: client.get(f"/v1/jobs/{i}").json() for name, i in ids.items()}
    finally:
        server.stop()
    first = min(r["submitted_at"] for r in records.values())
    for name, rec in records.items():
        o = out[name]
        o.submit = rec["submitted_at"] - first
        o.live_pool = f"{rec['center']}/{rec['pool']}" if rec["center"] else ""
        started = [h["at"] for h in rec["history"] if h["state"] == "running"]
        ended = [h["at"] for h in rec["history"] if h["state"] == "succeeded"]
        o.live_start = started[-1] - first if started else math.nan
        o.live_end = ended[-1] - first if ended else math.nan
    return list(out.values()), seconds


def simulate(outcomes: list[Outcome], network: Network, interval: float) -> None:
    """Replay the same jobs, arriving when the server recorded them, through the simulator."""
    trace = Trace("fidelity", [TraceJob(o.id, o.submit, o.run_s, o.devices, o.tenant, CHIP) for o in outcomes], CHIP,
                  start=time.time())
    result = Simulator(trace, network_scenario(network, siloed=False), policy_for(network.scheduler),
                       interval=interval, stacks=frozenset({"cuda", "cann"})).run()
    pools = result.scenario.pools
    by_id = {o.id: o for o in outcomes}
    for j in result.jobs:
        o = by_id[j.trace.id]
        o.sim_pool = pools[j.pool].key if j.pool >= 0 else ""
        o.sim_start, o.sim_end = j.first_start, j.end


def run(count: int = 300, span: float = 240.0, shortest: float = 15.0, longest: float = 120.0,
        interval: float = 1.0, offset: int = 40_000, slurm_root: Path = Path("/tmp/zhisuan-slurm"),
        progress: Callable[[str], None] = lambda _: None) -> Fidelity:
    if not (slurm_root / "alpha" / "etc" / "slurm.conf").exists():
        raise FileNotFoundError(f"no Slurm clusters under {slurm_root}: run `bash scripts/slurm-up.sh` first")
    folder = Path(tempfile.mkdtemp(prefix="zhisuan-bench-fidelity-"))
    try:
        (folder / "network.yaml").write_text(network_yaml(slurm_root), encoding="utf-8")
        declared = parse_network(network_yaml(slurm_root))
        network = with_inventory(declared, build_fleet(declared, folder / "inventory"))
        jobs = workload(count, span, shortest, longest, offset)
        outcomes, seconds = live(jobs, folder / "network.yaml", folder, interval, progress)
        progress("replaying the same jobs in the simulator")
        simulate(outcomes, network, interval)
        notes = [f"{len(jobs)} consecutive Philly jobs of 1-16 GPUs from job {offset:,}; arrivals squeezed into "
                 f"{span:g} s and run times mapped in rank order onto {shortest:g}-{longest:g} s",
                 "every job may run on A100 or Ascend 910B3 (portable: cuda, cann); on Ascend it sleeps its run "
                 "time / the FP16 TFLOPS ratio, as the simulator models it"]
        return Fidelity(outcomes, seconds, interval, notes)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
