"""A center's dataset copied out of a store onto the center's own disk, where its jobs read it (the engine
links it into each job's folder, read-only). rclone compares sizes and MD5s (`--checksum`) and checks each
download's MD5 against the store's, so a fetch run again after a failure or a cancel moves only what is missing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from zhisuan.storage.rclone import S3Store, base_env, env_for
from zhisuan.storage.run import Progress, run
from zhisuan.storage.transfer import DEFAULT_TIMEOUTS, STATS, Timeouts, bwlimit_flags, check, remote


def fetch(store: S3Store, prefix: str, folder: Path, *, bwlimit_bytes_per_s: float | None = None,
          on_progress: Callable[[Progress], None] | None = None, cancel: threading.Event | None = None,
          timeouts: Timeouts = DEFAULT_TIMEOUTS) -> Progress:
    """Every object under `prefix` into `folder` (made if need be), keyed by its path under the prefix."""
    folder.mkdir(parents=True, exist_ok=True)
    env = base_env() | env_for("SRC", store)
    outcome = run(["copy", remote("SRC", store, prefix), str(folder), "--checksum", *STATS,
                   *bwlimit_flags(bwlimit_bytes_per_s), *timeouts.flags()], env, cancel=cancel, on_progress=on_progress,
                  stall_s=timeouts.stall_s)
    check(outcome, "fetch", store)
    return outcome.progress
