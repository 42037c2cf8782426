"""A center's agent: the only thing that talks to the center's engine, on the network's behalf.

It carries out the server's commands (start, graceful stop, cancel, adopt, forget) idempotently and with
fencing by placement epoch, watches its runs (every change is a journaled event, resent until the server
acknowledges it), reports the center's own load and its engine's health, and answers log requests. The
transport is someone else's: the same core runs in the server's process for centers it reaches directly
(`control/inproc.py`) and in `zhisuan agent` across a WAN (`agent/client.py`).

Partitions: a remote agent holds a lease renewed by every heartbeat the server acknowledges (from when
that beat was *sent*, so the server's view of the center is never older). When the lease lapses the server
may soon declare the center down and give its placements elsewhere, so the agent first stops the runs the
server would re-place — those whose running it never confirmed, and those that asked to be requeued — and
keeps the others (`on_center_loss: wait`) running.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from zhisuan.agent.data import CenterData
from zhisuan.agent.journal import Journal, RunRow
from zhisuan.agent.protocol import (
    VERSION,
    Command,
    Event,
    Hello,
    LaunchMsg,
    RunReport,
    Sample,
    UsageMsg,
    split,
)
from zhisuan.agent.reads import CenterReads
from zhisuan.engines.base import Engine, EngineDown, Launch
from zhisuan.model import Pool

log = logging.getLogger("zhisuan.agent")
POLL_ERRORS = 3  # polls in a row that fail before a run is given up as untrackable
FENCE_AT = 0.6  # of the server's center timeout: a lease that old stops the runs the server would re-place
FENCED = "stopped by its agent"
REKILL = 5.0  # seconds after which a run killed but still running is killed again
USAGE_FOR, USAGE_EVERY = 120.0, 5.0  # seconds after a run's end its accounting is asked again, and how often


class AgentCore(CenterReads):
    def __init__(self, center: str, engine: Engine, journal: Journal | None = None,
                 clock: Callable[[], float] = time.monotonic, leased: bool = False) -> None:
        self.center, self.engine = center, engine
        self.journal = journal or Journal()
        self.clock = clock
        self.runs: dict[str, RunRow] = self.journal.runs()
        self.lock = threading.RLock()  # commands, polls and reports from the transport's threads
        self.leased = leased  # a remote agent: stops what the server would re-place when its lease lapses
        self.timeout = 60.0  # the server's center timeout (told in Welcome)
        self.lease_from: float | None = None  # when the last beat the server acknowledged was sent
        self.beats: dict[int, float] = {}  # beat number -> when it was sent
        self.engine_ok, self.engine_reason = True, ""
        self.pools: dict[str, Pool] = {}
        self.sent = 0  # events sent on this connection (resent from the journal after a reconnect)
        self.on_change: Callable[[], None] | None = None  # the transport wakes its sender
        self._usage_tried: dict[str, float] = {}
        self.data: CenterData | None = None  # the center's store and datasets on disk (a remote agent's own)

    # ---- the connection ------------------------------------------------------------------------------

    def hello(self) -> Hello:
        with self.lock:
            self.sent = 0
            now = self.clock()
            return Hello(version=VERSION, center=self.center, agent=self.journal.agent_id,
                         runs=[self.report(r, now) for r in self.runs.values()],
                         engine_ok=self.engine_ok, engine_reason=self.engine_reason)

    def welcomed(self, timeout: float, pools: list[dict[str, object]], acked: int) -> None:
        with self.lock:
            self.timeout = timeout
            self.pools = {p.name: p for p in (Pool.model_validate(x) for x in pools)}
            self.acked(acked)

    def acked(self, seq: int) -> None:
        with self.lock:
            self.journal.ack(seq)
            for run in self.runs.values():
                if run.confirmed < 0 and -run.confirmed <= seq:  # its "running" reached the server
                    run.confirmed = 1
                    self.journal.quiet(run)

    def renewed(self, sent: float) -> None:
        """The server answered something sent at `sent` (its welcome to a hello): it heard the agent then."""
        if self.lease_from is None or sent > self.lease_from:
            self.lease_from = sent

    def beat_sent(self, n: int) -> None:
        self.beats[n] = self.clock()
        if len(self.beats) > 64:
            self.beats.pop(min(self.beats))

    def beat_acked(self, n: int) -> None:
        sent = self.beats.pop(n, None)
        if sent is not None:
            self.renewed(sent)

    def outgoing(self, limit: int = 500) -> list[Event]:
        """Events not yet sent on this connection, with their ages as of now."""
        with self.lock:
            rows = self.journal.pending(self.sent, limit)
            now, out = self.clock(), []
            for seq, handle, kind, at, body in rows:
                if kind == "run":
                    run = self.runs.get(handle)
                    if run is None:
                        continue
                    if run.state == "running" and run.confirmed == 0:
                        run.confirmed = -seq  # confirmed once the server acknowledges this event
                    out.append(Event(seq=seq, run=self.report(run, now)))
                else:
                    out.append(Event(seq=seq, sample=Sample(handle=handle, ago=max(0.0, now - at), **json.loads(body))))
            if rows:
                self.sent = rows[-1][0]
            return out

    def report(self, run: RunRow, now: float) -> RunReport:
        def ago(t: float | None) -> float | None:
            return None if t is None else max(0.0, now - t)

        ran = None if run.started is None else max(0.0, (run.ended if run.ended is not None else now) - run.started)
        usage = UsageMsg.model_validate(json.loads(run.usage)) if run.usage else None
        return RunReport(handle=run.handle, state=run.state, exit_code=run.exit_code,
                         reason=run.reason[:2000],
                         expected_start_in=None if run.expected_start is None else max(0.0, run.expected_start - now),
                         started_ago=ago(run.started), ended_ago=ago(run.ended), ran=ran, host=run.host, uid=run.uid,
                         native=run.native[:512], usage=usage)

    def _changed(self, run: RunRow) -> None:
        self.runs[run.handle] = run
        self.journal.put(run)
        if self.on_change is not None:
            self.on_change()

    # ---- commands ------------------------------------------------------------------------------------

    def execute(self, commands: list[Command]) -> list[int]:
        """Carry out commands in order; each is journaled before its id is returned as done."""
        done = []
        for cmd in commands:
            try:
                with self.lock:
                    getattr(self, f"_{cmd.kind}")(cmd)
            except Exception:  # one command's trouble must not stop the others (it is reported on its run)
                log.exception("command %s %s failed", cmd.kind, cmd.handle)
            done.append(cmd.id)
        return done

    def _start(self, cmd: Command) -> None:
        if cmd.handle in self.runs or cmd.launch is None:
            return  # delivered before: started once
        job, attempt = split(cmd.handle)
        run = RunRow(cmd.handle, job, attempt, launch=cmd.launch.model_dump_json(), on_loss=cmd.launch.on_center_loss)
        newest = self.journal.epoch(job)
        if cmd.epoch < newest:
            run.state, run.reason = "refused", f"stale start: attempt {cmd.epoch} after attempt {newest} was placed"
            self._changed(run)
            return
        if self.leased and not self.lease_valid():
            run.state, run.reason = "refused", "the agent's lease with the server had lapsed"
            self._changed(run)
            return
        for old in [r for r in self.runs.values() if r.job_id == job and r.attempt < attempt and r.live]:
            self._kill(old, f"attempt {attempt} of the job was placed: this one is stale")
        self.journal.set_epoch(job, cmd.epoch)
        self._changed(run)  # journaled before the engine is asked: an attempt is begun at most once
        try:
            run.native = self.engine.submit(self._launch(cmd.launch))
        except EngineDown as e:
            run.state, run.reason = "refused", f"{self.center} did not take it ({e})"
        except Exception as e:  # whatever one job's start meets fails that job alone
            run.state, run.reason = "failed", f"the engine could not start it: {e}"[:2000]
        else:
            run.state = "running" if self.engine.starts_at_submit else "queued"
            if run.state == "running":
                run.started, run.host = self.clock(), self._host(run.native)
        self._changed(run)

    def _launch(self, m: LaunchMsg) -> Launch:
        pool = self.pools.get(str(m.pool.get("name"))) or Pool.model_validate(m.pool)
        return Launch(m.job_id, m.name, m.command, pool, tuple(m.nodes), m.devices_per_node,
                      [list(d) for d in m.devices], dict(m.env), m.timeout, m.image, m.attempt, m.tenant, m.milli,
                      m.cpus, m.on_center_loss, self._inputs(m.inputs), m.memory_gib)

    def _inputs(self, inputs: dict[str, str]) -> dict[str, str]:
        """Mount -> the folder on this center's disk its dataset is read from. A remote agent is given the
        dataset's key in its own store (never a path on its disk); in the server's process, the folder."""
        if not inputs or not self.leased:
            return dict(inputs)
        if self.data is None:
            raise ValueError(f"the job reads datasets, and center {self.center}'s agent keeps none (--store)")
        return {mount: str(self.data.local(prefix)) for mount, prefix in inputs.items()}

    def work_of(self, handle: str) -> Path | None:
        """The folder a run's job wrote in, as this agent reads it: the local engine's (other engines' jobs
        write on their cluster's nodes, which the agent does not read)."""
        native = self.native(handle)
        if not native or self.engine.kind != "local":
            return None
        work = Path(native) / "work"
        return work if work.is_dir() else None

    def _stop(self, cmd: Command) -> None:
        run = self.runs.get(cmd.handle)
        if run is None or not run.live or run.stop_asked is not None:
            return
        if run.native:
            self.engine.stop(run.native)
        run.stop_asked = self.clock()
        self.journal.quiet(run)

    def _cancel(self, cmd: Command) -> None:
        run = self.runs.get(cmd.handle)
        if run is not None and run.live:
            self._kill(run, "cancelled by the network")

    def _kill(self, run: RunRow, why: str) -> None:
        """End a run now; its engine's own word on how it ended (Slurm's CANCELLED, an exit code) is what is
        reported once the engine has it, `why` until then."""
        if run.native:
            try:
                self.engine.cancel(run.native)
            except EngineDown as e:
                log.warning("cancel of %s: %s", run.handle, e)
                return  # still live: the next poll or command tries again
            run.stop_asked = run.stop_asked or self.clock()
            run.reason = why
            self._poll(run)
            if run.live:  # the engine ends it in its own time (scancel): polls follow it
                self.journal.quiet(run)
                return
            return
        run.state, run.reason, run.ended = "failed", why, self.clock()
        self._changed(run)

    def _adopt(self, cmd: Command) -> None:
        """The server tracks a run this agent has no record of (a lost journal, a start not yet seen)."""
        known = self.runs.get(cmd.handle)
        if known is not None:
            self._changed(known)  # say again how it stands
            return
        job, attempt = split(cmd.handle)
        run = RunRow(cmd.handle, job, attempt)
        native = self.engine.handle_of(job, attempt)
        if native is None:
            run.state, run.reason = "lost", f"{self.center} holds no attempt {attempt} of {job}"
        else:
            run.native, run.state = native, "queued"  # how it stands: the poll below says
            self.journal.set_epoch(job, max(attempt, self.journal.epoch(job)))
        self._changed(run)
        if native is not None:
            self._poll(run)

    def _forget(self, cmd: Command) -> None:
        run = self.runs.get(cmd.handle)
        if run is None:
            return
        if run.live:
            self._kill(run, "forgotten by the network")
        self.runs.pop(cmd.handle, None)
        self.journal.drop(cmd.handle, run.native)

    # ---- watching ------------------------------------------------------------------------------------

    def lease_valid(self) -> bool:
        return self.lease_from is not None and self.clock() - self.lease_from < FENCE_AT * self.timeout

    def tick(self) -> None:
        """Poll every live run; a remote agent whose lease lapsed stops what the server would re-place. Runs
        that ended without their engine's accounting (Slurm's sacct lags) are asked again for a while."""
        with self.lock:
            live = [r for r in self.runs.values() if r.live and r.native]
            fence = self.leased and self.lease_from is not None and not self.lease_valid()
            now = self.clock()
            unbilled = [r for r in self.runs.values() if not r.live and r.native and r.usage is None
                        and r.ended is not None and now - r.ended < USAGE_FOR
                        and now - self._usage_tried.get(r.handle, -1e18) >= USAGE_EVERY]
        for run in live:
            with self.lock:
                if fence and (run.on_loss != "wait" or run.confirmed <= 0) and not run.reason.startswith(FENCED):
                    self._kill(run, f"{FENCED}: no word from the server for "
                                    f"{self.clock() - (self.lease_from or 0):.0f} s, it may be placed elsewhere")
                    continue
                self._poll(run)
        for run in unbilled:
            self._usage_tried[run.handle] = now
            usage = self._usage(run.native)
            if usage is not None:
                with self.lock:
                    run.usage = usage
                    self._changed(run)

    def _rekill(self, run: RunRow, now: float) -> None:
        try:
            self.engine.cancel(run.native)
        except Exception as e:  # asked again at the next poll
            log.warning("cancel of %s again: %s", run.handle, e)
        run.stop_asked = now
        self.journal.quiet(run)

    def poll_run(self, handle: str) -> None:
        """Poll one run now (an agent in the server's process is polled run by run, as engines are)."""
        with self.lock:
            run = self.runs.get(handle)
            if run is not None and run.live and run.native:
                self._poll(run)

    def _poll(self, run: RunRow) -> None:
        try:
            status = self.engine.poll(run.native)
        except EngineDown:
            return
        except Exception as e:  # one run's trouble is its own
            run.errors += 1
            log.warning("poll of %s failed (%d): %s", run.handle, run.errors, e)
            if run.errors >= POLL_ERRORS:
                try:
                    self.engine.cancel(run.native)
                except Exception as err:  # nothing more can be done for it
                    log.warning("cancel of untrackable %s: %s", run.handle, err)
                run.state, run.reason, run.ended = "failed", f"cannot be tracked on {self.center}: {e}"[:2000], \
                    self.clock()
                if run.started is None:
                    run.started = run.ended
                self._changed(run)
            return
        now = self.clock()
        before = (run.state, run.reason, run.expected_start is None)
        run.errors = 0
        if status.state == "queued":
            run.state, run.reason = "queued", status.reason
            run.expected_start = None if status.expected_start is None else now + max(0.0, status.expected_start
                                                                                       - time.time())
            if before != (run.state, run.reason, run.expected_start is None):
                self._changed(run)
            return
        if run.started is None:  # seen running now, or ended between two polls (ran ~0 s as far as we know)
            run.started = now
        if status.state == "running":
            if run.state != "running":
                run.state, run.expected_start = "running", None
                run.reason = run.reason if run.stop_asked is not None else ""  # a queue's reason is over
                run.host = self._host(run.native)
                self._changed(run)
            elif run.stop_asked is not None and run.reason and now - run.stop_asked >= REKILL:
                self._rekill(run, now)  # killed, yet its engine still runs it (a controller just back)
            return
        run.state, run.exit_code, run.ended = status.state, status.exit_code, now
        killed = run.stop_asked is not None and run.reason and status.reason
        run.reason = f"{status.reason} ({run.reason})" if killed else status.reason or run.reason
        run.usage = self._usage(run.native)
        self._changed(run)
