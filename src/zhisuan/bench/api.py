"""`zhisuan bench api`: job submissions per second and latency against a running `zhisuan server`
(SQLite, then PostgreSQL), beside `sbatch` to a real slurmctld on this machine as the baseline.

Both sides only queue: the server runs with a long control interval, sbatch jobs are held, so each
measures accepting a job durably, not running it. Run from the repo root (it uses scripts/).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zhisuan.control.launch import ServerProcess

SPEC = b"name: bench\ntenant: acme\nresources: {accelerators: a100:1}\nrun: 'true'\n"
NETWORK = """name: bench
centers:
  - {name: here, region: east, pue: 1.2, carbon_kg_per_kwh: 0.5,
     pools: [{name: gpu, accelerator: a100, nodes: 4, devices_per_node: 8, price_per_device_hour: 10}]}
tenants: [{name: acme}]
"""


@dataclass
class Rate:
    name: str
    latencies: list[float]
    wall: float

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.wall

    def pct(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100)[int(q) - 1] * 1000.0


def _timed(n: int, one: Callable[[], None]) -> tuple[list[float], float]:
    lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        s = time.perf_counter()
        one()
        lat.append(time.perf_counter() - s)
    return lat, time.perf_counter() - t0


def api_rate(name: str, db: str, n: int) -> Rate:
    work = Path(tempfile.mkdtemp(prefix="zhisuan-bench-"))
    (work / "net.yaml").write_text(NETWORK)
    server = ServerProcess(work / "net.yaml", db, work / "runs", interval=3600).start()
    try:
        with server.client("acme") as client:
            for _ in range(20):  # warm-up
                client.post("/v1/jobs", content=SPEC)

            def submit() -> None:
                r = client.post("/v1/jobs", content=SPEC)
                if r.status_code != 201:
                    raise RuntimeError(f"submit failed: {r.status_code} {r.text}")

            lat, wall = _timed(n, submit)
        return Rate(name, lat, wall)
    finally:
        server.stop()


def sbatch_rate(n: int, slurm_conf: str) -> Rate:
    env = {**os.environ, "SLURM_CONF": slurm_conf}
    env.pop("SLURM_CLUSTERS", None)

    def submit() -> None:
        subprocess.run(["sbatch", "--parsable", "--hold", "-o", "/dev/null", "--gres=gpu:a100:1", "--wrap", "true"],
                       env=env, check=True, capture_output=True)

    lat, wall = _timed(n, submit)
    subprocess.run(["scancel", "--partition=gpu"], env=env, check=False)
    return Rate("sbatch (slurmctld, this machine)", lat, wall)


def run(n: int, progress: Callable[[str], None] = lambda _: None) -> list[Rate]:
    rates = []
    progress("zhisuan server on SQLite")
    rates.append(api_rate("zhisuan API, SQLite (WAL)", f"sqlite:///{tempfile.mkdtemp()}/bench.db", n))
    progress("starting PostgreSQL")
    subprocess.run(["bash", "scripts/postgres-up.sh"], check=True, capture_output=True)
    try:
        url = "postgresql+psycopg://postgres@127.0.0.1:5434/postgres"
        progress("zhisuan server on PostgreSQL")
        rates.append(api_rate("zhisuan API, PostgreSQL", url, n))
    finally:
        subprocess.run(["bash", "scripts/postgres-down.sh"], check=False, capture_output=True)
    progress("starting Slurm")
    subprocess.run(["bash", "scripts/slurm-up.sh"], check=True, capture_output=True)
    try:
        progress("sbatch")
        rates.append(sbatch_rate(n, "/tmp/zhisuan-slurm/etc/slurm.conf"))
    finally:
        subprocess.run(["bash", "scripts/slurm-down.sh"], check=False, capture_output=True)
    return rates
