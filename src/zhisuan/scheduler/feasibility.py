"""Can any pool ever run a job? Answered by the policy's own filters — the ones every cycle applies — so
a spec is refused at submit exactly when the scheduler could never place it, with the field named.

The filters are applied in the policy's order to the network's pools as built (shape, chip, region,
price; not today's load or health); the first one that leaves no pool names the field and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from zhisuan.model import JobSpec, Network, Request, SpecError, request_from_spec
from zhisuan.model.billing import held_by
from zhisuan.scheduler.framework import Policy
from zhisuan.scheduler.policies import DEFAULT
from zhisuan.scheduler.ranking import rank
from zhisuan.scheduler.snapshot import DEFAULT_DURATION, PoolState, pools_from_network
from zhisuan.scheduler.tables import PoolTable, RequestTable


def unmet(request: Request, pools: Sequence[PoolState], policy: Policy = DEFAULT,
          table: PoolTable | None = None) -> tuple[str, str] | None:
    """(field, why) when no pool of `pools` (`table`: their table, already built) could ever run `request`
    under `policy`, else None."""
    reqs, table = RequestTable.build([request]), table if table is not None else PoolTable.build(pools)
    candidates = np.ones(len(pools), dtype=np.bool_)
    for f in policy.filters:
        if f.field is None:
            continue
        left = candidates & f.mask(reqs, table)[0]
        if not left.any():
            return f.field, f.unmet(reqs, 0, table, candidates) if candidates.any() else "the network has no pools"
        candidates = left
    return None


CACHED = 4096  # asks remembered by a Feasibility (a tenant sending ever new ones only empties it)


class Feasibility:
    """`check_spec` for one network and policy, its pools' table built once, and the answer for each distinct
    ask remembered: the API checks every submit, and most submits ask what others asked before."""

    def __init__(self, network: Network, policy: Policy = DEFAULT) -> None:
        self.network, self.policy = network, policy
        self.centers = frozenset(c.name for c in network.centers)
        self.pools = [replace(p, healthy=True) for p in pools_from_network(network)]
        self.table = PoolTable.build(self.pools)
        self._unmet: dict[Request, tuple[str, str] | None] = {}

    def check(self, spec: JobSpec, now: float | None = None) -> None:
        """Raise SpecError naming the field when no pool of the network could ever run the job (or, given
        `now`, run it before its deadline)."""
        errors: list[tuple[str, str]] = []
        if spec.constraints.data and spec.constraints.data not in self.centers:
            errors.append(("constraints.data", f"no center {spec.constraints.data!r} in network {self.network.name}"))
        request = request_from_spec(spec)
        found = self._unmet.get(request, ("", ""))  # ("", ""): not asked yet (a thread may empty it meanwhile)
        if found == ("", ""):
            found = unmet(request, self.pools, self.policy, self.table)
            if len(self._unmet) >= CACHED:
                self._unmet.clear()
            self._unmet[request] = found
        if found:
            errors.append(found)
        elif now is not None and spec.constraints.deadline is not None:
            late = too_late(request, spec.constraints.time_limit or DEFAULT_DURATION,
                            spec.constraints.deadline.timestamp(), self.pools, self.policy, now)
            if late:
                errors.append(("constraints.deadline", late))
        if errors:
            raise SpecError(errors)

    def expected_cost(self, spec: JobSpec, now: float) -> float:
        """CNY the job is expected to cost at most: the dearest pool the policy accepts for it, started now
        and held for its time limit (or the default run time) at its chip's speed, priced with the pool's
        time-of-use multipliers over that window (model/billing.py's rule, as the invoice will) — what a funded
        project holds for it until it ends (its inputs' movement is not included)."""
        request = request_from_spec(spec)
        ranking = rank(RequestTable.build([request]), self.table, self.policy)
        duration = spec.constraints.time_limit or DEFAULT_DURATION
        costs = []
        for p in ranking.prefs[0]:
            pool = self.pools[p]
            runtime = duration / float(ranking.ctx.speed[0, p])
            bill = held_by(request, pool.devices_per_node, pool.cpus_per_node, pool.memory_gib_per_node,
                           pool.cpu_price, pool.memory_price)
            per_hour = bill.devices * pool.price + bill.cpus * pool.cpu_price + bill.memory_gib * pool.memory_price
            costs.append(per_hour * float(pool.tou.integral(now, now + runtime)) / 3600.0)
        return max(costs, default=0.0)

def check_spec(spec: JobSpec, network: Network, policy: Policy = DEFAULT, now: float | None = None) -> None:
    """Raise SpecError naming the field when no pool of `network` could ever run the job (or, given `now`,
    run it before its deadline)."""
    Feasibility(network, policy).check(spec, now)


def too_late(request: Request, duration: float, deadline: float, pools: Sequence[PoolState], policy: Policy,
             now: float) -> str | None:
    """Why a job started now on its fastest accepted chip would still end after `deadline`, else None."""
    ranking = rank(RequestTable.build([request]), PoolTable.build(pools), policy)
    speeds = [ranking.speed_rows[0][p] for p in ranking.prefs[0]]
    if not speeds:
        return None
    fastest = duration / max(speeds)
    if now + fastest <= deadline:
        return None
    return (f"ends at the earliest {fastest:.0f} s after now on its fastest accepted chip, "
            f"{now + fastest - deadline:.0f} s after the deadline")
