"""QueueSort: tenants with the least decayed usage per unit of weight first (Slurm-style fair share).

Usage decays with a half-life, so a tenant that ran a lot last month is not starved today. Within a
tenant: priority, then submit time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zhisuan.scheduler.snapshot import PendingJob, Snapshot, TenantState


def decayed_usage(tenant: TenantState, now: float, half_life: float) -> float:
    """Usage (device-seconds) decayed from `tenant.usage_at` to `now`."""
    age = max(0.0, now - tenant.usage_at)
    return float(tenant.usage * 0.5 ** (age / half_life))


@dataclass(frozen=True)
class FairShare:
    half_life: float = 7 * 86400.0
    name: str = "fair-share"

    def order(self, jobs: Sequence[PendingJob], snapshot: Snapshot, now: float) -> list[int]:
        n = len(jobs)
        share: dict[str, float] = {}
        for j in jobs:
            if j.tenant not in share:
                t = snapshot.tenant(j.tenant)
                share[j.tenant] = decayed_usage(t, now, self.half_life) / t.weight
        usage = np.fromiter((share[j.tenant] for j in jobs), dtype=np.float64, count=n)
        prio = np.fromiter((j.priority for j in jobs), dtype=np.float64, count=n)
        submit = np.fromiter((j.submit_time for j in jobs), dtype=np.float64, count=n)
        return [int(i) for i in np.lexsort((np.arange(n), submit, -prio, usage))]
