"""Several `zhisuan server` replicas on one PostgreSQL, started as child processes on loopback: the replica
tests and `zhisuan bench soak --replicas N` drive them. They share one runs folder, as replicas on one host
share the local engine's; a replica can reach the database through a fault proxy that a test cuts."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from zhisuan.bench.wan import FaultProxy
from zhisuan.serve.process import ServerProcess


class Plane:
    def __init__(self, folder: Path, network: Path, db: str, lease: float, interval: float = 0.2,
                 extra: list[str] | None = None) -> None:
        self.folder, self.network, self.db, self.lease = folder, network, db, lease
        self.interval, self.extra = interval, list(extra or [])
        self.runs = folder / "runs"
        self.servers: list[ServerProcess] = []
        self.proxies: list[FaultProxy] = []

    def add(self, via_proxy: bool = False, extra: list[str] | None = None) -> ServerProcess:
        db = self.db
        if via_proxy:  # this replica reaches the database through a proxy a test can cut
            host, port = db.split("@", 1)[1].split("/", 1)[0].split(":")
            proxy = FaultProxy((host, int(port))).start()
            self.proxies.append(proxy)
            db = db.replace(f"{host}:{port}", "{}:{}".format(*proxy.address))
        s = ServerProcess(self.network, db, self.runs, interval=self.interval,
                          extra=["--lease", str(self.lease), *self.extra, *(extra or [])])
        s.log = self.folder / f"server-{len(self.servers)}.log"
        self.servers.append(s.start())
        return s

    def alive(self) -> list[ServerProcess]:
        return [s for s in self.servers if s.proc is not None and s.proc.poll() is None]

    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def leader(self, limit: float = 15.0, not_: ServerProcess | None = None,
               above: int = 0) -> tuple[ServerProcess, int]:
        """The one replica that leads (every live replica asked agrees on it, at an epoch above `above`),
        waited for; `not_` (a frozen replica) is not asked."""
        end = time.time() + limit
        while time.time() < end:
            seen = []
            for s in self.alive():
                if s is not_:
                    continue
                try:
                    with s.client("admin") as c:
                        seen.append((s, c.get("/v1/control-plane", timeout=1).json()))
                except Exception:  # a replica that is stopping or starting
                    continue
            leads = [s for s, v in seen if v["leads"]]
            epochs = {v["epoch"] for _, v in seen}
            if len(leads) == 1 and len(epochs) == 1 and (epochs.pop() or 0) > above:
                return leads[0], int(seen[0][1]["epoch"])
            time.sleep(0.1)
        raise AssertionError(f"no single leader within {limit} s")

    def follower(self, leader: ServerProcess) -> ServerProcess:
        return next(s for s in self.alive() if s is not leader)

    def close(self) -> None:
        for s in self.servers:
            if s.proc is not None and s.proc.poll() is None:
                s.proc.send_signal(signal.SIGCONT)
        for s in self.servers:
            s.close()
        for p in self.proxies:
            p.stop()
