"""`zhisuan plan PLAN.yaml`: what to build, where, and when it pays back — every option × demand scenario
replayed through the live scheduler (worker processes, or tasks on a Ray cluster), priced, reported."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zhisuan.cli.common import LANG, L, console, fail


def plan_command(
    plan_file: Annotated[Path, typer.Argument(
        metavar="PLAN", help="the plan (YAML): network, demand, options, finance, target")],
    out: Annotated[Path, typer.Option(help="report folder")] = Path("plan-report"),
    workers: Annotated[int, typer.Option(min=0, help="worker processes (0: one per core)")] = 0,
    ray: Annotated[str | None, typer.Option("--ray", help="run the cells as tasks on this Ray cluster "
                                                          "(Ray Client address, e.g. ray://127.0.0.1:10001)")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="replay only the first N jobs of the trace")] = None,
    ship: Annotated[bool, typer.Option(help="with --ray: send this zhisuan to the cluster's workers (they need "
                                            "its dependencies, not zhisuan itself)")] = False,
) -> None:
    """Simulate every option under every demand scenario; table, CSV and an HTML report."""
    from zhisuan.model import SpecError
    from zhisuan.model.plan import load_plan
    from zhisuan.sim.plan.report import HEADERS, table_rows, write_report
    from zhisuan.sim.plan.runner import cells, run_plan
    from zhisuan.sim.trace import TraceError

    try:
        plan, network = load_plan(plan_file)
    except FileNotFoundError:
        fail(f"no plan file {plan_file}")
    except SpecError as e:
        fail(f"{plan_file}: {e}")
    if limit is not None:
        plan = plan.model_copy(update={"demand": plan.demand.model_copy(update={"limit": limit})})
    total = len(cells(plan, network))
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task(L("simulating options × scenarios"), total=total)
        try:
            result = run_plan(plan, network, workers or os.cpu_count() or 1, ray,
                              progress=lambda _: bar.advance(task), ship=ship)
        except (SpecError, TraceError, ValueError, FileNotFoundError) as e:
            fail(str(e))
    table = Table(title=L("plan {name}: {n} options × {s} scenarios", name=plan.name,
                          n=len({r.option for r in result.rows}), s=len(plan.demand.scenarios)))
    for h in HEADERS:
        text = h in ("option", "scenario", "mark")
        table.add_column(L(h), justify="left" if text else "right", no_wrap=text)
    for row in table_rows(result):
        table.add_row(*row)
    console.print(table)
    console.print(L("★ cost-vs-wait front; ✓/✗ target met; money = the option's difference from today's network"))
    if plan.target:
        verdict = (L("cheapest option meeting the target: {name}", name=result.cheapest) if result.cheapest
                   else L("no option meets the target"))
        console.print(f"{verdict} (p95 wait ≤ {plan.target.p95_wait_hours:g} h, {plan.target.scenario})")
    for j in result.joins:
        console.print(L("{center} ({option}, {scenario}): joined {a:.1f}% allocated, alone {b:.1f}%",
                        center=j.center, option=j.option, scenario=j.scenario, a=100 * j.joined.allocated_util,
                        b=100 * j.alone.allocated_util))
    for n in [*result.basis, *result.notes]:
        console.print(f"[dim]- {n}[/]")
    path = write_report(result, out, LANG[0])
    console.print(L("report: {path} (plan.csv and join-vs-alone.csv beside it)", path=path)
                  + f"  [{result.wall_seconds:.0f} s]")
