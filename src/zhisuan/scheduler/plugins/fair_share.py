"""QueueSort: tenants with the least decayed usage per unit of weight first (Slurm-style fair share).

Usage decays with a half-life, so a tenant that ran a lot last month is not starved today. Within a
tenant: priority, then submit time. Usage is per tenant, so the queue is the tenants' own queues
concatenated in order of share: only the few tenants are re-sorted each cycle, not every job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zhisuan.scheduler.ledger import HALF_LIFE, decayed_usage
from zhisuan.scheduler.snapshot import PendingJob, Snapshot


@dataclass(frozen=True)
class FairShare:
    half_life: float = HALF_LIFE
    name: str = "fair-share"
    priority_ordered: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by its fields: compiled (the queue calls `key` and `group` once per arrival), a frozen class
        has no default way."""
        return (FairShare, (self.half_life, self.name, self.priority_ordered))

    def key(self, job: PendingJob) -> tuple[float, ...]:
        return (-job.priority, job.submit_time)

    def group(self, job: PendingJob) -> str:
        return job.tenant

    def rank_groups(self, groups: Sequence[str], snapshot: Snapshot, now: float) -> list[str]:
        """By decayed usage per unit of weight, then name: (share, name) pairs sorted, no key function called per
        group through a closure (each cycle ranks its tenants)."""
        ranked: list[tuple[float, str]] = []
        for g in groups:
            t = snapshot.tenant(g)
            ranked.append((decayed_usage(t, now, self.half_life) / t.weight, g))
        ranked.sort()
        return [g for _, g in ranked]
