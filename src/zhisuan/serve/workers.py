"""API workers: `zhisuan server --api-workers N` answers the API, the dashboard and the model gateway from N
processes of their own, all accepting on the public port, while the server's own process keeps the control
plane — its lease, the control loop, centers' agents — and answers only its workers, on a loopback port.

Why: in one process, the event loop that answers every tenant and the control loop working a long queue share
one interpreter lock, and each waits for the other (the API's p99 under many clients was the loop's steps).
A worker is a follower that never leads: it reads the store as any replica does, writes tenants' submits and
cancels, and hands to its server what only the control plane holds (an agent's connection, a model replica
reached through an agent). The kernel spreads connections among the workers; a worker that dies is started
again; the workers end with their server (also when it is killed: the parent-death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable

log = logging.getLogger("zhisuan.server")
PARENT = "ZHISUAN_API_WORKER_PARENT"  # the server's pid, in a worker's environment
MAX_WORKERS = 32
PR_SET_PDEATHSIG = 1
RESPAWN_AFTER = 1.0  # seconds before a worker that ended is started again


class Workers:
    """The API workers of one server: `argv` is the server's own command line, to which each worker's two
    options are added (a worker ignores --api-workers)."""

    def __init__(self, n: int, argv: list[str], public: socket.socket, server_url: str,
                 serving: Callable[[], bool] = lambda: True) -> None:
        self.n, self.argv, self.public, self.server_url = n, argv, public, server_url
        self.serving = serving  # False once the server is stopping: its workers, stopping too, stay stopped
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> Workers:
        with self._lock:
            self.procs = [self._spawn() for _ in range(self.n)]
        threading.Thread(target=self._watch, name="zhisuan-workers", daemon=True).start()
        return self

    def _spawn(self) -> subprocess.Popen[bytes]:
        fd = self.public.fileno()
        return subprocess.Popen([*self.argv, "--api-worker-of", self.server_url, "--listen-fd", str(fd)],
                                pass_fds=(fd,), env={**os.environ, PARENT: str(os.getpid())})

    def _watch(self) -> None:
        while not self.stopping.wait(RESPAWN_AFTER):
            with self._lock:
                for k, proc in enumerate(self.procs):
                    if proc.poll() is not None and not self.stopping.is_set() and self.serving():
                        log.warning("API worker ended; starting another",
                                    extra={"fields": {"pid": proc.pid, "status": proc.returncode}})
                        self.procs[k] = self._spawn()

    def close(self, grace: float = 5.0) -> None:
        """SIGTERM to every worker (uvicorn's graceful stop), SIGKILL to those still there after `grace`."""
        self.stopping.set()
        with self._lock:
            for proc in self.procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
            end = time.monotonic() + grace
            for proc in self.procs:
                try:
                    proc.wait(timeout=max(0.1, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def end_with_parent() -> None:
    """In a worker: SIGTERM when the server that started it ends, however it ends (Linux's parent-death signal);
    a server already gone before this was set: end now."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    parent = os.environ.get(PARENT)
    if parent is not None and os.getppid() != int(parent):
        raise SystemExit("the server that started this API worker has ended")
