"""Invoices: a tenant's usage intervals of one local (Asia/Shanghai) month, per job, with totals that are
the plain sums of the intervals (so they reconcile exactly with the usage records)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from zhisuan.catalog.tou import UTC_OFFSET
from zhisuan.metering.datalines import StorageLine, TransferLine
from zhisuan.metering.usage import UNMEASURED, UsageInterval
from zhisuan.model import SpecError


def month_window(month: str) -> tuple[float, float]:
    """[start, end) in epoch seconds of a local (Asia/Shanghai) month `YYYY-MM`; SpecError naming `month`."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise SpecError([("month", f"expected YYYY-MM, got {month!r}")])
    start = np.datetime64(month, "M")
    return (float(start.astype("datetime64[s]").astype("int64")) - UTC_OFFSET,
            float((start + 1).astype("datetime64[s]").astype("int64")) - UTC_OFFSET)


def local_month(t: float) -> str:
    return str(np.datetime64(int(t + UTC_OFFSET), "s").astype("datetime64[M]"))


@dataclass
class InvoiceLine:
    job_id: str
    job_name: str
    centers: str
    chips: str
    allocated_device_hours: float = 0.0
    busy_device_hours: float | None = None  # None: no interval of the job was measured
    measured_device_hours: float = 0.0
    kwh: float = 0.0
    kg_co2: float = 0.0
    cny: float = 0.0
    intervals: int = 0
    cpu_hours: float = 0.0  # CPU-hours billed: a CPU-only job's, or those beyond its devices' share of a node
    memory_gib_hours: float = 0.0  # GiB-hours billed beyond the job's share of a node (model/billing.py)


@dataclass
class ServiceLine:
    """A model service's month: its replicas' device time, money, energy and carbon (already in the job
    lines: not added again) against the tokens the gateway served — what a million tokens cost."""

    model: str
    replica_jobs: int
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    counted_tokens: int = 0  # of those, counted or estimated by the gateway (the backend gave no usage)
    device_hours: float = 0.0
    cny: float = 0.0
    kwh: float = 0.0
    kg_co2: float = 0.0
    cny_per_million_tokens: float | None = None
    kwh_per_1k_tokens: float | None = None
    kg_co2_per_1k_tokens: float | None = None


@dataclass
class Invoice:
    tenant: str
    month: str
    lines: list[InvoiceLine]
    price_versions: list[str]
    assumptions: list[str]
    totals: dict[str, float | None] = field(default_factory=dict)
    services: list[ServiceLine] = field(default_factory=list)
    storage: list[StorageLine] = field(default_factory=list)
    transfers: list[TransferLine] = field(default_factory=list)

    def add_data(self, storage: list[StorageLine], transfers: list[TransferLine]) -> None:
        """Storage and transfer lines, and the month's total with them."""
        self.storage, self.transfers = storage, transfers
        storage_cny, transfer_cny = sum(x.cny for x in storage), sum(x.cny for x in transfers)
        self.totals["storage_cny"], self.totals["transfer_cny"] = storage_cny, transfer_cny
        self.totals["transfer_gb"] = sum(x.gb for x in transfers)
        self.totals["total_cny"] = (self.totals.get("cny") or 0.0) + storage_cny + transfer_cny

    def to_json(self) -> dict[str, object]:
        return {"tenant": self.tenant, "month": self.month, "price_versions": self.price_versions,
                "assumptions": self.assumptions, "totals": self.totals, "lines": [asdict(x) for x in self.lines],
                "services": [asdict(s) for s in self.services], "storage": [asdict(s) for s in self.storage],
                "transfers": [asdict(t) for t in self.transfers]}

    def to_csv(self) -> str:
        out = io.StringIO()
        names = list(asdict(self.lines[0]).keys()) if self.lines else [f.name for f in
                                                                     InvoiceLine.__dataclass_fields__.values()]
        w = csv.DictWriter(out, fieldnames=names)
        w.writeheader()
        for line in self.lines:
            row = asdict(line)
            row["busy_device_hours"] = UNMEASURED if line.busy_device_hours is None else line.busy_device_hours
            w.writerow(row)
        return out.getvalue()


def invoice(intervals: list[UsageInterval], tenant: str, month: str, names: dict[str, str]) -> Invoice:
    """The invoice of `tenant` for local month `month` (YYYY-MM) from its usage intervals."""
    mine = [u for u in intervals if u.tenant == tenant and local_month(u.start) == month]
    lines: dict[str, InvoiceLine] = {}
    centers: dict[str, set[str]] = {}
    chips: dict[str, set[str]] = {}
    for u in mine:
        line = lines.setdefault(u.job_id, InvoiceLine(u.job_id, names.get(u.job_id, ""), "", ""))
        centers.setdefault(u.job_id, set()).add(f"{u.center}/{u.pool}")
        chips.setdefault(u.job_id, set()).add(u.chip)
        line.allocated_device_hours += u.allocated_device_s / 3600
        if u.busy_device_s is not None:
            line.busy_device_hours = (line.busy_device_hours or 0.0) + u.busy_device_s / 3600
        line.measured_device_hours += u.measured_device_s / 3600
        line.kwh += u.kwh
        line.kg_co2 += u.kg_co2
        line.cny += u.cny
        line.intervals += 1
        line.cpu_hours += u.cpu_s / 3600
        line.memory_gib_hours += u.gib_s / 3600
    for job, line in lines.items():
        line.centers, line.chips = ",".join(sorted(centers[job])), ",".join(sorted(chips[job]))
    busy = [x.busy_device_hours for x in lines.values() if x.busy_device_hours is not None]
    totals: dict[str, float | None] = {
        "allocated_device_hours": sum(u.allocated_device_s for u in mine) / 3600,
        "busy_device_hours": sum(busy) if busy else None,
        "measured_device_hours": sum(u.measured_device_s for u in mine) / 3600,
        "kwh": sum(u.kwh for u in mine), "kg_co2": sum(u.kg_co2 for u in mine), "cny": sum(u.cny for u in mine),
        "cpu_hours": sum(u.cpu_s for u in mine) / 3600, "memory_gib_hours": sum(u.gib_s for u in mine) / 3600}
    marks = sorted({a for u in mine for a in u.assumptions.split(",") if a})
    return Invoice(tenant, month, list(lines.values()), sorted({u.price_version for u in mine}), marks, totals)


def services_section(lines: list[InvoiceLine], model_of: dict[str, str],
                     tokens: dict[str, dict[str, int]]) -> list[ServiceLine]:
    """Per model: the job lines of its replicas (`model_of`: replica job -> model) beside the tokens served
    (`tokens`: model -> counts); per-token figures only where tokens were served."""
    out: dict[str, ServiceLine] = {}
    for line in lines:
        model = model_of.get(line.job_id)
        if model is None:
            continue
        s = out.setdefault(model, ServiceLine(model, 0))
        s.replica_jobs += 1
        s.device_hours += line.allocated_device_hours
        s.cny += line.cny
        s.kwh += line.kwh
        s.kg_co2 += line.kg_co2
    for model, counts in tokens.items():
        s = out.setdefault(model, ServiceLine(model, 0))
        for k, v in counts.items():
            setattr(s, k, v)
    for s in out.values():
        served = s.prompt_tokens + s.completion_tokens
        if served:
            s.cny_per_million_tokens = s.cny / served * 1e6
            s.kwh_per_1k_tokens = s.kwh / served * 1e3
            s.kg_co2_per_1k_tokens = s.kg_co2 / served * 1e3
    return sorted(out.values(), key=lambda s: s.model)
