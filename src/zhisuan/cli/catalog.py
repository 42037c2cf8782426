"""`zhisuan catalog`: the accelerator table, with ASSUMPTION-filled values marked."""

from __future__ import annotations

from rich.table import Table

from zhisuan.cli.common import ASSUMED, console


def catalog_command() -> None:
    """List the accelerator catalog: stack, memory, dense FP16 TFLOPS, TDP and aliases."""
    from zhisuan.catalog import load_catalog

    t = Table(title="accelerator catalog (dense FP16/BF16; source: Epoch AI ML Hardware + gap fills)")
    for col in ["vendor", "model", "stack", "memory GB", "FP16 TFLOPS", "TDP W", "aliases"]:
        t.add_column(col, justify="right" if col.endswith(("GB", "TFLOPS", "W")) else "left")
    marked = False
    for a in load_catalog():
        tdp = "—" if a.tdp_w is None else f"{a.tdp_w:.0f}" + (ASSUMED if "tdp_w" in a.assumptions else "")
        marked |= "tdp_w" in a.assumptions
        t.add_row(a.vendor, a.name, a.stack, "—" if a.memory_gb is None else f"{a.memory_gb:g}",
                  f"{a.fp16_tflops:g}", tdp, ", ".join(a.aliases))
    console.print(t)
    if marked:
        console.print(f"{ASSUMED} ASSUMPTION: not in the sources read (see catalog/data/gap_fills.csv)")
