"""What one gang member consumes on its node: whole devices or a share of one, CPUs and memory.

Clusters share devices (Kubernetes' HAMi/Volcano vGPU, Slurm shards, MPS) and consume CPU and memory
per node; a shape says all of it in integer units, so capacity arithmetic is exact: thousandths of a
device (`milli`), thousandths of a CPU, MiB of memory. A shape with neither a share nor CPU nor memory
is "simple": pools keep their bucketed whole-device fast path for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from zhisuan.model import Request

WHOLE = 1000  # thousandths in one device


@dataclass(frozen=True, slots=True)
class Shape:
    devices_per_node: int
    nodes: int = 1
    milli: int = 0  # > 0: a share of one device, in thousandths (then devices_per_node == 1)
    cpu: int = 0  # thousandths of a CPU per node
    memory: int = 0  # MiB per node

    @property
    def simple(self) -> bool:
        return not (self.milli or self.cpu or self.memory)

    @property
    def devices(self) -> int:
        """Whole devices held (a share holds one device, in part)."""
        return self.devices_per_node * self.nodes

    @property
    def amount(self) -> float:
        """Devices held, a share counted as its fraction."""
        return self.milli / WHOLE if self.milli else float(self.devices)

    @classmethod
    def of(cls, req: Request) -> Shape:
        return cls(req.devices_per_node, req.nodes, req.milli, round(req.cpus * 1000), round(req.memory_gib * 1024))
