"""`zhisuan bench api`: job submissions per second and latency against a running `zhisuan server`
(SQLite, then PostgreSQL), beside `sbatch` to a real slurmctld on this machine as the baseline.

Both sides only queue: the server runs with a long control interval, sbatch jobs are held, so each
measures accepting a job durably, not running it. Run from the repo root (it uses scripts/).

Each server is loaded twice over one persistent HTTP/1.1 connection: by Python's http.client (what a
Python tenant's client pays too) and by `wrk` (Debian's, C; what the server itself takes, the figure
`submit-ratio-vs-sbatch` uses: sbatch too is its project's own C client, whose process start is part of
Slurm's submission path). Each side runs `rounds` blocks (n/rounds submissions, or two seconds of wrk); the
rate is the median block. The machine is noisy (±30% from one minute to the next), so sbatch's blocks run
between the SQLite wrk side's, and the ratio is the median of the pairs' ratios.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from zhisuan.bench.pg import scratch_database
from zhisuan.serve.process import ServerProcess

log = logging.getLogger("zhisuan.bench")
SPEC = b"name: bench\ntenant: acme\nresources: {accelerators: a100:1}\nrun: 'true'\n"
NETWORK = """name: bench
centers:
  - {name: here, region: east, pue: 1.2, carbon_kg_per_kwh: 0.5,
     pools: [{name: gpu, accelerator: a100, nodes: 4, devices_per_node: 8, price_per_device_hour: 10}]}
tenants: [{name: acme}]
"""


WRK_SCRIPT = """wrk.method = "POST"
wrk.body = [[%(body)s]]
wrk.headers["Content-Type"] = "application/yaml"
wrk.headers["Authorization"] = "Bearer %(token)s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("ZHISUAN %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Rate:
    name: str
    latencies: list[float]
    block_rates: list[float]
    quantiles: dict[int, float] | None = None  # ms, as the load generator reported them (wrk: the median block's)
    submitted: int = 0  # submits acknowledged while measured

    @property
    def per_second(self) -> float:
        return statistics.median(self.block_rates)

    def pct(self, q: float) -> float:
        if self.quantiles is not None:
            return self.quantiles[int(q)]
        return statistics.quantiles(self.latencies, n=100)[int(q) - 1] * 1000.0


def wrk(url: str, token: str, connections: int, seconds: float, folder: Path) -> subprocess.Popen[str]:
    # a file of its own: wrk reads it as it starts, and another wrk's script rewritten meanwhile (the same
    # name) left it a half-written one — it then sent plain GETs, every one an error
    fd, name = tempfile.mkstemp(suffix=".lua", dir=folder)
    with os.fdopen(fd, "w") as f:
        f.write(WRK_SCRIPT % {"body": SPEC.decode(), "token": token})
    script = Path(name)
    return subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s",
                             str(script), url + "/v1/jobs"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def parse_wrk(out: str) -> tuple[int, float, int, float, float]:
    m = re.search(r"ZHISUAN (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if m is None:
        raise RuntimeError(f"wrk said: {out[-1500:]}")
    n, us, errors, p50, p99 = (int(x) for x in m.groups())
    return n, us / 1e6, errors, p50 / 1000, p99 / 1000




def why_refused(url: str, token: str) -> None:
    """After a block wrk counted errors in: one submit sent again to log what the server answers. (wrk's
    per-response Lua hook, which could log the first, cost wrk a few percent of the rate it measures.)"""
    r = httpx.post(url + "/v1/jobs", content=SPEC, timeout=30,
                   headers={"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"})
    if r.status_code != 201:
        log.warning("a submit answered %d: %s", r.status_code, r.text[:300])


def _timed(n: int, rounds: int, one: Callable[[], None]) -> tuple[list[float], list[float]]:
    """Latency of every call and the rate of each of `rounds` blocks."""
    lat: list[float] = []
    rates = []
    per_block = max(1, n // rounds)
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(per_block):
            s = time.perf_counter()
            one()
            lat.append(time.perf_counter() - s)
        rates.append(per_block / (time.perf_counter() - t0))
    return lat, rates


def api_rate(name: str, db: str, n: int, rounds: int,
             beside: Callable[[], None] = lambda: None) -> tuple[Rate, Rate]:
    """The server answering one Python client (http.client), then wrk on one connection (`rounds` blocks of
    two seconds): the second is the server's own rate, without a Python client's costs in it. `beside` runs
    after each wrk block (a block of sbatch: both sides then meet the same moments of a noisy machine)."""
    work = Path(tempfile.mkdtemp(prefix="zhisuan-bench-"))
    work.chmod(0o711)  # jobs run under uids of their own and pass through to their folders
    (work / "net.yaml").write_text(NETWORK)
    server = ServerProcess(work / "net.yaml", db, work / "runs", interval=3600).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Authorization": f"Bearer {server.token('acme')}", "Content-Type": "application/yaml"}

    def submit() -> None:
        conn.request("POST", "/v1/jobs", body=SPEC, headers=headers)
        r = conn.getresponse()
        body = r.read()
        if r.status != 201:
            raise RuntimeError(f"submit failed: {r.status} {body.decode(errors='replace')}")

    try:
        for _ in range(20):  # warm-up
            submit()
        lat, rates = _timed(n, rounds, submit)
        blocks = []
        for _ in range(rounds):
            blocks.append(parse_wrk(wrk(server.url, server.token("acme"), 1, 2.0, work).communicate(timeout=60)[0]))
            beside()
        if any(b[2] for b in blocks):
            why_refused(server.url, server.token("acme"))
        mid = sorted(blocks, key=lambda b: b[0] / b[1])[len(blocks) // 2]
        return (Rate(name + ", Python client", lat, rates, submitted=len(lat)),
                Rate(name + ", wrk", [], [(b[0] - b[2]) / b[1] for b in blocks], {50: mid[3], 99: mid[4]},
                     submitted=sum(b[0] - b[2] for b in blocks)))
    finally:
        conn.close()
        server.close()
        shutil.rmtree(work, ignore_errors=True)


class Sbatch:
    """sbatch to the repo's first Slurm cluster (held jobs: queued, never run); one client in blocks, or the
    submit alone for several clients at once (bench/apiload.py)."""

    def __init__(self, per_block: int, slurm_conf: str) -> None:
        self.per_block = per_block
        self.env = {**os.environ, "SLURM_CONF": slurm_conf}
        self.env.pop("SLURM_CLUSTERS", None)
        self.latencies: list[float] = []
        self.block_rates: list[float] = []

    def submit(self) -> None:
        subprocess.run(["sbatch", "--parsable", "--hold", "-o", "/dev/null", "--gres=gpu:a100:1", "--wrap", "true"],
                       env=self.env, check=True, capture_output=True)

    def block(self) -> None:
        lat, rates = _timed(self.per_block, 1, self.submit)
        self.latencies += lat
        self.block_rates += rates

    def cancel(self) -> None:
        subprocess.run(["scancel", "--partition=gpu"], env=self.env, check=False)

    def rate(self) -> Rate:
        self.cancel()
        return Rate("sbatch (slurmctld, this machine)", self.latencies, self.block_rates)


def run(n: int, rounds: int = 5, progress: Callable[[str], None] = lambda _: None) -> list[Rate]:
    """SQLite's sides (Python client, wrk) with a block of sbatch after each wrk block, then PostgreSQL's.
    The last Rate is sbatch's; its blocks pair with the SQLite wrk side's, block for block."""
    subprocess.run(["bash", "scripts/apt-ensure.sh", "wrk"], check=True, capture_output=True)
    rates: list[Rate] = []
    progress("starting Slurm")
    subprocess.run(["bash", "scripts/slurm-up.sh"], check=True, capture_output=True)
    try:
        sbatch = Sbatch(max(1, n // rounds), "/tmp/zhisuan-slurm/alpha/etc/slurm.conf")
        for _ in range(10):  # warm-up: slurmctld's first submissions are slower
            sbatch.submit()
        progress("zhisuan server on SQLite, sbatch between its blocks")
        with tempfile.TemporaryDirectory() as tmp:
            rates.extend(api_rate("zhisuan API, SQLite (WAL)", f"sqlite:///{tmp}/bench.db", n, rounds, sbatch.block))
        sbatch_side = sbatch.rate()
    finally:
        subprocess.run(["bash", "scripts/slurm-down.sh"], check=False, capture_output=True)
    progress("starting PostgreSQL")
    with scratch_database() as url:
        progress("zhisuan server on PostgreSQL")
        rates.extend(api_rate("zhisuan API, PostgreSQL", url, n, rounds))
    rates.append(sbatch_side)
    return rates


def pair_ratios(ours: Rate, theirs: Rate) -> list[float]:
    """Block-by-block ratios: each wrk block over the sbatch block right after it (their median is
    `submit-ratio-vs-sbatch`)."""
    return [a / b for a, b in zip(ours.block_rates, theirs.block_rates, strict=True)]
