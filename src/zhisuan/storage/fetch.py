"""A center's dataset copied out of its store onto the center's own disk, where its jobs read it (the
engine links it into each job's folder, read-only). rclone compares sizes and MD5s, so a fetch run again
after a failure moves only what is missing."""

from __future__ import annotations

from pathlib import Path

from zhisuan.storage.rclone import S3Store, base_env, env_for
from zhisuan.storage.run import run
from zhisuan.storage.transfer import DEFAULT_TIMEOUTS, Timeouts, check, remote


def fetch(store: S3Store, prefix: str, folder: Path, *, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> None:
    """Every object under `prefix` into `folder` (made if need be), keyed by its path under the prefix."""
    folder.mkdir(parents=True, exist_ok=True)
    env = base_env() | env_for("SRC", store)
    outcome = run(["copy", remote("SRC", store, prefix), str(folder), "--checksum", *timeouts.flags()], env)
    check(outcome, "fetch", store)
