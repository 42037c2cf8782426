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
    live: Annotated[bool, typer.Option(help="also stage a real input between two S3 servers on loopback")] = True,
    live_mib: Annotated[int, typer.Option(min=1, max=16384, help="size of the live input, MiB")] = 1024,
    live_gbit: Annotated[float, typer.Option(min=0.001, max=100, help="the live link's cap, Gbit/s")] = 0.2,
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
    if live:
        from zhisuan.bench import datalive

        with console.status(f"staging {live_mib} MiB live at {live_gbit:g} Gbit/s, then the same copy by rclone"):
            r = datalive.run(live_mib << 20, live_gbit)
        direct, staged = r.size_bytes / r.rclone_seconds / 1e6, r.size_bytes / r.zhisuan_seconds / 1e6
        console.print(f"live: {live_mib} MiB over a {live_gbit:g} Gbit/s link: rclone directly "
                      f"{r.rclone_seconds:.1f} s ({direct:.1f} MB/s), staged by zhisuan {r.zhisuan_seconds:.1f} s "
                      f"({staged:.1f} MB/s)")
        console.print(f"staging-throughput-vs-rclone-pct: {r.pct:.1f}")
    console.print(f"data-aware-vs-best-baseline-jct-pct: {jct:.1f}")
