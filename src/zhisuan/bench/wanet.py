"""A network of centers across a real (emulated) WAN on this machine, for the agent tests and benchmarks: a
`zhisuan server` process (serving TLS with a throw-away CA, `trustme`, a dev dependency), each remote center
in a network namespace of its own (scripts/wan-up.sh) with its `zhisuan agent` process inside, reaching the
server only over its veth link and through a fault proxy (latency, resets, stalls: zhisuan.bench.wan) that
listens on the link's host side."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from zhisuan.bench.wan import FaultProxy
from zhisuan.engines.sandbox import reap
from zhisuan.serve.process import ServerProcess

ROOT = Path(__file__).resolve().parents[3]  # the repository: its scripts/ make the namespaces


def can_make_namespaces() -> bool:
    return os.geteuid() == 0 and subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0


@dataclass
class Center:
    name: str
    index: int
    proxy: FaultProxy
    state: Path
    engine: str = "local"
    config: Path | None = None
    agent: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    wrap: list[str] = field(default_factory=list)  # e.g. faketime
    args: list[str] = field(default_factory=list)  # more of `zhisuan agent`'s options (--store ...)
    owned: bool = True

    @property
    def host_ip(self) -> str:
        return f"198.18.{self.index}.1"


class Wan:
    def __init__(self, tmp: Path, network: str, one_way_ms: float = 20.0, tls: bool = True) -> None:
        self.tmp, self.one_way_ms, self.tls = tmp, one_way_ms, tls
        self.ca_file = tmp / "ca.pem"
        if tls:
            import trustme

            self.ca = trustme.CA()
            self.ca.cert_pem.write_to_path(str(self.ca_file))
        (tmp / "net.yaml").write_text(network)
        self.centers: dict[str, Center] = {}
        self.server: ServerProcess | None = None
        self._ips: list[str] = ["127.0.0.1"]

    def center(self, name: str, index: int, engine: str = "local", config: dict[str, object] | None = None,
               namespace: bool = True, owned: bool = True) -> Center:
        """A remote center: its namespace (unless `namespace` is False: it then reaches the server over loopback,
        still through its fault proxy) and the proxy on its link. Call before start(). `owned`: the namespace is
        this network's to make and remove (not one scripts/slurm-up.sh made for its cluster)."""
        if namespace and owned:
            subprocess.run(["bash", str(ROOT / "scripts" / "wan-up.sh"), name, str(index)], check=True,
                           capture_output=True)
        ip = f"198.18.{index}.1" if namespace else "127.0.0.1"
        self._ips.append(ip)
        cfg = None
        if config is not None:
            cfg = self.tmp / f"{name}-engine.yaml"
            cfg.write_text(json.dumps(config))
        state = self.tmp / f"agent-{name}"
        c = self.centers[name] = Center(name, index, FaultProxy(("127.0.0.1", 1), (ip, 0)), state, engine, cfg)
        c.wrap = [] if not namespace else ["nsenter", f"--net=/var/run/netns/zs-{name}"]
        c.owned = namespace and owned
        return c

    def inventory(self, name: str) -> str:
        """The center's pools as its agent reports them (`zhisuan agent --inventory`), for the network file."""
        c = self.centers[name]
        done = subprocess.run([*c.wrap, sys.executable, "-m", "zhisuan.cli.main", "agent", "--server", "http://x:1",
                               "--center", name, "--token-file", "/dev/null", "--engine", c.engine,
                               *(["--engine-config", str(c.config)] if c.config else []), "--state", str(c.state),
                               "--inventory"], capture_output=True, text=True, cwd=ROOT, timeout=60,
                              env={k: v for k, v in os.environ.items() if k != "SLURM_CONF"})
        assert done.returncode == 0, done.stderr
        return done.stdout

    def write_network(self, text: str) -> None:
        (self.tmp / "net.yaml").write_text(text)

    def start(self, interval: float = 0.2, extra: list[str] | None = None) -> ServerProcess:
        """The server; `extra`: more of its options (`--api-workers 1`)."""
        tls = None
        if self.tls:
            cert = self.ca.issue_cert(*self._ips)
            cert.private_key_and_cert_chain_pem.write_to_path(str(self.tmp / "server.pem"))
            tls = (self.tmp / "server.pem", self.tmp / "server.pem")
        self.server = ServerProcess(self.tmp / "net.yaml", f"sqlite:///{self.tmp / 'z.db'}", self.tmp / "runs",
                                    interval=interval, tls=tls, ca=self.ca_file if self.tls else None,
                                    extra=extra).start()
        for c in self.centers.values():
            c.proxy.upstream = ("127.0.0.1", self.server.port)
            c.proxy.start()
            c.proxy.set_latency(self.one_way_ms)
        return self.server

    def token(self, center: str) -> Path:
        assert self.server is not None
        path = self.tmp / f"{center}.token"
        if not path.exists():
            path.write_text(self.server.token(f"center:{center}"))
            path.chmod(0o600)
        return path

    def start_agent(self, name: str, extra: list[str] | None = None) -> subprocess.Popen[bytes]:
        c = self.centers[name]
        host, port = c.proxy.address
        cmd = [*c.wrap, *(extra or []), sys.executable, "-m", "zhisuan.cli.main", "agent",
               "--server", f"{'https' if self.tls else 'http'}://{host}:{port}", "--center", name,
               "--token-file", str(self.token(name)), "--state", str(c.state), "--engine", c.engine, "--tick", "0.2",
               *(["--ca", str(self.ca_file)] if self.tls else []),
               *(["--engine-config", str(c.config)] if c.config else []), *c.args]
        log = open(self.tmp / f"agent-{name}.log", "ab")  # noqa: SIM115  (the child holds it)
        env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}  # the center's config is its own
        c.agent = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=ROOT, start_new_session=True, env={**env, **c.env})
        return c.agent

    def kill_agent(self, name: str, sig: int = signal.SIGKILL) -> None:
        c = self.centers[name]
        if c.agent is not None and c.agent.poll() is None:
            os.killpg(c.agent.pid, sig)
            c.agent.wait(timeout=30)

    def wait_connected(self, *names: str, limit: float = 30.0) -> None:
        admin = self.client("admin")
        end = time.time() + limit
        while time.time() < end:
            up = {a["center"] for a in admin.get("/v1/agents").json() if a["connected"]}
            if set(names) <= up:
                return
            time.sleep(0.2)
        raise AssertionError(f"agents of {names} did not connect; see {self.tmp}/agent-*.log")

    def partition(self, name: str, cut: bool) -> None:
        subprocess.run(["ip", "link", "set", f"zsh-{name}", "down" if cut else "up"], check=True)

    def client(self, who: str) -> httpx.Client:
        assert self.server is not None
        return self.server.client(who)

    def job(self, who: str, spec: str) -> str:
        r = self.client(who).post("/v1/jobs", content=spec)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def until(self, who: str, job: str, states: set[str], limit: float = 60.0) -> dict[str, object]:
        c = self.client(who)
        end = time.time() + limit
        while time.time() < end:
            rec = c.get(f"/v1/jobs/{job}").json()
            if rec["state"] in states:
                return dict(rec)
            time.sleep(0.1)
        raise AssertionError((rec["state"], [h["why"] for h in rec["history"]]))

    def stop(self) -> None:
        """Leave nothing running: every job still active is cancelled through its center's agent first."""
        for c in self.centers.values():
            with contextlib.suppress(Exception):
                c.proxy.set_latency(0)
                c.proxy.blackhole(False)
                c.proxy.down(False)
                if c.owned:
                    self.partition(c.name, False)
        if self.server is not None and self.server.proc is not None and self.server.proc.poll() is None:
            with contextlib.suppress(Exception):
                admin = self.client("admin")
                active = [j["id"] for j in admin.get("/v1/jobs", params={"state": ["pending", "scheduled",
                                                                                   "running"]}).json()]
                for job in active:
                    admin.post(f"/v1/jobs/{job}/cancel")
                if active:
                    time.sleep(2)  # the cancels reach the agents
        for name in list(self.centers):
            self.kill_agent(name, signal.SIGTERM)
        for c in self.centers.values():
            reap(c.state)  # a local center's jobs outlive its agent, as they do a server
        if self.server is not None:
            self.server.close()
        for c in self.centers.values():
            c.proxy.stop()
        names = [c.name for c in self.centers.values() if c.owned]
        if names:
            subprocess.run(["bash", str(ROOT / "scripts" / "wan-down.sh"), *names], capture_output=True)
