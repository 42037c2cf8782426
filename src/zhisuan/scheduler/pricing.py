"""What a run on a pool will cost in money and carbon, computed as the invoice will meter it: per local
clock hour, the flat price x the center's time-of-use multiplier of that hour, and energy (TDP x PUE,
the upper bound for time nobody measured) x the grid intensity of that hour (the center's hourly
series, else the annual factor). So a quote for a run that starts and ends when expected equals its
invoice. Price and carbon scores use the same tables, averaged over a window from the current hour.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zhisuan.catalog.carbon import intensity_at
from zhisuan.catalog.tou import HOUR, hour_segments
from zhisuan.model.billing import Held
from zhisuan.scheduler.snapshot import PoolState
from zhisuan.scheduler.tables import F


def run_cost(pool: PoolState, held: Held[float], start: float, end: float) -> tuple[float, float]:
    """(CNY, kg CO2) of what a run holds on `pool` (model/billing.py: its devices, a CPU-only job its CPUs,
    and CPUs or memory beyond its share of a node) from start to end, unmeasured (TDP energy of the devices;
    CPUs' energy is not modelled)."""
    cny = kg = 0.0
    for a, b in hour_segments(start, end):
        device_hours = held.devices * (b - a) / HOUR
        mult, _ = pool.tou.at(a)
        cny += (device_hours * pool.price + held.cpus * (b - a) / HOUR * pool.cpu_price
                + held.memory_gib * (b - a) / HOUR * pool.memory_price) * mult
        kg += device_hours * pool.kwh_per_device_hour * intensity_at(pool.carbon_series, pool.carbon_kg_per_kwh, a)[0]
    return cny, kg


def price_factors(pools: Sequence[PoolState], start: float, window: float) -> F:
    """Per pool, the mean time-of-use multiplier over [start, start + window)."""
    by_table: dict[int, float] = {}
    out = np.ones(len(pools))
    for i, p in enumerate(pools):
        key = id(p.tou)
        if key not in by_table:
            by_table[key] = float(p.tou.integral(start, start + window)) / window
        out[i] = by_table[key]
    return out


def carbon_factors(pools: Sequence[PoolState], start: float, window: float) -> F:
    """Per pool, the mean grid intensity over the hours of [start, start + window) relative to its annual
    factor (1.0 without an hourly series)."""
    out = np.ones(len(pools))
    hours = [a for a, _ in hour_segments(start, start + window)]
    for i, p in enumerate(pools):
        if p.carbon_series is not None and p.carbon_kg_per_kwh > 0:
            values = [intensity_at(p.carbon_series, p.carbon_kg_per_kwh, t)[0] for t in hours]
            out[i] = sum(values) / len(values) / p.carbon_kg_per_kwh
    return out


def time_dependent(pools: Sequence[PoolState]) -> bool:
    """Whether prices or carbon change relative to each other between pools over the day (then scores are
    recomputed each hour): more than one tariff among them, or an hourly carbon series."""
    return len({id(p.tou) for p in pools}) > 1 or any(p.carbon_series is not None for p in pools)
