"""`zhisuan bench data`: the 东数西算 scenario — data-blind placement, moving the job to its data, and
zhisuan's data-aware placement. Registered on the `bench` command group."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from zhisuan.cli.bench import bench_app
from zhisuan.cli.common import console


@bench_app.command("data")
def bench_data(
    jobs: Annotated[int, typer.Option(min=50, max=80_000, help="Philly jobs replayed")] = 3000,
    devices: Annotated[int, typer.Option(min=40, max=200_000, help="cn10 scaled to about this many devices")] = 320,
    seed: Annotated[int, typer.Option(help="seed of the datasets' birth centers and the jobs' picks")] = 0,
) -> None:
    """Mean JCT, ¥ (compute + transfer) and kgCO2 of three placements; last line the data-aware one's mean JCT
    relative to the better baseline's."""
    from zhisuan.bench import data

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("starting", total=None)
        ew, rows = data.run(jobs, devices, seed, progress=lambda msg: bar.update(task, description=msg, refresh=True))
    t = Table(title=f"zhisuan bench data: 东数西算 on {ew.network.name}, {ew.network.devices} devices, "
                    f"{len(ew.trace.jobs):,} jobs, {len(ew.datasets)} datasets born in the east")
    for col in ["policy", "finished", "mean JCT h", "p99 JCT h", "compute ¥", "transfer ¥", "total ¥", "kgCO2",
                "TB moved", "transfers", "replicas made", "replay s"]:
        t.add_column(col, justify="left" if col == "policy" else "right")
    for r in rows:
        t.add_row(r.policy, f"{r.finished:,}/{r.jobs:,}", f"{r.mean_jct / 3600:.2f}", f"{r.p99_jct / 3600:.1f}",
                  f"{r.compute_cny:,.0f}",
                  f"{r.transfer_cny:,.0f}", f"{r.total_cny:,.0f}", f"{r.kg_co2:,.0f}", f"{r.moved_tb:,.1f}",
                  str(r.transfers), str(r.replicas), f"{r.wall_seconds:.1f}")
    console.print(t)
    console.print("  JCT over finished jobs; move-job-to-data never runs a gang larger than its data's center")
    for note in ew.notes:
        console.print(f"  note: {note}")
    jct, cny = data.versus_best_baseline(rows)
    console.print(f"data-aware total ¥ vs that baseline: {cny:.1f}%")
    console.print(f"data-aware-vs-best-baseline-jct-pct: {jct:.1f}")
