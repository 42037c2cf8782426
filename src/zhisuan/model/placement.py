"""The scheduler's answer for one job: where it runs, on which nodes, from when, and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Placement:
    """Job -> center/pool, node indices inside the pool (one per gang member) and devices per node."""

    job_id: str
    center: str
    pool: str
    nodes: tuple[int, ...]
    devices_per_node: int
    start: float
    expected_end: float
    milli: int = 0  # a share of one device, thousandths (0: whole devices)

    @property
    def devices(self) -> int:
        return len(self.nodes) * self.devices_per_node
