"""How fast a trace job runs on a chip relative to the chip its duration was measured on.

Measured per-application ratios (Sia's step times, sia_speed.csv) where both chips were measured;
otherwise the FP16 TFLOPS ratio, which is an approximation and is reported as one.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

from zhisuan.catalog import Accelerator, load_catalog

# The catalog's A100 80GB has the 40GB part's compute; Sia measured the 40GB one.
SAME_COMPUTE = {"A100 SXM4 80GB": "A100 SXM4 40GB"}


@cache
def measured() -> dict[str, dict[str, float]]:
    text = resources.files("zhisuan.sim").joinpath("data", "sia_speed.csv").read_text(encoding="utf-8")
    out: dict[str, dict[str, float]] = {}
    for r in csv.DictReader(io.StringIO(text)):
        out.setdefault(r["application"], {})[r["accelerator"]] = float(r["speed_vs_v100"])
    return out


class SpeedModel:
    """`rescale=False`: every chip runs a job as fast as the one it was measured on (speed factors off)."""

    def __init__(self, trace_chip: str, rescale: bool = True) -> None:
        self.trace_chip = load_catalog().lookup(trace_chip)
        self.rescale = rescale
        self._cache: dict[tuple[str | None, str, str], tuple[float, bool]] = {}

    def factor(self, application: str | None, chip: Accelerator, measured_on: str | None = None) -> tuple[float, bool]:
        """(speed vs the chip the job was measured on — its own, else the trace's —, measured?) for a job of
        `application` on `chip`."""
        ref = self.trace_chip.name if measured_on is None else measured_on
        key = (application, chip.name, ref)
        hit = self._cache.get(key)
        if hit is None:
            base = self.trace_chip if ref == self.trace_chip.name else load_catalog().lookup(ref)
            table = measured().get(application or "", {})
            a = table.get(SAME_COMPUTE.get(chip.name, chip.name))
            b = table.get(SAME_COMPUTE.get(base.name, base.name))
            if not self.rescale:
                hit = (1.0, False)
            else:
                hit = (a / b, True) if a and b else (chip.fp16_tflops / base.fp16_tflops, False)
            self._cache[key] = hit
        return hit
