"""`zhisuan bench api` and `zhisuan bench soak`: the control plane's API under load, and under chaos (one
server killed again and again, or a leader of several replicas). Registered on the `bench` command group."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from zhisuan.cli.bench import bench_app
from zhisuan.cli.common import console


@bench_app.command("api")
def bench_api(n: Annotated[int, typer.Option(min=20, help="sequential submissions per side")] = 1000,
              rounds: Annotated[int, typer.Option(min=1, help="blocks per side; the rate is the median block")] = 5,
              clients: Annotated[int, typer.Option(min=0, max=256, help="clients at once (0: none)")] = 16,
              pending: Annotated[int, typer.Option(min=0, help="jobs waiting while the clients submit")] = 10_000,
              seconds: Annotated[float, typer.Option(min=1, help="seconds each concurrent side is measured")] = 15.0,
              replicas: Annotated[int, typer.Option(min=2, max=5, help="replicas of the last side")] = 3,
              ) -> None:
    """Submissions/s and p50/p99 latency: zhisuan API on SQLite and PostgreSQL vs sbatch to slurmctld, one
    client at a time; then CLIENTS at once while the control loop works a queue of PENDING jobs, on one
    server and on several replicas, vs sbatch at 1, 4 and CLIENTS clients."""
    from zhisuan.bench import api as api_bench
    from zhisuan.bench import apiload

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("starting", total=None)

        def progress(msg: str) -> None:
            bar.update(task, description=msg, refresh=True)

        rates = api_bench.run(n, rounds, progress=progress)
        loads = apiload.run(clients, pending, seconds, replicas, progress=progress) if clients else []
    t = Table(title=f"zhisuan bench api: {n} sequential submissions each (queue only: nothing runs)")
    for col in ["side", "submits/s (median block)", "blocks", "p50 ms", "p99 ms"]:
        t.add_column(col, justify="left" if col == "side" else "right")
    for r in rates:
        t.add_row(r.name, f"{r.per_second:,.0f}", ", ".join(f"{b:,.0f}" for b in r.block_rates),
                  f"{r.pct(50):.2f}", f"{r.pct(99):.2f}")
    console.print(t)
    console.print("API: one persistent HTTP/1.1 connection (Python's http.client, then wrk), YAML spec, bearer "
                  "token; sbatch: Slurm's own client, held jobs, a block after each of the SQLite wrk side's. With "
                  "wrk, p50/p99 are the median block's.")
    sbatch = rates[-1].per_second
    for r in rates[:-1]:
        console.print(f"{r.name}: {r.per_second / sbatch:.1f}x sbatch")
    pairs = api_bench.pair_ratios(rates[1], rates[-1])
    console.print(f"SQLite wrk block / the sbatch block after it: {', '.join(f'{x:.1f}' for x in pairs)}")
    print(f"submit-ratio-vs-sbatch: {statistics.median(pairs):.1f}")
    if not loads:
        return
    c = Table(title=f"{clients} clients at once, the control loop working {pending:,} waiting jobs "
                    f"(zhisuan: wrk, {seconds:g} s after a warm-up)")
    for col in ["side", "clients", "submits/s", "p50 ms", "p99 ms", "errors"]:
        c.add_column(col, justify="left" if col == "side" else "right")
    for x in loads:
        c.add_row(x.name, str(x.clients), f"{x.per_second:,.0f}", f"{x.p50_ms:.1f}", f"{x.p99_ms:.1f}", str(x.errors))
    console.print(c)
    console.print("p99 with replicas: the worst replica's (one wrk each, the connections split among them); "
                  "PostgreSQL: the repo's throw-away one (fsync off); slurmctld keeps its StateSave on this disk.")
    ours = [x for x in loads if not x.name.startswith("sbatch")]
    best_sbatch = max(x.per_second for x in loads if x.name.startswith("sbatch"))
    best = max(ours, key=lambda x: x.per_second)
    console.print(f"best zhisuan side at {clients} clients: {best.name}; sbatch's best: {best_sbatch:,.0f}/s")
    print(f"api-submit-p99-ms-at-{clients}: {best.p99_ms:.1f}")
    print(f"api-vs-sbatch-best-at-{clients}-clients: {best.per_second / best_sbatch:.1f}")


@bench_app.command("soak")
def bench_soak(
    clients: Annotated[int, typer.Option(min=1, max=64, help="client threads submitting and cancelling")] = 16,
    seconds: Annotated[float, typer.Option(min=5, help="how long the load runs (then the network drains)")] = 60.0,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: a fresh SQLite file)")] = None,
    network: Annotated[Path, typer.Option(help="network file")] = Path("examples/networks/toy3.yaml"),
    pending: Annotated[int, typer.Option(min=1, help="jobs waiting while the dashboard's polls are timed")] = 10_000,
    replicas: Annotated[int, typer.Option(min=1, max=5, help="servers on one PostgreSQL (more than one: the "
                                                             "leader is SIGKILLed or SIGSTOPped instead)")] = 1,
    disruptions: Annotated[int, typer.Option(min=1, max=200, help="with replicas: times the leader is hit")] = 20,
    lease: Annotated[float, typer.Option(min=1, max=60, help="with replicas: their --lease")] = 8.0,
) -> None:
    """Clients against a server killed with SIGKILL every few seconds: nothing lost, nothing run twice;
    then the dashboard's polls against a store with 10,000 jobs waiting. With --replicas N: against N
    replicas on PostgreSQL whose leader is SIGKILLed or SIGSTOPped at random, then restarted in turn."""
    import shutil
    import tempfile

    from zhisuan.bench import soak as soak_bench

    work = Path(tempfile.mkdtemp(prefix="zhisuan-soak-"))
    work.chmod(0o711)  # jobs run under uids of their own and pass through to their folders
    if replicas > 1:
        try:
            _soak_replicas(work, clients, replicas, disruptions, lease, db, network)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("starting", total=None)

        def progress(msg: str) -> None:
            bar.update(task, description=msg, refresh=True)

        started = time.time()
        r = soak_bench.Soak(db or f"sqlite:///{work / 'soak.db'}", work, network).run(
            clients, lambda _: time.time() - started > seconds, (2.0, 6.0), progress=progress)
        polls = soak_bench.poll_latency(f"sqlite:///{work / 'polls.db'}", work, network, pending, progress=progress)
    t = Table(title=f"zhisuan bench soak: {clients} clients, {seconds:g} s, server killed {r.kills} times")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for k, v in [("accepted (acknowledged submits)", r.accepted), ("stored", r.stored), ("lost", r.lost),
                 ("duplicated", r.duplicated), ("runs (job, attempt)", r.ran),
                 ("ran twice in one attempt", r.ran_twice),
                 ("cancels acknowledged", r.cancelled), ("still running when the drain gave up", r.unfinished),
                 ("submit p50 ms", f"{r.pct(50):.1f}"), ("submit p99 ms", f"{r.pct(99):.1f}"),
                 ("wall s (load, kills, drain)", f"{r.seconds:.0f}")]:
        t.add_row(k, str(v))
    console.print(t)
    p = Table(title=f"the dashboard's polls with {pending:,} jobs waiting (200 each, ms)")
    for col in ["path", "p50", "p99"]:
        p.add_column(col, justify="left" if col == "path" else "right")
    worst = 0.0
    for path, xs in polls.items():
        xs = sorted(xs)
        p99 = xs[min(len(xs) - 1, int(0.99 * len(xs)))] * 1000
        worst = max(worst, p99)
        p.add_row(path, f"{statistics.median(xs) * 1000:.1f}", f"{p99:.1f}")
    console.print(p)
    print(f"dashboard-poll-p99-ms: {worst:.1f}")
    print(f"soak-lost-or-duplicated: {r.lost + r.duplicated + r.ran_twice}")




def _soak_replicas(work: Path, clients: int, replicas: int, disruptions: int, lease: float, db: str | None,
                   network: Path) -> None:
    from contextlib import nullcontext

    from zhisuan.bench.hasoak import HaSoak
    from zhisuan.bench.pg import scratch_database

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("starting PostgreSQL", total=None)
        with nullcontext(db) if db else scratch_database() as url:
            soak = HaSoak(url, work, replicas=replicas, lease=lease, network=network)
            r, f = soak.run_ha(clients, disruptions, (4.0, 12.0), pause=0.5,
                               progress=lambda msg: bar.update(task, description=msg, refresh=True))
    t = Table(title=f"zhisuan bench soak --replicas {replicas}: {clients} clients, the leader hit {len(f.seconds)} "
                    f"times (lease {lease:g} s), then a rolling restart of all {f.restarted}")
    t.add_column("measure")
    t.add_column("value", justify="right")
    kills = f.signals.count("SIGKILL")
    over = max(0, r.billed_calls - r.answered)
    for k, v in [("leader SIGKILLed / SIGSTOPped", f"{kills} / {len(f.signals) - kills}"),
                 ("frozen leaders that, thawed, exited 75", f.deposed),
                 ("accepted (acknowledged submits)", r.accepted), ("stored", r.stored), ("lost", r.lost),
                 ("duplicated", r.duplicated), ("runs (job, attempt)", r.ran),
                 ("ran twice in one attempt", r.ran_twice),
                 ("runs billed twice (overlapping usage)", r.billed_twice), ("cancels acknowledged", r.cancelled),
                 ("model calls answered / billed", f"{r.answered} / {r.billed_calls}"),
                 ("still running when the drain gave up", r.unfinished),
                 ("failover p50 / max s", f"{f.pct(50):.1f} / {max(f.seconds):.1f}"),
                 ("submit p50 / p99 ms", f"{r.pct(50):.1f} / {r.pct(99):.1f}"),
                 ("wall s (load, failovers, restarts, drain)", f"{r.seconds:.0f}")]:
        t.add_row(k, str(v))
    console.print(t)
    console.print("failover: from the signal to another replica leading (a higher epoch, every live replica "
                  "agreeing). Model calls a killed replica served but had not yet written to the store (it writes "
                  "every 5 s) are not billed: billed ≤ answered; more billed than answered would be a call billed "
                  "twice. PostgreSQL: the repo's throw-away one (fsync off).")
    print(f"ha-failover-p99-s: {f.pct(99):.1f}")
    print(f"ha-lost-or-duplicated: {r.lost + r.duplicated + r.ran_twice + r.billed_twice + over + r.unfinished}")
