"""Usage intervals and busy samples in the store, as plain rows: what they mean is metering's business,
storing them is control's (DESIGN.md), so this module knows columns, not prices."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, case, func, insert, select

from zhisuan.store.schema import BusySampleRow, UsageRow

USAGE_COLUMNS = [c.name for c in UsageRow.__table__.columns if c.name != "id"]
SAMPLE_COLUMNS = ["at", "busy_fraction", "source", "watts", "peak_memory_gib"]


class UsageStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_sample(self, job_id: str, at: float, busy_fraction: float, source: str, watts: float | None = None,
                   peak_memory_gib: float | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(BusySampleRow), {"job_id": job_id, "at": at, "busy_fraction": busy_fraction,
                                                 "source": source, "watts": watts, "peak_memory_gib": peak_memory_gib})

    def samples(self, job_id: str, since: float = float("-inf")) -> list[dict[str, Any]]:
        query = (select(*[getattr(BusySampleRow, c) for c in SAMPLE_COLUMNS])
                 .where(BusySampleRow.job_id == job_id, BusySampleRow.at >= since).order_by(BusySampleRow.at))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def latest_samples(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The newest sample of each of `job_ids` (for gauges of running jobs)."""
        if not job_ids:
            return {}
        query = (select(BusySampleRow.job_id, *[getattr(BusySampleRow, c) for c in SAMPLE_COLUMNS])
                 .where(BusySampleRow.job_id.in_(job_ids)).order_by(BusySampleRow.at))
        with self.engine.connect() as conn:
            return {r.job_id: dict(r._mapping) for r in conn.execute(query)}

    def intervals(self, tenant: str | None = None, since: float | None = None, until: float | None = None,
                  center: str | None = None) -> list[dict[str, Any]]:
        query = select(*[getattr(UsageRow, c) for c in USAGE_COLUMNS]).order_by(UsageRow.start, UsageRow.id)
        if tenant is not None:
            query = query.where(UsageRow.tenant == tenant)
        if center is not None:
            query = query.where(UsageRow.center == center)
        if since is not None:
            query = query.where(UsageRow.end > since)
        if until is not None:
            query = query.where(UsageRow.start < until)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def runs(self) -> list[dict[str, Any]]:
        """One row per metered run (job, attempt): tenant, pool, devices, allocated device-seconds and when it
        ended, oldest end first (rebuilds the scheduler's service ledger after a restart)."""
        query = (select(UsageRow.job_id, UsageRow.attempt, UsageRow.tenant, UsageRow.center, UsageRow.pool,
                        UsageRow.chip, func.max(UsageRow.devices).label("devices"),
                        func.sum(UsageRow.allocated_device_s).label("device_s"), func.max(UsageRow.end).label("end"))
                 .group_by(UsageRow.job_id, UsageRow.attempt, UsageRow.tenant, UsageRow.center, UsageRow.pool,
                           UsageRow.chip)
                 .order_by(func.max(UsageRow.end)))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def totals_by_center(self) -> dict[str, tuple[float, float, float]]:
        """Center -> (kWh, kg CO2, CNY) over every stored interval, summed by the database."""
        query = (select(UsageRow.center, func.sum(UsageRow.kwh), func.sum(UsageRow.kg_co2), func.sum(UsageRow.cny))
                 .group_by(UsageRow.center))
        with self.engine.connect() as conn:
            return {c: (float(k), float(g), float(y)) for c, k, g, y in conn.execute(query)}

    def totals(self, since: float, until: float) -> list[dict[str, Any]]:
        """Per center × tenant, summed by the database over the intervals overlapping [since, until): the
        measured part of allocated time, busy time, CNY and kgCO2 (the console's 'today', whatever the day's
        volume)."""
        measured = func.sum(case((UsageRow.busy_device_s.is_not(None), UsageRow.measured_device_s), else_=0.0))
        query = (select(UsageRow.center, UsageRow.tenant, measured.label("measured_device_s"),
                        func.sum(func.coalesce(UsageRow.busy_device_s, 0.0)).label("busy_device_s"),
                        func.sum(UsageRow.cny).label("cny"), func.sum(UsageRow.kg_co2).label("kg_co2"))
                 .where(UsageRow.end > since, UsageRow.start < until).group_by(UsageRow.center, UsageRow.tenant))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
