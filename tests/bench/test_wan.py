"""The fault-injecting WAN proxy against a tiny threaded echo server: bytes intact, latency bounds, order
under jitter, real resets (ECONNRESET on both peers), outages, blackholes, stalls, random resets, clean stop."""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import statistics
import threading
import time
from collections.abc import Iterator

import pytest

from zhisuan.bench.wan import FaultProxy

Address = tuple[str, int]


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.errors: list[type[BaseException]] = []  # what each connection ended with, seen by the upstream


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError as error:
            assert isinstance(self.server, _EchoServer)
            self.server.errors.append(type(error))


@pytest.fixture
def echo() -> Iterator[_EchoServer]:
    server = _EchoServer()
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo: _EchoServer) -> Iterator[FaultProxy]:
    started = FaultProxy(echo.server_address[:2], seed=7).start()
    yield started
    started.stop()


def connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=5)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"end of stream after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def round_trip(sock: socket.socket, message: bytes = b"ping") -> float:
    start = time.monotonic()
    sock.sendall(message)
    assert recv_exactly(sock, len(message)) == message
    return time.monotonic() - start


def refused(address: Address) -> bool:
    """Whether a new connection is refused or reset (a clean end of stream is neither)."""
    try:
        with socket.create_connection(address, timeout=2) as sock:
            sock.sendall(b"x")
            sock.recv(1)
            return False
    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
        return True


def test_bytes_go_through_intact_both_ways(proxy: FaultProxy) -> None:
    payload = os.urandom(5 * 1024 * 1024)
    with connect(proxy) as sock:
        assert round_trip(sock, b"hello") < 1

        def send() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)  # the end of stream goes through too: the echo then closes

        sender = threading.Thread(target=send)
        sender.start()
        received = bytearray()
        while chunk := sock.recv(1 << 20):
            received += chunk
        sender.join()
    assert received == payload
    stats = proxy.stats
    assert stats["bytes_up"] == stats["bytes_down"] == len(payload) + 5
    assert stats["accepted"] == 1


def test_latency_bounds_the_round_trip(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        round_trip(sock)
        assert statistics.median(round_trip(sock) for _ in range(10)) < 0.020
        proxy.set_latency(40)
        trips = [round_trip(sock) for _ in range(8)]
    assert min(trips) >= 0.080 - 1e-6  # strict: no chunk leaves before its time, in each direction
    assert statistics.median(trips) < 0.080 + 0.060  # loose: a loaded machine adds its own delay


def test_order_is_kept_under_jitter(proxy: FaultProxy) -> None:
    proxy.set_latency(10, jitter_ms=10)
    messages = [b"%04d\n" % i for i in range(100)]
    with connect(proxy) as sock:
        for message in messages:
            sock.sendall(message)
            time.sleep(0.002)  # separate chunks, each with a jitter of its own
        assert recv_exactly(sock, 500) == b"".join(messages)


def test_reset_all_sends_real_resets_to_both_peers(proxy: FaultProxy, echo: _EchoServer) -> None:
    with connect(proxy) as sock:
        round_trip(sock)
        assert proxy.reset_all() == 1
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
    deadline = time.monotonic() + 2
    while not echo.errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert echo.errors == [ConnectionResetError]
    assert proxy.stats["resets"] == 1
    assert proxy.reset_all() == 0


def test_down_resets_and_refuses_until_up_again(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        round_trip(sock)
        proxy.down(True)
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
    assert refused(proxy.address)
    assert refused(proxy.address)
    proxy.down(False)
    with connect(proxy) as sock:
        assert round_trip(sock) < 1


def test_blackhole_drops_bytes_and_keeps_connections_open(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        round_trip(sock)
        proxy.blackhole(True)
        sock.sendall(b"lost")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(16)
        with connect(proxy) as late:  # accepted, and hangs
            late.sendall(b"late")
            late.settimeout(0.1)
            with pytest.raises(TimeoutError):
                late.recv(16)
            proxy.blackhole(False)
            late.settimeout(5)
            assert round_trip(late, b"again") < 1
        sock.settimeout(5)
        assert round_trip(sock, b"back") < 1  # still open; what was sent in the blackhole is gone
    assert proxy.stats["dropped"] == 8


def test_stall_holds_then_delivers(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        round_trip(sock)
        start = time.monotonic()
        proxy.stall(0.5)
        sock.sendall(b"one")
        sock.sendall(b"two")
        assert recv_exactly(sock, 6) == b"onetwo"
        assert time.monotonic() - start >= 0.5
        assert round_trip(sock) < 0.5


def test_random_resets_at_a_high_rate(proxy: FaultProxy) -> None:
    proxy.set_reset_rate(20, seed=1)
    sockets = [connect(proxy) for _ in range(3)]
    for sock in sockets:
        sock.settimeout(1)
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
        sock.close()
    assert proxy.stats["resets"] == 3
    proxy.set_reset_rate(0)
    with connect(proxy) as sock:
        time.sleep(0.2)
        assert round_trip(sock) < 1


def test_stop_leaves_no_thread_and_no_listener(echo: _EchoServer) -> None:
    proxy = FaultProxy(echo.server_address[:2]).start()
    address = proxy.address
    with connect(proxy) as sock:
        round_trip(sock)
        proxy.stop()
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1) == b""
    proxy.stop()
    assert not [t for t in threading.enumerate() if t.name == "zhisuan-wan-proxy"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2).close()
