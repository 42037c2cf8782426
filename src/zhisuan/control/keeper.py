"""Keeps every active model service at its replicas: each replica an ordinary job of the service's spec
(placed by the scheduler, started by its center's engine, recorded and billed as jobs are), told its port;
a replica that ended (its process died, its center failed it) is replaced — the scheduler places the new
one wherever suits best now. Readiness is probed off the control loop (a thread; a slow replica never
stalls a step); the gateway routes to the endpoints published here.

Autoscaling (a service's `autoscale`): the gateway reports each replica's requests in flight and tokens
served (`load`); the wanted replicas are the load over the last `WINDOW` seconds ÷ the target per replica,
between min and max. Up after `up_after` seconds since the last change; down only when the load has
stayed low for `down_after`: the replica to go is drained first (no new requests) and cancelled once its
requests in flight are done.
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from zhisuan.control.link import CenterLink
from zhisuan.control.probe import Target, on_this_machine, probe_all
from zhisuan.control.tunnel import probe_many
from zhisuan.engines import Fleet
from zhisuan.model import JobState, Network
from zhisuan.model.jobspec import Autoscale
from zhisuan.store import JobRecord, JobStore, ServiceRecord, ServiceStore
from zhisuan.store.services import SERVICE_ENV, SERVICE_KEY_ENV

log = logging.getLogger("zhisuan.services")

PORTS = range(20_000, 30_000)  # where replicas are told to listen
MAX_BACKOFF = 300.0  # seconds at most between replacements of a service's failing replicas
WINDOW = 10.0  # seconds of load the wanted replicas are computed over
Load = dict[str, tuple[int, int]]  # replica job -> (requests in flight, completion tokens served so far)
Where = tuple[str, str, int | None]  # (engine handle, host, the uid that must listen on its port or None)


@dataclass(frozen=True)
class Endpoint:
    replica: str  # its job id
    service: str
    tenant: str
    model: str
    url: str
    center: str
    ready: bool
    draining: bool = False
    rank: tuple[float, float] = (0.0, 0.0)  # its pool's ¥ per device-hour, kgCO2 per kWh there: on a tie in
    region: str = ""  # load the cheaper, then the greener first (a client may prefer its region over both)
    key: str = field(default="", repr=False)  # the bearer key the replica answers to
    via: tuple[str, str] | None = None  # (center, run handle): reached through that center's agent (a tunnel)


def port_free(port: int) -> bool:
    """Whether a TCP port on this host's loopback can be bound now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


PORT_TRIES = 64  # ports tried free on this host before one is taken untried (a job may hold them all)


def _choose_port(seed: int, used: set[int]) -> int:
    """A port for a new replica: none another replica was given, and free here if one of a few tried is. A
    job that binds the whole range only costs its own replicas a failed bind (replaced, with back-off), never
    the keeper its step; and the check is only this host's (a replica at another center binds there)."""
    candidates = [p for k in range(len(PORTS)) if (p := PORTS[(seed + k) % len(PORTS)]) not in used]
    if not candidates:
        raise OSError(f"every replica port ({PORTS.start}-{PORTS.stop - 1}) is given to a replica")
    return next((p for p in candidates[:PORT_TRIES] if port_free(p)), candidates[0])


class ServiceKeeper:
    def __init__(self, jobs: JobStore, services: ServiceStore, network: Network, fleet: Fleet,
                 cancel: Callable[[str, float], object], probe_every: float = 1.0) -> None:
        self.jobs, self.services, self.network, self.fleet, self.cancel = jobs, services, network, fleet, cancel
        self.load: Callable[[], Load] | None = None  # set by the gateway that routes to these replicas
        self.retired_tokens: Callable[[str], int] | None = None  # and what replicas since gone served
        self.samples: dict[str, deque[tuple[float, float, float]]] = {}  # service -> (t, in flight, tokens)
        self.changed_at: dict[str, float] = {}  # service -> when its wanted replicas last changed
        self.draining: set[str] = set()
        self.window = WINDOW
        self.probe_every = probe_every
        self.hosts: dict[str, Where] = {}  # replica job -> where its engine said it runs
        self.failures: dict[str, int] = {}  # service -> replicas failed in a row, none ready since
        self.retry_at: dict[str, float] = {}  # service -> no replacement before (crash-loop back-off)
        self.replicas: dict[str, set[str]] = {}  # service id -> its live replica jobs
        self.records: dict[str, JobRecord] = {}  # replica job -> latest record
        self.ready: dict[str, bool] = {}  # replica job -> its ready path answered 200 at the last probe
        self.version = 0  # bumped whenever the endpoints change
        self._endpoints: list[Endpoint] = []
        self._deployed: frozenset[tuple[str, str]] = frozenset()  # (tenant, model) of the active services
        self._lock = threading.RLock()  # the loop's step and the prober share the maps below
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._recovered = False
        self._rank = {f"{c.name}/{p.name}": (p.price_per_device_hour, c.carbon_kg_per_kwh * c.pue)
                      for c in network.centers for p in c.pools}
        self._region = {c.name: c.region for c in network.centers}

    # ---- the loop's step ---------------------------------------------------------------------------

    def step(self, now: float) -> None:
        with self._lock:
            self._step(now)

    def _step(self, now: float) -> None:
        if not self._recovered:
            self._recover()
        active = {s.id: s for s in self.services.list(active_only=True)}
        live = [j for ids in self.replicas.values() for j in ids]
        fresh = self.jobs.get_many(live) if live else {}
        for sid, ids in list(self.replicas.items()):
            for j in list(ids):
                rec = fresh.get(j)
                if rec is None or rec.state.terminal:
                    ids.discard(j)
                    self._forget(j)
                    if rec is not None and rec.state in (JobState.FAILED, JobState.SUCCEEDED) and sid in active:
                        self._failed(sid, now)  # a server that exits, even with 0, is a replica gone
                        log.info("replica %s of %s ended (%s): replacing it", j, sid, rec.reason)
                else:
                    self.records[j] = rec
            if sid not in active:
                for j in ids:
                    with contextlib.suppress(Exception):
                        self.cancel(j, now)
                    self._forget(j)
                del self.replicas[sid]
        self._deployed = frozenset((s.tenant, s.model) for s in active.values())
        load = self.load() if self.load is not None else {}
        for sid, svc in active.items():
            ids = self.replicas.setdefault(sid, set())
            auto = svc.spec.service.autoscale if svc.spec.service else None
            desired = svc.desired
            if auto is not None and self.load is not None:
                desired = self._scale(svc, auto, ids, load, now)
            serving = ids - self.draining
            if len(serving) < desired and now >= self.retry_at.get(sid, 0.0):
                try:
                    for _ in range(desired - len(serving)):
                        ids.add(self._submit(svc, now))
                except (OSError, ValueError) as e:  # this service waits; the others and the step go on
                    log.warning("no new replica for %s: %s", sid, e)
                    self.retry_at[sid] = now + 5.0
            if len(serving) > desired:  # drain the replica with the fewest requests in flight, newest first
                for j in sorted(serving, key=lambda j: (load.get(j, (0, 0))[0], -self.records[j].submitted_at,
                                                         j))[: len(serving) - desired]:
                    self.draining.add(j)
            for j in sorted(ids & self.draining):
                if load.get(j, (0, 0))[0] == 0:
                    with contextlib.suppress(Exception):
                        self.cancel(j, now)
                    ids.discard(j)
                    self._forget(j)
        for known in (self.failures, self.retry_at, self.samples, self.changed_at):  # of stopped services
            for sid in set(known) - set(active):
                known.pop(sid, None)
        self._publish()

    def _forget(self, job: str) -> None:
        for known in (self.records, self.ready, self.hosts):
            known.pop(job, None)
        self.draining.discard(job)

    def _failed(self, service: str, now: float) -> None:
        """A replica failed: the first is replaced at once, then after 5, 10, 20 ... 300 s while none of the
        service's replicas gets ready (a command that cannot start must not flood the store with jobs)."""
        n = self.failures[service] = self.failures.get(service, 0) + 1
        if n > 1:
            self.retry_at[service] = now + min(MAX_BACKOFF, 5.0 * 2 ** (n - 2))

    def _scale(self, svc: ServiceRecord, auto: Autoscale, ids: set[str], load: Load, now: float) -> int:
        """The replicas the load wants (min..max), moved within the cooldowns; stored when it changes."""
        assert svc.spec.service is not None
        bounds = svc.spec.service.replicas
        samples = self.samples.setdefault(svc.id, deque())
        samples.append((now, float(sum(load.get(j, (0, 0))[0] for j in ids)),
                        float(sum(load.get(j, (0, 0))[1] for j in ids))))
        while samples and samples[0][0] < now - max(self.window, auto.down_after) - 1.0:
            samples.popleft()

        target = auto.inflight or auto.tokens_per_s or 1.0

        def level(since: float, peak: bool) -> float:
            """Requests in flight (mean, or the peak) or tokens/s since `since`."""
            recent = [s for s in samples if s[0] >= since] or [samples[-1]]
            if auto.inflight is not None:
                values = [s[1] for s in recent]
                return max(values) if peak else sum(values) / len(values)
            return max(0.0, recent[-1][2] - recent[0][2]) / max(recent[-1][0] - recent[0][0], 1.0)

        def replicas_for(value: float) -> int:
            return min(bounds.max, max(bounds.min, math.ceil(value / target - 1e-9)))

        last = self.changed_at.get(svc.id, svc.created_at)
        desired = svc.desired
        now_want = replicas_for(level(now - self.window, peak=False))
        if now_want > desired and now - last >= auto.up_after:
            desired = now_want
        elif now_want < desired and now - last >= auto.down_after:
            desired = max(now_want, replicas_for(level(now - auto.down_after, peak=True)))  # low all along
        if desired != svc.desired:
            log.info("service %s: %d -> %d replicas", svc.id, svc.desired, desired)
            self.services.set_desired(svc.id, desired, now)
            self.changed_at[svc.id] = now
        return desired

    def _recover(self) -> None:
        """Replica jobs already in the store (a restart) are the services' again: a service's own kind of
        job, of its tenant, naming it."""
        owners = {s.id: s.tenant for s in self.services.list()}
        for rec in self.jobs.find_naming(list(owners), {s for s in JobState if not s.terminal}):
            sid = rec.spec.env.get(SERVICE_ENV, "")
            if rec.spec.service is not None and owners.get(sid) == rec.tenant:
                self.replicas.setdefault(sid, set()).add(rec.id)
                self.records[rec.id] = rec
        self._recovered = True

    def follow(self) -> None:
        """A replica that does not lead: which jobs serve which model, read from the store (the leader starts
        and stops them); this replica's probes find which answer, so its gateway routes as the leader's does."""
        with self._lock:
            active = {s.id: s for s in self.services.list(active_only=True)}
            before, self.replicas = set(self.records), {}
            self._recover()
            self.replicas = {sid: ids for sid, ids in self.replicas.items() if sid in active}
            for j in before - {j for ids in self.replicas.values() for j in ids}:
                self._forget(j)  # ended since: its readiness and address go
            self._deployed = frozenset((s.tenant, s.model) for s in active.values())
            self._recovered = False  # leading later, it reads them again
            self._publish()

    def _submit(self, svc: ServiceRecord, now: float) -> str:
        assert svc.spec.service is not None
        used = {int(r.spec.env.get(svc.spec.service.port_env, "0") or 0) for r in self.records.values()}
        port = _choose_port(zlib.crc32(f"{svc.id}{now}{len(used)}".encode()), used)
        n = len(self.replicas.get(svc.id, ())) + 1
        # its own key: another job that reaches the replica's port (on the same node, say) cannot use it
        env = {**svc.spec.env, SERVICE_ENV: svc.id, SERVICE_KEY_ENV: secrets.token_urlsafe(24),
               svc.spec.service.port_env: str(port)}
        # a replica holds no state of its own: when its center is lost it is placed again elsewhere
        loss = svc.spec.on_center_loss or svc.spec.recovery or "requeue"
        spec = svc.spec.model_copy(update={"name": f"{svc.name}-r{n}"[:128], "env": env, "on_center_loss": loss})
        rec = self.jobs.submit_record(spec, now, actor=f"service {svc.id}")
        self.records[rec.id] = rec
        return rec.id

    # ---- endpoints ---------------------------------------------------------------------------------

    def _url(self, rec: JobRecord) -> str | None:
        """Member 0's address as its engine gave it (known once the prober asked) and the replica's port."""
        known = self.hosts.get(rec.id)
        if rec.spec.service is None or known is None or known[0] != rec.engine_handle:
            return None
        host = f"[{known[1]}]" if ":" in known[1] else known[1]
        return f"http://{host}:{rec.spec.env.get(rec.spec.service.port_env)}"

    def _publish(self) -> None:
        """Caller holds the lock."""
        out = []
        for sid, ids in self.replicas.items():
            for j in sorted(ids):
                rec = self.records.get(j)
                url = self._url(rec) if rec is not None and rec.state is JobState.RUNNING else None
                if rec is None or url is None or rec.spec.service is None:
                    continue
                out.append(Endpoint(j, sid, rec.tenant, rec.spec.service.model, url, rec.center or "",
                                    self.ready.get(j, False), j in self.draining,
                                    self._rank.get(f"{rec.center}/{rec.pool}", (0.0, 0.0)),
                                    self._region.get(rec.center or "", ""),
                                    rec.spec.env.get(SERVICE_KEY_ENV, ""),
                                    (rec.center or "", rec.engine_handle or "") if self._remote(j) else None))
        if out != self._endpoints:
            self._endpoints = out
            self.version += 1

    def endpoints(self) -> tuple[int, list[Endpoint]]:
        with self._lock:
            return self.version, list(self._endpoints)

    def deployed(self, model: str, tenant: str) -> bool:
        """Whether the tenant has an active service of that model, ready or not (a 503 then, not a 404)."""
        return (tenant, model) in self._deployed

    # ---- readiness, off the loop -------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._probe_forever, name="zhisuan-services", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def probe(self) -> None:
        """One round: where each running replica is, asked of its engine once (its address, and on this
        machine the uid that must listen on its port), then all their ready paths (control/probe.py)."""
        with self._lock:
            running = [rec for ids in self.replicas.values() for j in sorted(ids)
                       if (rec := self.records.get(j)) is not None and rec.state is JobState.RUNNING
                       and rec.spec.service is not None and rec.engine_handle]
            known = dict(self.hosts)
        found: dict[str, Where] = {}
        targets = []
        for rec in running:
            assert rec.spec.service is not None and rec.engine_handle is not None
            where = known.get(rec.id)
            if where is None or where[0] != rec.engine_handle:
                where = self._where(rec)
                if where is None:
                    continue
                found[rec.id] = where
            targets.append(Target(rec.id, where[1], int(rec.spec.env.get(rec.spec.service.port_env, "0") or 0),
                                  rec.spec.service.ready, rec.spec.env.get(SERVICE_KEY_ENV, ""), where[2]))
        tunnelled = [t for t in targets if self._remote(t.replica)]
        answers = probe_all([t for t in targets if t not in tunnelled])
        for center in {self.records[t.replica].center or "" for t in tunnelled}:
            link = self.fleet.of(center)
            assert isinstance(link, CenterLink)
            answers.update(probe_many(link, [(t.replica, self.records[t.replica].engine_handle or "", t.port, t.path,
                                              t.key) for t in tunnelled if self.records[t.replica].center == center]))
        with self._lock:
            self.hosts.update((j, h) for j, h in found.items() if j in self.records)
            self.ready.update((j, ok) for j, ok in answers.items() if j in self.records)
            for j, ok in answers.items():
                sid = self.records[j].spec.env.get(SERVICE_ENV, "") if ok and j in self.records else ""
                self.failures.pop(sid, None)
                self.retry_at.pop(sid, None)
            self._publish()

    def _remote(self, job_id: str) -> bool:
        """Whether a replica runs at a center that joins through its agent (reached through a tunnel)."""
        rec = self.records.get(job_id)
        return rec is not None and bool(getattr(self.fleet.of(rec.center or ""), "remote", False))

    def _where(self, rec: JobRecord) -> Where | None:
        """(engine handle, host, uid that must listen on its port or None), or None while unknown."""
        assert rec.engine_handle is not None
        engine = self.fleet.of(rec.center or "")
        try:
            host = engine.host_of(rec.engine_handle)
            uid_of = getattr(engine, "uid_of", None)
            here = host and not getattr(engine, "remote", False) and on_this_machine(host)
            uid = uid_of(rec.engine_handle) if here and uid_of is not None else None
        except Exception as e:  # an engine that does not answer now: asked again next round
            log.warning("where replica %s runs: %s", rec.id, e)
            return None
        return (rec.engine_handle, host, uid) if host else None

    def _probe_forever(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                self.probe()
            except Exception:  # a bad round must not end the prober
                log.exception("readiness probe failed")
            self._stop.wait(max(0.0, self.probe_every - (time.monotonic() - t)))
