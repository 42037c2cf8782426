"""One rclone run as a child process: its JSON log read as it comes (progress, errors), a cancel that ends it
within seconds, and nothing left running however the run ends."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from zhisuan.storage.rclone import rclone_path, stop_group

POLL_S = 0.1
CANCEL_GRACE_S = 2.0  # SIGTERM lets rclone abort its multipart uploads; SIGKILL after this
ERROR_LINES = 12
STALLED = -1  # Outcome.returncode of a run stopped for making no progress
MOTION = ("bytes", "transfers", "checks", "listed", "deletes", "serverSideCopyBytes")  # what moves in a live run


class StorageError(RuntimeError):
    """An object-store operation did not complete."""


class TransferCancelled(StorageError):
    """The caller cancelled; rclone was stopped. What was copied whole stays, and a later copy skips it."""


class TransferFailed(StorageError):
    """rclone gave up on a store: `stores` names the center(s) whose store failed, `lines` are rclone's last
    errors."""

    def __init__(self, operation: str, stores: tuple[str, ...], returncode: int, lines: list[str]) -> None:
        self.operation = operation
        self.stores = stores
        self.returncode = returncode
        self.lines = lines
        last = " | ".join(lines[-3:]) or "no error logged"
        super().__init__(f"{operation} failed at the store of {' or '.join(stores)} (rclone exit {returncode}): "
                         f"{last}")


@dataclass(frozen=True)
class Progress:
    """rclone's running totals for one copy. Objects it skipped (already there, same checksum) are in neither
    count: a resumed copy's totals are what it still had to move."""

    bytes_done: int
    bytes_total: int
    rate_bytes_per_s: float
    files_done: int
    files_total: int


NO_PROGRESS = Progress(0, 0, 0.0, 0, 0)


def progress_of(stats: dict[str, object]) -> Progress:
    """A Progress from the `stats` object of rclone's JSON log (rclone/fs/accounting)."""

    def num(key: str) -> float:
        value = stats.get(key)
        return float(value) if isinstance(value, int | float) else 0.0

    return Progress(bytes_done=int(num("bytes")), bytes_total=int(num("totalBytes")),
                    rate_bytes_per_s=num("speed"), files_done=int(num("transfers")),
                    files_total=int(num("totalTransfers")))


def is_error(entry: dict[str, object]) -> bool:
    level, msg = entry.get("level"), str(entry.get("msg", ""))
    return level in ("error", "critical") or (level == "notice" and msg.startswith("Failed"))


@dataclass
class Outcome:
    """How an rclone run ended: its exit code, what it printed on stdout, its last errors and totals."""

    returncode: int
    stdout: bytes
    errors: list[str]
    progress: Progress


def run(args: list[str], env: dict[str, str], *, cancel: threading.Event | None = None,
        on_progress: Callable[[Progress], None] | None = None, stall_s: float | None = None) -> Outcome:
    """Run `rclone ARGS --use-json-log` in a session of its own. Progress reaches `on_progress` in the caller's
    thread; a set `cancel` stops the run and raises TransferCancelled. With `stall_s` (and `--stats` in ARGS),
    a run whose totals stay still that long is stopped and fails: rclone's own timeouts bound each request,
    not a run of many objects against a store that hangs."""
    if cancel is not None and cancel.is_set():
        raise TransferCancelled("cancelled before rclone started")
    proc = subprocess.Popen([rclone_path(), *args, "--use-json-log"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    out = bytearray()
    errors: deque[str] = deque(maxlen=ERROR_LINES)
    stats: queue.SimpleQueue[dict[str, object]] = queue.SimpleQueue()

    def read_stdout() -> None:
        assert proc.stdout is not None
        out.extend(proc.stdout.read())

    def read_stderr() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").strip()
            try:
                entry = json.loads(line)
            except ValueError:
                if line:
                    errors.append(line)  # not rclone's log: a crash, a Go panic
                continue
            if isinstance(entry, dict):
                if isinstance(entry.get("stats"), dict):
                    stats.put(entry["stats"])
                elif is_error(entry):
                    errors.append(str(entry.get("msg", "")).strip())

    readers = [threading.Thread(target=f, daemon=True) for f in (read_stdout, read_stderr)]
    for t in readers:
        t.start()
    last, moved_at = NO_PROGRESS, time.monotonic()
    mark: tuple[object, ...] = ()

    def drain() -> None:
        nonlocal last, moved_at, mark
        while True:
            try:
                raw = stats.get_nowait()
            except queue.Empty:
                return
            last = progress_of(raw)
            if (now := tuple(raw.get(k) for k in MOTION)) != mark:
                mark, moved_at = now, time.monotonic()
            if on_progress is not None:
                on_progress(last)

    try:
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=POLL_S)
            drain()
            if proc.returncode is not None:
                break
            if cancel is not None and cancel.is_set():
                stop_group(proc, CANCEL_GRACE_S)
                raise TransferCancelled(f"cancelled: rclone {args[0]} stopped")
            if stall_s is not None and time.monotonic() - moved_at > stall_s:
                stop_group(proc, CANCEL_GRACE_S)
                errors.append(f"stopped: nothing moved, finished or was checked for {stall_s:g} s")
                return Outcome(STALLED, bytes(out), list(errors), last)
    finally:
        stop_group(proc)
        for t in readers:
            t.join(timeout=5.0)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    drain()
    return Outcome(proc.returncode, bytes(out), list(errors), last)
