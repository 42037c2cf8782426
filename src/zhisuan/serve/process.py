"""Start `zhisuan server` as a child process on a free loopback port (demo, benchmarks, end-to-end tests)."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from zhisuan.engines.rendezvous import free_port
from zhisuan.engines.sandbox import reap


class ServerProcess:
    """A `zhisuan server` child in its own process group; its jobs' processes survive a kill of it."""

    def __init__(self, network: Path, db: str, runs: Path, interval: float = 0.3, port: int | None = None,
                 reports: Path | None = None, policy: str | None = None, tls: tuple[Path, Path] | None = None,
                 ca: Path | None = None, host: str = "127.0.0.1", extra: list[str] | None = None) -> None:
        self.network, self.db, self.runs, self.interval, self.policy = network, db, runs, interval, policy
        self.reports = reports or runs / "reports"
        self.port = port or free_port()
        self.host, self.tls, self.ca = host, tls, ca
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.extra = list(extra or [])  # more of `zhisuan server`'s options (--lease ...)
        self.log = runs / "server.log"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.runs.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zhisuan.cli.main", "server", "--network", str(self.network), "--db", self.db,
             "--runs", str(self.runs), "--port", str(self.port), "--interval", str(self.interval),
             "--reports", str(self.reports), "--host", self.host, *(["--policy", self.policy] if self.policy else []),
             *(["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])] if self.tls else []), *self.extra],
            env={k: v for k, v in os.environ.items() if k != "SLURM_CONF"},  # centers' settings stay theirs
            stdout=subprocess.DEVNULL, stderr=os.fdopen(os.open(self.log, os.O_WRONLY | os.O_CREAT |
                                                                os.O_APPEND, 0o600), "ab"), start_new_session=True)
        end = time.time() + timeout
        while time.time() < end:
            try:
                if httpx.get(self.url + "/openapi.json", timeout=1, verify=self.verify()).status_code == 200:
                    return self
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"zhisuan server did not start; see {self.log}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=20)

    def close(self, sig: int = signal.SIGTERM) -> int:
        """Stop the server for good and kill what its local jobs still run (a stop leaves them for a restart)."""
        self.stop(sig)
        return reap(self.runs)

    def token(self, tenant: str) -> str:
        return str(json.loads((self.runs / "tokens.json").read_text(encoding="utf-8"))[tenant])

    def client(self, tenant: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token(tenant)}"}, timeout=30,
                            verify=self.verify())

    def verify(self) -> ssl.SSLContext | bool:
        """The server's certificate checked against the test CA, when it serves TLS."""
        return ssl.create_default_context(cafile=str(self.ca)) if self.ca else True
