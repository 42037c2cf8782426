"""The workload a fragmentation-aware placement expects: classes of asks with their shares of arrivals.

FGD (Weng et al., ATC'23) measures a node's fragmentation against the tasks expected to come: a class is
(CPU, thousandths per device, devices, allowed chips); the most frequent classes that together make
`coverage` of the tasks are kept and their shares renormalised (the paper's artifact: 95%).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from zhisuan.scheduler.shape import WHOLE, Shape

I = npt.NDArray[np.int64]  # noqa: E741
F = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
Class = tuple[int, int, int, int, frozenset[str]]  # CPU thousandths, MiB, thousandths per device, devices, chips


@dataclass(frozen=True)
class Workload:
    cpu: I
    memory: I  # MiB; all 0 when the workload leaves memory out (as FGD does)
    milli: I  # per device; WHOLE for whole devices, 0 for CPU-only classes
    num: I  # devices
    weight: F  # sums to 1
    models: tuple[frozenset[str], ...]  # empty: any chip
    _ok: dict[str, B] = field(default_factory=dict, compare=False, repr=False)
    _levels: list[tuple[I, I]] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def of(cls, asks: Iterable[tuple[Shape, frozenset[str]]], coverage: float = 0.95,
           memory: bool = False) -> Workload:
        """`memory`: classes keep their memory ask, and a node short of it cannot take them."""
        counts = Counter(_class(s, m, memory) for s, m in asks)
        total = sum(counts.values())
        if not total:
            raise ValueError("a workload needs at least one ask")
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], tuple(-x for x in kv[0][:4]), sorted(kv[0][4])))
        kept, covered = [], 0
        for c, n in ranked:
            kept.append((c, n))
            covered += n
            if covered >= coverage * total:
                break
        w = np.array([n for _, n in kept], dtype=np.float64)
        def column(i: int) -> I:
            return np.array([c[i] for c, _ in kept], dtype=np.int64)

        return cls(column(0), column(1), column(2), column(3), w / w.sum(), tuple(c[4] for c, _ in kept))

    def __len__(self) -> int:
        return len(self.weight)

    def levels(self) -> tuple[I, I]:
        """(the distinct per-device asks, each class's index among them): classes that ask the same share of a
        device see the same devices as large enough, so a node score computes that once per ask, not per class."""
        if not self._levels:
            asks, index = np.unique(self.milli, return_inverse=True)
            self._levels.append((asks, index.reshape(-1)))
        return self._levels[0]

    def allowed(self, chip: str) -> B:
        """[class] the class may run on this chip."""
        ok = self._ok.get(chip)
        if ok is None:
            ok = self._ok[chip] = np.array([not m or chip in m for m in self.models], dtype=np.bool_)
        return ok


def _class(shape: Shape, models: frozenset[str], memory: bool) -> Class:
    mem = shape.memory if memory else 0
    if not shape.devices_per_node:
        return (shape.cpu, mem, 0, 0, frozenset())
    return (shape.cpu, mem, shape.milli or WHOLE, shape.devices_per_node, models)
