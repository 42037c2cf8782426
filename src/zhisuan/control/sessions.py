"""One connection of a remote center's agent, on the server's event loop: frames in, frames out.

The API accepts the connection (a WebSocket the agent opened, carrying its center's credential) and hands
this module two coroutines, receive and send. Everything here is in memory and quick — validating a frame,
applying it to the center's link — so it may run beside every tenant's requests on the same event loop;
an agent that sends faster than `MAX_EVENTS_PER_S` is simply read more slowly (TCP holds it back). A frame
that does not validate, or claims what the agent may not (another center's pools, capacity beyond the
declared), ends the connection with a `refused` frame naming the field; nothing of it is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from zhisuan.agent.protocol import AGENT_FRAME, Cmds, Command, Credit, Events, Hello, Move, Open, Refused, Req, Shut
from zhisuan.control.link import AgentError, CenterLink

log = logging.getLogger("zhisuan.control")
HELLO_WITHIN = 10.0  # seconds a new connection has to say hello
MAX_EVENTS_PER_S = 2000.0  # per agent, sustained; bursts of twice that
CHECK_EVERY = 5.0  # seconds between re-reading whether the agent's credential still holds
PACK = 4 << 20  # bytes of commands packed into one frame (a start carries its job's environment)


def first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(x) for x in err["loc"]) or "frame"
    return f"{where}: {err['msg']}"[:500]


class Bucket:
    """Events per second an agent may send; over it, reading its frames waits."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.clock = rate, clock
        self.level, self.at = 2 * rate, clock()

    async def take(self, n: int) -> None:
        now = self.clock()
        self.level = min(2 * self.rate, self.level + (now - self.at) * self.rate)
        self.at = now
        self.level -= n
        if self.level < 0:
            await asyncio.sleep(-self.level / self.rate)


def packed(frames: list[Cmds | Req | Move | Open | Credit | Shut]) -> list[str]:
    """Frames as text; commands re-packed so that no frame grows past PACK bytes (one start alone may)."""
    out: list[str] = []
    for f in frames:
        if not isinstance(f, Cmds):
            out.append(f.model_dump_json())
            continue
        batch: list[Command] = []
        size = 0
        for c in f.items:
            n = len(c.model_dump_json())
            if batch and size + n > PACK:
                out.append(Cmds(items=batch).model_dump_json())
                batch, size = [], 0
            batch.append(c)
            size += n
        if batch:
            out.append(Cmds(items=batch).model_dump_json())
    return out


async def serve_agent(link: CenterLink, receive: Callable[[], Awaitable[str]], send: Callable[[str], Awaitable[None]],
                      still_valid: Callable[[], Awaitable[bool]], clock: Callable[[], float] = time.time) -> str:
    """Serve one connection until it ends; returns why it ended (for the log)."""
    lock = asyncio.Lock()

    async def say(text: str) -> None:
        async with lock:
            await send(text)

    async def refuse(reason: str, retry: bool = False) -> str:
        with contextlib.suppress(Exception):  # the peer may be gone already
            await say(Refused(reason=reason, retry=retry).model_dump_json())
        return reason

    try:
        hello = AGENT_FRAME.validate_json(await asyncio.wait_for(receive(), HELLO_WITHIN))
    except ValidationError as e:
        return await refuse(first_error(e))
    if not isinstance(hello, Hello):
        return await refuse("the first frame of a connection is a hello")
    answer = link.connect(hello, clock())
    await say(answer.model_dump_json())
    if isinstance(answer, Refused):
        return answer.reason
    me = object()
    link.session, link.loop = me, asyncio.get_running_loop()
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()

    def wake_up() -> None:
        loop.call_soon_threadsafe(wake.set)

    link.wake = wake_up
    wake.set()  # what was not done before is sent again

    async def sender() -> None:
        while True:
            await wake.wait()
            wake.clear()
            for text in packed(link.take()):
                await say(text)

    sending = asyncio.create_task(sender())
    bucket, checked = Bucket(MAX_EVENTS_PER_S), time.monotonic()
    try:
        while True:
            text = await receive()
            if link.session is not me:
                return await refuse("replaced by a newer connection of this center's agent", retry=True)
            try:
                frame = AGENT_FRAME.validate_json(text)
                if isinstance(frame, Hello):
                    raise AgentError("hello: only the first frame of a connection")
                await bucket.take(len(frame.items) if isinstance(frame, Events) else 1)
                for reply in link.receive(frame, clock()):
                    await say(reply.model_dump_json())
            except ValidationError as e:
                return await refuse(first_error(e))
            except AgentError as e:
                return await refuse(str(e))
            if time.monotonic() - checked > CHECK_EVERY:
                checked = time.monotonic()
                if not await still_valid():
                    return await refuse("the center's credential was revoked or has expired")
            if sending.done():
                sending.result()  # its error ends the connection
    finally:
        sending.cancel()
        if link.session is me:
            link.disconnect()
