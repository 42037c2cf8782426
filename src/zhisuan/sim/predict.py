"""Duration prediction from history (Helios SC'21 QSSF idea): a job will run about as long as the
same tenant's finished jobs of the same size did; else the tenant's, else everyone's. Online: it only
learns from jobs that have finished by the time it predicts."""

from __future__ import annotations

from collections import defaultdict


class DurationPredictor:
    def __init__(self, default: float = 3600.0) -> None:
        self.default = default
        self._sum: dict[tuple[str, int] | str, float] = defaultdict(float)
        self._n: dict[tuple[str, int] | str, int] = defaultdict(int)

    def predict(self, tenant: str, devices: int) -> float:
        for key in ((tenant, devices), tenant, "*"):
            n = self._n.get(key, 0)
            if n:
                return self._sum[key] / n
        return self.default

    def observe(self, tenant: str, devices: int, duration: float) -> None:
        for key in ((tenant, devices), tenant, "*"):
            self._sum[key] += duration
            self._n[key] += 1
