"""A job's resource request resolved against the catalog: what the scheduler matches pools with.

Jobs with equal requests are interchangeable to the filters and scores, so the scheduler groups the
queue by `Request` and does its matrix math once per distinct request, not once per job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from zhisuan.catalog import Accelerator, load_catalog
from zhisuan.model.datasets import InputData
from zhisuan.model.jobspec import AnyOfAccelerators, JobSpec, NamedAccelerator


@dataclass(frozen=True, slots=True)
class Request:
    """Eligible chips are `model` exactly, any of `models`, or any chip of `stacks` with >= `min_tflops`.

    `ref_tflops` is the chip speed the job's time estimate refers to (0: speed-independent). `milli` > 0
    asks a share of one device in thousandths (a fractional GPU); `devices_per_node` 0 is a CPU-only job,
    which any pool's nodes can run.
    """

    devices_per_node: int
    nodes: int = 1
    model: str | None = None
    stacks: frozenset[str] = frozenset()
    min_tflops: float = 0.0
    ref_tflops: float = 0.0
    cpus: float = 0.0
    memory_gib: float = 0.0
    regions: frozenset[str] = frozenset()
    max_price: float = math.inf
    data_center: str | None = None
    models: frozenset[str] = frozenset()  # the chips allowed by name (one for a named ask); empty: by stack
    milli: int = 0
    inputs: tuple[InputData, ...] = ()  # datasets to stage where the job runs (their replicas as of now)
    hours: float = 0.0  # expected hours on the reference chip, for a job with inputs: spreads moving them per hour
    _hash: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.model is not None and not self.models:
            object.__setattr__(self, "models", frozenset([self.model]))
        key = (self.devices_per_node, self.nodes, self.model, self.stacks, self.min_tflops, self.ref_tflops,
               self.cpus, self.memory_gib, self.regions, self.max_price, self.data_center, self.models, self.milli,
               self.inputs, self.hours)
        if self.milli and not (0 < self.milli < 1000 and self.devices_per_node == 1 and self.nodes == 1):
            raise ValueError("a device share (milli) is 1..999 thousandths of one device on one node")
        object.__setattr__(self, "_hash", hash(key))

    def __hash__(self) -> int:
        return self._hash

    @property
    def devices(self) -> int:
        return self.devices_per_node * self.nodes

    @property
    def device_share(self) -> float:
        """Devices per node a run holds, a share as its fraction of one (0: CPU-only)."""
        return self.milli / 1000 if self.milli else float(self.devices_per_node)

    @property
    def units(self) -> float:
        """What a run is sold by per hour: its devices (a share as its fraction), a CPU-only job its CPUs on
        every node (what is billed beyond them: model/billing.py)."""
        return self.device_share * self.nodes if self.devices_per_node else self.cpus * self.nodes

    def accepts(self, chip: Accelerator) -> bool:
        if not self.devices_per_node:
            return True
        if self.models:
            return chip.name in self.models
        return chip.stack in self.stacks and chip.fp16_tflops >= self.min_tflops

    def speed(self, chip: Accelerator) -> float:
        """How much faster than the reference this chip runs the job (FP16 TFLOPS ratio: an approximation)."""
        return chip.fp16_tflops / self.ref_tflops if self.ref_tflops > 0 else 1.0


def request_from_spec(spec: JobSpec, inputs: tuple[InputData, ...] = (), hours: float = 0.0) -> Request:
    """`inputs`: the spec's datasets resolved (size, replicas); `hours`: its expected run time, given with them."""
    res, con = spec.resources, spec.constraints
    acc = res.accelerators
    common = dict(
        devices_per_node=res.devices_per_node,
        milli=res.milli,
        nodes=res.nodes,
        cpus=res.cpus or 0,
        memory_gib=res.memory or 0.0,
        regions=frozenset(con.regions),
        max_price=con.max_price if con.max_price is not None else math.inf,
        data_center=con.data,
        inputs=inputs,
        hours=hours if inputs else 0.0,
    )
    if acc is None:
        return Request(**common)  # type: ignore[arg-type]
    if isinstance(acc, AnyOfAccelerators):
        chips = [load_catalog().lookup(n) for n in acc.any_of]
        return Request(models=frozenset(c.name for c in chips), stacks=frozenset(c.stack for c in chips),
                       ref_tflops=chips[0].fp16_tflops, **common)  # type: ignore[arg-type]
    if isinstance(acc, NamedAccelerator):
        chip = load_catalog().lookup(acc.name)
        if res.portable:
            return Request(stacks=frozenset(res.portable), ref_tflops=chip.fp16_tflops, **common)  # type: ignore[arg-type]
        return Request(model=chip.name, stacks=frozenset([chip.stack]), ref_tflops=chip.fp16_tflops, **common)  # type: ignore[arg-type]
    stacks = frozenset([acc.stack, *res.portable])
    return Request(stacks=stacks, min_tflops=acc.min_tflops, ref_tflops=acc.min_tflops, **common)  # type: ignore[arg-type]
