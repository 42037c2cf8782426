"""Cost, energy and carbon of device-time.

Power model, labelled as such wherever shown: a busy device draws its TDP; an allocated but idle one
draws `IDLE_FRACTION` of it (an ASSUMPTION until measured watts exist). Facility energy = IT energy x PUE.
"""

from __future__ import annotations

from dataclasses import dataclass

IDLE_FRACTION = 0.3  # ASSUMPTION: idle accelerators draw ~30% of TDP


@dataclass(frozen=True, slots=True)
class UsageCost:
    device_hours: float
    cny: float
    kwh: float
    kg_co2: float


def usage_cost(device_seconds: float, price_per_device_hour: float, tdp_w: float, pue: float,
               carbon_kg_per_kwh: float, busy_fraction: float = 1.0) -> UsageCost:
    """Price, facility energy and carbon of `device_seconds` allocated, `busy_fraction` of it busy."""
    hours = device_seconds / 3600.0
    draw = busy_fraction + (1.0 - busy_fraction) * IDLE_FRACTION
    kwh = hours * tdp_w / 1000.0 * draw * pue
    return UsageCost(hours, hours * price_per_device_hour, kwh, kwh * carbon_kg_per_kwh)
