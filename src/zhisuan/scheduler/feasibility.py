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
from zhisuan.scheduler.framework import Policy
from zhisuan.scheduler.policies import DEFAULT
from zhisuan.scheduler.snapshot import PoolState, pools_from_network
from zhisuan.scheduler.tables import PoolTable, RequestTable


def unmet(request: Request, pools: Sequence[PoolState], policy: Policy = DEFAULT) -> tuple[str, str] | None:
    """(field, why) when no pool of `pools` could ever run `request` under `policy`, else None."""
    reqs, table = RequestTable.build([request]), PoolTable.build(pools)
    candidates = np.ones(len(pools), dtype=np.bool_)
    for f in policy.filters:
        if f.field is None:
            continue
        left = candidates & f.mask(reqs, table)[0]
        if not left.any():
            return f.field, f.unmet(reqs, 0, table, candidates) if candidates.any() else "the network has no pools"
        candidates = left
    return None


def check_spec(spec: JobSpec, network: Network, policy: Policy = DEFAULT) -> None:
    """Raise SpecError naming the field when no pool of `network` could ever run the job."""
    errors: list[tuple[str, str]] = []
    centers = {c.name for c in network.centers}
    if spec.constraints.data and spec.constraints.data not in centers:
        errors.append(("constraints.data", f"no center {spec.constraints.data!r} in network {network.name}"))
    found = unmet(request_from_spec(spec), [replace(p, healthy=True) for p in pools_from_network(network)], policy)
    if found:
        errors.append(found)
    if errors:
        raise SpecError(errors)
