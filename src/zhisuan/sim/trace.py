"""A trace: jobs with a submit time, a run time on the trace's own chip, devices and a tenant.

Our own CSV format lets users bring their trace:

    submit,duration,devices,chip,tenant,home
    0,3600,8,A100-80GB,acme,
    120,600,1,,lab,center-a

`submit` and `duration` in seconds (submit relative to any origin; finite numbers), `devices` a positive
integer, `chip` the catalog name the duration was measured on (required: per row, or for the whole trace
with `--trace-chip`), `tenant` (optional, default "default"), `home` (optional) the center the job belongs
to for siloed runs, `nodes` (optional) how many nodes the devices are spread over (1 = one node, as a
Kubernetes pod; default: the largest per-node count that fits the scenario's smallest node), `chips`
(optional) the only chips the job may run on, `|`-separated (Kubernetes' GPU-model lists, Alibaba's
`gpu_spec`). `devices` below 1 is a share of one device (0.5; thousandths), 0 a CPU-only job (give
`cpus`); `cpus` and `memory` (GiB) per node are consumed (optional, default 0: not asked); `priority`
(optional, integer); `censored` (optional, 1/true: the trace's window ended before the job did, so its
duration is a lower bound — counted in the notes); `input`, `input_gb`, `input_at` (optional, together) the
dataset the job reads, its size in GB (10^9 bytes) and the center where it is at first — replayed on a network,
the scheduler weighs moving it and the run takes the time moving it takes. Extra columns are ignored.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
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
    nodes: int | None = None  # the gang's node count when the trace says it (None: fit the smallest node)
    allowed: tuple[str, ...] = ()  # the only chips it may run on (catalog names); empty: any of its stack
    milli: int = 0  # a share of one device (thousandths; then devices == 1)
    cpus: float = 0.0  # per node
    memory_gib: float = 0.0  # per node
    priority: int = 0
    censored: bool = False  # ran past the trace's window: the duration is a lower bound
    inputs: tuple[str, ...] = ()  # datasets it reads (a DataWorld knows their sizes and replicas)

    def copied(self, id: str, submit: float) -> TraceJob:
        """This job under another id and submit time (a grown trace's copy): the constructor with every field,
        seven times faster than `dataclasses.replace`, which a replay at national scale calls millions of times."""
        return TraceJob(id, submit, self.duration, self.devices, self.tenant, self.chip, self.home, self.application,
                        self.nodes, self.allowed, self.milli, self.cpus, self.memory_gib, self.priority,
                        self.censored, self.inputs)

    @property
    def amount(self) -> float:
        """Devices held while it runs, a share as its fraction."""
        return self.milli / 1000 if self.milli else float(self.devices)


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
        return job if c == 0 else job.copied(copy_id(job.id, c), float(self.submits[i]))

    def __iter__(self) -> Iterator[TraceJob]:
        for i in range(len(self.source)):
            yield self[i]


def copy_id(original: str, copy: int) -> str:
    """The id of a grown trace's `copy`th copy of a job (0: the original itself)."""
    return original if copy == 0 else f"{original}~{copy}"


def copy_numbers(jobs: Sequence[TraceJob]) -> np.ndarray:
    """Which copy of its original each job is (0: the original), as `columns` indexes them."""
    return jobs.copy if isinstance(jobs, CopiedJobs) else np.zeros(len(jobs), dtype=np.int16)


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
    datasets: dict[str, tuple[float, str]] = field(default_factory=dict)  # name -> (GB, center it is born at)

    def limit(self, n: int | None) -> Trace:
        if n is None or n >= len(self.jobs):
            return self
        return Trace(self.name, self.jobs[:n], self.chip, self.homes,
                     [*self.notes, f"first {n} of {len(self.jobs)} jobs"], self.busy_cdf, self.start, self.datasets)


class TraceError(ValueError):
    """A malformed row; the message names the file and the line."""


def _number(row: dict[str, str], key: str) -> float:
    """An optional non-negative finite number column (empty: 0)."""
    text = (row.get(key) or "").strip()
    value = float(text) if text else 0.0
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{key} must be a finite number >= 0, got {text!r}")
    return value


def _devices(text: str, cpus: float) -> tuple[int, int]:
    """(devices, thousandths of one device for a share)."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"devices must be a finite number >= 0, got {text!r}")
    if value == 0:
        if not cpus:
            raise ValueError("devices 0 is a CPU-only job: give its cpus")
        return 0, 0
    if value < 1:
        milli = round(value * 1000)
        if abs(value * 1000 - milli) > 1e-9:
            raise ValueError(f"a share of one device is in thousandths (0.001 .. 0.999), got {text!r}")
        return 1, milli
    if value != int(value):
        raise ValueError(f"devices above 1 must be whole, got {text!r}")
    return int(value), 0


def _row_job(row: dict[str, str], i: int, default_chip: str | None) -> TraceJob:
    submit = float(row["submit"])
    duration = float(row["duration"])
    if not (math.isfinite(submit) and math.isfinite(duration)):
        raise ValueError(f"submit and duration must be finite numbers, got {row['submit']!r}, {row['duration']!r}")
    if duration <= 0:
        raise ValueError("duration must be positive")
    cpus, memory = _number(row, "cpus"), _number(row, "memory")
    devices, milli = _devices(row["devices"], cpus)
    priority_text = (row.get("priority") or "").strip()
    priority = int(priority_text) if priority_text else 0
    censored_text = (row.get("censored") or "").strip().lower()
    if censored_text not in ("", "0", "1", "true", "false"):
        raise ValueError(f"censored must be 0/1 or true/false, got {censored_text!r}")
    chip = (row.get("chip") or "").strip() or default_chip
    if not chip:
        raise ValueError("no chip: say which chip the duration was measured on (a `chip` column, or --trace-chip)")
    chip = load_catalog().lookup(chip).name
    nodes_text = (row.get("nodes") or "").strip()
    nodes = int(nodes_text) if nodes_text else None
    if nodes is not None and (nodes <= 0 or (devices % nodes if devices else nodes != 1)):
        raise ValueError(f"nodes must be a positive divisor of devices ({devices}), got {nodes}")
    allowed = tuple(dict.fromkeys(load_catalog().lookup(c.strip()).name
                                  for c in (row.get("chips") or "").split("|") if c.strip()))
    name = (row.get("input") or "").strip()
    return TraceJob(f"job-{i}", submit, duration, devices, (row.get("tenant") or "").strip() or "default",
                    chip, (row.get("home") or "").strip() or None, nodes=nodes, allowed=allowed, milli=milli,
                    cpus=cpus, memory_gib=memory, priority=priority, censored=censored_text in ("1", "true"),
                    inputs=(name,) if name else ())


def _dataset(row: dict[str, str], known: dict[str, tuple[float, str]]) -> None:
    """A row's input (`input`, `input_gb`, `input_at`), checked against what earlier rows said of it."""
    name = (row.get("input") or "").strip()
    if not name:
        return
    gb, at = _number(row, "input_gb"), (row.get("input_at") or "").strip()
    if gb <= 0 or not at:
        raise ValueError(f"input {name!r}: give its size (input_gb > 0) and where it is at first (input_at)")
    if known.setdefault(name, (gb, at)) != (gb, at):
        raise ValueError(f"input {name!r}: {gb} GB at {at}, but an earlier row said {known[name][0]} GB at "
                         f"{known[name][1]}")


def parse_csv(text: str, name: str = "trace.csv", skip_bad: bool = False, chip: str | None = None) -> Trace:
    """Our CSV format -> Trace. A bad row raises TraceError with its line, or is counted with skip_bad.
    `chip`: what a row without one was measured on."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"submit", "duration", "devices"} - set(reader.fieldnames or [])
    if missing:
        raise TraceError(f"{name}: header lacks column(s) {sorted(missing)}; need submit,duration,devices")
    if chip is not None:
        try:
            chip = load_catalog().lookup(chip).name
        except UnknownAcceleratorError as e:
            raise TraceError(f"--trace-chip: {e}") from e
    jobs, bad = [], 0
    datasets: dict[str, tuple[float, str]] = {}
    for i, row in enumerate(reader):
        line = reader.line_num
        try:
            job = _row_job(row, i, chip)
            _dataset(row, datasets)
            jobs.append(job)
        except (ValueError, TypeError, KeyError, UnknownAcceleratorError) as e:
            if not skip_bad:
                raise TraceError(f"{name}, line {line}: {e} (use --skip-bad to skip malformed rows)") from e
            bad += 1
    jobs.sort(key=lambda j: (j.submit, j.id))
    chips = {j.chip for j in jobs if j.chip}
    notes = [f"skipped {bad} malformed row(s)"] if bad else []
    if len(chips) > 1:
        notes.append(f"durations measured on {len(chips)} chips: each job's speed is relative to its own")
    censored = sum(1 for j in jobs if j.censored)
    if censored:
        notes.append(f"{censored} job(s) censored (ran past the trace's window): their durations are lower bounds")
    trace_chip = chip or (sorted(chips)[0] if chips else "A100 SXM4 80GB")
    homes = {h: 0 for h in sorted({j.home for j in jobs if j.home})}
    return Trace(Path(name).stem, jobs, trace_chip, homes, notes, datasets=datasets)


def read_csv(path: str | Path, skip_bad: bool = False, chip: str | None = None) -> Trace:
    return parse_csv(Path(path).read_text(encoding="utf-8"), str(path), skip_bad, chip)
