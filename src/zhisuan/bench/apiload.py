"""`zhisuan bench api --clients N`: submissions per second and their latency under N concurrent clients while
the control loop works a queue of 10,000 jobs, beside `sbatch` to a real slurmctld at 1, 4 and N clients.

The queue: 10,000 whole-node jobs stored before the servers start; the first four fill the network (real
processes that sleep), the rest wait, and every control step (the server's default interval, 1 s) reads and
schedules all of them — submits arrive while the loop works. The load generator is `wrk` (Debian's; C,
persistent HTTP/1.1 connections, a Lua script that POSTs the YAML spec with the bearer token), so the figure
is the server's; with several replicas the connections are split among them, as a TCP load balancer would,
one wrk per replica, and the p99 reported is the worst replica's. With API workers (`--api-workers`), the
server's own process keeps to the control loop and the workers answer the port. sbatch: Slurm's own client,
N threads each running it in turn, held jobs (queued, never run), the rate over the whole run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from zhisuan.bench.api import NETWORK, Sbatch, parse_wrk, why_refused, wrk
from zhisuan.bench.plane import Plane
from zhisuan.serve.process import ServerProcess

QUEUE_SPEC = "name: waiting\ntenant: acme\nresources: {accelerators: a100:8}\nrun: sleep 600\n"
INTERVAL = 1.0  # `zhisuan server`'s default control interval
WORKERS = {0: "", 1: " + 1 API worker", 2: " + 2 API workers"}


@dataclass
class Load:
    name: str
    clients: int
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int = 0


def load(name: str, urls: list[str], token: str, clients: int, seconds: float, folder: Path) -> Load:
    """`clients` connections split over `urls`, a warm-up, then `seconds` measured."""
    split = [clients // len(urls) + (1 if k < clients % len(urls) else 0) for k in range(len(urls))]
    for phase in (min(3.0, seconds), seconds):
        procs = [wrk(u, token, c, phase, folder) for u, c in zip(urls, split, strict=True) if c]
        results = [parse_wrk(p.communicate(timeout=phase + 60)[0]) for p in procs]
    if any(r[2] for r in results):
        why_refused(urls[0], token)
    rate = sum((n - errors) / max(s, 1e-9) for n, s, errors, *_ in results)  # answered 201 only
    return Load(name, clients, rate, sum(r[3] for r in results) / len(results), max(r[4] for r in results),
                sum(r[2] for r in results))


def queue(db: str, jobs: int) -> None:
    """`jobs` whole-node jobs waiting in the store before any server starts."""
    from zhisuan.model import parse_job_spec
    from zhisuan.store import JobStore, connect, migrate

    engine = connect(db)
    migrate(engine)
    store, spec, now = JobStore(engine), parse_job_spec(QUEUE_SPEC), time.time()
    for i in range(jobs):
        store.submit(spec, now + i * 1e-4)
    engine.dispose()


@contextmanager
def work_folder() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="zhisuan-bench-"))
    work.chmod(0o711)  # jobs run under uids of their own and pass through to their folders
    (work / "net.yaml").write_text(NETWORK)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def one_server(name: str, db: str, pending: int, clients: int, seconds: float, workers: int = 0) -> Load:
    """One `zhisuan server`; with `workers`, its API answered by that many API workers (serve/workers.py)."""
    with work_folder() as work:
        queue(db, pending)
        server = ServerProcess(work / "net.yaml", db, work / "runs", interval=INTERVAL,
                               extra=["--log-level", "warning", "--api-workers", str(workers)]).start()
        try:
            return load(name, [server.url], server.token("acme"), clients, seconds, work)
        finally:
            server.close()


def replicas(name: str, db: str, n: int, pending: int, clients: int, seconds: float) -> Load:
    with work_folder() as work:
        queue(db, pending)
        plane = Plane(work, work / "net.yaml", db, lease=8.0, interval=INTERVAL, extra=["--log-level", "warning"])
        try:
            for _ in range(n):
                plane.add()
            plane.leader(limit=60)
            return load(name, plane.urls(), plane.servers[0].token("acme"), clients, seconds, work)
        finally:
            plane.close()


def sbatch(clients: int, total: int, slurm_conf: str) -> Load:
    slurm = Sbatch(total // clients, slurm_conf)
    lat: list[float] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for _ in range(n):
            t0 = time.perf_counter()
            slurm.submit()
            with lock:
                lat.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client, args=(total // clients,)) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    slurm.cancel()
    lat.sort()
    return Load(f"sbatch, {clients} client{'s' if clients > 1 else ''}", clients, len(lat) / wall,
                lat[len(lat) // 2] * 1000, lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000)


def run(clients: int, pending: int, seconds: float, n_replicas: int,
        progress: Callable[[str], None] = lambda _: None) -> list[Load]:
    from zhisuan.bench.pg import scratch_database

    subprocess.run(["bash", "scripts/apt-ensure.sh", "wrk"], check=True, capture_output=True)
    out: list[Load] = []
    for workers in (0, 1, 2):  # SQLite takes one writer at a time: the workers' submits take turns (a lock file)
        with tempfile.TemporaryDirectory() as tmp:
            progress(f"zhisuan server on SQLite, {workers} API workers, {clients} clients, the loop on {pending:,} "
                     "waiting jobs")
            out.append(one_server(f"zhisuan, 1 server{WORKERS[workers]}, SQLite", f"sqlite:///{tmp}/bench.db",
                                  pending, clients, seconds, workers))
    progress("starting PostgreSQL")
    for workers in (0, 2):
        with scratch_database() as db:
            progress(f"zhisuan server on PostgreSQL, {workers} API workers, {clients} clients")
            out.append(one_server(f"zhisuan, 1 server{WORKERS[workers]}, PostgreSQL", db, pending, clients, seconds,
                                  workers))
    with scratch_database() as db:
        progress(f"{n_replicas} replicas on PostgreSQL, {clients} clients")
        out.append(replicas(f"zhisuan, {n_replicas} replicas, PostgreSQL", db, n_replicas, pending, clients, seconds))
    progress("starting Slurm")
    subprocess.run(["bash", "scripts/slurm-up.sh"], check=True, capture_output=True)
    try:
        for c in sorted({1, 4, clients}):
            progress(f"sbatch, {c} clients")
            out.append(sbatch(c, max(200, 25 * c), "/tmp/zhisuan-slurm/alpha/etc/slurm.conf"))
    finally:
        subprocess.run(["bash", "scripts/slurm-down.sh"], check=False, capture_output=True)
    return out
