"""What a replay remembers of its jobs: one row of numbers per job in numpy columns (about 40 bytes), written
when the job is done with, not an object per job — so a 4-million-job national demand fits in memory and the
metrics read whole columns. Readers that want objects get a light row per job on access."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, overload

import numpy as np

from zhisuan.sim.trace import TraceJob


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job's outcome, read from the log."""

    trace: TraceJob
    first_start: float
    end: float
    run_seconds: float  # wall time spent running (all runs)
    pool: int  # of the last run, -1 if it never ran
    preemptions: int
    restarts: int
    measured_speed: bool
    expired: bool  # its deadline could no longer be met: failed without running


class JobLog(Sequence[JobRow]):
    """Per-job outcome columns, indexed like the trace's jobs."""

    def __init__(self, jobs: Sequence[TraceJob], submit: np.ndarray, devices: np.ndarray) -> None:
        n = len(jobs)
        self.trace_jobs, self.submit, self.devices = jobs, submit, devices
        self.first_start = np.full(n, np.nan)
        self.end = np.full(n, np.nan)
        self.run_seconds = np.zeros(n)
        self.pool = np.full(n, -1, dtype=np.int16)
        self.preemptions = np.zeros(n, dtype=np.int32)
        self.restarts = np.zeros(n, dtype=np.int16)
        self.measured_speed = np.zeros(n, dtype=bool)
        self.expired = np.zeros(n, dtype=bool)

    def __len__(self) -> int:
        return len(self.submit)

    @overload
    def __getitem__(self, i: int) -> JobRow: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[JobRow]: ...

    def __getitem__(self, i: int | slice) -> JobRow | Sequence[JobRow]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return JobRow(self.trace_jobs[i], float(self.first_start[i]), float(self.end[i]),
                      float(self.run_seconds[i]), int(self.pool[i]), int(self.preemptions[i]),
                      int(self.restarts[i]), bool(self.measured_speed[i]), bool(self.expired[i]))

    def __iter__(self) -> Iterator[JobRow]:
        for i in range(len(self)):
            yield self[i]


SEAL: Final = 8192  # values gathered before they go into a typed block


class Series:
    """Rows of numbers appended one at a time, kept in typed blocks (8 bytes a value, not a tuple of objects); read
    back as an (n, width) float array. Values gather in a list and go into a numpy block every SEAL values: one
    conversion per block, where an `array("d")` parses each value it is given (several times the cost per row)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._blocks: list[np.ndarray] = []
        self._sealed = 0  # values in the blocks
        self._open: list[float] = []

    def append(self, *values: float) -> None:
        self._open.extend(values)
        if len(self._open) >= SEAL:
            self._seal()

    def _seal(self) -> None:
        block = np.frombuffer(struct.pack(f"{len(self._open)}d", *self._open), dtype=float)  # 3x numpy's from a list
        self._blocks.append(block)
        self._sealed += len(block)
        self._open = []

    def __len__(self) -> int:
        return (self._sealed + len(self._open)) // self.width

    def table(self) -> np.ndarray:
        if self._open:
            self._seal()
        if not self._blocks:
            return np.zeros((0, self.width))
        joined = np.concatenate(self._blocks) if len(self._blocks) > 1 else self._blocks[0].copy()  # the caller's own
        return joined.reshape(-1, self.width)

    def clear(self) -> None:
        self._blocks, self._sealed, self._open = [], 0, []
