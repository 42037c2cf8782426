"""The operator console's picture of the network: KPI tiles, per-center occupancy, queue and next free
device, flows of running jobs from where their data is to where they run, and alerts — computed from the
loop's published view, the store and the meter (no new state)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from zhisuan.catalog.tou import UTC_OFFSET
from zhisuan.control.observe import queue_depth
from zhisuan.control.view import LiveView
from zhisuan.metering.usage import UsageInterval
from zhisuan.model import JobState, Network
from zhisuan.scheduler.capacity import capacities
from zhisuan.scheduler.shape import Shape
from zhisuan.scheduler.state import EXTERNAL
from zhisuan.scheduler.timeline import earliest_start
from zhisuan.store import JobRecord

IDLE_ALERT = 0.5  # measured idle share of allocated time today above which a center is flagged


@dataclass(frozen=True)
class DayTotal:
    """What one tenant used at one center today: the measured part of its allocated device-seconds (those
    with a busy figure), busy device-seconds, CNY and kgCO2."""

    center: str
    tenant: str
    measured_device_s: float
    busy_device_s: float
    cny: float
    kg_co2: float

    @classmethod
    def of(cls, u: UsageInterval) -> DayTotal:
        measured = u.measured_device_s if u.busy_device_s is not None else 0.0
        return cls(u.center, u.tenant, measured, u.busy_device_s or 0.0, u.cny, u.kg_co2)


def local_midnight(now: float) -> float:
    """Start of today in Asia/Shanghai (the day bills and 'today' tiles count)."""
    return math.floor((now + UTC_OFFSET) / 86400) * 86400 - UTC_OFFSET


def overview(network: Network, view: LiveView, down: dict[str, str], today: list[DayTotal],
             running: list[JobRecord], ended_last_hour: int, now: float, tenant: str | None) -> dict[str, Any]:
    """`today`: what was metered since local midnight (runs still going included); `tenant`: None for an
    admin, else the caller — who sees the network's capacity and occupancy, but only its own ¥, kgCO2 and
    job flows, and no alert about another tenant."""
    held: Counter[str] = Counter()
    by_tenant: defaultdict[str, float] = defaultdict(float)  # devices held, a share as its fraction (quotas)
    for r in view.running:
        held[r.pool.split("/")[0]] += r.devices
        if r.tenant != EXTERNAL:
            by_tenant[r.tenant] += r.milli / 1000 if r.milli else r.devices
    caps = capacities(view.snapshot())
    depth = queue_depth(view, network)
    centers, online, total, devices = [], 0.0, 0.0, 0
    for c in network.centers:
        healthy = c.healthy and c.name not in down
        size = sum(p.devices for p in c.pools)
        starts = [earliest_start(caps[i], Shape(1), now) for i, p in enumerate(view.pools) if p.center == c.name]
        soonest = min(starts, default=math.inf)
        centers.append({"name": c.name, "name_zh": c.name_zh, "province": c.province, "region": c.region,
                        "healthy": healthy, "pflops": round(c.pflops, 3), "devices": size,
                        "occupancy_pct": round(100 * held[c.name] / size, 1) if size else 0.0,
                        "queue": depth.get(c.name, 0),
                        "next_free_s": None if not healthy or math.isinf(soonest) else round(soonest - now, 1)})
        total += c.pflops
        online += c.pflops if healthy else 0.0
        devices += size
    mine = [u for u in today if tenant in (None, u.tenant)]  # money and jobs: a tenant sees its own only
    measured = sum(u.measured_device_s for u in today)
    busy = sum(u.busy_device_s for u in today)
    kpis = {"pflops_online": round(online, 3), "pflops_total": round(total, 3), "devices": devices,
            "allocated_pct": round(100 * sum(held.values()) / devices, 1) if devices else 0.0,
            "busy_pct": round(100 * busy / measured, 1) if measured else None,
            "queue": sum(n for _, n in view.queued), "jobs_per_hour": ended_last_hour,
            "cny_today": round(sum(u.cny for u in mine), 2), "kg_co2_today": round(sum(u.kg_co2 for u in mine), 3)}
    flows: Counter[tuple[str, str]] = Counter()
    for rec in running:
        data = rec.spec.constraints.data
        if tenant not in (None, rec.tenant):
            continue
        if rec.state is JobState.RUNNING and data and rec.center and data != rec.center:
            flows[(data, rec.center)] += 1
    return {"at": now, "kpis": kpis, "centers": centers,
            "flows": [{"from": a, "to": b, "jobs": n} for (a, b), n in sorted(flows.items())],
            "alerts": _alerts(network, centers, today, by_tenant, down, tenant)}


def _alerts(network: Network, centers: list[dict[str, Any]], today: list[DayTotal],
            by_tenant: defaultdict[str, float], down: dict[str, str], tenant: str | None) -> list[dict[str, str]]:
    out = []
    for c in centers:
        if not c["healthy"]:
            out.append({"kind": "center-down", "subject": c["name"],
                        "message": f"{c['name']} is down: {down.get(c['name'], 'marked unhealthy')}"})
    measured: dict[str, float] = defaultdict(float)
    idle: dict[str, float] = defaultdict(float)
    for u in today:
        measured[u.center] += u.measured_device_s
        idle[u.center] += u.measured_device_s - u.busy_device_s
    for name, m in sorted(measured.items()):
        if m > 0 and idle[name] / m > IDLE_ALERT:
            out.append({"kind": "idle-while-allocated", "subject": name,
                        "message": f"{name}: {100 * idle[name] / m:.0f}% of measured allocated time idle today"})
    for t in network.tenants:
        n = by_tenant[t.name]
        if t.quota_devices is not None and n >= t.quota_devices and tenant in (None, t.name):
            out.append({"kind": "over-quota", "subject": t.name,
                        "message": f"tenant {t.name} holds {n:g} of its {t.quota_devices}-device quota"})
    return out


def centers_json(network: Network, held: dict[str, tuple[int, int]], down: dict[str, str]) -> list[dict[str, object]]:
    """Every center with its pools: chip, size, capacity in P, devices free now and held by the center's own
    load (its users' jobs, nodes drained or down)."""
    return [{
        "name": c.name, "name_zh": c.name_zh, "region": c.region, "province": c.province, "engine": c.engine,
        "healthy": c.healthy and c.name not in down, "down_reason": down.get(c.name),
        "pue": c.pue, "carbon_kg_per_kwh": c.carbon_kg_per_kwh, "pflops": round(c.pflops, 3),
        "pools": [{"name": p.name, "accelerator": p.accelerator, "stack": p.chip.stack, "nodes": p.nodes,
                   "devices_per_node": p.devices_per_node, "devices": p.devices, "pflops": round(p.pflops, 3),
                   "free": p.devices - sum(held.get(f"{c.name}/{p.name}", (0, 0))),
                   "own_load": held.get(f"{c.name}/{p.name}", (0, 0))[1],
                   "price_per_device_hour": p.price_per_device_hour,
                   "assumptions": sorted({*p.assumptions, *c.assumptions})} for p in c.pools],
    } for c in network.centers]
