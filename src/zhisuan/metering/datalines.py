"""Data on the bill: storage by the GB-month per dataset and replica (the dataset's owner pays for every
copy the network keeps of it), and transfers by the GB per link (whoever asked for the move pays: the job's
tenant for staging, the owner for `data replicate` and rules), at the link's ¥/GB when it was queued.
Sums of what the store recorded, so they reconcile with the transfers and replicas exactly."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MONTH = 30.44 * 86400.0  # seconds in the average month a GB-month price refers to


@dataclass
class StorageLine:
    dataset: str  # OWNER:NAME
    center: str
    gb: float
    gb_months: float
    cny_per_gb_month: float
    cny: float


@dataclass
class TransferLine:
    source: str
    target: str
    transfers: int
    gb: float
    cny: float


def storage_lines(replicas: Iterable[tuple[str, str, int, float, float | None]], prices: dict[str, float],
                  start: float, end: float) -> list[StorageLine]:
    """(dataset ref, center, bytes, created, removed or None) -> GB-months within [start, end), priced."""
    out: dict[tuple[str, str], StorageLine] = {}
    for ref, center, size, created, removed in replicas:
        held = max(0.0, min(end, removed if removed is not None else end) - max(start, created))
        if held <= 0:
            continue
        gb = size / 1e9
        line = out.setdefault((ref, center), StorageLine(ref, center, gb, 0.0, prices.get(center, 0.0), 0.0))
        months = gb * held / MONTH
        line.gb_months += months
        line.cny += months * line.cny_per_gb_month
    return sorted(out.values(), key=lambda x: (x.dataset, x.center))


def transfer_lines(transfers: Iterable[tuple[str, str, int, float]]) -> list[TransferLine]:
    """(source, target, bytes moved, ¥/GB) per transfer -> per link."""
    out: dict[tuple[str, str], TransferLine] = {}
    for source, target, moved, cny_per_gb in transfers:
        line = out.setdefault((source, target), TransferLine(source, target, 0, 0.0, 0.0))
        line.transfers += 1
        line.gb += moved / 1e9
        line.cny += moved / 1e9 * cny_per_gb
    return sorted(out.values(), key=lambda x: (x.source, x.target))
