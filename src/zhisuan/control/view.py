"""What the API reads of the live scheduler: a picture the control loop publishes after each step, so a
quote or a /metrics scrape never waits for a step (which may be talking to a slow engine) nor sees a
half-applied one. Plain values, replaced whole."""

from __future__ import annotations

from dataclasses import dataclass, field

from zhisuan.model import Request
from zhisuan.scheduler import PoolState, RunningJob, Snapshot, TenantState
from zhisuan.scheduler.decisions import Reserve
from zhisuan.scheduler.state import EXTERNAL, SchedulerState


@dataclass(frozen=True)
class LiveView:
    pools: list[PoolState]  # with each center's health as the loop sees it
    running: list[RunningJob]  # zhisuan's placed jobs, and each center's own load (tenant EXTERNAL)
    queued: list[tuple[Request, int]]  # distinct pending requests, and how many jobs ask for each
    tenants: dict[str, TenantState] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # external load id -> what it is ("slurm job 41 (bob)")
    started: frozenset[str] = frozenset()  # ids of placed jobs that are running (not only scheduled)
    reservations: list[Reserve] = field(default_factory=list)  # the latest cycle's (EASY): backfill goes around

    @classmethod
    def empty(cls, pools: list[PoolState]) -> LiveView:
        return cls(list(pools), [], [])

    @classmethod
    def of(cls, state: SchedulerState, down: dict[str, str], labels: dict[str, str],
           started: frozenset[str] = frozenset(), reservations: list[Reserve] | None = None) -> LiveView:
        reqs = state.cache.ranking.reqs.reqs
        queued = [(reqs[r], n) for r, n in state.queue.row_counts().items()]
        tenants = {k: TenantState(t.name, t.weight, t.quota_devices, t.usage, t.usage_at)
                   for k, t in state.tenants.items()}
        return cls(list(state.pools), state.running_jobs(), queued, tenants, dict(down), dict(labels), started,
                   list(reservations or ()))

    def snapshot(self) -> Snapshot:
        """Pools and what holds them now (no queue): what `explain` ranks a new job against."""
        return Snapshot(list(self.pools), list(self.running), [], dict(self.tenants))

    def held(self) -> dict[str, tuple[int, int]]:
        """Pool key -> (devices held by zhisuan's jobs, devices held by the center's own load)."""
        out: dict[str, tuple[int, int]] = {}
        for r in self.running:
            ours, theirs = out.get(r.pool, (0, 0))
            out[r.pool] = (ours, theirs + r.devices) if r.tenant == EXTERNAL else (ours + r.devices, theirs)
        return out
