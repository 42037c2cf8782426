"""An engine that runs nothing: each job "runs" for the seconds its command sleeps (`sleep N`), by the
monotonic clock. For measuring the network around the engines — 50 centers' agents behind a WAN — where
50 centers of real processes would measure this machine instead; every real engine is tested against the
real thing elsewhere. Starts at once, ends on time with exit 0, stops and cancels at once."""

from __future__ import annotations

import itertools
import re
import threading
import time
from dataclasses import dataclass

from zhisuan.engines.base import EngineStatus, ExternalLoad, Launch, TextLogs, Usage
from zhisuan.model import Pool

SLEEP = re.compile(r"\bsleep\s+([0-9]+(?:\.[0-9]+)?)")


@dataclass
class _Job:
    job_id: str
    attempt: int
    started: float
    seconds: float
    devices: int
    ended: float | None = None
    code: int = 0
    wall: float = 0.0  # when it was started, by this machine's clock (benchmarks compare it with the server's)


class TimedEngine(TextLogs):
    kind = "timed"
    starts_at_submit = True

    def __init__(self, clock: float = 1.0) -> None:
        self.speed = clock  # >1: jobs end that many times sooner than their sleep says
        self.jobs: dict[str, _Job] = {}
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.submitted = 0  # starts asked of it (a start delivered twice must count once)

    def inventory(self) -> list[Pool]:
        return []

    def load(self, pools: list[Pool]) -> list[ExternalLoad]:
        return []

    def health(self) -> None:
        return None

    def submit(self, launch: Launch) -> str:
        m = SLEEP.search(launch.command)
        with self.lock:
            self.submitted += 1
            native = f"timed-{next(self.ids)}"
            self.jobs[native] = _Job(launch.job_id, launch.attempt, time.monotonic(),
                                     float(m.group(1)) / self.speed if m else 0.0,
                                     launch.devices_per_node * len(launch.nodes), wall=time.time())
        return native

    def handle_of(self, job_id: str, attempt: int | None = None) -> str | None:
        with self.lock:
            mine = [(j.attempt, h) for h, j in self.jobs.items() if j.job_id == job_id
                    and (attempt is None or j.attempt == attempt)]
        return max(mine)[1] if mine else None

    def _end(self, job: _Job, now: float) -> None:
        if job.ended is None and now - job.started >= job.seconds:
            job.ended = job.started + job.seconds

    def poll(self, handle: str) -> EngineStatus:
        with self.lock:
            job = self.jobs[handle]
            self._end(job, time.monotonic())
        if job.ended is None:
            return EngineStatus("running")
        return EngineStatus("succeeded", 0) if job.code == 0 else EngineStatus("failed", job.code, "stopped")

    def stop(self, handle: str) -> None:
        self.cancel(handle)

    def cancel(self, handle: str) -> None:
        with self.lock:
            job = self.jobs[handle]
            if job.ended is None:
                job.ended, job.code = time.monotonic(), 143

    def logs(self, handle: str) -> str:
        with self.lock:
            job = self.jobs[handle]
        return f"{job.job_id} attempt {job.attempt}: slept {job.seconds:g} s\n"

    def usage(self, handle: str) -> Usage | None:
        with self.lock:
            job = self.jobs[handle]
        ran = ((job.ended or time.monotonic()) - job.started)
        return Usage(ran * job.devices, ran, None, "timed")

    def host_of(self, handle: str) -> str | None:
        return "127.0.0.1"
