"""Reference prices for planning: AI servers (capex) and electricity by province, each row with its source,
date and confidence (package data `server_prices.csv`, `electricity_prices.csv`; provenance in data/README.md).
A file not shipped reads as empty: the plan then needs the value in its own file."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from zhisuan.catalog.accelerators import load_catalog


@dataclass(frozen=True)
class Priced:
    """A reference price and where it comes from."""

    value: float  # CNY (per server, or per kWh)
    per: int  # devices the price buys (1 for electricity)
    source: str
    as_of: str
    confidence: str

    @property
    def basis(self) -> str:
        tag = " (ASSUMPTION)" if self.confidence.upper() == "ASSUMPTION" else f", {self.confidence} confidence"
        return f"{self.source}, {self.as_of}{tag}"


def _rows(name: str) -> list[dict[str, str]]:
    path = resources.files("zhisuan.catalog").joinpath("data", name)
    if not path.is_file():
        return []
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


NATIONAL = "全国"
RANK = {"high": 3, "medium": 2, "low": 1}


def _rank(p: Priced) -> tuple[int, int, int]:
    """Confidence, then the date (`as_of` is free text: "2024-07", "~2021 (undated article)")."""
    when = re.search(r"(\d{4})(?:-(\d{2}))?", p.as_of)
    year, month = (int(when[1]), int(when[2] or 0)) if when else (0, 0)
    return RANK.get(p.confidence.lower(), 0), year, month


def _best(rows: list[tuple[str, Priced]]) -> dict[str, Priced]:
    """Per key, the row of highest confidence, then the most recent."""
    best: dict[str, Priced] = {}
    for key, p in rows:
        if key not in best or _rank(p) > _rank(best[key]):
            best[key] = p
    return best


@cache
def server_prices() -> dict[str, Priced]:
    """Catalog chip name -> the server (or card, `per` 1) price to plan with."""
    catalog = load_catalog()
    return _best([(catalog.lookup(r["accelerator"]).name,
                   Priced(float(r["price_cny"]), int(r["devices_per_server"]), r["source"], r["as_of"],
                          r["confidence"])) for r in _rows("server_prices.csv")])


@cache
def electricity_prices() -> dict[str, Priced]:
    """Province (as the network names it, e.g. 贵州) or 全国 (the national average) -> CNY per kWh."""
    return _best([(r["province"], Priced(float(r["cny_per_kwh"]), 1, r["source"], r["as_of"], r["confidence"]))
                  for r in _rows("electricity_prices.csv")])
