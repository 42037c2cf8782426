"""`zhisuan demo`: the example jobs through one scheduling cycle on the toy network, with the why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from zhisuan.cli.common import console, err_console, read_network
from zhisuan.model import SpecError, check_spec, parse_job_spec
from zhisuan.model.units import format_duration
from zhisuan.scheduler import cycle, pending_from_spec, snapshot_from_network


def demo_command(
    network: Annotated[Path, typer.Option("--network", "-n")] = Path("examples/networks/toy3.yaml"),
    jobs: Annotated[Path, typer.Option(help="folder of job specs")] = Path("examples/jobs"),
) -> None:
    """Validate the example jobs, run one scheduling cycle and show where each goes and why."""
    net = read_network(network)
    snap = snapshot_from_network(net)
    for i, path in enumerate(sorted(jobs.glob("*.yaml"))):
        try:
            spec = parse_job_spec(path.read_text(encoding="utf-8"))
            check_spec(spec, net)
        except SpecError as e:
            err_console.print(f"[yellow]rejected[/] {path.name}: {e}")
            continue
        snap.pending.append(pending_from_spec(spec.name, spec, submit_time=float(i)))
    result = cycle(snap, now=0.0)
    t = Table(title=f"one scheduling cycle on {net.name}")
    for col in ["job", "decision", "center/pool", "nodes", "start", "¥/job", "kgCO2", "runner-up"]:
        t.add_column(col)
    for s in result.starts:
        cands = s.why.candidates(limit=2)
        runner = f"{cands[1].center}/{cands[1].pool} ({cands[1].score:.0f})" if len(cands) > 1 and \
            not cands[1].rejected else "—"
        t.add_row(s.job_id, f"start (score {s.score:.0f})", f"{s.placement.center}/{s.placement.pool}",
                  ",".join(map(str, s.placement.nodes)), "now", f"{cands[0].cost:,.0f}", f"{cands[0].carbon:.1f}",
                  runner)
    for r in result.reservations:
        t.add_row(r.job_id, "reserve", r.pool, "", format_duration(r.start), "", "", "")
    for reason, ids in result.waiting.items():
        for job_id in ids:
            t.add_row(job_id, "wait", reason, "", "", "", "", "")
    for u in result.unschedulable:
        t.add_row(u.job_id, "unschedulable", u.reason, "", "", "", "", "")
    console.print(t)
    console.print("Next: [bold]zhisuan explain examples/jobs/llama-sft.yaml --network examples/networks/cn10.yaml[/]")
