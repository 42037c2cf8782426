"""The one engine interface of DESIGN.md: inventory, submit, poll, cancel, logs, usage, health.

The control loop talks to every center through it, so a network can mix the local engine, Slurm
clusters, Ray clusters and Kubernetes. Handles are strings an engine can resolve again after a
restart; everything an engine needs to start a job is in `Launch`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from zhisuan.model import Pool


@dataclass(frozen=True)
class EngineStatus:
    state: str  # running | succeeded | failed
    exit_code: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class Launch:
    """A placed job as an engine starts it: the gang on `nodes` of `pool`, `devices[i]` for member i."""

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


@dataclass(frozen=True)
class Usage:
    """What the engine itself measured or allocated for a job (device-seconds; None when not reported)."""

    allocated_device_seconds: float
    elapsed_seconds: float
    busy_device_seconds: float | None = None
    source: str = ""


class EngineDown(RuntimeError):
    """The engine does not answer (health check failed or timed out)."""


class Engine(Protocol):
    kind: str

    def inventory(self) -> list[Pool]: ...

    def health(self) -> None:
        """Return when the engine answers; raise EngineDown with the reason otherwise."""

    def submit(self, launch: Launch) -> str: ...

    def handle_of(self, job_id: str) -> str | None: ...

    def poll(self, handle: str) -> EngineStatus: ...

    def cancel(self, handle: str) -> None: ...

    def logs(self, handle: str) -> str: ...

    def log_delta(self, handle: str, offsets: dict[str, int]) -> str: ...

    def log_rest(self, handle: str, offsets: dict[str, int]) -> str: ...

    def usage(self, handle: str) -> Usage | None: ...


class TextLogs:
    """log_delta / log_rest for engines whose logs come back as one text (files elsewhere, an API):
    follow = the whole new lines of that text since the last call, then the rest once the job ended."""

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
