"""The price book: per center × pool (one chip), the flat CNY per device-hour, per CPU-hour and per GiB-hour
(what a CPU-only job pays, and a job for what it holds beyond its share of a node: model/billing.py), the
node's size that share is of, the center's ToU zone and its idle discount. Versioned by content: an invoice
names the version its lines were priced with."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from zhisuan.catalog.carbon import CarbonSeries, intensity_at, load_series
from zhisuan.catalog.tou import TouTable, load_tou
from zhisuan.model import Network, Request
from zhisuan.model.billing import Held, held_by


@dataclass(frozen=True)
class PriceEntry:
    center: str
    pool: str
    chip: str
    flat: float  # CNY per device-hour at the flat tariff
    tou: TouTable
    idle_discount: float  # fraction off the price of measured-idle device time (operator policy)
    tdp_w: float
    pue: float
    kg_per_kwh: float
    assumptions: tuple[str, ...]  # which inputs are ASSUMPTION (price, pue, carbon, tdp, tou)
    carbon: CarbonSeries | None = None  # hourly intensity, when the center configures one
    cpu_flat: float = 0.0  # CNY per CPU-hour at the flat tariff (CPU-only jobs, CPUs beyond a share)
    cpu_assumed: bool = False  # derived from the device price, not given: labelled on lines billing CPUs
    memory_flat: float = 0.0  # CNY per GiB-hour at the flat tariff (memory beyond a share)
    memory_assumed: bool = False  # derived from the node's price, not given: labelled on lines billing memory
    node: tuple[int, float, float] = (0, 128.0, 1024.0)  # a node's devices, CPUs and GiB (what a share is of)

    def held(self, request: Request) -> Held[float]:
        """What a run of `request` is billed for per hour on this pool (model/billing.py's rule)."""
        return held_by(request, *self.node, self.cpu_flat, self.memory_flat)

    def kg_per_kwh_at(self, t: float) -> tuple[float, str | None]:
        """Grid intensity at t (the hourly series, else the annual factor) and what labels it."""
        return intensity_at(self.carbon, self.kg_per_kwh, t)


@dataclass(frozen=True)
class PriceBook:
    version: str
    entries: dict[str, PriceEntry]  # "center/pool" -> entry

    def of(self, center: str, pool: str) -> PriceEntry:
        return self.entries[f"{center}/{pool}"]

    @classmethod
    def from_network(cls, network: Network) -> PriceBook:
        entries = {}
        for c in network.centers:
            for p in c.pools:
                chip = p.chip
                tou = load_tou(c.tou_zone)
                marks = sorted({*p.assumptions, *c.assumptions} | ({"tou"} if tou.assumed else set())
                               | ({"tdp_w"} if "tdp_w" in chip.assumptions else set()))
                entries[f"{c.name}/{p.name}"] = PriceEntry(
                    c.name, p.name, chip.name, p.price_per_device_hour, tou, c.idle_discount, chip.tdp_w or 0.0,
                    c.pue, c.carbon_kg_per_kwh, tuple(marks),
                    load_series(c.carbon_series) if c.carbon_series else None, *p.cpu_price, *p.memory_price,
                    (p.devices_per_node, float(p.cpus_per_node), p.memory_gib_per_node))
        canon = json.dumps({k: [e.flat, e.tou.zone, e.idle_discount, e.tdp_w, e.pue, e.kg_per_kwh, e.cpu_flat,
                                e.memory_flat, *e.node] for k, e in sorted(entries.items())}, sort_keys=True)
        return cls(f"{network.name}@{hashlib.sha256(canon.encode()).hexdigest()[:10]}", entries)
