"""Demand growth for planning: a trace's arrivals scaled (×2 = each job twice, the copy arriving a little
later), or scaled to a load in P-hours a month. Copies keep the mix (sizes, durations, tenants, homes) and
the calendar (the day and hour each job arrived), so time-of-use prices and daily peaks stay where they were.
"""

from __future__ import annotations

import math

import numpy as np

from zhisuan.catalog import load_catalog
from zhisuan.sim.trace import CopiedJobs, Trace, columns

JITTER = 3600.0  # a copy arrives up to an hour after its original (seeded): same hour of day, not the same instant
MONTH = 30.44 * 86400.0


def p_hours_per_month(trace: Trace) -> float:
    """The trace's load: device-hours × the trace chip's FP16 PFLOPS, per month of its arrival window."""
    if not trace.jobs:
        return 0.0
    pflops = load_catalog().lookup(trace.chip).fp16_tflops / 1000.0
    work = sum(j.devices * j.duration for j in trace.jobs) / 3600.0 * pflops
    window = max(trace.jobs[-1].submit - trace.jobs[0].submit, 86400.0)
    return work / (window / MONTH)


def factor_for(trace: Trace, arrivals: float | None, load: float | None) -> float:
    """The arrivals multiplier a scenario asks for, directly or as a target load (P-hours a month)."""
    if load is not None:
        have = p_hours_per_month(trace)
        if have <= 0:
            raise ValueError(f"trace {trace.name} has no load to scale to {load} P-hours a month")
        return load / have
    return 1.0 if arrivals is None else arrivals


def scale_arrivals(trace: Trace, factor: float, seed: int = 0) -> Trace:
    """Each job ⌊factor⌋ times, plus once more for a seeded fraction (factor's fractional part) of them;
    copies arrive up to JITTER seconds later, with their own ids. factor < 1 keeps a seeded sample."""
    if not math.isfinite(factor) or factor <= 0:
        raise ValueError(f"an arrivals factor must be a positive number, got {factor}")
    if factor == 1.0:
        return trace
    base, source, submits = columns(trace.jobs)
    rng = np.random.default_rng(seed)
    whole, part = int(factor), factor - int(factor)
    n = len(source)
    counts = whole + (rng.random(n) < part)  # copies of each job, the original included
    src = np.repeat(source, counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    copy = (np.arange(len(src)) - first).astype(np.int16 if whole < 32_000 else np.int32)
    shift = np.where(copy > 0, rng.random(len(src)) * JITTER, 0.0)
    times = np.repeat(submits, counts) + shift
    order = np.argsort(times, kind="stable")
    jobs = CopiedJobs(base, src[order].astype(np.int32), copy[order], times[order])
    note = f"arrivals ×{factor:g} (copies of each job up to {JITTER / 3600:g} h later, seed {seed})"
    return Trace(trace.name, jobs, trace.chip, trace.homes, [*trace.notes, note], trace.busy_cdf, trace.start)
