"""Hourly grid carbon intensity for centers that configure one (`carbon_series:` in the network file).

Reads the two public formats in shared/data/carbon: Electricity Maps hourly exports (`Datetime (UTC)`,
`Carbon Intensity gCO₂eq/kWh (direct)`) and Let's Wait Awhile series (`Time`, `Carbon Intensity`, 15 or
30 min rows, averaged to hours). A series covers its own year; other years read the same UTC
month-day-hour of it (a typical year) and are labelled as such.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

COLUMNS = [("Datetime (UTC)", "Carbon Intensity gCO₂eq/kWh (direct)"), ("Time", "Carbon Intensity")]


@dataclass(frozen=True)
class CarbonSeries:
    path: str
    year: int
    by_hour: dict[tuple[int, int, int], float]  # (month, day, hour) UTC -> kg CO2 per kWh

    def factor(self, t: float) -> tuple[float | None, bool]:
        """kg/kWh at time t (None where the series has no value), and whether it came from another year
        (the typical-year mapping)."""
        d = datetime.fromtimestamp(t, UTC)
        day = 28 if (d.month, d.day) == (2, 29) else d.day
        return self.by_hour.get((d.month, day, d.hour)), d.year != self.year


@cache
def load_series(path: str) -> CarbonSeries:
    """The hourly series in `path`; a ValueError names the file and what is wrong with it."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"carbon_series: no file {path}")
    with file.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"carbon_series: {path} is empty")
    cols = next(((t, v) for t, v in COLUMNS if t in rows[0] and v in rows[0]), None)
    if cols is None:
        raise ValueError(f"carbon_series: {path} has neither {COLUMNS[0]} nor {COLUMNS[1]} columns")
    sums: dict[tuple[int, int, int], list[float]] = {}
    years: dict[int, int] = {}
    for r in rows:
        if not r[cols[1]]:
            continue
        d = datetime.fromisoformat(r[cols[0]])
        years[d.year] = years.get(d.year, 0) + 1
        acc = sums.setdefault((d.month, d.day, d.hour), [0.0, 0.0])
        acc[0] += float(r[cols[1]]) / 1000.0  # g -> kg per kWh
        acc[1] += 1
    return CarbonSeries(path, max(years, key=lambda y: years[y]), {k: s / n for k, (s, n) in sums.items()})


def intensity_at(series: CarbonSeries | None, annual: float, t: float) -> tuple[float, str | None]:
    """Grid intensity at t: the hourly series when configured, else the annual factor; the second value
    labels what is not a same-hour measurement (another year's hour, or a gap in the series)."""
    if series is None:
        return annual, None
    value, other_year = series.factor(t)
    if value is None:
        return annual, "carbon_series gap: annual factor"
    return value, "carbon_series typical year" if other_year else None
