"""Filter and score every distinct request against every pool in a few matrix operations.

Scores are normalised to 0..100 per request over its feasible pools (100 = best) and combined by
the policy's weights; each request gets its feasible pools in preference order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zhisuan.scheduler.framework import Filter, Policy, ScoreContext
from zhisuan.scheduler.tables import B, F, I, PoolTable, RequestTable


def normalise(raw: F, feasible: B) -> F:
    """Per row: 100 at the best (lowest) feasible value, 0 at the worst; 100 when all are equal."""
    lo = np.where(feasible, raw, np.inf).min(axis=1, keepdims=True)
    hi = np.where(feasible, raw, -np.inf).max(axis=1, keepdims=True)
    span = hi - lo
    safe = np.where(np.isfinite(span) & (span > 0), span, 1.0)
    with np.errstate(invalid="ignore"):
        out = np.where(np.isfinite(span) & (span > 0), 100.0 * (hi - raw) / safe, 100.0)
    result: F = np.where(feasible, out, 0.0)
    return result


@dataclass
class Ranking:
    requests: RequestTable
    pools: PoolTable
    masks: list[tuple[Filter, B]]
    feasible: B
    raw: dict[str, F]
    weights: dict[str, float]
    total: F  # -inf where infeasible
    prefs: list[list[int]]
    ctx: ScoreContext

    def rejecting(self, r: int, p: int) -> list[Filter]:
        """The filters that reject pool p for request r (empty if it is feasible)."""
        return [f for f, m in self.masks if not m[r, p]]

    def total_with_delay(self, r: int, delay: F) -> F:
        """Row r's total score when each pool starts after `delay` seconds (inf: never)."""
        feasible = self.feasible[r : r + 1] & np.isfinite(delay)[None, :]
        total = np.zeros(len(self.pools), dtype=np.float64)
        for name, w in self.weights.items():
            row = delay if name == "start" else self.raw[name][r]
            total += w * normalise(row[None, :], feasible)[0]
        total /= max(sum(self.weights.values()), 1e-12)
        out: F = np.where(feasible[0], total, -np.inf)
        return out


def rank(requests: RequestTable, pools: PoolTable, policy: Policy, histograms: I) -> Ranking:
    masks = [(f, f.mask(requests, pools)) for f in policy.filters]
    feasible = np.ones((len(requests), len(pools)), dtype=np.bool_)
    for _, m in masks:
        feasible &= m
    ctx = ScoreContext(speed=requests.speed(pools), histograms=histograms)
    raw = {s.name: s.raw(requests, pools, ctx) for s, _ in policy.scores}
    weights = {s.name: w for s, w in policy.scores}
    total = np.zeros(feasible.shape, dtype=np.float64)
    for name, w in weights.items():
        total += w * normalise(raw[name], feasible)
    total /= max(sum(weights.values()), 1e-12)
    total = np.where(feasible, total, -np.inf)
    order = np.argsort(-total, axis=1, kind="stable")
    counts = feasible.sum(axis=1)
    prefs = [row[:c].tolist() for row, c in zip(order, counts, strict=True)]
    return Ranking(requests, pools, masks, feasible, raw, weights, total, prefs, ctx)
