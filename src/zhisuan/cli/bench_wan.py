"""`zhisuan bench federation`: many centers joined by their agents across a slow, broken WAN. Registered on the
`bench` command group."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from zhisuan.cli.bench import bench_app
from zhisuan.cli.common import console


@bench_app.command("federation")
def bench_federation(
    centers: Annotated[int, typer.Option(min=2, max=500, help="agent-joined centers")] = 50,
    jobs: Annotated[int, typer.Option(min=10, max=20_000, help="Philly jobs submitted")] = 600,
    span: Annotated[float, typer.Option(min=10, help="seconds the arrivals are squeezed into")] = 240.0,
    rtt: Annotated[float, typer.Option(min=0, help="round trip between the server and each agent, ms")] = 50.0,
    reset_every: Annotated[float, typer.Option(min=1, help="mean seconds between resets of a connection")] = 60.0,
    partitions: Annotated[int, typer.Option(min=0, help="centers cut off during the run")] = 10,
    timeout: Annotated[float, typer.Option(min=2, help="control.center_timeout, seconds")] = 12.0,
    seed: Annotated[int, typer.Option(help="seed of the partitions and resets")] = 7,
) -> None:
    """A real server and `centers` agents (fast fake engines), each behind a fault proxy: a Philly slice, random
    partitions; decision-to-start latency, server CPU per 1,000 events, and jobs lost or run twice."""
    from zhisuan.bench import federation

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("starting", total=None)
        r = federation.run(centers, jobs, span, rtt_ms=rtt, reset_every=reset_every, partitions=partitions,
                           timeout=timeout, seed=seed,
                           progress=lambda msg: bar.update(task, description=msg, refresh=True))
    t = Table(title=f"zhisuan bench federation: {r.centers} centers through their agents, {r.rtt_ms:g} ms RTT, "
                    f"{r.jobs} jobs, {len(r.partitions)} partitions, {r.seconds:.0f} s")
    for col in ["measure", "value"]:
        t.add_column(col, justify="left" if col == "measure" else "right")
    t.add_row("placements started", f"{len(r.start_ms):,}")
    t.add_row("decision (start sent) to start at the agent, p50 ms", f"{r.pct(50):.0f}")
    t.add_row("decision (start sent) to start at the agent, p99 ms", f"{r.pct(99):.0f}")
    t.add_row("placing step begun to start at the agent, p50 ms", f"{r.pct(50, r.step_ms):.0f}")
    t.add_row("placing step begun to start at the agent, p99 ms", f"{r.pct(99, r.step_ms):.0f}")
    t.add_row("placing step begun to the engine's start, p50 ms (one clock)", f"{r.pct(50, r.engine_ms):.0f}")
    t.add_row("placing step begun to the engine's start, p99 ms (one clock)", f"{r.pct(99, r.engine_ms):.0f}")
    t.add_row("agent events applied", f"{r.events:,}")
    t.add_row("server CPU s", f"{r.server_cpu_s:.1f}")
    t.add_row("agent frames received (beats, acknowledgements, events)", f"{r.frames:,}")
    t.add_row("server CPU ms per 1,000 events (all its work: API, loop, agents)", f"{r.cpu_per_1000_events_ms:.0f}")
    t.add_row("server CPU ms per 1,000 agent frames", f"{r.cpu_per_1000_frames_ms:.0f}")
    t.add_row("connections reset by the proxy", f"{r.resets:,}")
    t.add_row("jobs placed again after a loss", f"{r.moved:,}")
    t.add_row("jobs lost (not succeeded)", f"{len(r.lost):,}")
    t.add_row("jobs run twice", f"{len(r.duplicated):,}")
    console.print(t)
    cut = Counter(f"{length:.0f} s" for _, length in r.partitions)
    console.print(f"partitions: {', '.join(f'{n} × {k}' for k, n in sorted(cut.items()))}")
    for line in (r.lost + r.duplicated)[:20]:
        console.print(f"[red]- {line}[/]")
    for n in r.notes:
        console.print(f"[dim]- {n}[/]")
    print(f"federation-start-p50-ms: {r.pct(50):.0f}")
    print(f"federation-server-cpu-ms-per-1000-events: {r.cpu_per_1000_events_ms:.0f}")
    print(f"federation-start-p99-ms: {r.pct(99):.0f}")
    print(f"federation-lost-or-duplicated: {len(r.lost) + len(r.duplicated)}")
