"""`zhisuan bench ...`: benchmark commands. Figures are measured here, never typed in."""

from __future__ import annotations

import statistics
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from zhisuan.bench import SIM_POLICIES
from zhisuan.cli.common import console, read_network

bench_app = typer.Typer(help="Benchmarks; each prints its figures, last line `name: N`.",
                         no_args_is_help=True, rich_markup_mode=None)


@bench_app.command("scheduler")
def bench_scheduler(
    quick: Annotated[bool, typer.Option(help="10× smaller case: 1,000 nodes, 10,000 pending jobs")] = False,
    repeats: Annotated[int, typer.Option(min=1, help="cycles to time; the median is reported")] = 5,
    policy: Annotated[str, typer.Option(help="scheduling policy")] = "zhisuan",
) -> None:
    """One full scheduling cycle over a synthetic network: placements/s, cycle time, peak memory."""
    from zhisuan.bench import scheduler as scheduler_bench
    from zhisuan.scheduler import get_policy

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
        ("pending jobs / distinct resource asks", f"{r.pending:,} / {r.reqs:,}"),
        ("running jobs before the cycle", f"{r.running:,}"),
        ("placements in the cycle", f"{r.placed:,}"),
        ("left waiting / unschedulable", f"{r.waiting:,} / {r.unschedulable:,}"),
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


@bench_app.command("sim")
def bench_sim(
    policies: Annotated[str, typer.Option(help="comma-separated policies")] = ",".join(SIM_POLICIES),
    limit: Annotated[int | None, typer.Option(min=1, help="replay only the first N jobs")] = None,
    siloed: Annotated[bool, typer.Option(help="time the siloed scenario instead of the network")] = False,
    scale: Annotated[float | None, typer.Option(min=1, max=1000, help="grow Philly's arrivals and cluster "
                                                "this many times (each policy also at ×1): time and memory")] = None,
) -> None:
    """Full Philly replay (82,229 jobs) per policy: wall time and jobs simulated per second."""
    from zhisuan.bench import sim as sim_bench
    from zhisuan.scheduler import get_policy

    names = [p.strip() for p in policies.split(",") if p.strip()]
    for n in names:
        get_policy(n)
    if scale is not None:
        _bench_scale(names if policies != ",".join(SIM_POLICIES) else ["fifo", "zhisuan"], scale)
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("loading the Philly trace", total=None)
        load, timings = sim_bench.run(names, limit, siloed,
                                      progress=lambda msg: bar.update(task, description=msg, refresh=True))
    t = Table(title=f"zhisuan bench sim: Philly, {'siloed' if siloed else 'network'} scenario, cycle every 60 s")
    for col in ["policy", "jobs", "cycles", "wall s", "jobs simulated/s"]:
        t.add_column(col, justify="left" if col == "policy" else "right")
    for r in timings:
        t.add_row(r.policy, f"{r.jobs:,}", f"{r.cycles:,}", f"{r.seconds:.2f}", f"{r.jobs_per_second:,.0f}")
    console.print(t)
    console.print(f"trace load (parse + sort, once): {load:.2f} s; slowest policy "
                  f"{max(timings, key=lambda r: r.seconds).policy} {max(r.seconds for r in timings):.2f} s")
    print(f"philly-seconds-per-policy: {sim_bench.median_seconds(timings):.2f}")


def _bench_scale(names: list[str], scale: float) -> None:
    from zhisuan.bench import sim as sim_bench

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("starting", total=None)
        rows = sim_bench.run_scaled(names, [1.0, scale],
                                    progress=lambda msg: bar.update(task, description=msg, refresh=True))
    t = Table(title=f"zhisuan bench sim --scale {scale:g}: Philly arrivals and cluster ×{scale:g} (network)")
    for col in ["policy", "scale", "jobs", "devices", "wall s", "µs per job", "time vs ×1 per job",
                "peak MB (trace loaded)", "bytes per job"]:
        t.add_column(col, justify="left" if col == "policy" else "right")
    one = {r.policy: r for r in rows if r.scale == 1.0}
    for r in rows:
        per_job = r.seconds / r.jobs
        t.add_row(r.policy, f"×{r.scale:g}", f"{r.jobs:,}", f"{r.devices:,}", f"{r.seconds:.1f}",
                  f"{1e6 * per_job:.1f}", f"{per_job / (one[r.policy].seconds / one[r.policy].jobs):.2f}",
                  f"{r.peak_mb:,.0f} ({r.base_mb:,.0f})", f"{r.bytes_per_job:,.0f}")
    console.print(t)
    console.print("bytes per job: the replay's peak memory above the process with the Philly trace loaded, "
                  "divided by the jobs (results kept as numpy columns; a grown trace's copies are not objects)")
    big = [r for r in rows if r.scale == scale]
    print(f"sim-scale-bytes-per-job: {max(r.bytes_per_job for r in big):.0f}")
    print(f"sim-scale-seconds: {max(r.seconds for r in big):.1f}")


@bench_app.command("carbon")
def bench_carbon(
    network: Annotated[Path, typer.Option(help="network of real centers")] = Path("examples/networks/cn10.yaml"),
    trace: Annotated[str, typer.Option(help="trace to replay")] = "philly",
    limit: Annotated[int | None, typer.Option(min=1, help="replay only the first N jobs")] = None,
    portable: Annotated[bool, typer.Option(help="jobs may run on CUDA or CANN chips (ASSUMPTION)")] = True,
    slack: Annotated[float, typer.Option(help="hours of slack of a deferrable job (ASSUMPTION)")] = 12.0,
    max_hours: Annotated[float, typer.Option(help="jobs up to this many hours are deferrable (ASSUMPTION)")] = 4.0,
) -> None:
    """Carbon-aware vs carbon-blind placement and ToU time shifting: kgCO2 and CNY saved vs wait added."""
    from zhisuan.sim import green

    net = read_network(network)
    with console.status("replaying the trace under four placements"):
        tr, rows = green.compare(net, trace, limit, slack_hours=slack, max_hours=max_hours,
                                 stacks=frozenset({"cuda", "cann"}) if portable else None)
    t = Table(title=f"{tr.name} ({len(tr.jobs):,} jobs) over {net.name}: carbon and ToU")
    for col in ["placement", "avg wait h", "avg JCT h", "¥ (ToU)", "kgCO2", "deferred jobs", "wall s"]:
        t.add_column(col, justify="left" if col == "placement" else "right")
    for r in rows:
        s = r.summary
        t.add_row(r.label, f"{s.avg_queue / 3600:.2f}", f"{s.avg_jct / 3600:.2f}", f"{s.cny:,.0f}",
                  f"{s.kg_co2:,.0f}", f"{r.deferred:,}", f"{s.wall_seconds:.1f}")
    console.print(t)
    marks = [*tr.notes, f"deferrable = expected ≤ {max_hours:g} h, {slack:g} h slack: ASSUMPTION"]
    if portable:
        marks.append("jobs portable across CUDA and CANN: ASSUMPTION")
    console.print("Assumptions: " + "; ".join(marks))
    console.print("Energy: TDP × measured-utilisation model × PUE; carbon: annual provincial grid factors (constant "
                  "over the day, so time shifting changes ¥, not the carbon intensity of an hour).")
    blind, default, first, shifted = (r.summary for r in rows)
    for name, s in [("zhisuan", default), ("carbon-first", first)]:
        wait = (s.avg_queue - blind.avg_queue) / 60
        print(f"{name} vs carbon-blind: kgCO2 {100 * (blind.kg_co2 - s.kg_co2) / blind.kg_co2:+.1f}% saved, "
              f"¥ {100 * (blind.cny - s.cny) / blind.cny:+.1f}% saved, wait {wait:+.1f} min")
    print(f"time shifting vs zhisuan: ¥ {100 * (default.cny - shifted.cny) / default.cny:+.2f}% saved, "
          f"kgCO2 {100 * (default.kg_co2 - shifted.kg_co2) / default.kg_co2:+.2f}% saved, "
          f"wait {(shifted.avg_queue - default.avg_queue) / 60:+.1f} min")
    print(f"kgco2-saved-vs-carbon-blind: {100 * (blind.kg_co2 - default.kg_co2) / blind.kg_co2:.1f}%")


@bench_app.command("control")
def bench_control(
    pending: Annotated[int, typer.Option(min=1, help="jobs waiting in the store")] = 10_000,
    running: Annotated[int, typer.Option(min=40, max=2000, help="jobs running (real processes), a multiple of 40: "
                                                                "they fill the network")] = 1_000,
    steps: Annotated[int, typer.Option(min=1, help="steady steps timed; the median is reported")] = 9,
) -> None:
    """One live control step on a loaded store against the pure scheduling cycle on the same snapshot."""
    from zhisuan.bench import control as control_bench

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("starting", total=None)
        r = control_bench.run(pending, running, steps,
                              progress=lambda msg: bar.update(task, description=msg, refresh=True))
    t = Table(title=f"zhisuan bench control: {r.pending:,} pending and {r.running:,} running jobs on "
                    f"{r.devices:,} devices (SQLite, local engine)")
    t.add_column("measure")
    t.add_column("seconds", justify="right")
    rows = [
        ("first step after the submissions (each spec parsed once, every wait reason written)", r.first_step),
        (f"live step, steady (median of {len(r.steps)}): poll, feed, cycle, carry out, waits", r.step),
        ("live step that also refreshes every waiting job's reason (every 5 s; median of 3)",
         statistics.median(r.refresh_steps)),
        ("pure cycle(snapshot, now) on the loop's snapshot, cold (median of 5)", r.cold),
        ("the same cycle on the loop's warm state (median of 5)", r.warm),
        ("re-reading and parsing the store's active jobs (what every step cost before)", r.reread),
    ]
    for k, v in rows:
        t.add_row(k, f"{v:.4f}")
    console.print(t)
    console.print(f"steady steps: {', '.join(f'{s * 1000:.0f}' for s in r.steps)} ms; live step ÷ warm cycle "
                  f"{r.step / r.warm:.2f}")
    print(f"live-step-vs-cycle: {r.step / r.cold:.2f}")


@bench_app.command("fidelity")
def bench_fidelity(
    jobs: Annotated[int, typer.Option(min=5, help="Philly jobs to run live and replay")] = 200,
    span: Annotated[float, typer.Option(min=10, help="seconds the arrivals are squeezed into")] = 180.0,
    shortest: Annotated[float, typer.Option(min=1, help="shortest run time, seconds")] = 12.0,
    longest: Annotated[float, typer.Option(min=1, help="longest run time, seconds")] = 60.0,
    interval: Annotated[float, typer.Option(min=0.1, help="seconds between cycles, live and simulated")] = 1.0,
    offset: Annotated[int, typer.Option(min=0, help="first Philly job of the window")] = 68_000,
    slurm: Annotated[Path, typer.Option(help="root of scripts/slurm-up.sh's clusters")] = Path("/tmp/zhisuan-slurm"),
) -> None:
    """The same Philly window run live (two real Slurm clusters + a local center) and in the simulator."""
    from zhisuan.bench import fidelity as fidelity_bench

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("starting", total=None)
        try:
            r = fidelity_bench.run(jobs, span, shortest, longest, interval, offset, slurm,
                                   progress=lambda msg: bar.update(task, description=msg, refresh=True))
        except (FileNotFoundError, subprocess.CalledProcessError) as e:
            raise SystemExit(f"error: {e}") from e
    t = Table(title=f"zhisuan bench fidelity: {len(r.jobs)} jobs live ({r.live_seconds:.0f} s) and simulated, "
                    f"cycle every {r.interval:g} s")
    for col in ["job", "tenant", "GPUs", "run s", "arrive s", "live pool", "live start", "live JCT", "sim pool",
                "sim start", "sim JCT", "same pool"]:
        t.add_column(col, justify="left" if col in ("job", "tenant", "live pool", "sim pool") else "right")
    for j in sorted(r.jobs, key=lambda j: j.submit):
        t.add_row(j.id, j.tenant, str(j.devices), f"{j.run_s:.0f}", f"{j.submit:.1f}", j.live_pool,
                  f"{j.live_start:.1f}", f"{j.live_jct:.1f}", j.sim_pool, f"{j.sim_start:.1f}", f"{j.sim_jct:.1f}",
                  "yes" if j.live_pool == j.sim_pool else "NO")
    console.print(t)
    done = r.done
    s = Table(title="summary")
    for col in ["measure", "live", "simulated"]:
        s.add_column(col, justify="left" if col == "measure" else "right")
    for name, key in [("mean JCT s", "jct"), ("median JCT s", "jct_median"), ("mean wait s", "wait")]:
        values = []
        for side in ("live", "sim"):
            if key == "wait":
                xs = [getattr(j, f"{side}_start") - j.submit for j in done]
            else:
                xs = [getattr(j, f"{side}_jct") for j in done]
            values.append(statistics.median(xs) if key.endswith("median") else statistics.fmean(xs))
        s.add_row(name, f"{values[0]:.1f}", f"{values[1]:.1f}")
    s.add_row("jobs finished", str(sum(map(lambda j: j.live_end == j.live_end, r.jobs))), str(len(done)))
    console.print(s)
    errors = sorted(abs(j.live_jct - j.sim_jct) / j.sim_jct for j in done)
    console.print(f"per-job JCT error: median {100 * statistics.median(errors):.1f}%, 90th percentile "
                  f"{100 * errors[int(0.9 * (len(errors) - 1))]:.1f}%")
    for n in r.notes:
        console.print(f"[dim]- {n}[/]")
    console.print(f"open loop, per job: {r.per_job_agreement_pct:.1f}% on the same pool live and simulated; the "
                  f"simulator with itself, run times jittered by up to 1.5 s: {r.ceiling_pct:.1f}% (the ceiling under "
                  "this queueing)")
    console.print(f"closed loop, per decision: the replica fed the live events chose {r.decisions[0]} of the live "
                  f"run's {r.decisions[1]} placements")
    print(f"placement-agreement-pct: {r.placement_agreement_pct:.1f}")
    print(f"fidelity-mean-jct-error-pct: {r.mean_jct_error_pct:.1f}")


@bench_app.command("cli")
def bench_cli(repeats: Annotated[int, typer.Option(min=1, max=50, help="runs per command")] = 7) -> None:
    """Start-up time of the command itself: `zhisuan --help` and friends, each a new process."""
    from zhisuan.bench import cli as cli_bench

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("starting", total=None)
        timings = cli_bench.run(repeats, progress=lambda msg: bar.update(task, description=msg, refresh=True))
    t = Table(title=f"zhisuan bench cli: wall time of a new process, median of {repeats}")
    t.add_column("command")
    t.add_column("median s", justify="right")
    t.add_column("min … max s", justify="right")
    for c in timings:
        t.add_row("zhisuan " + " ".join(c.args), f"{c.median:.3f}", f"{min(c.seconds):.3f} … {max(c.seconds):.3f}")
    console.print(t)
    print(f"cli-help-seconds: {timings[0].median:.3f}")



@bench_app.command("plan")
def bench_plan(
    limit: Annotated[int | None, typer.Option(min=1, help="replay only the first N Philly jobs")] = None,
    workers: Annotated[int, typer.Option(min=0, help="worker processes (0: one per core)")] = 0,
) -> None:
    """A 24-option plan on the full Philly trace (the example plan's region, ×1 demand): seconds per option."""
    from rich.progress import BarColumn, MofNCompleteColumn

    from zhisuan.bench import plan as plan_bench
    from zhisuan.sim.plan.cells import CellSpec

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("replaying options", total=None)

        def step(_: CellSpec) -> None:
            bar.advance(task)

        r = plan_bench.run(limit, workers, step)
    t = Table(title="zhisuan bench plan (24 options, Philly ×1, cn10-growth's region)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    walls = sorted(c.cell.wall_seconds for c in r.result.rows)
    for k, v in [("options / cells (incl. silos for builds)", f"{r.options} / {r.cells}"),
                 ("jobs per cell", f"{r.jobs_per_cell:,}"), ("worker processes", str(r.workers)),
                 ("plan wall time", f"{r.seconds:.1f} s"),
                 ("one cell's replay, median (min-max)",
                  f"{statistics.median(walls):.2f} s ({walls[0]:.2f}-{walls[-1]:.2f})")]:
        t.add_row(k, v)
    console.print(t)
    print(f"plan-seconds-per-option: {r.per_option:.2f}")
