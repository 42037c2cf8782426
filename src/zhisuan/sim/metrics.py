"""What a replay measured: JCT, queueing delay, slowdown, makespan, utilisation, cost and energy.

Slowdown = JCT / run time (1.0 = never waited). Allocated utilisation = allocated device-seconds /
(devices x makespan). Busy utilisation only where the trace measured it (Philly's GPU-utilisation
distribution), applied to allocated time; never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zhisuan.catalog.tou import load_tou
from zhisuan.metering import usage_cost
from zhisuan.model.billing import Held
from zhisuan.sim.engine import SimResult


@dataclass(frozen=True)
class Summary:
    scenario: str
    policy: str
    jobs: int
    finished: int
    avg_jct: float
    p50_jct: float
    p99_jct: float
    avg_queue: float
    p50_queue: float
    p99_queue: float
    avg_slowdown: float
    p99_slowdown: float
    makespan: float
    allocated_util: float
    busy_util: float | None
    cny: float
    kwh: float
    kg_co2: float
    preemptions: int
    wall_seconds: float
    cycles: int


@dataclass(frozen=True)
class CenterUsage:
    center: str
    devices: int
    allocated_util: float
    device_hours: float
    cny: float
    kwh: float
    kg_co2: float
    cpu_hours: float = 0.0  # CPU-hours billed: CPU-only jobs', and CPUs beyond a job's share of a node
    memory_gib_hours: float = 0.0  # GiB-hours billed beyond a job's share of a node


def job_arrays(r: SimResult) -> dict[str, np.ndarray]:
    log = r.jobs
    submit, first, end = log.submit, log.first_start, log.end
    return {"submit": submit, "start": first, "end": end, "run": log.run_seconds, "jct": end - submit,
            "queue": first - submit, "devices": log.devices}


def makespan(r: SimResult) -> float:
    a = job_arrays(r)
    done = np.isfinite(a["end"])
    return float(a["end"][done].max() - a["submit"].min()) if done.any() else 0.0


def billed_hours(r: SimResult) -> list[Held[float]]:
    """Per pool, the device-, CPU- and GiB-hours billed (model/billing.py), each at the ToU multiplier of its
    run's local hours (metering's tariff tables) when a pool of the scenario has a ToU zone, else flat."""
    runs = r.runs
    tou = any(r.scenario.tou.values()) and len(runs)
    out = []
    for k, pool in enumerate(r.scenario.pools):
        mine = runs[runs[:, 0] == k]
        if tou:
            weight = load_tou(r.scenario.tou.get(pool.key)).integral(mine[:, 1] + r.epoch, mine[:, 2] + r.epoch)
            devices = float((weight * mine[:, 3]).sum()) / 3600.0
        else:
            weight, devices = mine[:, 2] - mine[:, 1], r.device_seconds[k] / 3600.0
        out.append(Held(devices, float((weight * mine[:, 4]).sum()) / 3600.0,
                        float((weight * mine[:, 5]).sum()) / 3600.0))
    return out


def per_center(r: SimResult) -> list[CenterUsage]:
    span = max(makespan(r), 1.0)
    busy = r.busy_fraction if r.busy_fraction is not None else 1.0
    out: dict[str, list[float]] = {}
    billed = billed_hours(r)
    for k, (pool, secs) in enumerate(zip(r.scenario.pools, r.device_seconds, strict=True)):
        u = usage_cost(secs, pool.price, pool.chip.tdp_w or 0.0, pool.pue, pool.carbon_kg_per_kwh, busy)
        mine = r.runs[r.runs[:, 0] == k]
        flat = (mine[:, 2] - mine[:, 1])[:, None] * mine[:, 4:6]
        row = out.setdefault(pool.center, [0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
        row[0] += pool.nodes * pool.devices_per_node
        row[1] += secs
        row[2] += u.device_hours
        row[3] += billed[k].cny_per_hour(pool.price, pool.cpu_price, pool.memory_price)
        row[4] += u.kwh
        row[5] += u.kg_co2
        row[6] += float(flat[:, 0].sum()) / 3600.0
        row[7] += float(flat[:, 1].sum()) / 3600.0
    return [CenterUsage(c, int(v[0]), v[1] / (v[0] * span) if v[0] else 0.0, v[2], v[3], v[4], v[5], v[6], v[7])
            for c, v in out.items()]


def summarize(r: SimResult) -> Summary:
    a = job_arrays(r)
    done = np.isfinite(a["end"])
    jct, queue = a["jct"][done], a["queue"][done]
    slowdown = jct / np.maximum(a["run"][done], 1e-9)
    centers = per_center(r)
    devices = r.scenario.devices
    span = max(makespan(r), 1.0)
    alloc = sum(r.device_seconds) / (devices * span)

    def q(x: np.ndarray, p: float) -> float:
        return float(np.percentile(x, p)) if len(x) else float("nan")

    return Summary(
        scenario=r.scenario.name, policy=r.policy + ("-pred" if r.estimates == "predicted" else ""),
        jobs=len(r.jobs), finished=int(done.sum()),
        avg_jct=float(jct.mean()) if len(jct) else float("nan"), p50_jct=q(jct, 50), p99_jct=q(jct, 99),
        avg_queue=float(queue.mean()) if len(queue) else float("nan"), p50_queue=q(queue, 50),
        p99_queue=q(queue, 99), avg_slowdown=float(slowdown.mean()) if len(slowdown) else float("nan"),
        p99_slowdown=q(slowdown, 99), makespan=span, allocated_util=alloc,
        busy_util=alloc * r.busy_fraction if r.busy_fraction is not None else None,
        cny=sum(c.cny for c in centers), kwh=sum(c.kwh for c in centers), kg_co2=sum(c.kg_co2 for c in centers),
        preemptions=int(r.jobs.preemptions.sum()), wall_seconds=r.wall_seconds, cycles=r.cycles,
    )


def utilization_series(r: SimResult, points: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Allocated fraction of devices over time (step function sampled at `points` instants), in days."""
    t, used = r.utilization[:, 0], r.utilization[:, 1]
    grid = np.linspace(0.0, max(float(t.max()), 1.0), points)
    idx = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, len(t) - 1)
    return grid / 86400.0, used[idx] / max(r.scenario.devices, 1)


def jct_cdf(r: SimResult, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """JCT quantiles (hours) against cumulative fraction of jobs."""
    jct = job_arrays(r)["jct"]
    jct = np.sort(jct[np.isfinite(jct)]) / 3600.0
    if not len(jct):
        return np.zeros(1), np.zeros(1)
    frac = np.linspace(0.0, 1.0, points)
    return np.quantile(jct, frac), frac
