"""Readers for the packaged public traces: Philly, Gavel's Philly-derived trace, Sia and Pollux workloads."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import cache
from importlib import resources

from zhisuan.sim.trace import Trace, TraceJob, read_csv

V100 = "V100 SXM2 32GB"
# GPU-hours per application: geometric middle of the bucket Pollux's workload.py drew it from (ASSUMPTION)
POLLUX_GPU_HOURS = {"cifar10": 0.5, "ncf": 0.5, "deepspeech2": 3.2, "bert": 3.2, "yolov3": 32.0, "imagenet": 200.0}


def _data(name: str) -> bytes:
    return resources.files("zhisuan.sim").joinpath("data", name).read_bytes()


def _text(name: str) -> str:
    raw = _data(name)
    return (gzip.decompress(raw) if name.endswith(".gz") else raw).decode("utf-8")


def philly(gpus_per_node: int = 2) -> Trace:
    """82,247 Philly jobs; VCs become homes sized from the Helios node table."""
    nodes = {r["vc"]: int(r["node num"]) for r in csv.DictReader(io.StringIO(_text("philly_vc_nodes.csv")))}
    rows = list(csv.DictReader(io.StringIO(_text("philly.csv.gz"))))
    t0 = min(datetime.fromisoformat(r["timestamp"]) for r in rows)
    jobs, dropped = [], 0
    for i, r in enumerate(rows):
        if r["cluster"] not in nodes:
            dropped += 1
            continue
        submit = (datetime.fromisoformat(r["timestamp"]) - t0).total_seconds()
        jobs.append(TraceJob(f"philly-{i}", submit, max(float(r["duration"]), 1.0), int(r["num_gpus"]),
                             tenant=r["cluster"], home=r["cluster"]))
    jobs.sort(key=lambda j: (j.submit, j.id))
    # the trace's clock times are replayed as Beijing time, so its daily rhythm meets China's ToU hours
    start = t0.replace(tzinfo=timezone(timedelta(hours=8))).timestamp()
    util = [(float(r["gpu_util_pct"]), float(r["cdf_pct"]))
            for r in csv.DictReader(io.StringIO(_text("gpu_util_cdf_philly.csv")))]
    notes = [
        f"{len(rows):,} Philly jobs; {dropped} jobs of VCs absent from the Helios node table left out",
        f"{gpus_per_node} GPUs per node: ASSUMPTION (Philly had 2- and 8-GPU machines; the table gives nodes only)",
        f"durations as measured on Philly's GPUs, taken as {V100}: ASSUMPTION",
        "the trace's clock times are replayed as Beijing time (for ToU hours): ASSUMPTION",
    ]
    return Trace("philly", jobs, V100, nodes, notes, util, start)


@cache
def gavel_throughputs() -> dict[str, dict[tuple[str, int], float]]:
    """Gavel's isolated throughputs (steps/s): worker type -> (job type, GPUs) -> steps/s."""
    raw = json.loads(_text("simulation_throughputs.json.gz"))
    out: dict[str, dict[tuple[str, int], float]] = {}
    for worker, table in raw.items():
        for key, entry in table.items():
            name, scale = key.strip("()").rsplit(",", 1)
            out.setdefault(worker, {})[(name.strip().strip("'"), int(scale))] = float(entry["null"])
    return out


def gavel() -> Trace:
    """Gavel's Philly-derived trace: duration = total steps / Gavel's measured V100 throughput."""
    v100 = gavel_throughputs()["v100"]
    jobs, missing = [], 0
    for i, r in enumerate(csv.DictReader(io.StringIO(_text("gavel_msr_seed0.csv.gz")))):
        gpus = int(r["scale_factor_gpus"])
        rate = v100.get((r["job_type"], gpus)) or v100.get((r["job_type"], 1))
        if not rate:
            missing += 1
            continue
        jobs.append(TraceJob(f"gavel-{i}", float(r["arrival_time_s"]), float(r["total_steps"]) / rate, gpus,
                             tenant=r["vc"], home=r["vc"], application=r["job_type"]))
    jobs.sort(key=lambda j: (j.submit, j.id))
    notes = ["duration = total_steps / Gavel's isolated V100 throughput of the job type"]
    if missing:
        notes.append(f"{missing} jobs without a V100 throughput left out")
    return Trace("gavel", jobs, V100, {}, notes)


def workload(name: str) -> Trace:
    """A Sia or Pollux workload (no durations in the data: see POLLUX_GPU_HOURS)."""
    rows = list(csv.DictReader(io.StringIO(_text(name))))
    jobs = []
    for i, r in enumerate(rows):
        app, gpus = r["application"], max(int(r["num_replicas"]), 1)
        gpu_hours = POLLUX_GPU_HOURS.get(app, 1.0)
        jobs.append(TraceJob(f"{app}-{i}", float(r["time"]), gpu_hours * 3600.0 / gpus, gpus,
                             tenant=app, application=app))
    jobs.sort(key=lambda j: (j.submit, j.id))
    notes = ["no durations in the workload: GPU-hours per application are the middle of Pollux's buckets "
             f"{POLLUX_GPU_HOURS} (ASSUMPTION), divided by the replicas"]
    return Trace(name.split("/")[-1].removesuffix(".csv"), jobs, V100, {}, notes)


TRACES: dict[str, Callable[[], Trace]] = {
    "philly": philly,
    "gavel": gavel,
    "sia-saturn": lambda: workload("sia/saturn-1.csv"),
    "sia-philly": lambda: workload("sia/philly-1.csv"),
    "sia-newtrace": lambda: workload("sia/newtrace-1.csv"),
    "pollux": lambda: workload("pollux/workload-6.csv"),
}


def load_trace(name: str, skip_bad: bool = False, gpus_per_node: int = 2, chip: str | None = None) -> Trace:
    """A packaged trace by name, or a CSV file of our format by path (`chip`: what its rows without one were
    measured on)."""
    if name == "philly":
        return philly(gpus_per_node)
    if name in TRACES:
        return TRACES[name]()
    if name.endswith(".csv"):
        return read_csv(name, skip_bad, chip)
    raise ValueError(f"unknown trace {name!r}; packaged: {', '.join(TRACES)}; or a path to a .csv file")
