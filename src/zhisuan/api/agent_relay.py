"""An API worker (serve/workers.py) hands a center's agent to its own server: the agent connected to the public
port, which the workers answer, but the agent's session lives where the control loop runs. Frames pass both
ways unchanged, text as text; when either side closes, so does the other, with its code. The worker pings its
server as the agent pings the worker: a server frozen or cut off ends the relay, and the agent reconnects (to
whichever replica leads then) instead of talking to a worker that answers its pings for a dead session."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from zhisuan.agent.protocol import MAX_FRAME_TO_AGENT


async def relay_agent(ws: WebSocket, server_url: str, authorization: str) -> str:
    """Pipe an accepted agent socket to `server_url`'s `/v1/agent`; why it ended."""
    url = server_url.replace("http://", "ws://", 1).rstrip("/") + "/v1/agent"
    try:
        async with connect(url, additional_headers={"Authorization": authorization}, proxy=None,
                           max_size=MAX_FRAME_TO_AGENT, compression=None,
                           open_timeout=10, ping_interval=10, ping_timeout=20, close_timeout=2) as upstream:
            ups = asyncio.ensure_future(_up(ws, upstream))
            downs = asyncio.ensure_future(_down(ws, upstream))
            done, pending = await asyncio.wait([ups, downs], return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            return str(next(iter(done)).result())
    except (OSError, TimeoutError, ConnectionClosed) as e:
        return f"its server could not be reached: {e or type(e).__name__}"


async def _up(ws: WebSocket, upstream: ClientConnection) -> str:
    """The agent's frames to the server."""
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close(code=int(message.get("code") or 1000))
                return f"the agent left ({message.get('code')})"
            text, data = message.get("text"), message.get("bytes")
            await upstream.send(text if text is not None else (data or b""))
    except ConnectionClosed as e:
        return f"its server closed ({e.rcvd.code if e.rcvd else 'no code'})"


async def _down(ws: WebSocket, upstream: ClientConnection) -> str:
    """The server's frames to the agent; the server's close, passed on with its code and reason."""
    try:
        async for frame in upstream:
            if isinstance(frame, str):
                await ws.send_text(frame)
            else:
                await ws.send_bytes(frame)
    except ConnectionClosed:
        pass
    except WebSocketDisconnect as e:
        return f"the agent left ({e.code})"
    code, reason = (upstream.close_code or 1000), (upstream.close_reason or "")
    with contextlib.suppress(RuntimeError):  # the agent's side already closed
        await ws.close(code=code if code not in (1005, 1006) else 1011, reason=reason)
    return f"its server closed ({code})"
