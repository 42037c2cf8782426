"""Extension points of the scheduling cycle, after the Kubernetes scheduling framework.

- QueueSort: the order in which pending jobs are considered;
- Filter: which pools a request may use at all (vectorised: a [request, pool] boolean matrix);
- Score: how good each allowed pool is (a [request, pool] matrix of raw values, lower is better),
  normalised to 0..100 per request and combined by the policy's weights;
- Admit: per-job checks against state that changes while the cycle assigns (quotas);
- PriorityOf: the priority preemption compares (static, or from attained service as in Tiresias);
- NodeScore: which nodes and devices of the best pools a shape with shares, CPU or memory takes
  (fragmentation-aware packing; whole-device asks keep the pools' best-fit buckets).
A Policy names one QueueSort, its Filters, weighted Scores, Admits, an optional NodeScore and the
backfill/preemption mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from zhisuan.model import Request
from zhisuan.scheduler.capacity import Allocation, PoolCapacity
from zhisuan.scheduler.nodescore.workload import Workload
from zhisuan.scheduler.shape import Shape
from zhisuan.scheduler.snapshot import PendingJob, PoolState, Snapshot, TenantState
from zhisuan.scheduler.staging import Staging
from zhisuan.scheduler.tables import B, F, PoolTable, RequestTable


@dataclass(frozen=True)
class ScoreContext:
    """Inputs a score may need beyond the two tables."""

    speed: F  # [request, pool] speed factor vs the request's reference chip
    start_delay: F | None = None  # [request, pool] seconds until it could start (explain, reservations)
    at: float | None = None  # epoch s of the clock hour prices and carbon are taken at (None: flat, annual)
    staging: Staging | None = None  # moving inputs to each pool (None: the policy does not weigh data)


class QueueSort(Protocol):
    """Queue order by a per-job `key` (smaller first; ties in submission order), kept sorted as jobs
    come and go. Optional extras, found by attribute:
    - `group(job)` + `rank_groups(groups, snapshot, now)`: per-group queues concatenated in an order
      chosen each cycle (fair share: groups are tenants); a job's group never changes while it is queued;
    - `dynamic = True` + `key_at(job, now)`: a key that changes with time, re-sorted every cycle.
    `priority_ordered`: the effective priority (PriorityOf) never rises along the queue, so once no
    job can preempt, no later one can either.
    """

    @property
    def name(self) -> str: ...

    @property
    def priority_ordered(self) -> bool: ...

    def key(self, job: PendingJob) -> tuple[float, ...]: ...


class Filter(Protocol):
    name: str
    reason: str  # why a pool was rejected, shown by `zhisuan explain`

    @property
    def field(self) -> str | None:
        """The spec field it judges (None: not the spec's doing, e.g. a center down)."""
        ...

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B: ...

    def unmet(self, reqs: RequestTable, r: int, pools: PoolTable, candidates: B) -> str:
        """Why no pool among `candidates` (those the filters before it left) passes, for request r."""
        ...


class Score(Protocol):
    @property
    def name(self) -> str: ...

    def raw(self, reqs: RequestTable, pools: PoolTable, ctx: ScoreContext) -> F: ...


class Admit(Protocol):
    name: str
    reason: str

    def applies(self, snapshot: Snapshot) -> bool:
        """False when the check cannot reject anything in this snapshot (skipped for the cycle)."""
        ...

    def admits(self, job: PendingJob, asked: int, tenant: TenantState, held: int) -> bool:
        """In thousandths of a device (a share counts as its fraction): `asked` by the job, `held` by the
        tenant right now, including this cycle's starts."""
        ...


class PriorityOf(Protocol):
    """Effective priority at `now`: a pending job may preempt running jobs of strictly lower priority."""

    @property
    def name(self) -> str: ...

    def of_pending(self, job: PendingJob, now: float) -> float: ...

    def of_running(self, alloc: Allocation, now: float) -> float: ...


class StateView(Protocol):
    """What a policy's book may ask of the scheduler's state when it prepares a cycle."""

    def capacity(self) -> dict[str, int]:
        """Devices per chip in healthy pools."""
        ...

    def throughput(self, request: Request) -> dict[str, float]:
        """Speed factor of the request on each chip it may use (vs its reference chip)."""
        ...


class Book(Protocol):
    """What a policy remembers between cycles beyond the ledger — Tiresias' queue entries and promotions,
    Gavel's allocation and rounds. One per SchedulerState (so simulations never share one), made by the
    queue sort's `book()`; both drivers tell it what happens through the state. It writes what its
    plugins read on jobs and allocations (`entered`, `base`, `rank`), so the plugins stay pure functions."""

    may_preempt: bool  # whether this cycle may preempt at all (Gavel: only when a round begins)

    def submitted(self, job: PendingJob) -> None:
        """A job joins the queue: set its fields from what the book remembers of it."""
        ...

    def started(self, alloc: Allocation, chip: str, now: float) -> None: ...

    def ended(self, alloc: Allocation, at: float) -> None:
        """A run ended (finished, preempted, failed over); its service is in `alloc.attained_at(at)`."""
        ...

    def forget(self, job_id: str) -> None: ...

    def prepare(self, pending: dict[str, PendingJob], view: StateView, now: float) -> list[str] | None:
        """Before a cycle at `now`: ids of pending jobs whose queue key changed, or None when every key did."""
        ...

    def next_change(self) -> float | None:
        """When priorities change next without any event (a demotion, a promotion, a round): the
        simulator runs a cycle then."""
        ...


Pick = tuple[float, tuple[int, ...], tuple[tuple[int, ...], ...] | None]  # cost, nodes, devices per node


class NodeScore(Protocol):
    """Chooses where in a pool a shape goes: (cost, nodes, devices per node or None for the defaults).
    Lower cost is better; the cycle compares costs across the pools that tie on the policy's scores.
    Called only when the shape fits the pool."""

    @property
    def name(self) -> str: ...

    def choose(self, cap: PoolCapacity, shape: Shape, job_id: str, pool: PoolState, queued: Workload) -> Pick:
        """`queued`: the asks of this cycle's queue, for scores that weigh the workload to come."""
        ...


class StaticPriority:
    """The job's own `priority` field."""

    name = "static"

    def of_pending(self, job: PendingJob, now: float) -> float:
        return job.priority

    def of_running(self, alloc: Allocation, now: float) -> float:
        return alloc.priority


@dataclass(frozen=True)
class Policy:
    name: str
    queue_sort: QueueSort
    filters: tuple[Filter, ...]
    scores: tuple[tuple[Score, float], ...]
    admits: tuple[Admit, ...] = ()
    backfill: Literal["none", "easy"] = "easy"
    reservations: int = 1  # blocked jobs that get a reservation in each pool per cycle (EASY: 1)
    backfill_depth: int = 0  # jobs tried after the first blocked one per cycle (Slurm's bf_max_job_test; 0: all)
    preemption: bool = False
    priority_of: PriorityOf = field(default_factory=StaticPriority)
    defer: bool = False  # jobs with a deadline wait for a cheaper tariff hour within their slack
    node_score: NodeScore | None = None  # None: best-fit nodes (fullest first), see DeviceShares.best_fit
    weigh_data: bool = True  # scores count moving inputs (False: data-blind; runs still take the time it takes)
    description: str = ""
