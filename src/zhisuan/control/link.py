"""The server's side of one center's agent: to the control loop it is that center's engine.

The loop calls it as it calls any engine (submit, poll, stop, cancel, logs, load, health); the link turns
calls into commands for the agent (kept until the agent says they are done, resent after a reconnect) and
answers polls from what the agent last reported (events applied once, by sequence number). The agent may
be in this process (`local`: delivered by function calls, for centers the server reaches directly) or
across a WAN (a connection in `api/agents.py` feeds `connect`/`receive` and sends what `take` gives). One
protocol, one path.

What the link trusts of an agent: only its own center's runs (a report of a run the network did not place
there changes nothing but that run at that center), load on its declared pools within their declared size,
and durations no longer than the network has known of the run (the loop clamps them).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from zhisuan.agent.core import AgentCore
from zhisuan.agent.protocol import (
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
    Open,
    Refused,
    Reply,
    Req,
    RunReport,
    Shut,
    Welcome,
    compatible,
    handle_of,
    split,
)
from zhisuan.control.tunnel import Stream, TunnelError, Tunnels
from zhisuan.engines.base import EngineDown, EngineStatus, ExternalLoad, Launch, TextLogs, Usage
from zhisuan.engines.fleet import Fleet
from zhisuan.model import Center, Network, Pool

log = logging.getLogger("zhisuan.control")
MAX_QUEUED = 10_000  # commands waiting for one center's agent: beyond it, new starts go elsewhere
RPC_TIMEOUT = 10.0
REFENCE = 5.0  # seconds between asking a center again to stop a run the network no longer holds there
LIVE = ("starting", "queued", "running")


class AgentError(ValueError):
    """A frame the server refuses (names what was wrong); the connection is closed with it."""


@dataclass
class Seen:
    report: RunReport
    at: float  # server time it arrived


class CenterLink(TextLogs):
    kind = "agent"
    starts_at_submit = False

    def __init__(self, center: Center, timeout: float = 60.0, beat_every: float = 2.0,
                 local: AgentCore | None = None, clock: Callable[[], float] = time.time) -> None:
        self.center, self.name = center, center.name
        self.timeout, self.beat_every, self.local, self.clock = timeout, beat_every, local, clock
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
        self.requests: dict[int, tuple[Req, threading.Event, list[Reply]]] = {}
        self.unsent_reqs: list[int] = []
        self.external: list[ExternalLoad] = []
        self._ids = 0
        self.wake: Callable[[], None] = lambda: None  # the connection's sender, set when an agent connects
        self.session: object | None = None  # the connection now serving this center (a newer one replaces it)
        self.tunnels: Tunnels | None = None  # requests to replicas in the center, over the agent's connection
        self.tunnel_out: list[Open | Credit | Shut] = []
        self.loop: asyncio.AbstractEventLoop | None = None  # the event loop serving the agent's connection
        self.started_after: list[float] = []  # seconds from decision to running, as reports arrived (bench)
        if local is not None:
            self._connect_local()

    @property
    def remote(self) -> bool:
        return self.local is None

    # ---- the engine interface the loop uses ----------------------------------------------------------

    def inventory(self) -> list[Pool]:
        return list(self.pools.values())

    def load(self, pools: list[Pool]) -> list[ExternalLoad]:
        if self.local is not None:
            self._apply_load(self.local.load(), self.clock())
        with self.lock:
            return list(self.external)

    def health(self) -> None:
        if self.local is not None:
            ok, why = self.local.health()
            self.engine_ok, self.engine_reason, self.last_seen = ok, why, self.clock()
        with self.lock:
            silent = self.clock() - self.last_seen
            if silent > self.timeout:
                state = "lost its connection" if self.connected else "not connected"
                raise EngineDown(f"center {self.name}'s agent is silent for {silent:.0f} s ({state}; "
                                 f"control.center_timeout {self.timeout:g} s)")
            if not self.engine_ok:
                raise EngineDown(self.engine_reason or f"center {self.name}'s engine does not answer")

    def submit(self, launch: Launch) -> str:
        handle = handle_of(launch.job_id, launch.attempt)
        msg = LaunchMsg(job_id=launch.job_id, name=launch.name, command=launch.command,
                        pool=launch.pool.model_dump(), nodes=list(launch.nodes),
                        devices_per_node=launch.devices_per_node, devices=launch.devices, env=launch.env,
                        timeout=launch.timeout, image=launch.image, attempt=launch.attempt, tenant=launch.tenant,
                        milli=launch.milli, cpus=launch.cpus,
                        on_center_loss=launch.on_center_loss)
        with self.lock:
            if len(self.outbox) >= MAX_QUEUED:
                raise EngineDown(f"{MAX_QUEUED} commands already wait for center {self.name}'s agent")
            self.tracked.add(handle)
            self.placed[handle] = self.clock()
            self._queue("start", handle, launch.attempt, msg)
        self._send()
        return handle

    def handle_of(self, job_id: str, attempt: int | None = None) -> str | None:
        """Whether the center holds this attempt (after a restart: was its start delivered?). The agent is
        asked; until it has answered, EngineDown (the loop asks again next step)."""
        with self.lock:
            if attempt is None:
                mine = sorted((split(h)[1], h) for h in self.reports if split(h)[0] == job_id)
                return mine[-1][1] if mine else None
            handle = handle_of(job_id, attempt)
            known = self._known(handle)
            if known is not None:
                return known or None
            if not self.hello_seen:
                raise EngineDown(f"center {self.name}'s agent has not connected since the server started")
            if not any(c.handle == handle and c.kind == "adopt" for c in self.outbox.values()):
                self._queue("adopt", handle, attempt)
        self._send()
        with self.lock:
            known = self._known(handle)
        if known is None:
            raise EngineDown(f"asking center {self.name}'s agent whether it holds {handle}")
        return known or None

    def _known(self, handle: str) -> str | None:
        """The handle when the center reported it, "" when it said it has no such run, None: not known."""
        seen = self.reports.get(handle)
        if seen is None:
            return None
        return "" if seen.report.state in ("lost", "refused") else handle

    def poll(self, handle: str) -> EngineStatus:
        if self.local is not None:  # the engine is asked now, as the loop asks any engine
            self.local.poll_run(handle)
            self._pull_local()
        with self.lock:
            seen = self.reports.get(handle)
            if seen is not None:
                return self._status(seen)
            if any(c.handle == handle and c.kind == "start" for c in self.outbox.values()):
                return EngineStatus("queued", reason=f"sent to center {self.name}'s agent"
                                    if self.connected else f"waiting for center {self.name}'s agent")
            if not self.hello_seen:
                raise EngineDown(f"center {self.name}'s agent has not connected since the server started")
            if handle not in self.tracked:
                return EngineStatus("lost", reason=f"center {self.name} holds no such run")
            asked = any(c.handle == handle and c.kind == "adopt" for c in self.outbox.values())
            if not asked:
                self._queue("adopt", handle, split(handle)[1])
        if not asked:
            self._send()
            with self.lock:
                seen = self.reports.get(handle)
            if seen is not None:
                return self._status(seen)
        return EngineStatus("queued", reason=f"asking center {self.name}'s agent about it")

    def _status(self, seen: Seen) -> EngineStatus:
        r = seen.report
        started = None if r.started_ago is None else seen.at - r.started_ago
        ended = None if r.ended_ago is None else seen.at - r.ended_ago
        if r.state in ("starting", "queued"):
            return EngineStatus("queued", reason=r.reason or f"starting at {self.name}",
                                expected_start=None if r.expected_start_in is None else seen.at + r.expected_start_in)
        if r.state in ("refused", "lost"):
            return EngineStatus("lost", reason=r.reason)
        return EngineStatus(r.state, r.exit_code, r.reason, started_at=started, ended_at=ended)

    def stop(self, handle: str) -> None:
        self._command("stop", handle)

    def cancel(self, handle: str) -> None:
        with self.lock:
            for cid in [i for i, c in self.outbox.items() if c.handle == handle and c.kind == "start"]:
                if cid in self.unsent:  # never sent: it is as if it never was
                    self.unsent.remove(cid)
                    del self.outbox[cid]
                    self.reports[handle] = Seen(RunReport(handle=handle, state="failed", reason="cancelled before "
                                                          f"it reached center {self.name}"), self.clock())
                    return
        self._command("cancel", handle)

    def _command(self, kind: str, handle: str) -> None:
        with self.lock:
            self._queue(kind, handle, split(handle)[1])
        self._send()

    def logs(self, handle: str) -> str:
        return self._ask(Req(rid=1, kind="logs", handle=handle)).text

    def log_delta(self, handle: str, offsets: dict[str, int]) -> str:
        reply = self._ask(Req(rid=1, kind="log_delta", handle=handle, offsets=offsets))
        offsets.update(reply.offsets)
        return reply.text

    def log_rest(self, handle: str, offsets: dict[str, int]) -> str:
        reply = self._ask(Req(rid=1, kind="log_rest", handle=handle, offsets=offsets))
        offsets.update(reply.offsets)
        return reply.text

    def usage(self, handle: str) -> Usage | None:
        """What the center's engine measured of a run: asked now of an agent in this process, else as the
        agent last reported it."""
        with self.lock:
            seen = self.reports.get(handle)
        u = seen.report.usage if seen is not None else None
        if self.local is not None:
            u = self.local.usage_of(handle) or u
        if u is None:
            return None
        return Usage(u.allocated_device_seconds, u.elapsed_seconds, u.busy_device_seconds,
                     f"{u.source} (via agent)".strip(), u.energy_joules)

    def host_of(self, handle: str) -> str | None:
        with self.lock:
            seen = self.reports.get(handle)
        return seen.report.host if seen is not None and seen.report.state == "running" else None

    def native(self, handle: str) -> str | None:
        """The engine's own handle of a run (a Slurm job id), as the agent reported it."""
        with self.lock:
            seen = self.reports.get(handle)
        return seen.report.native or None if seen is not None else None

    def uid_of(self, handle: str) -> int | None:
        if self.local is not None:
            return self.local.uid_of(handle)
        with self.lock:
            seen = self.reports.get(handle)
        return seen.report.uid if seen is not None else None

    # ---- reconciliation: what the loop holds at this center ------------------------------------------

    def track(self, handles: set[str]) -> None:
        """The runs the network holds at this center now. Runs the agent reports that are not among them
        were placed elsewhere, cancelled or recorded as ended: live ones are stopped (fencing: a job never
        runs in two places), ended ones forgotten. Starts not yet sent for them are dropped."""
        with self.lock:
            self.tracked = set(handles)
            for cid in [i for i in self.unsent if self.outbox[i].kind in ("start", "adopt")
                        and self.outbox[i].handle not in handles]:
                self.unsent.remove(cid)
                del self.outbox[cid]
            pending = {(c.kind, c.handle) for c in self.outbox.values()}
            now = self.clock()
            for handle, seen in list(self.reports.items()):
                if handle in handles:
                    continue
                if seen.report.state in LIVE:  # asked again while it lives (its engine may have been down)
                    if ("cancel", handle) not in pending and now - self.fenced.get(handle, -1e18) >= REFENCE:
                        log.warning("center %s still runs %s, which the network holds elsewhere or no more: "
                                    "stopping it", self.name, handle)
                        self.fenced[handle] = now
                        self._queue("cancel", handle, split(handle)[1])
                elif ("forget", handle) not in pending:
                    self.fenced.pop(handle, None)
                    self._queue("forget", handle, split(handle)[1])
            for handle in [h for h in self.placed if h not in handles]:
                del self.placed[handle]
        self._send()

    # ---- commands and requests out -------------------------------------------------------------------

    def _queue(self, kind: str, handle: str, epoch: int, launch: LaunchMsg | None = None) -> None:
        """Caller holds the lock."""
        self._ids += 1
        self.outbox[self._ids] = Command(id=self._ids, kind=kind, handle=handle, epoch=epoch,
                                         launch=launch)
        self.unsent.append(self._ids)

    def _send(self) -> None:
        if self.local is not None:
            self._deliver_local()
        else:
            self.wake()

    def take(self) -> list[Cmds | Req | Open | Credit | Shut]:
        """Frames to send on the current connection now (the remote agent's sender calls this)."""
        with self.lock:
            out: list[Cmds | Req | Open | Credit | Shut] = list(self.tunnel_out)
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
        if self.local is not None:
            reply = self.local.answer(req)
        else:
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
            reply = box[0]
        if not reply.ok:
            raise OSError(reply.error)
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

    def probe_many(self, targets: list[tuple[str, str, int, str, str]], deadline: float = 2.0) -> dict[str, bool]:
        """Readiness of replicas in this center — (replica, run handle, port, ready path, key) — through their
        tunnels, all at once, each within `deadline` (from the prober's thread; the tunnels live on the loop)."""
        loop = self.loop
        if loop is None or not self.connected:
            return {t[0]: False for t in targets}

        async def one(handle: str, port: int, path: str, key: str) -> bool:
            headers = [("authorization", f"Bearer {key}")] if key else []
            try:
                stream = self.open_tunnel(handle, port, "GET", path, headers, b"")
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
            self.reports = {r.handle: Seen(r, now) for r in hello.runs}
            self._arrived(hello.runs, now)
            self.unsent = list(self.outbox)  # whatever was not done is sent again (commands are idempotent)
            self.unsent_reqs = list(self.requests)
            for handle in self.tracked - set(self.reports):
                if not any(c.handle == handle for c in self.outbox.values()):
                    self._queue("adopt", handle, split(handle)[1])
            return Welcome(version=VERSION, acked=self.applied.get(hello.agent, 0), timeout=self.timeout,
                           beat_every=self.beat_every, pools=[p.model_dump() for p in self.pools.values()])

    def status(self) -> dict[str, object]:
        """How this center's agent stands, for operators (`GET /v1/agents`)."""
        with self.lock:
            return {"center": self.name, "joins": "agent" if self.remote else "direct", "connected": self.connected,
                    "silent_s": round(self.clock() - self.last_seen, 1), "engine_ok": self.engine_ok,
                    "engine_reason": self.engine_reason, "runs": len(self.reports),
                    "commands_waiting": len(self.outbox), "agent": self.agent_id[:12]}

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
        for e in fresh:
            if e.run is not None and (e.run.handle in self.tracked or e.run.handle in self.reports):
                self.reports[e.run.handle] = Seen(e.run, now)
                self._arrived([e.run], now)
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

    # ---- in this process -----------------------------------------------------------------------------

    def _connect_local(self) -> None:
        assert self.local is not None
        welcome = self.connect(self.local.hello(), self.clock())
        assert isinstance(welcome, Welcome)
        self.local.welcomed(welcome.timeout, welcome.pools, welcome.acked)

    def _deliver_local(self) -> None:
        """Commands to the agent in this process, and what it has to say back, now."""
        assert self.local is not None
        while True:
            with self.lock:
                cmds = [self.outbox[i] for i in self.unsent if i in self.outbox]
                self.unsent = []
            if not cmds:
                break
            self.receive(Done(ids=self.local.execute(cmds)), self.clock())
        self._pull_local()

    def _pull_local(self) -> None:
        assert self.local is not None
        while events := self.local.outgoing():
            ack = self._events(Events(items=events), self.clock())
            self.local.acked(ack.seq)


def links(network: Network, given: Fleet) -> dict[str, CenterLink]:
    """Every center as a link to its agent: the links already given (remote centers), and for a center
    given an engine, an agent in this process wrapping it."""
    out: dict[str, CenterLink] = {}
    settings = network.control
    for c in network.centers:
        engine = given.engines.get(c.name)
        if isinstance(engine, CenterLink):
            out[c.name] = engine
        elif engine is None:
            out[c.name] = CenterLink(c, settings.center_timeout, settings.beat_every)
        else:
            out[c.name] = CenterLink(c, settings.center_timeout, settings.beat_every, local=AgentCore(c.name, engine))
    return out
