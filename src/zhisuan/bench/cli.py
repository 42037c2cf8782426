"""`zhisuan bench cli`: how long the command takes to answer `--help` (a new process each time, as a user
types it): the import cost every command pays before it does anything."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

COMMANDS = (["--help"], ["--version"], ["jobs", "--help"], ["sim", "--help"])


@dataclass
class CliTiming:
    args: list[str]
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def run(repeats: int = 7, progress: Callable[[str], None] = lambda _: None) -> list[CliTiming]:
    exe = shutil.which("zhisuan")
    base = [exe] if exe else [sys.executable, "-m", "zhisuan.cli.main"]
    out = []
    for args in COMMANDS:
        progress(f"zhisuan {' '.join(args)}")
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([*base, *args], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        out.append(CliTiming(list(args), times))
    return out
