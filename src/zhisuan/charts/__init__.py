"""Charts for HTML reports, drawn by a kept library (uPlot, vendored in `vendor/` with its licence):
a report lists its charts as data and ships the library beside it, so it opens from disk and under the
server's content-security policy (no inline script)."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

HERE = Path(__file__).parent
VENDOR = HERE / "vendor"
ASSETS = (VENDOR / "uPlot.iife.min.js", VENDOR / "uPlot.min.css", HERE / "draw.js")


@dataclass
class Chart:
    id: str
    title: str
    x_label: str
    y_label: str
    x: list[float]
    series: list[tuple[str, list[float | None]]] = field(default_factory=list)
    log_x: bool = False
    time: bool = False  # x in epoch seconds, shown as dates in `tz`
    tz: str | None = None
    y_max: float = 0.0  # the y axis reaches at least this (100 for percentages)
    points: bool = False  # a scatter: points only, no lines (x sorted; a series is None where it has no point)

    def div(self) -> str:
        return f'<div class="chart" id="{escape(self.id)}"></div>'

    def data(self) -> dict[str, object]:
        def clean(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(v) else v

        return {"id": self.id, "title": self.title, "x_label": self.x_label, "y_label": self.y_label,
                "x": self.x, "series": [{"label": label, "values": [clean(v) for v in values]}
                                        for label, values in self.series],
                "log_x": self.log_x, "time": self.time, "tz": self.tz, "y_max": self.y_max,
                "points": self.points}


def write_assets(folder: Path, charts: list[Chart], data_name: str = "charts-data.js") -> str:
    """Copy the library and the drawing script into `folder`, write the charts' data as a script beside
    them, and return the tags the report's <head> needs."""
    folder.mkdir(parents=True, exist_ok=True)
    for asset in ASSETS:
        shutil.copyfile(asset, folder / asset.name)
    (folder / data_name).write_text("window.ZHISUAN_CHARTS = " + json.dumps([c.data() for c in charts]) + ";\n",
                                    encoding="utf-8")
    return ('<link rel="stylesheet" href="uPlot.min.css"><script src="uPlot.iife.min.js"></script>'
            f'<script src="{escape(data_name)}"></script><script defer src="draw.js"></script>')
