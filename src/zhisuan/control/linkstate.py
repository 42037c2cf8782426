"""What the server knows of one center's agent, and the frames that tell it: the connection (hello,
welcome), the agent's events and heartbeats applied once, its reports of runs, the center's own load, the
commands and questions waiting to be sent, and the tunnels open through it. `CenterLink` (control/link.py)
puts the engine interface the loop uses on top of it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from zhisuan.agent.protocol import (
    DATA_SINCE,
    TUNNEL_SINCE,
    VERSION,
    Ack,
    Beat,
    BeatAck,
    Cmds,
    Command,
    Credit,
    Data,
    Done,
    End,
    Events,
    Head,
    Hello,
    LaunchMsg,
    LoadMsg,
    Move,
    Moved,
    Open,
    Refused,
    Reply,
    Req,
    RunReport,
    Sample,
    Shut,
    Welcome,
    compatible,
    split,
)
from zhisuan.control.tunnel import Stream, TunnelError, Tunnels
from zhisuan.engines.base import EngineDown, ExternalLoad
from zhisuan.model import Center

log = logging.getLogger("zhisuan.control")
RPC_TIMEOUT = 10.0
MAX_SAMPLES = 10_000  # device samples held between two of the loop's reads
LIVE = ("starting", "queued", "running")


class AgentError(ValueError):
    """A frame the server refuses (names what was wrong); the connection is closed with it."""


@dataclass
class Seen:
    report: RunReport
    at: float  # server time it arrived


class LinkState:
    remote = True  # an agent across a WAN (control/inproc.py: one in this process)

    def __init__(self, center: Center, timeout: float = 60.0, beat_every: float = 2.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.center, self.name = center, center.name
        self.timeout, self.beat_every, self.clock = timeout, beat_every, clock
        self.pools = {p.name: p for p in center.pools}
        self.lock = threading.RLock()
        self.created = self.last_seen = clock()
        self.connected = False
        self.hello_seen = False  # since this server started: before it, nothing is known of the center's runs
        self.agent_id = ""
        self.applied: dict[str, int] = {}  # agent id -> events applied up to this seq
        self.engine_ok, self.engine_reason = True, ""
        self.reports: dict[str, Seen] = {}
        self.tracked: set[str] = set()  # runs the network holds at this center (the loop says, every step)
        self.placed: dict[str, float] = {}  # handle -> when its start was decided (decision-to-start latency)
        self.fenced: dict[str, float] = {}  # handle -> when the center was last asked to stop it
        self.outbox: dict[int, Command] = {}  # not yet done by the agent, in id order
        self.unsent: list[int] = []  # of those, not yet sent on the current connection
        self.requests: dict[int, tuple[Req | Move, threading.Event, list[Reply]]] = {}
        self.carries_data = False  # the connected agent moves datasets (protocol 1.2 on)
        self.unsent_reqs: list[int] = []
        self.external: list[ExternalLoad] = []
        self._ids = 0
        self.wake: Callable[[], None] = lambda: None  # the connection's sender, set when an agent connects
        self.session: object | None = None  # the connection now serving this center (a newer one replaces it)
        self.tunnels: Tunnels | None = None  # requests to replicas in the center, over the agent's connection
        self.tunnel_out: list[Open | Credit | Shut] = []
        self.loop: asyncio.AbstractEventLoop | None = None  # the event loop serving the agent's connection
        self.started_after: list[float] = []  # seconds from decision to running, as reports arrived (bench)
        self.samples: list[tuple[Sample, float]] = []  # device samples of its runs, dated by the server's clock
        self.events_in = self.frames_in = 0  # events applied, frames received (for operators and benchmarks)

    # ---- commands and requests out -------------------------------------------------------------------

    def _queue(self, kind: str, handle: str, epoch: int, launch: LaunchMsg | None = None) -> None:
        """Caller holds the lock."""
        self._ids += 1
        self.outbox[self._ids] = Command(id=self._ids, kind=kind, handle=handle, epoch=epoch,
                                         launch=launch)
        self.unsent.append(self._ids)

    def _send(self) -> None:
        self.wake()

    def take(self) -> list[Cmds | Req | Move | Open | Credit | Shut]:
        """Frames to send on the current connection now (the remote agent's sender calls this)."""
        with self.lock:
            out: list[Cmds | Req | Move | Open | Credit | Shut] = list(self.tunnel_out)
            self.tunnel_out = []
            if self.unsent:
                items = [self.outbox[i] for i in self.unsent if i in self.outbox]
                for k in range(0, len(items), 500):
                    out.append(Cmds(items=items[k:k + 500]))
                self.unsent = []
            for rid in self.unsent_reqs:
                if rid in self.requests:
                    out.append(self.requests[rid][0])
            self.unsent_reqs = []
            return out

    def _ask(self, req: Req) -> Reply:
        reply = self._answer(req)
        if not reply.ok:
            raise OSError(reply.error)
        return reply

    def move(self, move: Move) -> Moved:
        """A dataset move asked of the agent (begun, or how it stands): EngineDown when the agent is away,
        too old, or does not answer."""
        with self.lock:
            if self.connected and not self.carries_data:
                raise EngineDown(f"center {self.name}'s agent is too old to move datasets (protocol 1.{DATA_SINCE} "
                                 "on): upgrade it")
        reply = self._answer(move)
        if not reply.ok or reply.moved is None:
            raise EngineDown(reply.error or f"center {self.name}'s agent gave no account of the move")
        return reply.moved

    def _answer(self, req: Req | Move) -> Reply:
        """A question to the agent, answered over its connection within RPC_TIMEOUT."""
        with self.lock:
            if not self.connected:
                raise EngineDown(f"center {self.name}'s agent is not connected")
            self._ids += 1
            req = req.model_copy(update={"rid": self._ids})
            done, box = threading.Event(), []  # type: ignore[var-annotated]
            self.requests[req.rid] = (req, done, box)
            self.unsent_reqs.append(req.rid)
        self.wake()
        answered = done.wait(RPC_TIMEOUT)
        with self.lock:
            self.requests.pop(req.rid, None)
        if not answered or not box:
            raise EngineDown(f"center {self.name}'s agent did not answer within {RPC_TIMEOUT:g} s")
        reply: Reply = box[0]
        return reply

    # ---- tunnels (on the event loop serving the agent's connection) -----------------------------------

    def open_tunnel(self, handle: str, port: int, method: str, path: str, headers: list[tuple[str, str]],
                    body: bytes) -> Stream:
        with self.lock:
            if not self.connected:
                raise TunnelError(f"center {self.name}'s agent is not connected")
            if self.tunnels is None:
                raise TunnelError(f"center {self.name}'s agent is too old to carry requests to its replicas")
            stream = self.tunnels.open(handle, port, method, path, headers, body)
        self.wake()
        return stream

    def _tunnel_send(self, frame: Open | Credit | Shut) -> None:
        with self.lock:
            self.tunnel_out.append(frame)
        self.wake()

    # ---- frames in -----------------------------------------------------------------------------------

    def connect(self, hello: Hello, now: float) -> Welcome | Refused:
        """A new connection of this center's agent: its hello is the whole truth about its runs."""
        why = compatible(hello.version)
        if why is not None:
            return Refused(reason=why)
        if hello.center != self.name:
            return Refused(reason=f"center: this credential is center {self.name}'s, the agent says {hello.center}")
        with self.lock:
            self.connected, self.hello_seen, self.last_seen = True, True, now
            self.agent_id = hello.agent
            self.engine_ok, self.engine_reason = hello.engine_ok, hello.engine_reason
            if self.tunnels is not None:
                self.tunnels.lost("the agent connected again")
            self.tunnel_out = []
            minor = int(hello.version.split(".")[1])
            self.tunnels = Tunnels(self._tunnel_send) if minor >= TUNNEL_SINCE and self.remote else None
            self.carries_data = minor >= DATA_SINCE
            self.reports = {r.handle: Seen(r, now) for r in hello.runs}
            self._arrived(hello.runs, now)
            self.unsent = list(self.outbox)  # whatever was not done is sent again (commands are idempotent)
            self.unsent_reqs = list(self.requests)
            for handle in self.tracked - set(self.reports):
                if not any(c.handle == handle for c in self.outbox.values()):
                    self._queue("adopt", handle, split(handle)[1])
            return Welcome(version=VERSION, acked=self.applied.get(hello.agent, 0), timeout=self.timeout,
                           beat_every=self.beat_every, pools=[p.model_dump() for p in self.pools.values()])

    def take_samples(self) -> list[tuple[Sample, float]]:
        with self.lock:
            out, self.samples = self.samples, []
            return out

    def status(self) -> dict[str, object]:
        """How this center's agent stands, for operators (`GET /v1/agents`)."""
        with self.lock:
            return {"center": self.name, "joins": "agent" if self.remote else "direct", "connected": self.connected,
                    "silent_s": round(self.clock() - self.last_seen, 1), "engine_ok": self.engine_ok,
                    "engine_reason": self.engine_reason, "runs": len(self.reports),
                    "commands_waiting": len(self.outbox), "agent": self.agent_id[:12], "events": self.events_in,
                    "frames": self.frames_in}

    def disconnect(self) -> None:
        with self.lock:
            self.connected, self.session = False, None
            self.wake = lambda: None
            if self.tunnels is not None:
                self.tunnels.lost(f"center {self.name}'s agent lost its connection")
                self.tunnels = None
            for _, done, _box in self.requests.values():
                done.set()  # answered with nothing: the caller hears the agent is gone

    def receive(self, frame: Events | Beat | Done | Reply | Head | Data | End, now: float) -> list[Ack | BeatAck]:
        """A frame of the agent's, on the event loop serving its connection."""
        with self.lock:
            self.last_seen = now
            self.frames_in += 1
            if isinstance(frame, Head | Data | End):
                if self.tunnels is not None:
                    self.tunnels.on(frame)
                return []
            if isinstance(frame, Events):
                return [self._events(frame, now)]
            if isinstance(frame, Beat):
                self.engine_ok, self.engine_reason = frame.engine_ok, frame.engine_reason
                if frame.load is not None:
                    self._apply_load(frame.load, now)
                return [BeatAck(n=frame.n)]
            if isinstance(frame, Done):
                for cid in frame.ids:
                    cmd = self.outbox.pop(cid, None)
                    if cmd is not None and cmd.kind == "forget":
                        self.reports.pop(cmd.handle, None)
                return []
            entry = self.requests.get(frame.rid)
            if entry is not None:
                entry[2].append(frame)
                entry[1].set()
            return []

    def _events(self, frame: Events, now: float) -> Ack:
        with self.lock:
            return self._apply_events(frame, now)

    def _apply_events(self, frame: Events, now: float) -> Ack:
        """Events after the last applied seq (a resent one is applied once); a run the network did not
        place at this center and the agent had not reported before is ignored."""
        applied = self.applied.get(self.agent_id, 0)
        fresh = [e for e in frame.items if e.seq > applied]
        self.events_in += len(fresh)
        for e in fresh:
            if e.run is not None and (e.run.handle in self.tracked or e.run.handle in self.reports):
                self.reports[e.run.handle] = Seen(e.run, now)
                self._arrived([e.run], now)
            elif e.sample is not None and e.sample.handle in self.tracked:
                self.samples.append((e.sample, now - e.sample.ago))
                del self.samples[:-MAX_SAMPLES]
        if fresh:
            applied = self.applied[self.agent_id] = max(applied, max(e.seq for e in fresh))
        return Ack(seq=applied)

    def _arrived(self, runs: list[RunReport], now: float) -> None:
        for r in runs:
            placed = self.placed.pop(r.handle, None) if r.state == "running" else None
            if placed is not None and r.started_ago is not None:
                self.started_after.append(max(0.0, now - r.started_ago - placed))
                del self.started_after[:-10_000]

    def _apply_load(self, load: list[LoadMsg], now: float) -> None:
        """The center's own load, kept to its declared pools and their size (an agent reports less
        capacity — drained nodes — never more)."""
        out = []
        for i, x in enumerate(load):
            pool = self.pools.get(x.pool)
            if pool is None:
                raise AgentError(f"load.{i}.pool: center {self.name} has no pool {x.pool!r}")
            if any(n >= pool.nodes for n in x.nodes) or x.devices_per_node > pool.devices_per_node:
                raise AgentError(f"load.{i}: pool {x.pool} has {pool.nodes} nodes of {pool.devices_per_node} devices")
            out.append(ExternalLoad(x.id, x.pool, tuple(x.nodes), x.devices_per_node, now - x.start_ago,
                                    float("inf") if x.ends_in is None else now + x.ends_in, x.what))
        with self.lock:
            self.external = out
