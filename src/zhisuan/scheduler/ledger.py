"""Service received, kept in one place for both drivers: per tenant decayed usage (fair share) and per
job attained service and progress (2D-LAS, Gavel, requeued estimates).

A run is recorded when it ends (finished, preempted, failed over), as the simulator and the live loop
both learn it then; usage decays with a half-life so last month's heavy user is not starved today.
"""

from __future__ import annotations

from zhisuan.scheduler.snapshot import TenantState

HALF_LIFE = 7 * 86400.0  # seconds: Slurm's PriorityDecayHalfLife default


def decayed_usage(tenant: TenantState, now: float, half_life: float) -> float:
    """Usage (device-seconds) decayed from `tenant.usage_at` to `now`."""
    age = max(0.0, now - tenant.usage_at)
    return float(tenant.usage * 0.5 ** (age / half_life))


class ServiceLedger:
    """Device-seconds received per tenant (decayed) and per job (in full), and each job's progress in
    seconds of its reference chip (run time x speed factor), for the estimate of what is left."""

    def __init__(self, tenants: dict[str, TenantState], half_life: float = HALF_LIFE) -> None:
        self.tenants, self.half_life = tenants, half_life
        self.attained: dict[str, float] = {}
        self.progress: dict[str, float] = {}

    def tenant(self, name: str) -> TenantState:
        t = self.tenants.get(name)
        if t is None:
            t = self.tenants[name] = TenantState(name)
        return t

    def record(self, tenant: str, job_id: str, device_seconds: float, at: float, progress: float = 0.0,
               final: bool = False) -> None:
        """A run of `job_id` ended at `at` after receiving `device_seconds` (and `progress` reference seconds).
        `final`: the job ended for good and nobody reads its own service any more (`forget` at once): only its
        tenant's usage is kept, with no per-job entry written to be dropped again."""
        t = self.tenant(tenant)
        t.usage = decayed_usage(t, at, self.half_life) + device_seconds
        t.usage_at = at
        if final:
            self.forget(job_id)
            return
        self.attained[job_id] = self.attained.get(job_id, 0.0) + device_seconds
        self.progress[job_id] = self.progress.get(job_id, 0.0) + progress

    def forget(self, job_id: str) -> None:
        """The job has ended for good: its tenant keeps the usage, the per-job entries go."""
        self.attained.pop(job_id, None)
        self.progress.pop(job_id, None)

    def share(self, name: str, now: float) -> float:
        """Decayed usage per unit of weight: what fair share orders tenants by."""
        t = self.tenants.get(name)
        if t is None:
            return 0.0
        return decayed_usage(t, now, self.half_life) / t.weight
