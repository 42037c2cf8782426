"""`zhisuan bench sharing` and `zhisuan bench gateway`: the GPU-sharing experiment and the model gateway
against LiteLLM's proxy. Registered on the same `bench` command group."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from zhisuan.cli.bench import bench_app
from zhisuan.cli.common import console, fail


@bench_app.command("sharing")
def bench_sharing(
    seeds: Annotated[int, typer.Option(min=1, max=50, help="seeds 42, 43, ...")] = 5,
    workers: Annotated[int, typer.Option(min=0, help="worker processes (0: one per core)")] = 0,
) -> None:
    """The FGD paper's experiment on the Alibaba openb default trace and GPU nodes (tune 1.3): each node
    score's GPU allocation at 100% arrived, published figures beside; last, the default policy as users run
    it (pool scores, then its node score)."""
    from zhisuan.cli.sharing import CLUSTERS, PODS, run_and_show
    from zhisuan.sim.sharing import DEFAULT_SCORE

    names = ["random", "dot-product", "gpu-clustering", "gpu-packing", "best-fit", "fgd", DEFAULT_SCORE, "zhisuan"]
    start = time.perf_counter()
    mine = run_and_show(names, list(range(42, 42 + seeds)), CLUSTERS["gpu"], PODS, 1.3, workers,
                        f"zhisuan bench sharing (openb default trace, 1,213 GPU nodes, tune 1.3, {seeds} seeds)")
    console.print(f"wall {time.perf_counter() - start:.0f} s")
    if mine is None:
        fail("the default policy did not run to 100% arrived")
    print(f"sharing-gpu-alloc-pct: {mine:.2f}")


@bench_app.command("gateway")
def bench_gateway(
    requests: Annotated[int, typer.Option(min=30, max=1_000_000, help="measured requests per side")] = 3000,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="clients in the closed loop")] = 8,
) -> None:
    """The gateway's added latency (p50/p99 over calling the backend directly) and requests/s, beside
    LiteLLM's proxy forwarding to the same backend in the same run."""
    from zhisuan.bench import gateway

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("starting", total=None)
        try:
            r = gateway.run(requests, concurrency, progress=lambda m: bar.update(task, description=m))
        except RuntimeError as e:
            fail(str(e))
    for title, sides in ((f"latency: one client, {r.requests:,} chat completions per side", r.latency),
                         (f"throughput: {r.concurrency} clients, {r.requests:,} per side", r.throughput)):
        direct = r.side(sides, "direct")
        t = Table(title=f"zhisuan bench gateway — {title}, {r.rounds} rounds, loopback, 2 cores shared by all")
        for col in ("side", "answered", "failed", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms", "requests/s"):
            t.add_column(col, justify="left" if col == "side" else "right")
        for s in sides:
            added = s is not direct
            t.add_row(s.name, f"{s.answered:,}", str(s.failed), f"{s.pct(50):.2f}", f"{s.pct(99):.2f}",
                      f"{s.pct(50) - direct.pct(50):.2f}" if added else "-",
                      f"{s.pct(99) - direct.pct(99):.2f}" if added else "-", f"{s.rps:,.0f}")
        console.print(t)
    added = r.side(r.latency, "zhisuan").pct(99) - r.side(r.latency, "direct").pct(99)
    mine, theirs = r.side(r.throughput, "zhisuan"), r.side(r.throughput, "litellm")
    tunnel = r.side(r.latency, "tunnel").pct(99) - r.side(r.latency, "zhisuan").pct(99)
    print(f"gateway-tunnel-added-p99-ms: {tunnel:.2f}")
    print(f"gateway-added-p99-ms: {added:.2f}")
    print(f"gateway-rps-vs-litellm: {mine.rps / theirs.rps if theirs.rps else float('inf'):.2f}")
