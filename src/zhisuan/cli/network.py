"""`zhisuan network FILE`: centers of a network file with capacity in P and devices per chip."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from zhisuan.cli.common import ASSUMED, L, center_name, console, read_network


def network_command(
    path: Annotated[Path, typer.Argument(help="network file")] = Path("examples/networks/toy3.yaml"),
) -> None:
    """Show a network file: centers, region, PUE, grid factor, pools, capacity in P (FP16 PFLOPS)."""
    net = read_network(path)
    t = Table(title=L("network {name}: {centers} centers, {devices} devices, {pflops} P (FP16)", name=net.name,
                      centers=len(net.centers), devices=f"{net.devices:,}", pflops=f"{net.pflops:,.1f}"))
    for col in ["center", "region", "PUE", "kgCO2/kWh", "pool", "chip", "nodes×dev", "P", "¥/dev-h"]:
        t.add_column(L(col), justify="right" if col in {"PUE", "kgCO2/kWh", "P", "¥/dev-h"} else "left")
    marked = False
    for c in net.centers:
        for i, p in enumerate(c.pools):
            pue = f"{c.pue:g}" + (ASSUMED if "pue" in c.assumptions else "")
            price = f"{p.price_per_device_hour:g}" + (ASSUMED if "price_per_device_hour" in p.assumptions else "")
            size = f"{p.nodes}×{p.devices_per_node}" + (ASSUMED if "nodes" in p.assumptions else "")
            chip = p.chip.name + (ASSUMED if "accelerator" in p.assumptions else "")
            marked |= ASSUMED in pue + price + size + chip
            t.add_row(center_name(c) if i == 0 else "", L(c.region) if i == 0 else "", pue if i == 0 else "",
                      f"{c.carbon_kg_per_kwh:g}" if i == 0 else "", p.name, chip, size, f"{p.pflops:,.1f}", price)
    console.print(t)
    if marked:
        console.print(f"{ASSUMED} " + L("ASSUMPTION (the network file's `assumptions` say why)"))
