"""Filter: what the job pays per device-hour on the pool (a CPU-only job: per CPU-hour), the CPUs or memory it
holds beyond its share of a node included (model/billing.py), is within the job's `max_price`."""

from __future__ import annotations

from zhisuan.scheduler.tables import B, PoolTable, RequestTable, unit_price


class PriceCap:
    name = "price-cap"
    field = "constraints.max_price"
    reason = "price per device-hour above the job's max_price"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        out: B = unit_price(reqs, pools) <= reqs.max_price[:, None]
        return out

    def unmet(self, reqs: RequestTable, r: int, pools: PoolTable, candidates: B) -> str:
        unit = "device-hour" if reqs.devices_per_node[r] else "CPU-hour"
        return (f"max_price {reqs.max_price[r]:g} CNY per {unit}, but the cheapest accepted pool costs "
                f"{float(unit_price(reqs, pools)[r][candidates].min()):g}")
