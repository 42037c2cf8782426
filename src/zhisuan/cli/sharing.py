"""`zhisuan sharing`: the FGD paper's GPU-sharing experiment on a cluster and trace (the Alibaba openb
ones by default): each node score's GPU allocation as the cluster fills, published figures beside."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zhisuan.cli.common import console, fail

CLUSTERS = {"gpu": "openb_node_list_gpu_node.csv.gz", "all": "openb_node_list_all_node.csv.gz"}
PODS = "openb_pod_list_default.csv.gz"


def run_and_show(policies: list[str], seeds: list[int], nodes: str | Path, pods: str | Path, tune: float,
                 workers: int, title: str) -> float | None:
    """Run, print the table (published figures beside when it is the paper's setting); the default policy's
    (else zhisuan's node score's) mean allocation at 100% arrived, if it ran."""
    from zhisuan.sim.sharing import DEFAULT_SCORE, PUBLISHED, run_many, summarise

    workers = workers or os.cpu_count() or 1
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("policy × seed runs", total=len(policies) * len(seeds))
        try:
            results = run_many(policies, seeds, nodes, pods, tune, min(workers, len(policies) * len(seeds)),
                               lambda _: bar.advance(task))
        except (ValueError, FileNotFoundError) as e:
            fail(str(e))
    paper = nodes == CLUSTERS["gpu"] and pods == PODS and tune == 1.3
    t = Table(title=title)
    for col in ("node score / policy", "seeds", "GPU alloc % at 100% arrived", "spread (max-min)",
                "unallocated GPUs", f"alloc % at the end ({tune:g}×)", "failed tasks", "published % (paper)"):
        t.add_column(col, justify="left" if col.startswith("node") else "right")
    rows = summarise(results)
    by_name = {r.policy: r for r in rows}
    for name in policies:
        r = by_name.get(name) or by_name[f"policy {name}"]
        published = PUBLISHED.get(name) if paper else None
        label = (f"{name} (zhisuan's node score)" if name == DEFAULT_SCORE else
                 f"policy {name} (pool scores, then its node score)" if r.policy.startswith("policy ") else name)
        reached = r.alloc_pct == r.alloc_pct  # nan: the tune stops before 100% arrives
        t.add_row(label, str(r.seeds), f"{r.alloc_pct:.2f}" if reached else "-", f"{r.spread:.2f}" if reached else "-",
                  f"{r.unallocated:.0f}" if reached else "-", f"{r.final_pct:.2f}", f"{r.failed:.0f}",
                  f"{published:.2f}" if published else "-")
    console.print(t)
    if paper:
        console.print("published: Weng et al., ATC'23 artifact, mean of 10 seeds (42-51); here seeds "
                      f"{', '.join(map(str, seeds))}. Copies are drawn by GPU asks (GPUs × thousandths).")
    mine = by_name.get("policy zhisuan") or by_name.get(DEFAULT_SCORE)
    return mine.alloc_pct if mine and mine.alloc_pct == mine.alloc_pct else None


def sharing_command(
    nodes: Annotated[str, typer.Option(help="gpu (the paper's 1,213 GPU nodes), all (with the 310 CPU-only "
                                            "nodes) or a node-list CSV: sn,cpu_milli,memory_mib,gpu,model")] = "gpu",
    pods: Annotated[Path | None, typer.Option(help="pod-list CSV (openb columns); default: the openb "
                                                   "default trace")] = None,
    policies: Annotated[str, typer.Option(help="node scores, or policies (as users run them: pool scores, "
                                               "then their node score), comma-separated")] =
        "random,dot-product,gpu-clustering,gpu-packing,best-fit,fgd,frag-memory,zhisuan",
    seeds: Annotated[int, typer.Option(min=1, max=50, help="seeds 42, 43, ...")] = 5,
    tune: Annotated[float, typer.Option(min=0.1, max=10, help="grow the tasks to this multiple of the GPUs")] = 1.3,
    workers: Annotated[int, typer.Option(min=0, help="worker processes (0: one per core)")] = 0,
) -> None:
    """Fill a GPU-sharing cluster one task at a time, nothing leaving; GPU allocation per node score."""
    if nodes in CLUSTERS:
        node_source: str | Path = CLUSTERS[nodes]
    else:
        node_source = Path(nodes)
        if not node_source.is_file():
            fail(f"--nodes: no such file {nodes!r} (or gpu, all)")
    if pods is not None and not pods.is_file():
        fail(f"--pods: no such file {str(pods)!r}")
    names = [p.strip() for p in policies.split(",") if p.strip()]
    run_and_show(names, list(range(42, 42 + seeds)), node_source, pods or PODS, tune, workers,
                 f"GPU-sharing experiment: {nodes} nodes, tune {tune:g}, {seeds} seeds")
