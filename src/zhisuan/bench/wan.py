"""A fault-injecting TCP proxy in the manner of Toxiproxy: a slow, broken WAN between a server and its remote
agents on one machine (latency with jitter, stalls, blackholes, outages, TCP resets). This machine's kernel has
no `netem`, so the faults come from here.

It runs its own asyncio loop on a daemon thread, so plain tests and benchmarks drive it synchronously from any
thread. Settings that are one value (latency, blackhole, stall, down) are plain attribute writes, atomic and
seen by the next chunk; whatever touches connections runs on the loop (`run_coroutine_threadsafe`).

    python -m zhisuan.bench.wan --listen 127.0.0.1:9000 --upstream 127.0.0.1:8000 --latency-ms 40
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import random
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

CHUNK = 64 * 1024
BUFFER_LIMIT = 4 * 1024 * 1024  # bytes held per direction before the proxy stops reading that side
STALL_POLL = 0.05  # a stall is re-read this often, so a shorter stall set meanwhile ends the hold early

STATS = ("accepted", "refused", "resets", "errors", "bytes_up", "bytes_down", "dropped")  # and "open", counted live

T = TypeVar("T")
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _rst(writer: asyncio.StreamWriter) -> None:
    """Abort with SO_LINGER 0: the kernel sends an RST, so the peer sees ECONNRESET and not a clean EOF."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Pipe:
    """One direction of a connection. A reader stamps each chunk with its delivery time and a writer delivers
    it no earlier; delivery times never decrease, so a jittered chunk cannot overtake an earlier one."""

    def __init__(self, proxy: FaultProxy, src: asyncio.StreamReader, dst: asyncio.StreamWriter, counter: str) -> None:
        self.proxy, self.src, self.dst, self.counter = proxy, src, dst, counter
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()  # b"" is the end of stream
        self.buffered = 0
        self.room = asyncio.Event()
        self.last_due = 0.0

    async def pump_in(self) -> None:
        while True:
            chunk = await self.src.read(CHUNK)
            if chunk and self.proxy._blackholed:
                self.proxy._stats["dropped"] += len(chunk)
                continue
            self.last_due = max(self.last_due, time.monotonic() + self.proxy._sample_delay())
            self.queue.put_nowait((self.last_due, chunk))
            if not chunk:
                return
            self.buffered += len(chunk)
            while self.buffered > BUFFER_LIMIT:  # backpressure: the kernel buffers fill and the sender waits
                self.room.clear()
                await self.room.wait()

    async def pump_out(self) -> None:
        while True:
            due, chunk = await self.queue.get()
            await self.proxy._hold(due)
            if self.dst.is_closing():
                raise ConnectionResetError("the other side of the proxy is gone")
            if not chunk:
                if self.dst.can_write_eof():
                    self.dst.write_eof()  # half-close: the peer may still answer
                return
            self.buffered -= len(chunk)
            self.room.set()
            if self.proxy._blackholed:
                self.proxy._stats["dropped"] += len(chunk)
                continue
            self.dst.write(chunk)
            self.proxy._stats[self.counter] += len(chunk)
            await self.dst.drain()


class _Link:
    """A client connection and its upstream connection: two pipes, and a timer for a random reset."""

    def __init__(self, proxy: FaultProxy, client: Stream, upstream: Stream) -> None:
        self.proxy = proxy
        self.writers = (client[1], upstream[1])
        self.pipes = (_Pipe(proxy, client[0], upstream[1], "bytes_up"),
                      _Pipe(proxy, upstream[0], client[1], "bytes_down"))
        self.tasks: list[asyncio.Task[None]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.ended = False

    async def run(self) -> None:
        pumps = [pump for pipe in self.pipes for pump in (pipe.pump_in(), pipe.pump_out())]
        self.tasks = [asyncio.create_task(self._guarded(pump)) for pump in pumps]
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _guarded(self, pump: Coroutine[Any, Any, None]) -> None:
        try:
            await pump
        except OSError:  # a peer's reset or a failed write: pass the reset on to the other peer
            if not self.ended:
                self.proxy._stats["errors"] += 1
            self.end(rst=True)

    def end(self, rst: bool) -> bool:
        if self.ended:
            return False
        self.ended = True
        if self.timer is not None:
            self.timer.cancel()
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            _rst(writer) if rst else writer.close()
        return True


class FaultProxy:
    """Forwards TCP from `listen` to `upstream`, injecting the faults its control methods set."""

    def __init__(self, upstream: tuple[str, int], listen: tuple[str, int] = ("127.0.0.1", 0), *,
                 seed: int | None = None) -> None:
        self.upstream, self.listen = upstream, listen
        self._latency = (0.0, 0.0)  # one way, jitter (ms): one tuple, so a reader never sees half a change
        self._jitter_rng, self._reset_rng = random.Random(seed), random.Random(seed)
        self._reset_rate = 0.0
        self._blackholed = self._down = False
        self._stall_until = 0.0
        self._stats = dict.fromkeys(STATS, 0)
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._address: tuple[str, int] | None = None
        self._error: BaseException | None = None

    def start(self) -> FaultProxy:
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("a FaultProxy starts once")
            ready = threading.Event()
            self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),), name="zhisuan-wan-proxy",
                                            daemon=True)
            self._thread.start()
        ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def stop(self) -> None:
        with self._lock:
            loop, stopping, self._loop = self._loop, self._stopping, None
            if loop is not None and stopping is not None:
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join()

    @property
    def address(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("the proxy is not listening: call start() first")
        return self._address

    @property
    def stats(self) -> dict[str, int]:
        """Connections accepted, refused (down, or no upstream) and open; resets injected; errors (a peer's reset
        or a failed write, passed on as an RST); bytes forwarded up (client to upstream) and down; bytes dropped."""
        return {**self._stats, "open": len(self._links)}

    def set_latency(self, one_way_ms: float, jitter_ms: float = 0.0) -> None:
        if one_way_ms < 0 or jitter_ms < 0:
            raise ValueError("latency and jitter are durations: not negative")
        self._latency = (float(one_way_ms), float(jitter_ms))

    def reset_all(self) -> int:
        return self._call(lambda: sum(self._reset(link) for link in list(self._links)), 0)

    def set_reset_rate(self, per_second: float, seed: int | None = None) -> None:
        if per_second < 0:
            raise ValueError("a rate is not negative")

        def apply() -> None:
            if seed is not None:
                self._reset_rng.seed(seed)
            self._reset_rate = float(per_second)
            for link in self._links:  # memoryless: re-drawing every timer keeps the process Poisson
                self._arm(link)

        self._call(apply, None)

    def blackhole(self, on: bool) -> None:
        """Drop every byte either way (what is dropped is lost; an end of stream still passes)."""
        self._blackholed = on

    def down(self, on: bool) -> None:
        """An outage: reset what is open, and answer new connections with an RST until it is over."""
        self._down = on
        if on:
            self.reset_all()

    def stall(self, seconds: float) -> None:
        """Hold every byte for `seconds` from now, then deliver in order; replaces a stall already set."""
        self._stall_until = time.monotonic() + seconds

    def _call(self, fn: Callable[[], T], default: T) -> T:
        """Run `fn` on the loop and wait for it, or here when the loop does not run (its state only)."""
        async def step() -> T:
            result = fn()
            await asyncio.sleep(0)  # the aborted sockets close (and send their RSTs) before the caller goes on
            return result

        with self._lock:
            if self._loop is None:
                return fn() if self._thread is None else default
            future = asyncio.run_coroutine_threadsafe(step(), self._loop)
        try:
            return future.result(timeout=10)
        except concurrent.futures.CancelledError:  # stopped meanwhile
            return default

    def _sample_delay(self) -> float:
        one_way, jitter = self._latency
        if jitter:
            one_way += self._jitter_rng.uniform(-jitter, jitter)
        return max(0.0, one_way) / 1000

    async def _hold(self, due: float) -> None:
        while (wait := max(due, self._stall_until) - time.monotonic()) > 0:
            await asyncio.sleep(wait if due >= self._stall_until else min(wait, STALL_POLL))

    def _arm(self, link: _Link) -> None:
        if link.timer is not None:
            link.timer.cancel()
        link.timer = None
        if self._reset_rate > 0 and self._loop is not None:
            delay = self._reset_rng.expovariate(self._reset_rate)
            link.timer = self._loop.call_later(delay, self._reset, link)

    def _reset(self, link: _Link) -> bool:
        reset = link.end(rst=True)
        self._stats["resets"] += reset
        return reset

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link, refused = None, True  # down, or the upstream refused: the client sees a reset
        try:
            if not self._down:
                with contextlib.suppress(OSError):
                    link = _Link(self, (reader, writer), await asyncio.open_connection(*self.upstream))
            if link is not None and not self._down:
                refused = False
                self._links.add(link)
                self._stats["accepted"] += 1
                self._arm(link)
                await link.run()
        except asyncio.CancelledError:
            pass  # the proxy stops: ending cancelled would make 3.11's start_server log the task
        finally:
            self._stats["refused"] += refused
            if link is None:
                _rst(writer)
            else:
                self._links.discard(link)
                link.end(rst=refused)

    async def _serve(self, ready: threading.Event) -> None:
        try:
            server = await asyncio.start_server(self._accept, *self.listen)
            self._address = server.sockets[0].getsockname()[:2]
            self._stopping = asyncio.Event()
            self._loop = asyncio.get_running_loop()
        except Exception as error:  # start() raises it
            self._error = error
            return
        finally:
            ready.set()
        await self._stopping.wait()
        server.close()  # the listening sockets close now; connections are not awaited, a peer may not read
        for link in list(self._links):
            link.end(rst=False)
            for writer in link.writers:
                writer.transport.abort()  # whatever is unsent goes too
        await asyncio.sleep(0)  # the sockets close before the loop does


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> None:
    """Run the proxy as its own process until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m zhisuan.bench.wan", description="A fault-injecting TCP proxy.")
    parser.add_argument("--listen", type=_host_port, default=("127.0.0.1", 0), help="HOST:PORT (port 0: any)")
    parser.add_argument("--upstream", type=_host_port, required=True, help="HOST:PORT")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="one way, applied in both directions")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="uniform in ±this, added to the latency")
    parser.add_argument("--reset-rate", type=float, default=0.0, help="mean resets per second per connection")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    proxy = FaultProxy(args.upstream, args.listen, seed=args.seed).start()
    proxy.set_latency(args.latency_ms, args.jitter_ms)
    proxy.set_reset_rate(args.reset_rate)
    host, port = proxy.address
    print(f"listening on {host}:{port}, forwarding to {args.upstream[0]}:{args.upstream[1]}", flush=True)
    done.wait()
    proxy.stop()
    print(proxy.stats, flush=True)


if __name__ == "__main__":
    main()
