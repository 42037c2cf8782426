"""Usage records: what a run of a job used, one interval per local clock hour, priced and converted to
energy and carbon. "Busy" comes only from measurements (NVML, the job's own report, the engine); time
without one is counted as unmeasured, never guessed, and its energy is the TDP upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from zhisuan.catalog.tou import HOUR, hour_segments
from zhisuan.metering.energy import IDLE_FRACTION
from zhisuan.metering.pricebook import PriceEntry

UNMEASURED = "unmeasured"
CPU_ENERGY = "CPU-only: CPU energy not modelled (0 kWh)"


@dataclass(frozen=True)
class BusySample:
    """A measurement that holds from `at` until the next one (a gauge), for every device of the job.
    `busy_fraction` None: only the draw was measured (Slurm's ConsumedEnergy), not how busy the devices were."""

    at: float
    busy_fraction: float | None
    source: str  # nvml | self-report | slurm | prometheus …
    watts: float | None = None  # measured draw per device
    peak_memory_gib: float | None = None


@dataclass(frozen=True)
class UsageInterval:
    job_id: str
    tenant: str
    center: str
    pool: str
    chip: str
    start: float
    end: float
    devices: float  # a share of one device as its fraction; 0 for a CPU-only job
    allocated_device_s: float
    measured_device_s: float  # the part of the allocated time that had a measurement
    busy_device_s: float | None  # None: unmeasured
    busy_source: str
    peak_memory_gib: float | None
    kwh: float
    energy_model: str
    kg_co2: float
    tou_period: str
    tou_multiplier: float
    cny: float
    price_version: str
    assumptions: str  # comma-separated inputs that are ASSUMPTION
    cpu_s: float = 0.0  # CPU-seconds billed: a CPU-only job's, or beyond a job's share of a node (billing.py)
    gib_s: float = 0.0  # GiB-seconds of memory billed beyond a job's share of a node (model/billing.py)


def _covered(samples: list[BusySample], start: float, end: float, run_end: float) -> list[tuple[BusySample, float]]:
    """Each sample with the seconds of [start, end) it covers (a sample holds until the next one)."""
    out = []
    for i, s in enumerate(samples):
        until = samples[i + 1].at if i + 1 < len(samples) else run_end
        overlap = min(end, until) - max(start, s.at)
        if overlap > 0:
            out.append((s, overlap))
    return out


def _energy_model(covered: list[tuple[BusySample, float]], gaps: bool) -> str:
    """How an interval's energy was found: measured watts, the utilisation model, TDP where unmeasured."""
    if not covered:
        return "TDP, utilisation unmeasured (upper bound)"
    if all(s.watts is not None for s, _ in covered):
        model = "measured watts"
    else:
        model = f"TDP × utilisation model (idle {IDLE_FRACTION:.0%} of TDP, ASSUMPTION)"
    return model + ("; TDP for unmeasured time (upper bound)" if gaps else "")


def meter(job_id: str, tenant: str, entry: PriceEntry, version: str, devices: float, start: float, end: float,
          samples: list[BusySample], cpus: float = 0.0, memory_gib: float = 0.0) -> list[UsageInterval]:
    """The usage intervals of one run of a job on `entry`'s pool from start to end, billed for what it holds
    (`entry.held`): `devices` devices, `cpus` CPUs (a CPU-only job's, or beyond its devices' share of a node)
    and `memory_gib` GiB beyond its share. CPUs' energy is not modelled (no CPU power figures): a CPU-only
    job's is 0 kWh, said so."""
    samples = sorted(samples, key=lambda s: s.at)
    out = []
    for a, b in hour_segments(start, end):
        secs = b - a
        covered = _covered(samples, a, b, end)
        busy_covered = [(s, sec) for s, sec in covered if s.busy_fraction is not None]
        measured = sum(sec for _, sec in busy_covered)
        busy = sum((s.busy_fraction or 0.0) * sec for s, sec in busy_covered)
        joules_per_device = sum((s.watts if s.watts is not None else entry.tdp_w * (
            IDLE_FRACTION + (1 - IDLE_FRACTION) * (s.busy_fraction or 0.0))) * sec for s, sec in covered)
        drawn = sum(sec for _, sec in covered)
        joules_per_device += entry.tdp_w * (secs - drawn)  # unmeasured: TDP, an upper bound
        model = _energy_model(covered, drawn < secs) if devices else CPU_ENERGY
        kwh = joules_per_device * devices * entry.pue / 3.6e6
        mult, period = entry.tou.at(a)
        intensity, label = entry.kg_per_kwh_at(a)
        idle_measured = (measured - busy) * devices
        cny = ((secs * devices - entry.idle_discount * idle_measured) * entry.flat + secs * cpus * entry.cpu_flat
               + secs * memory_gib * entry.memory_flat) / HOUR * mult
        peaks = [s.peak_memory_gib for s, _ in covered if s.peak_memory_gib is not None]
        out.append(UsageInterval(
            job_id, tenant, entry.center, entry.pool, entry.chip, a, b, devices, secs * devices, measured * devices,
            busy * devices if measured > 0 else None,
            ",".join(sorted({s.source for s, _ in busy_covered})) or UNMEASURED, max(peaks) if peaks else None,
            kwh, model,
            kwh * intensity, period, mult, cny, version,
            ",".join([*entry.assumptions, *([label] if label else []),
                      *(["cpu_price"] if cpus and entry.cpu_assumed else []),
                      *(["memory_price"] if memory_gib and entry.memory_assumed else [])]), secs * cpus,
            secs * memory_gib))
    return out
