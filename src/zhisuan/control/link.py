"""The server's side of one center's agent: to the control loop it is that center's engine.

The loop calls it as it calls any engine (submit, poll, stop, cancel, logs, load, health); the link turns
calls into commands for the agent (kept until the agent says they are done, resent after a reconnect) and
answers polls from what the agent last reported (events applied once, by sequence number). The agent may
be in this process (control/inproc.py: frames are function calls, for centers the server runs itself) or
across a WAN (a connection, `control/sessions.py`, feeds `connect`/`receive` and sends what `take` gives).
One protocol, one path. The state the frames build is `LinkState` (control/linkstate.py).

What the link trusts of an agent: only its own center's runs (a report of a run the network did not place
there changes nothing but that run at that center), load on its declared pools within their declared size,
and durations no longer than the network has known of the run (the loop clamps them).
"""

from __future__ import annotations

import logging

from zhisuan.agent.protocol import (
    LaunchMsg,
    Req,
    RunReport,
    UsageMsg,
    handle_of,
    split,
)
from zhisuan.control.linkstate import LIVE, AgentError, LinkState, Seen
from zhisuan.engines.base import EngineDown, EngineStatus, ExternalLoad, Launch, TextLogs, Usage
from zhisuan.model import Pool

log = logging.getLogger("zhisuan.control")
MAX_QUEUED = 10_000  # commands waiting for one center's agent: beyond it, new starts go elsewhere
REFENCE = 5.0  # seconds between asking a center again to stop a run the network no longer holds there


class CenterLink(LinkState, TextLogs):
    """A center as the loop sees it: its engine, reached through its agent."""

    kind = "agent"
    starts_at_submit = False

    # ---- the engine interface the loop uses ----------------------------------------------------------

    def inventory(self) -> list[Pool]:
        return list(self.pools.values())

    def load(self, pools: list[Pool]) -> list[ExternalLoad]:
        with self.lock:
            return list(self.external)

    def health(self) -> None:
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
                        milli=launch.milli, cpus=launch.cpus, memory_gib=launch.memory_gib,
                        on_center_loss=launch.on_center_loss, inputs=launch.inputs)
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
        return self._usage(seen.report.usage if seen is not None else None)

    @staticmethod
    def _usage(u: UsageMsg | None) -> Usage | None:
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
        with self.lock:
            seen = self.reports.get(handle)
        return seen.report.uid if seen is not None else None

    # ---- reconciliation: what the loop holds at this center ------------------------------------------

    def track(self, handles: set[str]) -> None:
        """The runs the network holds at this center now. Runs the agent reports that are not among them
        were placed elsewhere, cancelled or recorded as ended: live ones are stopped (fencing: a job never
        runs in two places), ended ones forgotten. Starts not yet sent for them are dropped."""
        with self.lock:
            queued = self._ids
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
            if self._ids == queued:
                return  # nothing new for the agent (the loop tracks every step: no wake-up for nothing)
        self._send()


__all__ = ["AgentError", "CenterLink", "Seen"]
