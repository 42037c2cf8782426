"""The agent's end of tunnels: requests the server sends for a run's service (a model replica) are made here,
inside the center, and their answers streamed back over the agent's own connection — the center opens no port.

Only to the host where that run listens, as its engine reported it, on an unprivileged port: a tunnel is no
way into the rest of the center's network. Bounded: MAX_STREAMS at once, and each answer is sent at most
WINDOW bytes ahead of what the server has read (it grants credit as it reads)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable

import httpx

from zhisuan.agent.core import AgentCore
from zhisuan.agent.protocol import CHUNK, WINDOW, Credit, Data, End, Head, Open, Shut

log = logging.getLogger("zhisuan.agent")
MAX_STREAMS = 256
RELAYED = {"content-type", "content-length", "cache-control", "x-request-id"}  # answer headers passed on
TIMEOUT = httpx.Timeout(connect=5.0, read=300.0, write=10.0, pool=10.0)


class Relay:
    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task
        self.credit = WINDOW
        self.more = asyncio.Event()


class TunnelEnd:
    def __init__(self, core: AgentCore, send: Callable[[str], Awaitable[None]]) -> None:
        self.core, self.send = core, send
        self.relays: dict[int, Relay] = {}
        self.client = httpx.AsyncClient(timeout=TIMEOUT, limits=httpx.Limits(max_connections=MAX_STREAMS),
                                        trust_env=False)

    async def on(self, frame: Open | Credit | Shut) -> None:
        if isinstance(frame, Open):
            await self._open(frame)
            return
        relay = self.relays.get(frame.sid)
        if relay is None:
            return
        if isinstance(frame, Credit):
            relay.credit = min(WINDOW, relay.credit + frame.n)
            relay.more.set()
        else:
            relay.task.cancel()

    async def _open(self, frame: Open) -> None:
        run = self.core.runs.get(frame.handle)
        if run is None or run.state != "running" or not run.host:
            why = f"{self.core.center} runs no {frame.handle} to reach"
            await self.send(End(sid=frame.sid, error=why).model_dump_json())
            return
        if len(self.relays) >= MAX_STREAMS or frame.sid in self.relays:
            await self.send(End(sid=frame.sid, error=f"{MAX_STREAMS} requests are open at {self.core.center}")
                            .model_dump_json())
            return
        host = f"[{run.host}]" if ":" in run.host else run.host
        task = asyncio.ensure_future(self._relay(frame, f"http://{host}:{frame.port}{frame.path}"))
        self.relays[frame.sid] = Relay(task)
        task.add_done_callback(lambda _: self.relays.pop(frame.sid, None))

    async def _relay(self, frame: Open, url: str) -> None:
        error = ""
        try:
            request = self.client.build_request(frame.method, url, headers=list(frame.headers),
                                                content=base64.b64decode(frame.b64))
            answer = await self.client.send(request, stream=True)
            try:
                headers = [(k, v) for k, v in answer.headers.items() if k.lower() in RELAYED]
                await self.send(Head(sid=frame.sid, status=answer.status_code, headers=headers).model_dump_json())
                async for chunk in answer.aiter_raw(CHUNK):
                    await self._spend(frame.sid, len(chunk))
                    await self.send(Data(sid=frame.sid, b64=base64.b64encode(chunk).decode("ascii"))
                                    .model_dump_json())
            finally:
                await answer.aclose()
        except asyncio.CancelledError:  # the server's caller left
            return
        except (httpx.HTTPError, OSError, ValueError) as e:
            error = f"{type(e).__name__}: {e}"[:500] or "the replica did not answer"
        with contextlib.suppress(Exception):  # the connection may be gone: the server ends the stream itself
            await self.send(End(sid=frame.sid, error=error).model_dump_json())

    async def _spend(self, sid: int, n: int) -> None:
        relay = self.relays.get(sid)
        if relay is None:
            raise asyncio.CancelledError
        while relay.credit < n:
            relay.more.clear()
            await relay.more.wait()
        relay.credit -= n

    async def close(self) -> None:
        for relay in list(self.relays.values()):
            relay.task.cancel()
        await asyncio.gather(*(r.task for r in self.relays.values()), return_exceptions=True)
        await self.client.aclose()
