"""`zhisuan explain`: the ranked candidate table for one job, like SkyPilot's optimizer table with
expected start time and carbon added."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from zhisuan.cli.common import (
    ASSUMED,
    LANG,
    L,
    center_name,
    console,
    fail,
    kilos,
    money,
    read_network,
    read_spec,
    short_chip,
)

if TYPE_CHECKING:
    from zhisuan.scheduler.decisions import Candidate


SCORE_NOTE = "Score = weighted, normalised start time, price, carbon, data locality and fragmentation (100 = best)."
RUNTIME_NOTE = ("Runtime = time_limit ÷ speed factor (FP16 TFLOPS ratio to the requested chip: an approximation). "
                "¥ and kgCO2 are those of the expected run window from now, hour by hour, as an invoice meters them: "
                "price × the center's time-of-use multiplier; TDP × PUE × the hour's grid intensity (a power model, "
                "upper bound).")


def explain_command(
    job: Annotated[Path, typer.Argument(help="job spec (YAML)")],
    network: Annotated[Path, typer.Option("--network", "-n", help="network file")] = Path(
        "examples/networks/toy3.yaml"),
    policy: Annotated[str | None, typer.Option(help="scheduling policy (default: the network's)")] = None,
    all_pools: Annotated[bool, typer.Option("--all", help="also list rejected pools")] = False,
) -> None:
    """Rank where JOB would run in NETWORK: center, pool, chips, expected start, ¥/job, kgCO2, score."""
    from zhisuan.model import SpecError
    from zhisuan.model.billing import held_by
    from zhisuan.model.units import format_duration
    from zhisuan.scheduler import pending_from_spec, snapshot_from_network
    from zhisuan.scheduler.explain import explain
    from zhisuan.scheduler.policies import FILTERS
    from zhisuan.scheduler.profiles import policy_for

    net = read_network(network)
    spec = read_spec(job, net)
    pending = pending_from_spec(spec.name, spec, submit_time=0.0)
    try:
        pol = policy_for(net.scheduler, policy)
    except SpecError as e:
        fail(f"{network}: {e}")
    # the network's running load is relative to now; tariffs and grid series read the calendar
    candidates = explain(snapshot_from_network(net), pending, now=0.0, policy=pol, calendar=time.time())
    pools = {(c.name, p.name): (c, p) for c in net.centers for p in c.pools}
    req = pending.request
    if req.devices_per_node:
        gang = f"{req.nodes}×{req.milli / 1000:g}" if req.milli else f"{req.nodes}×{req.devices_per_node}"
        title = L("{job}: {gang} devices, {time} on the reference chip — network {network}", job=spec.name,
                  gang=gang, time=format_duration(pending.duration), network=net.name)
    else:
        gang = f"{req.nodes}×{req.cpus:g} CPUs"
        title = L("{job}: {gang}, no device, {time} — network {network}", job=spec.name, gang=gang,
                  time=format_duration(pending.duration), network=net.name)
    table = Table(title=title)
    for col, just in [("#", "right"), ("center", "left"), ("pool", "left"), ("chips", "left"),
                      ("start", "right"), ("runtime", "right"), ("¥/job", "right"), ("kgCO2", "right"),
                      ("score", "right"), ("note", "left")]:
        table.add_column(L(col), justify=just)  # type: ignore[arg-type]
    assumed: set[str] = set()
    shown = 0
    for i, cand in enumerate(candidates, 1):
        if cand.rejected and not all_pools:
            continue
        center, pool = pools[(cand.center, cand.pool)]
        bill = held_by(req, pool.devices_per_node, pool.cpus_per_node, pool.memory_gib_per_node, pool.cpu_price[0],
                       pool.memory_price[0])  # CPUs or memory billed at a price derived from the devices': marked
        mark_price = ASSUMED if "price_per_device_hour" in pool.assumptions or (bill.cpus and pool.cpu_price[1]) or (
            bill.memory_gib and pool.memory_price[1]) else ""
        mark_carbon = ASSUMED if "pue" in center.assumptions or pool.chip.assumptions else ""
        if mark_price or mark_carbon:
            assumed.add(f"{center.name}/{pool.name}")
        start = L("never") if math.isinf(cand.start_delay) else L(format_duration(cand.start_delay))
        table.add_row(
            str(i), center_name(center), pool.name,
            f"{gang} {short_chip(pool.chip.name)}" if req.devices_per_node else gang,
            "—" if cand.rejected else start, format_duration(cand.runtime),
            f"{money(cand.cost)}{mark_price}", f"{kilos(cand.carbon)}{mark_carbon}",
            "—" if math.isnan(cand.score) else f"{cand.score:.1f}",
            "; ".join(L(f) for f in cand.rejected) if cand.rejected else (L("← chosen") if shown == 0 else ""),
            style="dim" if cand.rejected else ("bold green" if shown == 0 else None),
        )
        shown += 1
    console.print(table)
    print_parts(candidates)
    feasible = [c for c in candidates if not c.rejected]
    console.print(L("{n} of {m} pools can run it.", n=len(feasible), m=len(candidates)) + " " + L(SCORE_NOTE))
    console.print(L(RUNTIME_NOTE))
    if assumed:
        console.print(f"{ASSUMED} " + L("ASSUMPTION in price or carbon inputs (see the network file's `assumptions`):")
                      + " " + ", ".join(sorted(assumed)))
    used = {name for c in candidates if all_pools for name in c.rejected}
    for f in FILTERS:
        if f.name in used:
            console.print(f"  [dim]{L(f.name)}[/]: {L(f.reason)}")
    if not feasible:
        raise typer.Exit(1)


def print_parts(candidates: list[Candidate], top: int = 3) -> None:
    """The best pools' scores, part by part (normalised 0-100 × weight → points), and the margin in words."""
    from zhisuan.i18n import translate
    from zhisuan.scheduler.explain import LABELS, margin

    shown = [c for c in candidates if not c.rejected and c.parts][:top]
    if shown:
        parts = Table(title=L("what each score contributed (normalised 0–100 × weight ÷ Σweights = points)"))
        parts.add_column(L("pool"))
        for p in shown[0].parts:
            parts.add_column(f"{L(LABELS.get(p.name, p.name))} ×{p.weight:g}", justify="right")
        parts.add_column(L("total"), justify="right")
        for c in shown:
            parts.add_row(f"{c.center}/{c.pool}", *(f"{p.score:.0f} → {p.contribution:.1f}" for p in c.parts),
                          f"{c.score:.1f}")
        console.print(parts)
    console.print(L("why: {margin}", margin=translate(margin(candidates), LANG[0])), highlight=False)
