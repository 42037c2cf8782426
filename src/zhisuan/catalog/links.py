"""Default figures for the links between centers, by kind (same province, same region, between hubs…),
from `data/network_links.csv`: each row cites its sources or says ASSUMPTION (see data/README.md).

A network file may override any link; these are what a link it does not declare is taken to be.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data"
KINDS = ("same_center", "same_city", "same_province", "same_region", "between_hubs")


@dataclass(frozen=True, slots=True)
class LinkFigures:
    """What moving data over one link takes: a transfer's rate, round trip, price and energy per GB."""

    bytes_per_s: float
    rtt_s: float
    cny_per_gb: float
    kwh_per_gb: float
    source: str = ""
    assumed: bool = False  # some figure is ours, not sourced

    @property
    def gbit(self) -> float:
        return self.bytes_per_s * 8 / 1e9


@cache
def default_links() -> dict[str, LinkFigures]:
    """Kind -> its default figures."""
    out: dict[str, LinkFigures] = {}
    with (DATA / "network_links.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            text = " ".join(row.get(k) or "" for k in ("source", "notes", "confidence"))
            out[row["kind"]] = LinkFigures(
                bytes_per_s=float(row["bandwidth_gbit"]) * 1e9 / 8, rtt_s=float(row["rtt_ms"]) / 1000.0,
                cny_per_gb=float(row["cny_per_gb"]), kwh_per_gb=float(row["kwh_per_gb"]),
                source=row["source"], assumed="ASSUMPTION" in text)
    missing = [k for k in KINDS if k not in out]
    if missing:
        raise ValueError(f"network_links.csv lacks the kinds {missing}")
    return out
