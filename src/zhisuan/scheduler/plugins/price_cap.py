"""Filter: the pool's price per device-hour is within the job's `max_price`."""

from __future__ import annotations

from zhisuan.scheduler.tables import B, PoolTable, RequestTable


class PriceCap:
    name = "price-cap"
    field = "constraints.max_price"
    reason = "price per device-hour above the job's max_price"

    def mask(self, reqs: RequestTable, pools: PoolTable) -> B:
        out: B = pools.price[None, :] <= reqs.max_price[:, None]
        return out

    def unmet(self, reqs: RequestTable, r: int, pools: PoolTable, candidates: B) -> str:
        return (f"max_price {reqs.max_price[r]:g} CNY per device-hour, but the cheapest accepted pool costs "
                f"{float(pools.price[candidates].min()):g}")
