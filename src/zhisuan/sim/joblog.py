"""What a replay remembers of its jobs: one row of numbers per job in numpy columns (about 40 bytes), written
when the job is done with, not an object per job — so a 4-million-job national demand fits in memory and the
metrics read whole columns. Readers that want objects get a light row per job on access."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

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


class Series:
    """Rows of numbers appended one at a time as packed doubles (8 bytes a value, not a tuple of objects); read back
    as an (n, width) float array. A row is packed by a `struct.Struct` made for its width, in one call; an
    `array("d")` extended by the row parses each value with the general argument parser (2-3x the cost)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._row = struct.Struct(f"{width}d")
        self._pack = self._row.pack  # bound once: the method looked up by name at each row cost a fifth of it
        self._data = bytearray()

    def append(self, *values: float) -> None:
        self._data += self._pack(*values)

    def __len__(self) -> int:
        return len(self._data) // self._row.size

    def table(self) -> np.ndarray:
        return np.frombuffer(self._data, dtype=float).reshape(-1, self.width).copy()

    def take(self) -> np.ndarray:
        """The rows, handed over without a copy (a national replay's runs fill hundreds of MB: a copy doubled the
        replay's peak memory at its end); the series is empty after."""
        data, self._data = self._data, bytearray()
        return np.frombuffer(data, dtype=float).reshape(-1, self.width)
