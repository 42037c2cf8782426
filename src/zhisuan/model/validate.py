"""Check a valid spec against a network: can any pool there ever run it? Errors name the field."""

from __future__ import annotations

from zhisuan.model.jobspec import JobSpec, SpecError
from zhisuan.model.network import Network
from zhisuan.model.request import request_from_spec


def check_spec(spec: JobSpec, network: Network) -> None:
    """Raise SpecError naming the field when no pool of `network` could ever run the job."""
    req = request_from_spec(spec)
    errors: list[tuple[str, str]] = []
    centers = {c.name for c in network.centers}
    regions = {c.region for c in network.centers}
    if req.data_center and req.data_center not in centers:
        errors.append(("constraints.data", f"no center {req.data_center!r} in network {network.name}"))
    unknown = sorted(req.regions - regions)
    if unknown:
        errors.append(("constraints.regions", f"unknown region(s) {unknown}; known: {sorted(regions)}"))
    pools = [p for c in network.centers for p in c.pools if req.accepts(p.chip)]
    if not pools:
        errors.append(("resources.accelerators", f"no pool in network {network.name} has an accepted chip"))
    else:
        widest = max(p.devices_per_node for p in pools)
        if req.devices_per_node > widest:
            errors.append(("resources.accelerators",
                           f"{req.devices_per_node} devices per node, but the largest accepted node has {widest}"))
        fitting = [p for p in pools if p.devices_per_node >= req.devices_per_node]
        most = max((p.nodes for p in fitting), default=0)
        if fitting and req.nodes > most:
            errors.append(("resources.nodes", f"gang of {req.nodes} nodes, but the largest accepted pool has {most}"))
    if errors:
        raise SpecError(errors)
