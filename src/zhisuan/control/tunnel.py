"""The server's end of tunnels through a center's agent: a request to a replica inside a center that opens no
port goes out on the agent's own connection, and its answer comes back the same way, stream by stream.

All of it lives on the server's event loop (the agent's connection is served there). Bounded: at most
MAX_STREAMS open per center, and an answer is read at most WINDOW bytes ahead of its reader (credit-based
flow control: the agent sends more only as the reader takes what came), so a slow reader holds no more than
that much of the server's memory and a fast replica cannot flood it."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

from zhisuan.agent.protocol import CHUNK, WINDOW, Credit, Data, End, Head, Open, Shut

if TYPE_CHECKING:
    from zhisuan.control.link import CenterLink

MAX_STREAMS = 256


class TunnelError(ConnectionError):
    """The tunnel could not be opened or broke (the center's agent is away, too old, or said why)."""


class Stream:
    """One tunnelled request: its answer's head, then its body as it arrives."""

    def __init__(self, sid: int, send: Callable[[Credit | Shut], None], gone: Callable[[int], None]) -> None:
        self.sid, self.send, self.gone = sid, send, gone
        self.head: asyncio.Future[tuple[int, list[tuple[str, str]]]] = asyncio.get_running_loop().create_future()
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.error = ""
        self.ended = False
        self.unthanked = 0  # bytes read since the last credit sent

    def on(self, frame: Head | Data | End) -> None:
        if isinstance(frame, Head):
            if not self.head.done():
                self.head.set_result((frame.status, list(frame.headers)))
        elif isinstance(frame, Data):
            self.chunks.put_nowait(base64.b64decode(frame.b64))
        else:
            self.fail(frame.error)

    def fail(self, error: str = "") -> None:
        """The answer is over: complete (no error) or broken."""
        self.error = error
        if not self.head.done():
            self.head.set_exception(TunnelError(error or "the tunnel closed before an answer"))
        self.chunks.put_nowait(None)

    async def read(self) -> bytes | None:
        """The next piece of the answer; None at its end; TunnelError if it broke."""
        if self.ended:
            return None
        chunk = await self.chunks.get()
        if chunk is None:
            self.ended = True
            self.gone(self.sid)
            if self.error:
                raise TunnelError(self.error)
            return None
        self.unthanked += len(chunk)
        if self.unthanked >= CHUNK:
            self.send(Credit(sid=self.sid, n=min(self.unthanked, WINDOW)))
            self.unthanked = 0
        return chunk

    def close(self) -> None:
        """The reader is done (or gone): an answer still coming is dropped at the agent."""
        if not self.ended:
            self.ended = True
            self.send(Shut(sid=self.sid))
            self.gone(self.sid)


class Tunnels:
    """The open tunnels of one center (its link holds one)."""

    def __init__(self, send: Callable[[Open | Credit | Shut], None]) -> None:
        self.send = send
        self.streams: dict[int, Stream] = {}
        self.ids = itertools.count(1)

    def open(self, handle: str, port: int, method: str, path: str, headers: list[tuple[str, str]],
             body: bytes) -> Stream:
        if len(self.streams) >= MAX_STREAMS:
            raise TunnelError(f"{MAX_STREAMS} tunnelled requests are open to this center")
        sid = next(self.ids)
        stream = self.streams[sid] = Stream(sid, self.send, self._gone)
        self.send(Open(sid=sid, handle=handle, port=port, method=method, path=path,
                       headers=headers[:64], b64=base64.b64encode(body).decode("ascii")))
        return stream

    def _gone(self, sid: int) -> None:
        self.streams.pop(sid, None)

    def on(self, frame: Head | Data | End) -> None:
        stream = self.streams.get(frame.sid)
        if stream is not None:  # a frame of a stream the reader has left: dropped
            stream.on(frame)

    def lost(self, why: str) -> None:
        """The agent's connection ended: every answer still coming is broken."""
        for stream in list(self.streams.values()):
            stream.fail(why)
        self.streams.clear()


def probe_many(link: CenterLink, targets: list[tuple[str, str, int, str, str]],
               deadline: float = 2.0) -> dict[str, bool]:
    """Readiness of replicas in this center — (replica, run handle, port, ready path, key) — through their
    tunnels, all at once, each within `deadline` (from the prober's thread; the tunnels live on the loop)."""
    loop = link.loop
    if loop is None or not link.connected:
        return {t[0]: False for t in targets}

    async def one(handle: str, port: int, path: str, key: str) -> bool:
        headers = [("authorization", f"Bearer {key}")] if key else []
        try:
            stream = link.open_tunnel(handle, port, "GET", path, headers, b"")
        except TunnelError:
            return False
        try:
            status, _ = await asyncio.wait_for(stream.head, deadline)
            return status == 200
        except (TunnelError, TimeoutError):
            return False
        finally:
            stream.close()

    async def every() -> list[bool]:
        return list(await asyncio.gather(*(one(h, p, path, k) for _, h, p, path, k in targets)))

    try:
        answers = asyncio.run_coroutine_threadsafe(every(), loop).result(deadline + 2)
    except Exception:  # the loop is busy or closing: not ready this round
        return {t[0]: False for t in targets}
    return {t[0]: ok for t, ok in zip(targets, answers, strict=True)}
