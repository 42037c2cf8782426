"""`zhisuan bench control`: what one live control step costs on a loaded store, against the pure
scheduling cycle on the same snapshot.

A network of local centers is filled with `running` one-device jobs (real processes that sleep), then
`pending` jobs of mixed shapes and tenants are stored behind them. Timed: the first step after those
submissions (each spec parsed once, every wait reason written once), then steady steps (poll every
running job, read the transitions feed, cycle on the in-memory state, write what changed) and the steps
that every 5 s also refresh every waiting job's reason and expected start, against the
pure `cycle(snapshot, now)` on the very snapshot the loop holds, and against re-reading the store the
way the control loop did before it kept its state (every spec parsed on every step).
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zhisuan.control import ControlLoop
from zhisuan.engines import LocalEngine
from zhisuan.model import JobState, parse_job_spec, parse_network
from zhisuan.scheduler import cycle, pending_from_spec
from zhisuan.store import JobStore, connect, migrate

CENTERS = 5  # of 8-device nodes; sized so the running jobs fill every device and the queue has to wait
SHAPES = [("a100:1", 1), ("a100:2", 1), ("a100:4", 1), ("a100:8", 1), ("a100:8", 2), ("910b:1", 1), ("910b:8", 1),
          ("{stack: cuda, min_tflops: 300, count: 4}", 1)]


@dataclass
class ControlBench:
    pending: int
    running: int
    devices: int
    first_step: float
    steps: list[float]
    cold_cycles: list[float]
    warm_cycles: list[float]
    reread: float  # seconds to read and parse the store's active jobs, as the loop did every step before
    refresh_steps: list[float]  # steps that also refresh every waiting job's reason and expected start

    @property
    def step(self) -> float:
        return statistics.median(self.steps)

    @property
    def cold(self) -> float:
        return statistics.median(self.cold_cycles)

    @property
    def warm(self) -> float:
        return statistics.median(self.warm_cycles)


def network_yaml(nodes: int) -> str:
    centers = []
    for c in range(CENTERS):
        chip, name = ("910B", "910b") if c == CENTERS - 1 else ("A100-80GB", "a100")
        centers.append(f"""  - name: c{c}
    region: r{c % 3}
    pue: 1.{2 + c % 3}
    carbon_kg_per_kwh: 0.{4 + c}
    pools: [{{name: {name}, accelerator: {chip}, nodes: {nodes}, devices_per_node: 8,
             price_per_device_hour: {8 + c}}}]""")
    return "name: bench-control\ncenters:\n" + "\n".join(centers) + "\n"


def spec(name: str, tenant: str, acc: str, nodes: int, run: str, portable: bool = False) -> str:
    accel = acc if acc.startswith("{") else f"'{acc}'"
    extra = ", portable: [cuda, cann]" if portable else ""
    return (f"name: {name}\ntenant: {tenant}\nresources: {{accelerators: {accel}, nodes: {nodes}{extra}}}\n"
            f"constraints: {{time_limit: 1h}}\nrun: {run!r}\n")


def run(pending: int = 10_000, running: int = 1_000, steps: int = 9,
        progress: Callable[[str], None] = lambda _: None) -> ControlBench:
    folder = Path(tempfile.mkdtemp(prefix="zhisuan-bench-control-"))
    folder.chmod(0o711)  # jobs run under uids of their own and pass through to their folders
    nodes = max(1, running // (8 * CENTERS))
    running = nodes * 8 * CENTERS
    network = parse_network(network_yaml(nodes))
    db = connect(f"sqlite:///{folder / 'z.db'}")
    migrate(db)
    store = JobStore(db)
    engine = LocalEngine(folder / "runs", grace=1.0)
    loop = ControlLoop(store, network, engine)
    rng = random.Random(7)
    try:
        progress(f"starting {running:,} running jobs (real processes)")
        now = time.time()
        for i in range(running):
            store.submit(parse_job_spec(spec(f"run{i}", f"t{i % 20}", "a100:1", 1, "sleep 3600", portable=True)), now)
        while len(loop.runs) < running:
            loop.step(time.time())
        progress(f"storing {pending:,} pending jobs behind them")
        now = time.time()
        for i in range(pending):
            acc, nodes = rng.choice(SHAPES)
            store.submit(parse_job_spec(spec(f"wait{i}", f"t{rng.randrange(20)}", acc, nodes, "true")), now + i * 1e-3)
        progress("first step after the submissions")
        t0 = time.perf_counter()
        loop.step(time.time())
        first = time.perf_counter() - t0
        times = []
        for k in range(steps):
            progress(f"steady step {k + 1}/{steps}")
            t0 = time.perf_counter()
            loop.step(time.time())
            times.append(time.perf_counter() - t0)
        refresh = []
        for _ in range(3):  # every `waits.every` seconds (5) a step also refreshes the long tail's wait reasons
            loop.waits.force_refresh()
            t0 = time.perf_counter()
            loop.step(time.time())
            refresh.append(time.perf_counter() - t0)
        progress("the pure cycle on the same snapshot")
        snap, policy = loop.state.snapshot(), loop.policy
        cold, warm = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            cycle(snap, time.time(), policy)
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            loop.state.cycle(time.time())  # nothing fits: the state is left as it was
            warm.append(time.perf_counter() - t0)
        progress("re-reading the store as the loop did before")
        t0 = time.perf_counter()
        for rec in store.find(states={JobState.PENDING, JobState.SCHEDULED, JobState.RUNNING}):
            pending_from_spec(rec.id, rec.spec, rec.submitted_at)
        reread = time.perf_counter() - t0
        placed = sum(1 for r in loop.runs.values() if r.running)
        return ControlBench(len(loop.state.pending), placed, network.devices, first, times, cold, warm, reread,
                            refresh)
    finally:
        progress("stopping the running jobs")
        for r in loop.runs.values():
            if r.handle:
                engine.stop(r.handle)
        for r in loop.runs.values():
            if r.handle:
                engine.cancel(r.handle)
        shutil.rmtree(folder, ignore_errors=True)
