"""What a center's agent reads of its center for the server: where a run is reached, what its engine
measured of it (accounting, the center's own Prometheus), its logs, the center's own load and health. The
mixin of `AgentCore` (agent/core.py) that asks and never changes a run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from zhisuan.agent.journal import Journal, RunRow
from zhisuan.agent.protocol import LaunchMsg, LoadMsg, Reply, Req, UsageMsg, split
from zhisuan.engines.base import Engine, EngineDown, EngineStatus
from zhisuan.engines.prometheus import PrometheusMetrics, job_reading
from zhisuan.model import Pool


class CenterReads:
    center: str
    engine: Engine
    journal: Journal
    runs: dict[str, RunRow]
    lock: threading.RLock
    pools: dict[str, Pool]
    engine_ok: bool
    engine_reason: str
    on_change: Callable[[], None] | None

    def sample(self, metrics: PrometheusMetrics) -> int:
        """Measured busy, watts and memory of the running jobs from the center's own Prometheus (one read),
        journaled as events; how many runs were measured."""
        with self.lock:
            running = [r for r in self.runs.values() if r.state == "running"]
        if not running:
            return 0
        readings = metrics.readings()
        source = f"prometheus {metrics.exporter.name}"
        n = 0
        for run in running:
            launch = LaunchMsg.model_validate_json(run.launch) if run.launch != "{}" else None
            if launch is None or not launch.devices:
                continue
            names = list(launch.pool.get("node_names") or [])  # type: ignore[call-overload]
            pairs = [(names[k] if k < len(names) else str(k), d) for k, ids in zip(launch.nodes, launch.devices,
                                                                                   strict=False) for d in ids]
            got = job_reading(readings, pairs)
            if got is not None:
                self.journal.sample(run.handle, {"busy": min(1.0, max(0.0, got.busy)), "source": source,
                                                 "watts": got.watts, "memory_gib": got.memory_gib})
                n += 1
        if n and self.on_change is not None:
            self.on_change()
        return n

    def _host(self, native: str) -> str | None:
        try:
            return self.engine.host_of(native)
        except Exception:  # asked again when the server needs it
            return None

    def native(self, handle: str) -> str | None:
        """The engine's handle of a run: journaled, or found again (a run the server had the agent forget)."""
        run = self.runs.get(handle)
        if run is not None:
            return run.native or None
        kept = self.journal.native(handle)
        if kept:
            return kept
        try:
            return self.engine.handle_of(*split(handle))
        except Exception:  # nothing known of it
            return None

    def status_of(self, handle: str) -> EngineStatus | None:
        """How the engine sees a run this agent no longer holds (one the network has done with), or None."""
        if handle in self.runs:
            return None
        native = self.native(handle)
        try:
            return self.engine.poll(native) if native else None
        except Exception:  # nothing more is known of it
            return None

    def usage_of(self, handle: str) -> UsageMsg | None:
        """What the engine measured of a run, asked now."""
        native = self.native(handle)
        text = self._usage(native) if native else None
        return UsageMsg.model_validate_json(text) if text else None

    def uid_of(self, handle: str) -> int | None:
        run = self.runs.get(handle)
        uid_of = getattr(self.engine, "uid_of", None)
        return None if run is None or not run.native or uid_of is None else uid_of(run.native)

    def _usage(self, native: str) -> str | None:
        try:
            u = self.engine.usage(native)
        except Exception:  # billing must not wait for (or fail with) an engine's accounting
            return None
        if u is None:
            return None
        return UsageMsg(allocated_device_seconds=u.allocated_device_seconds, elapsed_seconds=u.elapsed_seconds,
                        busy_device_seconds=u.busy_device_seconds, source=u.source[:200],
                        energy_joules=u.energy_joules).model_dump_json()

    def health(self) -> tuple[bool, str]:
        try:
            self.engine.health()
        except EngineDown as e:
            self.engine_ok, self.engine_reason = False, str(e)[:2000]
        except Exception as e:  # an engine's unexpected error is its being down, as the server sees it
            self.engine_ok, self.engine_reason = False, f"health check failed: {e}"[:2000]
        else:
            self.engine_ok, self.engine_reason = True, ""
        return self.engine_ok, self.engine_reason

    def load(self) -> list[LoadMsg]:
        """The center's own load on its pools (known once the server said which pools it has)."""
        if not self.pools:
            return []
        now = time.time()
        out = []
        for x in self.engine.load(list(self.pools.values())):
            ends = None if x.expected_end == float("inf") else max(0.0, x.expected_end - now)
            out.append(LoadMsg(id=x.id[:200], pool=x.pool, nodes=list(x.nodes), devices_per_node=x.devices_per_node,
                               start_ago=min(max(0.0, now - x.start), 400 * 86400.0), ends_in=ends, what=x.what[:2000]))
        return out

    def answer(self, req: Req) -> Reply:
        """Logs of a run, also one the server has recorded as ended (the engine finds it again)."""
        try:
            native = self.native(req.handle)
            if not native:
                return Reply(rid=req.rid, ok=False, error=f"{self.center} holds no run {req.handle}")
            if req.kind == "logs":
                return Reply(rid=req.rid, text=self.engine.logs(native))
            offsets = dict(req.offsets)
            read = self.engine.log_delta if req.kind == "log_delta" else self.engine.log_rest
            return Reply(rid=req.rid, text=read(native, offsets), offsets=offsets)
        except Exception as e:  # the tenant sees why, the agent goes on
            return Reply(rid=req.rid, ok=False, error=f"logs of {req.handle}: {e}"[:2000])
