"""`zhisuan sim`: replay a trace through the scheduler under several policies; table + HTML report."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zhisuan.cli.common import LANG, L, console, fail, read_network

if TYPE_CHECKING:
    from zhisuan.sim.engine import Outage

CONSOLE = {"scenario", "policy", "avg JCT h", "p50 JCT h", "p99 JCT h", "avg queue h", "avg slowdown",
           "makespan d", "allocated %", "busy %", "¥", "kgCO2", "wall s"}


def _outage(text: str) -> Outage:
    from zhisuan.sim.engine import Outage

    try:
        center, start, end = text.split(":")
        begin, until = float(start), float(end)
    except ValueError:
        fail(f"--outage wants CENTER:START:END in seconds, got {text!r}")
    if not (math.isfinite(begin) and math.isfinite(until)) or until <= begin:
        fail(f"--outage {text!r}: START and END must be finite seconds with END after START")
    return Outage(center, begin, until)


def sim_command(
    trace: Annotated[str, typer.Option(help="philly, gavel, sia-saturn, sia-philly, sia-newtrace, pollux, "
                                            "or a CSV file of our format")] = "philly",
    policies: Annotated[str, typer.Option(help="comma-separated; add -pred for predicted durations")] =
        "fifo,easy,qssf,las,zhisuan",
    mode: Annotated[str, typer.Option(help="network (jobs go anywhere), siloed (jobs stay home) or both")] = "both",
    out: Annotated[Path, typer.Option(help="report folder")] = Path("report"),
    network: Annotated[Path | None, typer.Option(help="replay on a network file's centers instead")] = None,
    gpus_per_node: Annotated[int, typer.Option(min=1, help="node size of the trace's own cluster")] = 2,
    interval: Annotated[float, typer.Option(min=0, help="seconds between scheduling cycles (0: every event)")] = 60,
    limit: Annotated[int | None, typer.Option(min=1, help="replay only the first N jobs")] = None,
    skip_bad: Annotated[bool, typer.Option(help="skip malformed CSV rows (counted) instead of failing")] = False,
    outage: Annotated[list[str] | None, typer.Option(help="CENTER:START:END seconds; repeatable")] = None,
    trace_chip: Annotated[str | None, typer.Option(help="chip a CSV trace's durations were measured on, for rows "
                                                        "that name none")] = None,
    speed: Annotated[bool, typer.Option(help="rescale run times by chip speed (--no-speed: as measured)")] = True,
) -> None:
    """Replay TRACE through the same scheduler as the live system, compare policies, write a report."""
    from zhisuan.sim.metrics import summarize
    from zhisuan.sim.readers import load_trace
    from zhisuan.sim.report import HEADERS, summary_rows, write_report
    from zhisuan.sim.runner import run_all
    from zhisuan.sim.trace import TraceError

    net = read_network(network) if network else None
    outages = tuple(_outage(o) for o in outage or [])
    names = [p.strip() for p in policies.split(",") if p.strip()]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        tasks: dict[str, int] = {}

        def advance(label: str, n: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.advance(tasks[label], n)  # type: ignore[arg-type]

        try:
            total = len(load_trace(trace, skip_bad, gpus_per_node, trace_chip).limit(limit).jobs)
            loaded, results = run_all(trace, names, mode, per_node=gpus_per_node, interval=interval, limit=limit,
                                      skip_bad=skip_bad, network=net, outages=outages, on_progress=advance,
                                      chip=trace_chip, rescale=speed)
        except (TraceError, ValueError, FileNotFoundError) as e:
            fail(str(e))
    notes = [*loaded.notes, *(n for r in results for n in r.notes)]
    if not speed:
        notes.append("speed rescaling off (--no-speed): every chip runs a job as fast as the one it was measured on")
    table = Table(title=L("trace {name}: {n} jobs, cycle every {s} s", name=loaded.name, n=f"{len(loaded.jobs):,}",
                          s=f"{interval:g}"))
    shown = [i for i, h in enumerate(HEADERS) if h in CONSOLE]
    for i in shown:
        table.add_column(L(HEADERS[i]), justify="left" if HEADERS[i] in ("scenario", "policy") else "right")
    for r in results:
        row = summary_rows(summarize(r))
        table.add_row(*(row[i] for i in shown))
    console.print(table)
    for n in dict.fromkeys(notes):
        console.print(f"[dim]- {n}[/]")
    path = write_report(results, out, notes, LANG[0])
    console.print(L("report: {path} (per-job CSVs and summary.csv beside it)", path=path))
