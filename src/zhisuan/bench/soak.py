"""`zhisuan bench soak` (and the chaos test): clients submit, cancel and retry against a real `zhisuan
server` that is killed with SIGKILL at random moments and restarted; then every submit is checked.

Each client submits with an idempotency key and retries what was not acknowledged (the same key), cancels
now and then, and measures its submits' latency. Each job leaves a mark per run (job, attempt) in a
folder every job uid may write. At the end every key is retried once more, the network drains, and the
store and the marks are compared: accepted (acknowledged keys), stored (jobs in the store), lost
(acknowledged but not stored), duplicated (a job stored that no key names, or two jobs for one key), and
runs beyond one per attempt.
"""

from __future__ import annotations

import json
import random
import signal
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import httpx
from sqlalchemy import func, select

from zhisuan.serve.process import ServerProcess
from zhisuan.store import JobStore, connect
from zhisuan.store.schema import TokenUsageRow, UsageRow

TOY3 = Path(__file__).resolve().parents[3] / "examples" / "networks" / "toy3.yaml"


@dataclass
class SoakReport:
    accepted: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    ran_twice: int = 0  # (job, attempt) pairs that ran more than once
    ran: int = 0  # (job, attempt) pairs that ran
    unfinished: int = 0  # jobs still not ended when the drain gave up
    unseen: int = 0  # jobs recorded succeeded without a run of their final attempt
    cancelled: int = 0
    answered: int = 0  # model calls the gateway answered
    billed_calls: int = 0  # model calls on the bill (the store's token usage)
    billed_twice: int = 0  # runs (job, attempt) with metered intervals that overlap
    kills: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, acknowledged submits

    def pct(self, p: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000 if xs else float("nan")


class Soak:
    def __init__(self, db_url: str, folder: Path, network: Path = TOY3, seed: int = 20261201) -> None:
        self.db_url, self.folder = db_url, folder
        self.marks = folder / "runs" / ".marks"  # in the runs folder: a confined job's /tmp is its own
        self.marks.mkdir(parents=True, exist_ok=True)
        self.marks.chmod(0o1777)  # jobs run under uids of their own: each leaves a mark per run
        self.server = ServerProcess(network, db_url, folder / "runs", interval=0.1)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.sent: dict[str, str] = {}  # idempotency key -> spec
        self.acked: dict[str, str] = {}  # key -> job id
        self.mismatch = 0  # a retried key that named another job
        self.report = SoakReport()
        self.stop = threading.Event()
        self.model: str | None = None  # a model the gateway serves: clients call it too

    def spec(self, rng: random.Random) -> str:
        run = f"touch {self.marks}/$ZHISUAN_JOB_ID.$ZHISUAN_ATTEMPT.$$; sleep {rng.choice([0, 0.1, 0.3, 0.6])}"
        name = f"s{uuid.uuid4().hex[:10]}"
        return (f"name: {name}\ntenant: acme\nresources: {{accelerators: 910b:{rng.choice([1, 2, 8])}}}\n"
                f"run: {json.dumps(run)}\n")

    def _ack(self, key: str, job: str) -> None:
        with self.lock:
            if self.acked.setdefault(key, job) != job:
                self.mismatch += 1

    def urls(self) -> list[str]:
        """Where clients send requests (several replicas: the next one when one stops answering)."""
        return [self.server.url]

    def token(self) -> str:
        return self.server.token("acme")

    def client(self, seed: int, pause: float) -> None:
        rng = random.Random(seed)
        turn = rng.randrange(1 << 16)
        while not self.stop.is_set():
            urls = self.urls()
            with httpx.Client(base_url=urls[turn % len(urls)], timeout=10,
                              headers={"Authorization": f"Bearer {self.token()}"}) as c:
                while not self.stop.is_set():
                    try:
                        self.act(c, rng)
                    except httpx.HTTPError:
                        time.sleep(0.1)  # killed under us: it comes back, or another replica answers
                        turn += 1
                        break
                    time.sleep(pause)

    def act(self, c: httpx.Client, rng: random.Random) -> None:
        """One request: a cancel, a model call (when a model is served) or a submit (new, or a retry)."""
        with self.lock:
            acked, unacked = sorted(self.acked.values()), [k for k in self.sent if k not in self.acked]
        roll = rng.random()
        if roll < 0.2 and acked:
            if c.post(f"/v1/jobs/{rng.choice(acked)}/cancel").status_code == 200:
                self.report.cancelled += 1
        elif roll < 0.4 and self.model:
            r = c.post("/v1/chat/completions", json={"model": self.model, "messages": [
                {"role": "user", "content": "how many tokens is this"}]})
            if r.status_code == 200:
                with self.lock:
                    self.report.answered += 1
        else:
            key = rng.choice(unacked) if unacked and rng.random() < 0.5 else uuid.uuid4().hex
            with self.lock:
                text = self.sent.setdefault(key, self.spec(rng))
            t0 = time.perf_counter()
            r = c.post("/v1/jobs", content=text, headers={"Idempotency-Key": key})
            if r.status_code == 201:
                self.report.latencies.append(time.perf_counter() - t0)
                self._ack(key, r.json()["id"])

    def run(self, clients: int, until: Callable[[SoakReport], bool], uptime: tuple[float, float],
            pause: float = 0.03, progress: Callable[[str], None] = lambda _: None) -> SoakReport:
        t0 = time.time()
        self.server.start()
        threads = [threading.Thread(target=self.client, args=(self.rng.random(), pause), daemon=True)
                   for _ in range(clients)]
        for t in threads:
            t.start()
        while not until(self.report):
            time.sleep(self.rng.uniform(*uptime))
            self.server.stop(signal.SIGKILL)  # anywhere: mid-request, mid-step, mid-start
            self.report.kills += 1
            progress(f"{self.report.kills} kills, {len(self.acked)} submits acknowledged")
            self.server.start()
        self.stop.set()
        for t in threads:
            t.join(timeout=30)
        self._settle(progress)
        self.report.seconds = time.time() - t0
        return self.report

    def _settle(self, progress: Callable[[str], None]) -> None:
        try:
            with self.server.client("acme") as c:
                self.drain(c, progress)
        finally:
            self.server.close()
        self.compare()

    def drain(self, c: httpx.Client, progress: Callable[[str], None], limit: float = 180.0) -> None:
        """Retry every key once more and let the network drain."""
        for key, text in self.sent.items():
            r = c.post("/v1/jobs", content=text, headers={"Idempotency-Key": key})
            if r.status_code == 201:
                self._ack(key, r.json()["id"])
        end = time.time() + limit
        while time.time() < end:
            states = [j["state"] for j in c.get("/v1/jobs?limit=1000&state=pending&state=scheduled"
                                                "&state=running&state=preempted").json()]
            progress(f"draining: {len(states)} jobs left")
            if not states:
                break
            time.sleep(0.5)

    def compare(self) -> None:
        """The store and the jobs' marks against what clients were told."""
        engine = connect(self.db_url)
        jobs = {r.id: r for r in JobStore(engine).find()}
        named = set(self.acked.values())
        runs: dict[tuple[str, str], int] = {}
        for mark in self.marks.iterdir():
            job, attempt, _ = mark.name.split(".")
            runs[(job, attempt)] = runs.get((job, attempt), 0) + 1
        r = self.report
        r.accepted, r.stored = len(self.acked), len(jobs)
        r.lost = len(named - set(jobs))
        r.duplicated = len(set(jobs) - named) + self.mismatch
        r.ran, r.ran_twice = len(runs), sum(1 for n in runs.values() if n > 1)
        r.unfinished = sum(1 for j in jobs.values() if not j.state.terminal)
        r.unseen = sum(1 for j in jobs.values() if j.state.value == "succeeded" and (j.id, str(j.attempts)) not in runs)
        with engine.connect() as conn:
            metered: dict[tuple[str, int], list[tuple[float, float]]] = {}
            for job_id, attempt, begin, until in conn.execute(
                    select(UsageRow.job_id, UsageRow.attempt, UsageRow.start, UsageRow.end)):
                metered.setdefault((job_id, attempt), []).append((begin, until))
            r.billed_twice = sum(1 for spans in metered.values() if overlapping(spans))
            if self.model:
                r.billed_calls = int(conn.execute(select(func.coalesce(func.sum(TokenUsageRow.requests), 0)).where(
                    TokenUsageRow.tenant == "acme", TokenUsageRow.model == self.model)).scalar_one())
        engine.dispose()


def overlapping(spans: list[tuple[float, float]]) -> bool:
    """Two metered intervals of one run that cover the same time: the run billed twice."""
    spans = sorted(spans)
    return any(b[0] < a[1] - 1e-6 for a, b in pairwise(spans))


def median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000 if xs else float("nan")


POLLS = ["/v1/centers", "/v1/overview", "/v1/jobs?limit=100",
         "/v1/reports/utilization?bucket=3600", "/v1/whoami", "/metrics"]


def poll_latency(db_url: str, folder: Path, network: Path = TOY3, pending: int = 10_000, requests: int = 200,
                 progress: Callable[[str], None] = lambda _: None) -> dict[str, list[float]]:
    """What the dashboard polls, timed against a store with `pending` jobs waiting (one whole-node job runs
    and the rest ask for that node too): seconds per request, per path."""
    from zhisuan.model import parse_job_spec
    from zhisuan.store import migrate

    engine = connect(db_url)
    migrate(engine)
    store = JobStore(engine)
    spec = parse_job_spec("name: wait\ntenant: acme\nresources: {accelerators: h800:8}\nrun: sleep 600\n")
    progress(f"storing {pending:,} pending jobs")
    now = time.time()
    for i in range(pending):
        store.submit(spec, now + i * 1e-4)
    server = ServerProcess(network, db_url, folder / "polls", interval=1.0)
    server.start()
    times: dict[str, list[float]] = {p: [] for p in POLLS}
    try:
        with server.client("acme") as c:
            deadline = time.time() + 60
            while time.time() < deadline and not c.get("/v1/jobs?state=running&limit=1").json():
                time.sleep(0.2)  # the loop has read the queue and started the first job
            for k in range(requests):
                progress(f"polling {k + 1}/{requests}")
                for path in POLLS:
                    t0 = time.perf_counter()
                    c.get(path).raise_for_status()
                    times[path].append(time.perf_counter() - t0)
            for j in c.get("/v1/jobs?state=running").json():
                c.post(f"/v1/jobs/{j['id']}/cancel")
    finally:
        server.close()
    return times
