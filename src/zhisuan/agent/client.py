"""`zhisuan agent`'s connection to the network's server: out, over a WebSocket (TLS when the URL is https),
so the center opens no port. Reconnects with exponential back-off and full jitter; every connection starts
with a hello that carries everything the agent holds, and the journal resends what was not acknowledged.

The agent's own work does not wait for the connection: its runs are polled on a thread of their own
(`tick_every`), connected or not, and a lease that lapsed stops what the server would place elsewhere
(agent/core.py). Engine calls (a Slurm `sbatch`, a cancel's grace period) run on worker threads, so
heartbeats keep going while a command is carried out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from zhisuan.agent.core import AgentCore
from zhisuan.agent.protocol import (
    MAX_FRAME_TO_AGENT,
    SERVER_FRAME,
    Ack,
    Beat,
    BeatAck,
    Cmds,
    Command,
    Credit,
    Done,
    Events,
    Move,
    Open,
    Refused,
    Reply,
    Req,
    Shut,
    Welcome,
)
from zhisuan.agent.tunnel import TunnelEnd
from zhisuan.engines.prometheus import PrometheusMetrics

log = logging.getLogger("zhisuan.agent")
Say = Callable[[str], Awaitable[None]]
BACKOFF_MIN, BACKOFF_MAX = 0.5, 30.0
MAX_ANSWERING = 8  # log requests answered at once


class Fatal(RuntimeError):
    """What retrying cannot mend: a credential the server refuses, an incompatible protocol version."""


def agent_url(server: str) -> str:
    """The server's base URL (http[s]://host:port) as the agent's WebSocket address."""
    base = server.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[8:] + "/v1/agent"
    if base.startswith("http://"):
        return "ws://" + base[7:] + "/v1/agent"
    raise ValueError(f"--server: an http:// or https:// URL, got {server[:100]!r}")


def tls_for(url: str, ca: Path | None) -> ssl.SSLContext | None:
    """TLS verified against `ca` (the network's own CA file), else the system's trust store."""
    if not url.startswith("wss://"):
        return None
    return ssl.create_default_context(cafile=str(ca) if ca else None)


class AgentClient:
    def __init__(self, core: AgentCore, server: str, token: str, ca: Path | None = None, tick_every: float = 0.5,
                 load_every: float = 10.0, metrics: PrometheusMetrics | None = None,
                 sample_every: float = 10.0) -> None:
        self.core, self.token = core, token
        self.metrics, self.sample_every = metrics, sample_every
        self.url = agent_url(server)
        self.tls = tls_for(self.url, ca)
        self.tick_every, self.load_every = tick_every, load_every
        self.stop = threading.Event()
        self.connected = threading.Event()
        self.sessions = 0  # connections made (tests and benchmarks read it)

    # ---- the agent's own work ------------------------------------------------------------------------

    def _ticker(self) -> None:
        sampled = float("-inf")
        while not self.stop.is_set():
            try:
                self.core.tick()
            except Exception:  # a bad round must not end the agent
                log.exception("polling runs failed")
            if self.metrics is not None and time.monotonic() - sampled >= self.sample_every:
                sampled = time.monotonic()
                try:
                    self.core.sample(self.metrics)
                except Exception as e:  # a Prometheus that does not answer: measured again next time
                    log.warning("device metrics of %s unknown: %s", self.core.center, e)
            self.stop.wait(self.tick_every)

    def run(self) -> None:
        """Until `stop` is set (or a Fatal error, raised)."""
        ticker = threading.Thread(target=self._ticker, name="zhisuan-agent-tick", daemon=True)
        ticker.start()
        try:
            asyncio.run(self._main())
        finally:
            self.stop.set()
            ticker.join(timeout=30)

    async def _main(self) -> None:
        stopping = asyncio.ensure_future(asyncio.to_thread(self.stop.wait))
        try:
            await self._connect_forever(stopping)
        finally:
            self.stop.set()  # the waiting thread ends with it
            stopping.cancel()

    async def _connect_forever(self, stopping: asyncio.Future[Any]) -> None:
        backoff = BACKOFF_MIN
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                async with connect(self.url, additional_headers={"Authorization": f"Bearer {self.token}"},
                                   ssl=self.tls, max_size=MAX_FRAME_TO_AGENT, compression=None, proxy=None,
                                   open_timeout=10, ping_interval=10, ping_timeout=20, close_timeout=2) as ws:
                    self.sessions += 1
                    session: asyncio.Future[Any] = asyncio.ensure_future(self._session(ws))
                    await asyncio.wait([session, stopping], return_when=asyncio.FIRST_COMPLETED)
                    if not session.done():
                        session.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await session
                        break
                    session.result()
            except InvalidStatus as e:
                code = e.response.status_code
                if code in (401, 403):
                    raise Fatal(f"the server refused center {self.core.center}'s credential (HTTP {code}): "
                                "ask the network's admin for a new one (zhisuan center token create)") from e
                log.warning("server answered HTTP %s; retrying", code)
            except Fatal:
                raise
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException, ValueError) as e:
                log.warning("connection to the server lost: %s", e or type(e).__name__)
            finally:
                self.connected.clear()
            if time.monotonic() - began > 10:
                backoff = BACKOFF_MIN
            await asyncio.wait([stopping], timeout=random.uniform(0.5, 1.5) * backoff)
            backoff = min(BACKOFF_MAX, backoff * 2)

    # ---- one connection ------------------------------------------------------------------------------

    async def _session(self, ws: ClientConnection) -> None:
        core = self.core
        hello = await asyncio.to_thread(core.hello)
        said = core.clock()
        await ws.send(hello.model_dump_json())
        welcome = SERVER_FRAME.validate_json(await asyncio.wait_for(ws.recv(), 30))
        if isinstance(welcome, Refused):
            raise (ConnectionError if welcome.retry else Fatal)(f"the server refused the agent: {welcome.reason}")
        if not isinstance(welcome, Welcome):
            raise ConnectionError(f"expected a welcome, got {welcome.t}")
        await asyncio.to_thread(core.welcomed, welcome.timeout, welcome.pools, welcome.acked)
        core.renewed(said)
        self.connected.set()
        log.info("connected to the server as center %s", core.center)
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def changed() -> None:
            loop.call_soon_threadsafe(wake.set)

        core.on_change = changed
        wake.set()
        commands: asyncio.Queue[list[Command]] = asyncio.Queue()
        sending = asyncio.Lock()

        async def say(text: str) -> None:
            async with sending:
                await ws.send(text)

        tunnels = TunnelEnd(core, say)
        tasks = [asyncio.ensure_future(t) for t in (self._reader(ws, commands, tunnels), self._executor(say, commands),
                                                     self._writer(say, wake), self._beater(say, welcome.beat_every))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()
        finally:
            core.on_change = None
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await tunnels.close()

    async def _reader(self, ws: ClientConnection, commands: asyncio.Queue[list[Command]], tunnels: TunnelEnd) -> None:
        answering = asyncio.Semaphore(MAX_ANSWERING)
        pending: set[asyncio.Task[None]] = set()
        async for text in ws:
            frame = SERVER_FRAME.validate_json(text)
            if isinstance(frame, Cmds):
                commands.put_nowait(list(frame.items))
            elif isinstance(frame, Ack):
                await asyncio.to_thread(self.core.acked, frame.seq)
            elif isinstance(frame, BeatAck):
                self.core.beat_acked(frame.n)
            elif isinstance(frame, Req | Move):
                task = asyncio.ensure_future(self._answer(tunnels.send, frame, answering))
                pending.add(task)
                task.add_done_callback(pending.discard)
            elif isinstance(frame, Open | Credit | Shut):
                await tunnels.on(frame)
            elif isinstance(frame, Refused):
                raise (ConnectionError if frame.retry else Fatal)(f"the server ended the connection: {frame.reason}")
        raise ConnectionError("the server closed the connection")

    async def _answer(self, say: Say, req: Req | Move, answering: asyncio.Semaphore) -> None:
        async with answering:
            if isinstance(req, Move):
                reply = await asyncio.to_thread(self._moved, req)
            else:
                reply = await asyncio.to_thread(self.core.answer, req)
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            await say(reply.model_dump_json())

    def _moved(self, move: Move) -> Reply:
        data = self.core.data
        if data is None:
            return Reply(rid=move.rid, ok=False, error=f"center {self.core.center}'s agent keeps no store (--store)")
        return Reply(rid=move.rid, moved=data.handle(move))

    async def _executor(self, say: Say, commands: asyncio.Queue[list[Command]]) -> None:
        while True:
            batch = await commands.get()
            done = await asyncio.to_thread(self.core.execute, batch)
            await say(Done(ids=done).model_dump_json())

    async def _writer(self, say: Say, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            wake.clear()
            while events := await asyncio.to_thread(self.core.outgoing):
                await say(Events(items=events).model_dump_json())

    async def _beater(self, say: Say, every: float) -> None:
        n, loaded = 0, float("-inf")
        while True:
            n += 1
            ok, why = await asyncio.to_thread(self.core.health)
            load = None
            if ok and time.monotonic() - loaded >= self.load_every:
                try:
                    load = await asyncio.to_thread(self.core.load)
                    loaded = time.monotonic()
                except Exception as e:  # the load is asked again next beat
                    log.warning("load of %s unknown: %s", self.core.center, e)
            self.core.beat_sent(n)
            await say(Beat(n=n, load=load, engine_ok=ok, engine_reason=why).model_dump_json())
            await asyncio.sleep(every)
