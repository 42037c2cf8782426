"""A trace: jobs with a submit time, a run time on the trace's own chip, devices and a tenant.

Our own CSV format lets users bring their trace:

    submit,duration,devices,chip,tenant,home
    0,3600,8,A100-80GB,acme,
    120,600,1,,lab,center-a

`submit` and `duration` in seconds (submit relative to any origin), `devices` a positive integer,
`chip` (optional) the catalog name the duration was measured on, `tenant` (optional, default
"default"), `home` (optional) the center the job belongs to for siloed runs. Extra columns are ignored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import overload

import numpy as np

from zhisuan.catalog import UnknownAcceleratorError, load_catalog


@dataclass(slots=True)
class TraceJob:
    id: str
    submit: float
    duration: float  # seconds on `chip` (or on the trace's own chip)
    devices: int
    tenant: str = "default"
    chip: str | None = None
    home: str | None = None  # center/VC of origin
    application: str | None = None  # model type, where the trace has one (speed profiles)


class CopiedJobs(Sequence[TraceJob]):
    """A grown trace's jobs without holding them: the originals, and per job which one it copies, its copy
    number and its submit time (14 bytes a job). A job object is made when read (`copy` 0 is the original),
    so a 50x national demand costs the simulator no more memory than the arrays."""

    def __init__(self, base: Sequence[TraceJob], source: np.ndarray, copy: np.ndarray, submits: np.ndarray) -> None:
        self.base, self.source, self.copy, self.submits = base, source, copy, submits

    def __len__(self) -> int:
        return len(self.source)

    @overload
    def __getitem__(self, i: int) -> TraceJob: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[TraceJob]: ...

    def __getitem__(self, i: int | slice) -> TraceJob | Sequence[TraceJob]:
        if isinstance(i, slice):
            return CopiedJobs(self.base, self.source[i], self.copy[i], self.submits[i])
        job, c = self.base[int(self.source[i])], int(self.copy[i])
        return job if c == 0 else replace(job, id=f"{job.id}~{c}", submit=float(self.submits[i]))

    def __iter__(self) -> Iterator[TraceJob]:
        for i in range(len(self.source)):
            yield self[i]


def columns(jobs: Sequence[TraceJob]) -> tuple[Sequence[TraceJob], np.ndarray, np.ndarray]:
    """(distinct jobs, which of them each job is, submit times): what the simulator indexes by, without
    reading a grown trace job by job."""
    if isinstance(jobs, CopiedJobs):
        return jobs.base, jobs.source, jobs.submits
    return jobs, np.arange(len(jobs)), np.fromiter((j.submit for j in jobs), float, len(jobs))


@dataclass
class Trace:
    name: str
    jobs: Sequence[TraceJob]
    chip: str  # catalog name of the chip durations were measured on
    homes: dict[str, int] = field(default_factory=dict)  # home -> nodes, where the trace knows its cluster
    notes: list[str] = field(default_factory=list)  # assumptions and dropped rows, printed with results
    busy_cdf: list[tuple[float, float]] | None = None  # measured GPU utilisation CDF (util %, cdf %)
    start: float = 0.0  # epoch seconds of the trace's time 0 (for local-time tariffs)

    def limit(self, n: int | None) -> Trace:
        if n is None or n >= len(self.jobs):
            return self
        return Trace(self.name, self.jobs[:n], self.chip, self.homes,
                     [*self.notes, f"first {n} of {len(self.jobs)} jobs"], self.busy_cdf, self.start)


class TraceError(ValueError):
    """A malformed row; the message names the file and the line."""


def _row_job(row: dict[str, str], i: int) -> TraceJob:
    submit = float(row["submit"])
    duration = float(row["duration"])
    devices = int(row["devices"])
    if duration <= 0 or devices <= 0:
        raise ValueError("duration and devices must be positive")
    chip = (row.get("chip") or "").strip() or None
    if chip:
        chip = load_catalog().lookup(chip).name
    return TraceJob(f"job-{i}", submit, duration, devices, (row.get("tenant") or "").strip() or "default",
                    chip, (row.get("home") or "").strip() or None)


def parse_csv(text: str, name: str = "trace.csv", skip_bad: bool = False) -> Trace:
    """Our CSV format -> Trace. A bad row raises TraceError with its line, or is counted with skip_bad."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"submit", "duration", "devices"} - set(reader.fieldnames or [])
    if missing:
        raise TraceError(f"{name}: header lacks column(s) {sorted(missing)}; need submit,duration,devices")
    jobs, bad = [], 0
    for i, row in enumerate(reader):
        line = reader.line_num
        try:
            jobs.append(_row_job(row, i))
        except (ValueError, TypeError, KeyError, UnknownAcceleratorError) as e:
            if not skip_bad:
                raise TraceError(f"{name}, line {line}: {e} (use --skip-bad to skip malformed rows)") from e
            bad += 1
    jobs.sort(key=lambda j: (j.submit, j.id))
    chips = {j.chip for j in jobs if j.chip}
    chip = chips.pop() if len(chips) == 1 else "A100 SXM4 80GB"
    notes = [f"skipped {bad} malformed row(s)"] if bad else []
    if not chips and not any(j.chip for j in jobs):
        notes.append("trace names no chip: durations taken as measured on A100 SXM4 80GB (ASSUMPTION)")
    homes = {h: 0 for h in sorted({j.home for j in jobs if j.home})}
    return Trace(Path(name).stem, jobs, chip, homes, notes)


def read_csv(path: str | Path, skip_bad: bool = False) -> Trace:
    return parse_csv(Path(path).read_text(encoding="utf-8"), str(path), skip_bad)
