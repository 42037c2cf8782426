"""A center's dataset copied out of a store onto the center's own disk, where its jobs read it (the engine
links it into each job's folder, read-only). rclone compares sizes and MD5s (`--checksum`) and checks each
download's MD5 against the store's, so a fetch run again after a failure or a cancel moves only what is missing."""

from __future__ import annotations

import hashlib
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


class Mismatch(Exception):
    """Copied files whose size or MD5 is not what the dataset declared."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__(", ".join(paths[:5]))
        self.paths = paths


def local_mismatches(folder: Path, files: dict[str, tuple[int, str]]) -> list[str]:
    """Declared files missing under `folder` or differing in size or MD5."""
    bad = []
    for path, (size, md5) in files.items():
        f = folder / path
        if not f.is_file() or f.stat().st_size != size:
            bad.append(path)
            continue
        digest = hashlib.md5(usedforsecurity=False)
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != md5:
            bad.append(path)
    return sorted(bad)

