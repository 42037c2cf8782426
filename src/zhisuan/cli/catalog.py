"""`zhisuan catalog`: the accelerator table, with ASSUMPTION-filled values marked."""

from __future__ import annotations

import os

from rich.table import Table

from zhisuan.cli.common import ASSUMED, console


def catalog_command() -> None:
    """List the accelerator catalog: stack, memory, dense FP16 TFLOPS, TDP and aliases."""
    from zhisuan.catalog import load_catalog
    from zhisuan.catalog.accelerators import CATALOG_ENV

    t = Table(title="accelerator catalog (dense FP16/BF16; source: Epoch AI ML Hardware + gap fills"
                    + (f" + user catalog {os.environ[CATALOG_ENV]}" if os.environ.get(CATALOG_ENV) else "") + ")")
    for col in ["vendor", "model", "stack", "memory GB", "FP16 TFLOPS", "TDP W", "aliases"]:
        t.add_column(col, justify="right" if col.endswith(("GB", "TFLOPS", "W")) else "left")
    marked = False
    for a in load_catalog():
        tdp = "—" if a.tdp_w is None else f"{a.tdp_w:.0f}" + (ASSUMED if "tdp_w" in a.assumptions else "")
        marked |= "tdp_w" in a.assumptions
        flops = f"{a.fp16_tflops:g}" + (ASSUMED if "fp16_tflops" in a.assumptions else "")
        marked |= "fp16_tflops" in a.assumptions
        t.add_row(a.vendor, a.name, a.stack, "—" if a.memory_gb is None else f"{a.memory_gb:g}",
                  flops, tdp, ", ".join(a.aliases))
    console.print(t)
    if marked:
        console.print(f"{ASSUMED} ASSUMPTION: not in the sources read (gap_fills.csv), derived (accelerators_more.csv "
                      "notes) or a user catalog row whose source says so")
