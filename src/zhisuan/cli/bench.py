"""`zhisuan bench ...`: benchmark commands. Figures are measured here, never typed in."""

from __future__ import annotations

import statistics
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from zhisuan.bench import scheduler as scheduler_bench
from zhisuan.cli.common import console
from zhisuan.scheduler import get_policy

bench_app = typer.Typer(help="Benchmarks; each prints its figures, last line `name: N`.", no_args_is_help=True)


@bench_app.command("scheduler")
def bench_scheduler(
    quick: Annotated[bool, typer.Option(help="10× smaller case (2,000 nodes... 10,000 jobs)")] = False,
    repeats: Annotated[int, typer.Option(min=1, help="cycles to time; the median is reported")] = 5,
    policy: Annotated[str, typer.Option(help="scheduling policy")] = "zhisuan",
) -> None:
    """One full scheduling cycle over a synthetic network: placements/s, cycle time, peak memory."""
    pol = get_policy(policy)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("starting", total=None)
        r = scheduler_bench.run(quick=quick, repeats=repeats, policy=pol,
                                progress=lambda msg: bar.update(task, description=msg, refresh=True))
    t = Table(title=f"zhisuan bench scheduler{' --quick' if quick else ''} (policy {pol.name})")
    t.add_column("measure")
    t.add_column("value", justify="right")
    rows = [
        ("centers / pools", f"{r.centers} / {r.pools}"),
        ("nodes / devices", f"{r.nodes:,} / {r.devices:,}"),
        ("chip types", str(r.chip_types)),
        ("pending jobs / distinct requests", f"{r.pending:,} / {r.requests:,}"),
        ("running jobs before the cycle", f"{r.running:,}"),
        ("placements in the cycle", f"{r.placed:,}"),
        ("reservations", str(r.reservations)),
        ("cycle time (warm scheduler state), median of " + str(len(r.cycle_seconds)),
         f"{r.median_cycle * 1000:.1f} ms"),
        ("cycle times", ", ".join(f"{s * 1000:.0f}" for s in r.cycle_seconds) + " ms"),
        ("cold start: state from the snapshot, median", f"{statistics.median(r.build_seconds) * 1000:.1f} ms"),
        ("placements/s counting the cold start too",
         f"{r.placed / (r.median_cycle + statistics.median(r.build_seconds)):.0f}"),
        ("peak traced memory of one cycle", f"{r.peak_traced_mb:.1f} MB"),
        ("process max RSS", f"{r.max_rss_mb:.0f} MB"),
        ("GC", "snapshot frozen out of cyclic GC scans (gc.freeze), as a long-running scheduler does"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
    print(f"placements/s: {r.placements_per_second:.0f}")
