"""Extension points of the scheduling cycle, after the Kubernetes scheduling framework.

- QueueSort: the order in which pending jobs are considered;
- Filter: which pools a request may use at all (vectorised: a [request, pool] boolean matrix);
- Score: how good each allowed pool is (a [request, pool] matrix of raw values, lower is better),
  normalised to 0..100 per request and combined by the policy's weights;
- Admit: per-job checks against state that changes while the cycle assigns (quotas).
A Policy names one QueueSort, its Filters, weighted Scores, Admits and the backfill/preemption mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from zhisuan.scheduler.snapshot import PendingJob, Snapshot, TenantState
from zhisuan.scheduler.tables import B, F, PoolTable, RequestTable


@dataclass(frozen=True)
class ScoreContext:
    """Inputs a score may need beyond the two tables."""

    speed: F  # [request, pool] speed factor vs the request's reference chip
    start_delay: F | None = None  # [request, pool] seconds until it could start (explain, reservations)


class QueueSort(Protocol):
    @property
    def name(self) -> str: ...

    def order(self, jobs: Sequence[PendingJob], snapshot: Snapshot, now: float) -> list[int]:
        """Indices into `jobs`, first to be considered first. Must be deterministic."""
        ...


class Filter(Protocol):
    name: str
    reason: str  # why a pool was rejected, shown by `zhisuan explain`

    def mask(self, requests: RequestTable, pools: PoolTable) -> B: ...


class Score(Protocol):
    name: str

    def raw(self, requests: RequestTable, pools: PoolTable, ctx: ScoreContext) -> F: ...


class Admit(Protocol):
    name: str
    reason: str

    def applies(self, snapshot: Snapshot) -> bool:
        """False when the check cannot reject anything in this snapshot (skipped for the cycle)."""
        ...

    def admits(self, job: PendingJob, devices: int, tenant: TenantState, held: int) -> bool:
        """`held`: devices the tenant holds right now, including this cycle's starts."""
        ...


@dataclass(frozen=True)
class Policy:
    name: str
    queue_sort: QueueSort
    filters: tuple[Filter, ...]
    scores: tuple[tuple[Score, float], ...]
    admits: tuple[Admit, ...] = ()
    backfill: Literal["none", "easy"] = "easy"
    reservations: int = 1  # jobs that get a reservation per cycle when backfilling
    preemption: bool = False
    description: str = ""
