"""Two centers' object stores as real S3 servers (`rclone serve s3` over temporary folders), stores that fail,
and the check that no test leaves an rclone process behind."""

from __future__ import annotations

import http.server
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from zhisuan.storage import S3Server, S3Store


def rclone_children() -> list[int]:
    """This process's rclone children, zombies included (one not waited for is a leak too)."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if comm == "rclone" and int(rest[1]) == me:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture(autouse=True)
def _no_rclone_left() -> Iterator[None]:
    """Set up before, so torn down after, every other fixture of a test: its servers are gone by then."""
    assert rclone_children() == [], "an rclone process was running before the test"
    yield
    assert rclone_children() == [], "the test left an rclone process running"


@dataclass
class Center:
    server: S3Server
    store: S3Store

    @property
    def folder(self) -> Path:
        """The bucket's folder on disk: what the server serves."""
        return self.server.root / self.store.bucket


def _keys() -> tuple[str, str]:
    return "AK" + secrets.token_hex(8), secrets.token_hex(20)


@pytest.fixture
def centers(tmp_path: Path) -> Iterator[tuple[Center, Center]]:
    """Two centers, each with its own S3 server, folder and random keys."""
    (ak_a, sk_a), (ak_b, sk_b) = _keys(), _keys()
    with (S3Server(tmp_path / "dc-a", name="dc-a", access_key=ak_a, secret_key=sk_a) as a,
          S3Server(tmp_path / "dc-b", name="dc-b", access_key=ak_b, secret_key=sk_b) as b):
        yield Center(a, a.store("data")), Center(b, b.store("data"))


class _Always500(http.server.BaseHTTPRequestHandler):
    def _fail(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _fail

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def store_500() -> Iterator[S3Store]:
    """A store whose server answers every request with 500 Internal Server Error."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Always500)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield S3Store(name="dc-500", endpoint=f"http://127.0.0.1:{server.server_address[1]}", bucket="data",
                      access_key="AKbroken", secret_key="secret")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def store_hanging() -> Iterator[S3Store]:
    """A store that takes connections and never answers: the kernel completes the handshakes into the listen
    backlog, nobody accepts or reads."""
    with socket.create_server(("127.0.0.1", 0), backlog=256) as sock:
        yield S3Store(name="dc-hang", endpoint=f"http://127.0.0.1:{sock.getsockname()[1]}", bucket="data",
                      access_key="AKbroken", secret_key="secret")
