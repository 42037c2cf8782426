"""`zhisuan bench soak --replicas N` (and its short version in the tests): the soak's clients against a
control plane of N `zhisuan server` replicas on one PostgreSQL, while the leader is SIGKILLed or SIGSTOPped
at random; then every replica is restarted in turn (a rolling restart).

Clients submit (idempotency keys, retrying what was not acknowledged), cancel and call a model through the
gateway, each on one replica and on the next when that one stops answering — as behind a plain TCP load
balancer. After each disruption the time until another replica leads (a higher lease epoch, every live
replica agreeing) is a failover; the disrupted replica is then started again, as its supervisor would (a
frozen leader, thawed, finds its lease taken and exits 75 first). The end is the soak's: every key retried,
the network drained, the store and the jobs' marks compared with what clients were told, and no run or model
call on the bill twice.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zhisuan.bench.gateway import process
from zhisuan.bench.plane import Plane
from zhisuan.bench.soak import TOY3, Soak, SoakReport
from zhisuan.engines.rendezvous import free_port

MODEL = "echo"


@dataclass
class Failovers:
    seconds: list[float] = field(default_factory=list)  # signal to another replica leading
    signals: list[str] = field(default_factory=list)
    deposed: int = 0  # frozen leaders that, thawed, found their lease taken and exited 75
    restarted: int = 0  # replicas restarted one at a time at the end

    def pct(self, p: float) -> float:
        xs = sorted(self.seconds)
        return xs[min(len(xs) - 1, max(0, -(-len(xs) * p // 100) - 1))] if xs else float("nan")


class HaSoak(Soak):
    def __init__(self, db_url: str, folder: Path, replicas: int = 3, lease: float = 4.0, network: Path = TOY3,
                 seed: int = 20261206) -> None:
        super().__init__(db_url, folder, network, seed)
        self.replicas, self.lease, self.network = replicas, lease, network
        self.plane: Plane | None = None
        self.model = MODEL
        self.failovers = Failovers()

    def urls(self) -> list[str]:
        assert self.plane is not None
        return self.plane.urls()

    def token(self) -> str:
        assert self.plane is not None
        return self.plane.servers[0].token("acme")  # the replicas share the runs folder and its tokens

    def run_ha(self, clients: int, disruptions: int, uptime: tuple[float, float], pause: float = 0.5,
               signals: Sequence[int] = (signal.SIGKILL, signal.SIGSTOP), rolling: bool = True,
               progress: Callable[[str], None] = lambda _: None) -> tuple[SoakReport, Failovers]:
        """`disruptions` of the leader, each by a signal drawn from `signals`, `uptime` seconds apart."""
        t0 = time.time()
        backend_port = free_port()
        backend = f"http://127.0.0.1:{backend_port}"
        with process([sys.executable, "-m", "zhisuan.gateway.backend", "--port", str(backend_port), "--model", MODEL],
                     backend + "/health"):
            self.plane = plane = Plane(self.folder, self.network, self.db_url, self.lease,
                                       extra=["--model-backend", f"{MODEL}={backend}", "--log-level", "warning"])
            try:
                progress(f"starting {self.replicas} replicas")
                for _ in range(self.replicas):
                    plane.add()
                _, epoch = plane.leader(limit=60)
                threads = [threading.Thread(target=self.client, args=(self.rng.random(), pause), daemon=True)
                           for _ in range(clients)]
                for t in threads:
                    t.start()
                for i in range(disruptions):
                    time.sleep(self.rng.uniform(*uptime))
                    epoch = self.disrupt(plane, self.rng.choice(list(signals)), epoch)
                    progress(f"{i + 1}/{disruptions} failovers, last {self.failovers.seconds[-1]:.1f} s; "
                             f"{len(self.acked)} submits acknowledged")
                if rolling:
                    self.rolling_restart(plane, progress)
                self.stop.set()
                for t in threads:
                    t.join(timeout=30)
                leader, _ = plane.leader(limit=60)
                with leader.client("acme") as c:
                    self.drain(c, progress)
            finally:
                plane.close()
        self.report.kills = len(self.failovers.seconds)
        self.compare()
        self.report.seconds = time.time() - t0
        return self.report, self.failovers

    def disrupt(self, plane: Plane, sig: int, epoch: int) -> int:
        """Signal the leader; time until another leads; start it again. The new epoch."""
        leader, epoch = plane.leader(limit=60, above=epoch - 1)
        assert leader.proc is not None
        at = time.monotonic()
        os.killpg(leader.proc.pid, sig)
        _, now = plane.leader(limit=60, not_=leader, above=epoch)
        self.failovers.seconds.append(time.monotonic() - at)
        self.failovers.signals.append(signal.Signals(sig).name)
        if sig == signal.SIGSTOP:
            os.killpg(leader.proc.pid, signal.SIGCONT)
            self.failovers.deposed += leader.proc.wait(timeout=30) == 75
        else:
            leader.proc.wait(timeout=30)
        leader.start()  # as its supervisor would: it follows now
        return now

    def rolling_restart(self, plane: Plane, progress: Callable[[str], None]) -> None:
        """Each replica stopped (SIGTERM: a leader lets its lease go) and started again, one at a time."""
        for k, s in enumerate(plane.servers):
            progress(f"rolling restart: replica {k + 1}/{len(plane.servers)}")
            s.stop(signal.SIGTERM)
            s.start()
            plane.leader(limit=60)
            self.failovers.restarted += 1
