"""Where centers' agents move dataset files to and from the server (`/v1/agent/relay/<transfer>/<path>`), for
stores the server does not reach: the agent opens these requests with its center's credential, as it opens its
connection. A file is served or taken only while its transfer runs, only for the center and direction the mover
granted (control/relay.py), and a file taken is cut at its declared size and written under a temporary name
until whole. Bodies are streamed off the event loop, never held in memory."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from zhisuan.control.errors import Forbidden, NotFound
from zhisuan.control.relay import Relay
from zhisuan.model import SpecError
from zhisuan.store import TokenStore

CHUNK = 256 << 10


def add_relay_routes(app: FastAPI, relay: Relay | None, tokens: TokenStore) -> None:
    call = anyio.to_thread.run_sync

    async def center_of(request: Request) -> str:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        center = await asyncio.to_thread(tokens.center_of, token) if token else None
        if center is None:
            raise Forbidden("not a center's credential")
        if relay is None:
            raise NotFound("relay", "transfer under way")
        return center

    @app.get("/v1/agent/relay/{transfer}/{path:path}", include_in_schema=False)
    async def give(transfer: int, path: str, request: Request) -> StreamingResponse:
        """A file of a transfer into the agent's center, from the server's disk."""
        center = await center_of(request)
        assert relay is not None
        target, size = relay.file(center, transfer, path, "give")
        f = await call(target.open, "rb")

        async def body() -> AsyncIterator[bytes]:
            try:
                while chunk := await call(f.read, CHUNK):
                    relay.count(transfer, len(chunk))
                    yield chunk
            finally:
                await call(f.close)
        return StreamingResponse(body(), media_type="application/octet-stream",
                                 headers={"Content-Length": str(size)})

    @app.put("/v1/agent/relay/{transfer}/{path:path}", status_code=204, include_in_schema=False)
    async def take(transfer: int, path: str, request: Request) -> Response:
        """A file of a transfer out of the agent's center, onto the server's disk (whole, or not at all)."""
        center = await center_of(request)
        assert relay is not None
        target, size = relay.file(center, transfer, path, "take")
        await call(lambda: target.parent.mkdir(parents=True, exist_ok=True))
        fd, name = await call(lambda: tempfile.mkstemp(dir=target.parent, prefix=".relay-"))
        partial, seen = Path(name), 0
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in request.stream():
                    seen += len(chunk)
                    if seen > size:
                        raise SpecError([("body", f"more than the {size} bytes declared for {path[:64]!r}")])
                    await call(f.write, chunk)
                    relay.count(transfer, len(chunk))
            if seen != size:
                raise SpecError([("body", f"{seen} bytes of the {size} declared for {path[:64]!r}")])
            await call(partial.replace, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        relay.arrived(transfer, path)
        return Response(status_code=204)
