"""The gateway's way to replicas in centers that open no port: an httpx transport that sends a request marked
with the `zhisuan.via` extension (center, run) through that center's agent (control/tunnel.py), and every
other request directly. The gateway's retries, streams and bounds work the same over both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx

from zhisuan.control.link import CenterLink
from zhisuan.control.tunnel import Stream, TunnelError

VIA = "zhisuan.via"
CONNECT = 10.0  # seconds for a tunnelled request's answer to begin (a WAN round trip and the replica's own)
DROPPED = {"host", "connection", "keep-alive", "transfer-encoding", "upgrade", "content-length"}


class TunnelBody(httpx.AsyncByteStream):
    def __init__(self, stream: Stream, request: httpx.Request) -> None:
        self.stream, self.request = stream, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                chunk = await self.stream.read()
            except TunnelError as e:
                raise httpx.ReadError(str(e), request=self.request) from e
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        self.stream.close()


class ViaAgents(httpx.AsyncBaseTransport):
    def __init__(self, direct: httpx.AsyncBaseTransport, links: Callable[[str], CenterLink | None]) -> None:
        self.direct, self.links = direct, links

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        via = request.extensions.get(VIA)
        if not via:
            return await self.direct.handle_async_request(request)
        center, handle = via
        link = self.links(center)
        if link is None:
            raise httpx.ConnectError(f"no center {center}", request=request)
        body = await request.aread()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in DROPPED]
        try:
            stream = link.open_tunnel(handle, request.url.port or 80, request.method, request.url.raw_path.decode(),
                                      headers, body)
        except TunnelError as e:
            raise httpx.ConnectError(str(e), request=request) from e
        try:
            status, answer_headers = await asyncio.wait_for(stream.head, CONNECT)
        except (TunnelError, TimeoutError) as e:
            stream.close()
            raise httpx.ConnectError(f"through center {center}'s agent: {e or 'no answer'}", request=request) from e
        return httpx.Response(status, headers=answer_headers, stream=TunnelBody(stream, request), request=request)

    async def aclose(self) -> None:
        await self.direct.aclose()
