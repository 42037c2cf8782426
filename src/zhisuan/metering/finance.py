"""The money of an investment, year by year: net present value, internal rate of return and payback —
what `zhisuan plan` reports per option. Cash flows are per year, year 0 first (the capex, negative).
Pure arithmetic: no clock, no data; conventions as a spreadsheet's NPV/IRR (end-of-year flows).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def npv(rate: float, flows: Sequence[float]) -> float:
    """Σ flow_t / (1 + rate)^t, t = 0 … n (year 0 is not discounted)."""
    if rate <= -1.0:
        raise ValueError(f"discount rate must be above -100%, got {rate}")
    return sum(f / (1.0 + rate) ** t for t, f in enumerate(flows))


def irr(flows: Sequence[float], low: float = -0.99, high: float = 10.0, tol: float = 1e-10) -> float | None:
    """The rate at which NPV is zero, by bisection from [low, high] (widened upwards for returns above 1000%);
    None when NPV never changes sign (nothing invested, or all flows of one sign: no rate means anything)."""
    f_low, f_high = npv(low, flows), npv(high, flows)
    while f_low * f_high > 0 and high < 1e6 and abs(f_high) > tol:  # a return above 1000% a year: look higher
        high *= 10
        f_high = npv(high, flows)
    if f_low == 0.0:
        return low
    if abs(f_high) <= tol:
        return high
    if f_low * f_high > 0:
        return None  # no sign change up to 1e8 % a year
    for _ in range(200):
        mid = (low + high) / 2
        f_mid = npv(mid, flows)
        if abs(f_mid) < tol or high - low < tol:
            return mid
        if (f_mid > 0) == (f_low > 0):
            low, f_low = mid, f_mid
        else:
            high = mid
    return (low + high) / 2


def payback_years(flows: Sequence[float], rate: float = 0.0) -> float | None:
    """Years until the cumulative (discounted, with `rate`) cash flow turns non-negative, interpolated within
    the year it does, assuming that year's flow arrives evenly; None if it never does within the flows."""
    total = 0.0
    for t, f in enumerate(flows):
        value = f / (1.0 + rate) ** t
        if total < 0 <= total + value and t > 0:
            return t - 1 + (-total / value)
        total += value
        if t == 0 and total >= 0:
            return 0.0
    return None


def yearly_flows(capex: float, revenue: float, opex: float, years: int, salvage: float = 0.0) -> list[float]:
    """-capex in year 0, then revenue - opex each year, the salvage value added in the last."""
    if years < 1:
        raise ValueError(f"years must be at least 1, got {years}")
    for name, value in (("capex", capex), ("revenue", revenue), ("opex", opex), ("salvage", salvage)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    flows = [-capex] + [revenue - opex] * years
    flows[-1] += salvage
    return flows
