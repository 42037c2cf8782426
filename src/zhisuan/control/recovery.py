"""The live loop's scheduler state, rebuilt from the store (the source of truth) when the loop starts:
service received from the metered runs, jobs holding devices, the queue. Each spec is parsed once here
and then kept; later changes arrive as events (the transitions feed), not by reading everything again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zhisuan.catalog import load_catalog
from zhisuan.control.jobs import JobInfo, Run
from zhisuan.control.view import LiveView
from zhisuan.model import JobState, Network
from zhisuan.scheduler import PendingJob, Policy, PoolState, RunningJob, TenantState
from zhisuan.scheduler.state import SchedulerState
from zhisuan.store import JobStore, UsageStore
from zhisuan.store.jobs import ACTIVE

if TYPE_CHECKING:
    from zhisuan.control.loop import ControlLoop


@dataclass
class Rebuilt:
    state: SchedulerState
    floor: int  # transitions up to this id are reflected in `state`
    jobs: dict[str, JobInfo] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    requeue: list[str] = field(default_factory=list)  # preempted jobs caught before their requeue
    lost: list[str] = field(default_factory=list)  # held jobs in a pool the network no longer has


def tenants_of(network: Network) -> dict[str, TenantState]:
    return {t.name: TenantState(t.name, t.weight, t.quota_devices) for t in network.tenants}


def rebuild(store: JobStore, usage: UsageStore, network: Network, pools: list[PoolState], policy: Policy) -> Rebuilt:
    floor = store.last_transition_id()  # read first: anything written meanwhile is replayed by the feed
    state = SchedulerState(pools, policy, tenants_of(network))
    out = Rebuilt(state, floor)
    active = store.find(states=ACTIVE)
    out.jobs = {r.id: JobInfo.of(r) for r in active}
    catalog = load_catalog()
    for run in usage.runs():  # oldest end first, so decay is applied as it happened
        info = out.jobs.get(run["job_id"])
        speed = info.request.speed(catalog.lookup(run["chip"])) if info else 1.0
        progress = run["device_s"] / max(run["devices"], 1) * speed
        state.ledger.record(run["tenant"], run["job_id"], run["device_s"], run["end"], progress)
        if info is None:
            state.forget(run["job_id"])
    pool_of = {p.key: p for p in pools}
    pending: list[PendingJob] = []
    for rec in active:
        info = out.jobs[rec.id]
        progress = state.ledger.progress.get(rec.id, 0.0)
        if rec.state in (JobState.SCHEDULED, JobState.STAGING, JobState.RUNNING):
            key = f"{rec.center}/{rec.pool}"
            pool = pool_of.get(key)
            if pool is None or not rec.nodes:
                out.lost.append(rec.id)
                continue
            speed = info.request.speed(pool.chip)
            end = rec.updated_at + info.pending(progress).duration / speed
            state.hold(RunningJob(rec.id, rec.tenant, key, rec.nodes, rec.devices_per_node or 0, rec.updated_at, end,
                                  rec.priority, True, state.ledger.attained.get(rec.id, 0.0), speed,
                                  info.request.milli, info.request.cpus, info.request.memory_gib))
            running = rec.state is JobState.RUNNING
            out.runs[rec.id] = Run(rec.id, rec.center or "", rec.pool or "", rec.nodes, rec.devices, rec.updated_at,
                                   rec.engine_handle, running, rec.attempts if running else rec.attempts + 1)
        elif rec.state is JobState.PREEMPTED:
            out.requeue.append(rec.id)
        else:
            pending.append(info.pending(progress))
    state.submit_many(pending)
    return out


def follow(loop: ControlLoop) -> None:
    """A replica that does not lead: the picture its API reads (queue, placements), rebuilt from the store.
    Read only: no center is asked, nothing is written; a few seconds old, without the centers' own load."""
    rebuilt = rebuild(loop.store, loop.meter.usage, loop.network, loop.pools, loop.policy)
    loop.view = LiveView.of(rebuilt.state, {}, {}, frozenset(j for j, r in rebuilt.runs.items() if r.running))
