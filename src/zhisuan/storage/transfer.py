"""Moving data in and between centers' object stores with rclone: upload, list with MD5s, copy (server-side
within one store, streamed through this machine between two), verify a replica, remove a prefix.

Every run is bounded: rclone's connect and idle timeouts and its retry counts (Timeouts) make a store that
hangs or answers 500s an error naming that store, rather than a transfer that never ends. A copy compares sizes
and MD5s (`--checksum`), so a copy run again after a cancel or a failure moves only what is not there yet.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from zhisuan.storage.rclone import S3Store, base_env, env_for
from zhisuan.storage.run import Outcome, Progress, TransferFailed, run

NOT_FOUND = 3  # rclone's exit code for a directory (here: a prefix or bucket) that does not exist
STATS = ["--stats", "0.5s", "--stats-log-level", "NOTICE"]  # totals twice a second, without per-file lines
# Words rclone's errors use for one side of a copy: a copy only reads the source and only writes the destination
SIDE_WORDS = {"SRC": re.compile(r"\bsource\b|GetObject", re.I),
              "DST": re.compile(r"\bdestination\b|upload|CreateBucket|PutObject", re.I)}


@dataclass(frozen=True)
class Timeouts:
    """How long to wait for a store. rclone fails one request to a store that accepts connections and never
    answers after (low_level_retries + 1) × idle_s, but a copy of many objects tries each of them: `stall_s`
    bounds the whole run. A store that answers 500s, or refuses connections, fails a run within seconds."""

    connect_s: float = 5.0
    idle_s: float = 15.0  # no byte in either direction for this long: the request failed
    retries: int = 2  # whole runs; each skips what an earlier one completed
    low_level_retries: int = 1  # of one HTTP request (rclone makes at least two attempts)
    stall_s: float | None = 60.0  # an upload or copy whose totals stay still this long is stopped and fails

    def flags(self) -> list[str]:
        return ["--contimeout", f"{self.connect_s:g}s", "--timeout", f"{self.idle_s:g}s",
                "--retries", str(max(1, self.retries)), "--low-level-retries", str(self.low_level_retries)]


DEFAULT_TIMEOUTS = Timeouts()
PROBE_TIMEOUTS = Timeouts(connect_s=3.0, idle_s=3.0, retries=1, low_level_retries=0, stall_s=None)


@dataclass(frozen=True)
class ObjectInfo:
    """One object under a prefix: its key relative to the prefix, its size and MD5 (None: the store has none)."""

    path: str
    size: int
    md5: str | None


def clean_prefix(prefix: str) -> str:
    """A key prefix as S3 servers accept it: no leading, trailing or doubled slash, no `.` or `..` segments."""
    parts = prefix.strip("/").split("/") if prefix.strip("/") else []
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a clean key prefix: {prefix!r}")
    return "/".join(parts)


def remote(label: str, store: S3Store, prefix: str) -> str:
    """`LABEL:bucket/prefix/`: the trailing slash says "a folder", so rclone does not first HEAD the prefix to
    see whether it is one object (one request less, and clearer errors)."""
    path = "/".join(p for p in (store.bucket, clean_prefix(prefix)) if p)
    return f"{label}:{path}/"


def bwlimit_flags(bytes_per_s: float | None) -> list[str]:
    return [] if bytes_per_s is None else ["--bwlimit", f"{max(1, int(bytes_per_s))}B"]  # B: bytes, not KiB


def check(outcome: Outcome, operation: str, store: S3Store, *, missing_ok: bool = False) -> None:
    if outcome.returncode == 0 or (missing_ok and outcome.returncode == NOT_FOUND):
        return
    raise TransferFailed(operation, (store.name,), outcome.returncode, outcome.errors)


def listing(store: S3Store, prefix: str, *, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> list[ObjectInfo]:
    """Every object under `prefix` (recursively), with the MD5 the store reports; a prefix that does not exist
    holds nothing."""
    env = base_env() | env_for("STORE", store)
    outcome = run(["lsjson", "--hash", "--hash-type", "MD5", "--recursive", "--files-only",
                   remote("STORE", store, prefix), *timeouts.flags()], env)
    check(outcome, "listing", store, missing_ok=True)
    if outcome.returncode == NOT_FOUND:
        return []
    entries = json.loads(outcome.stdout or b"[]")
    return sorted((ObjectInfo(path=e["Path"], size=int(e["Size"]), md5=(e.get("Hashes") or {}).get("md5") or None)
                   for e in entries), key=lambda o: o.path)


def put(local_path: Path | str, store: S3Store, prefix: str, *, bwlimit: float | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS) -> list[ObjectInfo]:
    """Upload a file (to prefix/its name) or a folder's tree (under prefix); `bwlimit` in bytes/s. rclone checks
    each upload's MD5 against the store's. Returns what the store now holds of the upload."""
    local = Path(local_path)
    if local.is_dir():
        names = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    elif local.is_file():
        names = {local.name}
    else:
        raise FileNotFoundError(local)
    env = base_env() | env_for("DST", store)
    outcome = run(["copy", str(local), remote("DST", store, prefix), "--checksum", *STATS, *bwlimit_flags(bwlimit),
                   *timeouts.flags()], env, stall_s=timeouts.stall_s)
    check(outcome, "upload", store)
    return [o for o in listing(store, prefix, timeouts=timeouts) if o.path in names]


def copy(src_store: S3Store, src_prefix: str, dst_store: S3Store, dst_prefix: str, *,
         bwlimit_bytes_per_s: float | None = None, on_progress: Callable[[Progress], None] | None = None,
         cancel: threading.Event | None = None, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> Progress:
    """Copy every object under src_prefix to dst_prefix; objects already there with the same size and MD5 are
    skipped, so this also resumes an interrupted copy. Within one store (same endpoint and keys) the store copies
    server-side; between two, the bytes stream through this machine, limited to `bwlimit_bytes_per_s`.

    Raises TransferCancelled when `cancel` is set (rclone is stopped within seconds), TransferFailed naming the
    store that failed."""
    if src_store.same_account(dst_store):
        env = base_env() | env_for("STORE", src_store)
        src, dst = remote("STORE", src_store, src_prefix), remote("STORE", dst_store, dst_prefix)
    else:
        env = base_env() | env_for("SRC", src_store) | env_for("DST", dst_store)
        src, dst = remote("SRC", src_store, src_prefix), remote("DST", dst_store, dst_prefix)
    outcome = run(["copy", src, dst, "--checksum", *STATS, *bwlimit_flags(bwlimit_bytes_per_s), *timeouts.flags()],
                  env, cancel=cancel, on_progress=on_progress, stall_s=timeouts.stall_s)
    if outcome.returncode != 0:
        sides = {"SRC": (src_store, src_prefix), "DST": (dst_store, dst_prefix)}
        raise TransferFailed("copy", blame(outcome.errors, sides), outcome.returncode, outcome.errors)
    return outcome.progress


def blame(lines: list[str], sides: dict[str, tuple[S3Store, str]]) -> tuple[str, ...]:
    """Which side's store failed a copy: the one rclone's errors point at (its remote, its endpoint, words only
    one side's operations use), else the one that fails a short listing now, else both."""
    stores = {label: store for label, (store, _) in sides.items()}
    if len({s.name for s in stores.values()}) == 1 or sides["SRC"][0].same_account(sides["DST"][0]):
        return (sides["SRC"][0].name,)
    text = "\n".join(lines)
    pointed = [label for label, store in stores.items()
               if re.search(rf"\b{label}(\{{[^}}]*\}})?:", text)
               or re.search(re.escape(urlsplit(store.endpoint).netloc) + r"(?!\d)", text)
               or SIDE_WORDS[label].search(text)]
    if len(pointed) == 1:
        return (stores[pointed[0]].name,)
    with ThreadPoolExecutor(max_workers=2) as pool:
        healthy = dict(zip(sides, pool.map(lambda side: answers(*side), sides.values()), strict=True))
    failing = [stores[label].name for label, ok in healthy.items() if not ok]
    return tuple(failing) or tuple(s.name for s in stores.values())


def answers(store: S3Store, prefix: str) -> bool:
    """Whether the store lists `prefix` (or says it is not there) within a few seconds."""
    env = base_env() | env_for("STORE", store)
    outcome = run(["lsjson", "--max-depth", "1", remote("STORE", store, prefix), *PROBE_TIMEOUTS.flags()], env)
    return outcome.returncode in (0, NOT_FOUND)


def verify(store: S3Store, prefix: str, expected: dict[str, str], *,
           timeouts: Timeouts = DEFAULT_TIMEOUTS) -> list[str]:
    """The paths (relative to prefix) of `expected` that are missing or whose MD5 differs: a replica with any
    such path is not to be used."""
    found = {o.path: o.md5 for o in listing(store, prefix, timeouts=timeouts)}
    return sorted(p for p, md5 in expected.items() if not (got := found.get(p)) or got.lower() != md5.lower())


def remove(store: S3Store, prefix: str, *, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> None:
    """Delete every object under `prefix` (a prefix already gone is fine). The bucket's root is refused: a
    replica is a prefix, and purging a whole bucket is never what a transfer means."""
    if not clean_prefix(prefix):
        raise ValueError(f"refusing to purge the whole bucket {store.bucket!r} of {store.name}")
    env = base_env() | env_for("STORE", store)
    check(run(["purge", remote("STORE", store, prefix), *timeouts.flags()], env), "remove", store, missing_ok=True)
