"""Honest utilisation: allocated, busy (measured only) and idle-while-allocated, per center × chip and
per tenant, over time buckets, from the usage intervals and the network's capacity."""

from __future__ import annotations

from dataclasses import dataclass

from zhisuan.metering.usage import UsageInterval


@dataclass
class UtilizationRow:
    bucket_start: float
    center: str
    chip: str
    capacity_device_s: float
    allocated_device_s: float = 0.0
    measured_device_s: float = 0.0
    busy_device_s: float = 0.0

    @property
    def allocated_pct(self) -> float:
        return 100.0 * self.allocated_device_s / self.capacity_device_s if self.capacity_device_s else 0.0

    @property
    def busy_pct(self) -> float | None:
        """Busy share of capacity over the measured part of the allocation; None when nothing was measured."""
        return 100.0 * self.busy_device_s / self.capacity_device_s if self.measured_device_s else None

    @property
    def idle_while_allocated_pct(self) -> float | None:
        if not self.measured_device_s:
            return None
        return 100.0 * (self.measured_device_s - self.busy_device_s) / self.measured_device_s

    @property
    def measured_pct(self) -> float:
        return 100.0 * self.measured_device_s / self.allocated_device_s if self.allocated_device_s else 0.0


def utilization(intervals: list[UsageInterval], capacity: dict[tuple[str, str], int], since: float, until: float,
                bucket: float, center: str | None = None) -> list[UtilizationRow]:
    """Rows per bucket × (center, chip) with capacity; intervals are clipped to the window."""
    n = max(1, int((until - since + bucket - 1) // bucket))
    rows: dict[tuple[int, str, str], UtilizationRow] = {}
    for k in range(n):
        start = since + k * bucket
        span = min(bucket, until - start)
        for (c, chip), devices in sorted(capacity.items()):
            if center is None or c == center:
                rows[(k, c, chip)] = UtilizationRow(start, c, chip, devices * span)
    for u in intervals:
        if center is not None and u.center != center:
            continue
        length = u.end - u.start
        for k in range(max(0, int((u.start - since) // bucket)), min(n, int((u.end - since) // bucket) + 1)):
            lo, hi = since + k * bucket, min(since + (k + 1) * bucket, until)
            part = (min(u.end, hi) - max(u.start, lo)) / length if length > 0 else 0.0
            row = rows.get((k, u.center, u.chip))
            if part <= 0 or row is None:
                continue
            row.allocated_device_s += u.allocated_device_s * part
            row.measured_device_s += u.measured_device_s * part
            row.busy_device_s += (u.busy_device_s or 0.0) * part
    return list(rows.values())


def by_tenant(intervals: list[UsageInterval], since: float, until: float) -> dict[str, dict[str, float]]:
    """Per tenant: allocated, measured and busy device-hours, energy, carbon and CNY in the window."""
    out: dict[str, dict[str, float]] = {}
    for u in intervals:
        if u.end <= since or u.start >= until:
            continue
        t = out.setdefault(u.tenant, {"allocated_device_hours": 0.0, "measured_device_hours": 0.0,
                                      "busy_device_hours": 0.0, "kwh": 0.0, "kg_co2": 0.0, "cny": 0.0})
        t["allocated_device_hours"] += u.allocated_device_s / 3600
        t["measured_device_hours"] += u.measured_device_s / 3600
        t["busy_device_hours"] += (u.busy_device_s or 0.0) / 3600
        t["kwh"] += u.kwh
        t["kg_co2"] += u.kg_co2
        t["cny"] += u.cny
    return out
