"""The one engine interface of DESIGN.md: inventory, submit, poll, cancel, logs, usage, health.

The control loop talks to every center through it, so a network can mix the local engine, Slurm
clusters, Ray clusters and Kubernetes. Handles are strings an engine can resolve again after a
restart; everything an engine needs to start a job is in `Launch`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from zhisuan.model import Pool


@dataclass(frozen=True)
class EngineStatus:
    """`queued`: accepted but waiting in the center's own queue (`reason` and `expected_start` say why and
    until when, as the center sees it); `running`; or an end: `succeeded` | `failed`; or `lost`: the
    center does not have it (never started there, or gone without a trace). `started_at`/`ended_at`: when
    it did, on the server's clock, where a report arrived late (an agent back from a partition)."""

    state: str
    exit_code: int | None = None
    reason: str = ""
    expected_start: float | None = None  # epoch seconds, when the center estimates it (squeue --start)
    started_at: float | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class ExternalLoad:
    """Something else on a pool's nodes: a job of the center's own users, or a node drained or down.
    `expected_end` is its time limit or estimate (inf: unknown); the scheduler plans around it."""

    id: str
    pool: str  # the pool's name in its center
    nodes: tuple[int, ...]  # node indices in the pool
    devices_per_node: int
    start: float
    expected_end: float
    what: str  # shown to users: "slurm job 41 (alice)", "node a100-1 drained: maintenance"


@dataclass(frozen=True)
class Launch:
    """A placed job as an engine starts it: the gang on `nodes` of `pool`, `devices[i]` for member i.
    `milli` > 0: the job holds that share of its one device (thousandths), others may share it too;
    `devices_per_node` 0: a CPU-only job (no device at all); `cpus` and `memory_gib` per node (0: the
    engine's default)."""

    job_id: str
    name: str
    command: str
    pool: Pool
    nodes: tuple[int, ...]
    devices_per_node: int
    devices: list[list[str]]
    env: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    image: str | None = None
    attempt: int = 1  # 1 for the first run, +1 for each requeue (preemption, failover, withdrawal)
    tenant: str = ""  # whose job it is (engines that map tenants to cluster accounts)
    milli: int = 0  # a share of one device, thousandths (0: whole devices)
    cpus: float = 0.0  # CPUs per node the job asked (0: not said)
    on_center_loss: str = "wait"  # what the network does with it when its center goes silent (agents act on it)
    inputs: dict[str, str] = field(default_factory=dict)  # mount -> local folder of its dataset's checked copy
    memory_gib: float = 0.0  # memory per node the job asked (0: not said)


@dataclass(frozen=True)
class Usage:
    """What the engine itself measured or allocated for a job (device-seconds; None when not reported)."""

    allocated_device_seconds: float
    elapsed_seconds: float
    busy_device_seconds: float | None = None
    source: str = ""
    energy_joules: float | None = None  # measured IT energy of the job's allocation (Slurm's ConsumedEnergy)


class EngineDown(RuntimeError):
    """The engine does not answer (health check failed or timed out)."""


class Engine(Protocol):
    kind: str
    starts_at_submit: bool  # True when a submitted job runs at once (no queue of the center's own)

    def inventory(self) -> list[Pool]: ...

    def load(self, pools: list[Pool]) -> list[ExternalLoad]:
        """What else occupies these pools of the center now: its own users' jobs, drained or down nodes."""
        ...

    def health(self) -> None:
        """Return when the engine answers; raise EngineDown with the reason otherwise."""

    def submit(self, launch: Launch) -> str: ...

    def handle_of(self, job_id: str, attempt: int | None = None) -> str | None:
        """The handle of an attempt of a job this engine holds (the latest without `attempt`), else None."""
        ...

    def poll(self, handle: str) -> EngineStatus: ...

    def stop(self, handle: str) -> None:
        """Ask the job to end gracefully (SIGTERM or the engine's equivalent) and return at once."""
        ...

    def cancel(self, handle: str) -> None:
        """End the job now (after its grace period, if `stop` has not given it one)."""
        ...

    def logs(self, handle: str) -> str: ...

    def log_delta(self, handle: str, offsets: dict[str, int]) -> str: ...

    def log_rest(self, handle: str, offsets: dict[str, int]) -> str: ...

    def usage(self, handle: str) -> Usage | None: ...

    def host_of(self, handle: str) -> str | None:
        """Where member 0 of a running job can be reached from the control plane (a host name or IP: a model
        service's replica listens there), None while the engine does not know it yet."""
        ...


MAX_LOG = 1024 * 1024  # bytes of a job's output one read returns: the end of it, with a mark where it was cut


def cut(text: str, limit: int = MAX_LOG) -> str:
    """The last `limit` characters of a text, marked when earlier ones were left out."""
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} earlier characters cut; the last {limit} follow]\n" + text[-limit:]


def tail_file(path: Path, limit: int = MAX_LOG) -> str:
    """The end of a log file (at most `limit` bytes read, however large it grew)."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - limit))
            data = f.read(limit)
    except FileNotFoundError:
        return ""
    head = f"[... {size - limit} earlier bytes cut; the last {limit} follow]\n" if size > limit else ""
    return head + data.decode("utf-8", errors="replace")


def file_delta(files: list[Path], offsets: dict[str, int], whole_lines: bool, label: bool) -> str:
    """What log files gained since `offsets` (updated in place), at most MAX_LOG bytes per file and call;
    a follower that starts late begins at the last MAX_LOG bytes. `whole_lines`: never half a line;
    `label`: each line prefixed by its member's rank (files named out-<rank>.log)."""
    out = []
    for f in files:
        try:
            with f.open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                start = offsets.get(f.name, max(0, size - MAX_LOG))
                start = 0 if start > size else start  # the file was cut (cap_file): read it from its start
                fh.seek(start)
                data = fh.read(MAX_LOG)
        except FileNotFoundError:
            continue
        end = data.rfind(b"\n") + 1 if whole_lines and len(data) < MAX_LOG else len(data)
        if end == 0:
            continue
        offsets[f.name] = start + end
        text = data[:end].decode("utf-8", errors="replace")
        if label:
            text = "".join(f"[node {f.stem[4:]}] {line}" for line in text.splitlines(keepends=True))
        out.append(text)
    return "".join(out)


def cap_file(path: Path, limit: int, keep: int = MAX_LOG) -> int:
    """A log grown beyond `limit` bytes keeps its last `keep` (from a line's start: what `logs` shows anyway)
    after a line saying how much was dropped; the job writing it (O_APPEND) goes on at the new end, so the disk
    holds about `limit` of it whatever the job prints, and a cut copies `keep` bytes, not the log. What the job
    writes in the instant between the copy and the cut is lost. The bytes dropped (0: under the limit)."""
    try:
        size = path.stat().st_size
        if size <= limit:
            return 0
        with path.open("rb") as f:
            f.seek(size - min(keep, limit))
            tail = f.read()
    except FileNotFoundError:
        return 0
    cut = tail.find(b"\n") + 1
    tail = tail[cut:] if 0 < cut < len(tail) else tail
    dropped = size - len(tail)
    os.truncate(path, 0)
    with path.open("ab") as f:
        f.write(f"[zhisuan: {dropped:,} bytes of earlier output dropped: a log is kept to {limit:,} bytes]\n".encode()
                + tail)
    return dropped


class TextLogs:
    """log_delta / log_rest for engines whose logs come back as one text (an API): follow = the whole
    new lines of that text since the last call, then the rest once the job ended."""

    def logs(self, handle: str) -> str:
        raise NotImplementedError

    def log_delta(self, handle: str, offsets: dict[str, int]) -> str:
        text, start = self.logs(handle), offsets.get("", 0)
        end = text.rfind("\n") + 1
        if end <= start:
            return ""
        offsets[""] = end
        return text[start:end]

    def log_rest(self, handle: str, offsets: dict[str, int]) -> str:
        text, start = self.logs(handle), offsets.get("", 0)
        offsets[""] = len(text)
        return text[start:]
