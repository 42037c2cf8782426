"""A relayed answer that holds what it costs until its last byte is handed to the client: its tenant's slot,
the bytes it keeps of the tenant's budget, the upstream connection. Each write waits for the client as the
server's flow control says (the replica is read only as fast as the client reads), and at most SEND_TIMEOUT:
a client that takes no byte for that long is cut, as nginx's `send_timeout` (between two writes, not for the
whole answer), so a stalled client cannot hold a slot forever. However the answer ends — whole, the client
gone or cut, the replica failing mid-answer — `close` gives back what it held, once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping

import httpx
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

SEND_TIMEOUT = 60.0  # seconds a client may take none of its answer (nginx's send_timeout default)
PIECE = 64 << 10  # bytes handed to the client at once: its flow control is waited for between pieces

log = logging.getLogger("zhisuan.gateway")


class Cut(Exception):
    """The answer cannot go on: the client stopped reading, or the replica broke a bound after its first byte."""


class Relayed(StreamingResponse):
    """`chunks` relayed; `whole`, an answer already read whole, is written without a task watching for the
    client to leave: a few writes, each of which returns at once when it has."""

    def __init__(self, chunks: AsyncGenerator[bytes, None], status: int, media_type: str | None,
                 headers: Mapping[str, str], close: Callable[[], Awaitable[None]], whole: bytes | None) -> None:
        super().__init__(chunks, status, headers, media_type)
        self.chunks, self.close, self.whole = chunks, close, whole

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if self.whole is None:
                await super().__call__(scope, receive, send)
            else:
                await self.write_whole(self.whole, send)
        finally:  # the client left (cancelled) or the answer ended: given back now, not when collected
            await self.chunks.aclose()  # a relay that began ends in its own `finally`, which calls `close`
            await self.close()

    async def stream_response(self, send: Send) -> None:
        """Starlette's, each write bounded in time. An answer cut short ends without its last frame: the server
        closes the connection, and the client sees an answer broken off, never a short one that looks whole."""
        try:
            await self._send(send, {"type": "http.response.start", "status": self.status_code,
                                    "headers": self.raw_headers})
            async for chunk in self.chunks:
                await self._send(send, {"type": "http.response.body", "body": chunk, "more_body": True})
            await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})
        except (Cut, httpx.HTTPError) as e:
            log.warning("gateway: an answer was cut short (%s)", str(e) or type(e).__name__)

    async def write_whole(self, body: bytes, send: Send) -> None:
        try:
            await self._send(send, {"type": "http.response.start", "status": self.status_code,
                                    "headers": self.raw_headers})
            for at in range(0, max(len(body), 1), PIECE):
                await self._send(send, {"type": "http.response.body", "body": body[at:at + PIECE],
                                        "more_body": at + PIECE < len(body)})
        except Cut as e:
            log.warning("gateway: an answer was cut short (%s)", e)

    @staticmethod
    async def _send(send: Send, message: Message) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                await send(message)
        except TimeoutError:
            raise Cut(f"the client took none of it for {SEND_TIMEOUT:g} s") from None
