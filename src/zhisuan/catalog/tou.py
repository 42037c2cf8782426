"""Time-of-use (峰谷分时) multipliers of a center's zone, applied at the center's local time.

All zones are in China, whose clocks are Asia/Shanghai: UTC+8 all year (no daylight saving since
1991), so local month and hour come from a constant offset, which also vectorises over numpy arrays.
A zone whose ratios are unknown in the source bills at 1.0 (flat) and says so (`assumed`).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

UTC_OFFSET = 8 * 3600  # Asia/Shanghai
HOUR = 3600.0


@dataclass(frozen=True)
class TouTable:
    zone: str
    multipliers: np.ndarray  # (12, 24): month 1..12 x local hour 0..23
    periods: tuple[tuple[str, ...], ...]  # same shape: sharp | peak | flat | valley | deep_valley
    assumed: bool  # True when the source gives no ratios for this zone (flat price used)

    def at(self, t: float) -> tuple[float, str]:
        month, hour = local_month_hour(t)
        return float(self.multipliers[month - 1, hour]), self.periods[month - 1][hour]

    def integral(self, start: np.ndarray | float, end: np.ndarray | float) -> np.ndarray:
        """∫ multiplier dt over [start, end) in seconds, per element: hour-weighted, vectorised."""
        return np.asarray(_cumulative(self, np.asarray(end, dtype=float))
                          - _cumulative(self, np.asarray(start, dtype=float)))


FLAT = TouTable("flat", np.ones((12, 24)), tuple(tuple("flat" for _ in range(24)) for _ in range(12)), False)


def hour_segments(start: float, end: float) -> list[tuple[float, float]]:
    """[start, end) cut at local (UTC+8) hour boundaries: the pieces a run is metered and priced in."""
    out = []
    t = start
    while t < end:
        nxt = min(end, (math.floor((t + UTC_OFFSET) / HOUR) + 1) * HOUR - UTC_OFFSET)
        out.append((t, nxt))
        t = nxt
    return out


def hour_start(t: float) -> float:
    """The start of the local clock hour holding t."""
    return math.floor((t + UTC_OFFSET) / HOUR) * HOUR - UTC_OFFSET


def local_month_hour(t: float) -> tuple[int, int]:
    days, secs = divmod(int(t // 1) + UTC_OFFSET, 86400)
    month = int(np.datetime64(days, "D").astype("datetime64[M]").astype(int) % 12) + 1
    return month, int(secs // 3600)


def _cumulative(table: TouTable, t: np.ndarray) -> np.ndarray:
    """Multiplier-seconds from the epoch to t: whole local hours from a per-hour table, plus the part hour."""
    local = t + UTC_OFFSET
    hours = np.floor(local / HOUR)
    months = (hours.astype("int64") // 24).astype("datetime64[D]").astype("datetime64[M]").astype("int64") % 12
    m = table.multipliers[months, (hours.astype("int64") % 24)]
    return np.asarray(_whole_hours(table, hours) + m * (local - hours * HOUR))


def _whole_hours(table: TouTable, hours: np.ndarray) -> np.ndarray:
    """Sum of the multiplier over local hours [0, hours) since the epoch, by months and days."""
    h = hours.astype("int64")
    days = h // 24
    day_start = days.astype("datetime64[D]")
    month_of_day = day_start.astype("datetime64[M]")
    months_since = month_of_day.astype("int64")
    daily = table.multipliers.sum(axis=1) * HOUR  # one full day in each month
    per_month_days = _month_lengths()
    full_months_total = _months_prefix(daily, per_month_days)
    total = full_months_total[months_since]  # all months before this one
    first_day = month_of_day.astype("datetime64[D]").astype("int64")
    total = total + (days - first_day) * daily[months_since % 12]
    prefix = np.concatenate([np.zeros((12, 1)), np.cumsum(table.multipliers, axis=1)], axis=1) * HOUR
    return np.asarray(total + prefix[months_since % 12, h % 24])


@cache
def _month_lengths() -> np.ndarray:
    """Days in each month since 1970-01 up to 2200 (index = months since the epoch)."""
    starts = np.arange(np.datetime64("1970-01"), np.datetime64("2200-02"), dtype="datetime64[M]")
    return np.diff(starts.astype("datetime64[D]").astype("int64"))


_PREFIX: dict[tuple[float, ...], np.ndarray] = {}


def _months_prefix(daily: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    key = tuple(daily.tolist())
    if key not in _PREFIX:
        per_month = daily[np.arange(len(lengths)) % 12] * lengths
        _PREFIX[key] = np.concatenate([[0.0], np.cumsum(per_month)])
    return _PREFIX[key]


@cache
def load_tou(zone: str | None) -> TouTable:
    """The zone's table from the package data; no zone -> flat; an unknown zone is an error naming it."""
    if zone is None:
        return FLAT
    text = resources.files("zhisuan.catalog").joinpath("data", "china_tou_hourly_multipliers.csv").read_text(
        encoding="utf-8")
    rows = [r for r in csv.DictReader(text.splitlines()) if r["zone"] == zone]
    if not rows:
        zones = sorted({r["zone"] for r in csv.DictReader(text.splitlines())})
        raise ValueError(f"tou_zone: unknown zone {zone!r}; known: {', '.join(zones)}")
    mult = np.ones((12, 24))
    periods = [["flat"] * 24 for _ in range(12)]
    assumed = False
    for r in rows:
        m, h = int(r["month"]) - 1, int(r["hour_start_local"])
        periods[m][h] = r["period"]
        if r["multiplier_vs_flat"]:
            mult[m, h] = float(r["multiplier_vs_flat"])
        else:
            assumed = True
    return TouTable(zone, mult, tuple(tuple(p) for p in periods), assumed)
