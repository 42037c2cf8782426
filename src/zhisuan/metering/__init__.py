"""Pure arithmetic of usage: price, energy and carbon. The simulator and the live system bill alike."""

from zhisuan.metering.energy import UsageCost, usage_cost

__all__ = ["UsageCost", "usage_cost"]
