"""Filter and score every distinct request against every pool in a few matrix operations.

Scores are normalised to 0..100 per request over its feasible pools (100 = best) and combined by
the policy's weights; each request gets its feasible pools in preference order. Filters and scores
depend only on the request and the pools, so rankings are memoised per request (`RankCache`) and a
cycle only ranks reqs it has not seen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from zhisuan.catalog.tou import hour_start
from zhisuan.model import Request
from zhisuan.scheduler.framework import Filter, Policy, Score, ScoreContext
from zhisuan.scheduler.nodescore.workload import Workload
from zhisuan.scheduler.pricing import time_dependent
from zhisuan.scheduler.shape import Shape
from zhisuan.scheduler.snapshot import PendingJob
from zhisuan.scheduler.staging import Staging
from zhisuan.scheduler.tables import B, F, PoolTable, RequestTable


def normalise(raw: F, feasible: B, floor: F | None = None) -> F:
    """Per row: 100 at the best (lowest) feasible value, 0 at the worst; 100 when all are equal. With a
    `floor` ([request, 1]), a spread below it counts in proportion: raw values within a few seconds of each
    other on a 200-hour job are not 100 points apart."""
    lo = np.where(feasible, raw, np.inf).min(axis=1, keepdims=True, initial=np.inf)
    hi = np.where(feasible, raw, -np.inf).max(axis=1, keepdims=True, initial=-np.inf)
    span = hi - lo
    if floor is not None:
        with np.errstate(invalid="ignore"):
            hi = np.where(np.isfinite(span) & (span < floor), lo + floor, hi)
            span = np.maximum(span, floor)
    ok = np.isfinite(span) & (span > 0)
    with np.errstate(invalid="ignore"):
        out = np.where(ok, 100.0 * (hi - raw) / np.where(ok, span, 1.0), 100.0)
    result: F = np.where(feasible, out, 0.0)
    return result


@dataclass(slots=True)
class Part:
    """One score's share in a candidate's total: its raw value (the score's own unit), the 0-100 it
    normalises to among the request's candidate pools, the policy's weight, and weight x score / sum of
    weights — the candidate's total is the sum of its parts' contributions."""

    name: str
    raw: float
    score: float
    weight: float
    contribution: float


@dataclass
class Ranking:
    reqs: RequestTable
    pools: PoolTable
    masks: list[tuple[Filter, B]]
    feasible: B
    raw: dict[str, F]
    weights: dict[str, float]
    total: F  # -inf where infeasible
    prefs: list[list[int]]
    ctx: ScoreContext
    speed_rows: list[list[float]]  # python copies for cheap per-job indexing in the assign loop
    total_rows: list[list[float]]
    raw_rows: dict[str, list[list[float]]]
    staging: Staging  # moving each request's inputs to each pool: part of every run, whether scores weigh it
    staging_rows: list[list[float]]  # seconds, python copies for the assign loop
    floors: dict[str, list[float]]  # score -> per request, the spread that counts fully (scores with a floor)
    _varies: dict[int, tuple[float, list[tuple[list[float] | None, float, float]], float]] = field(
        default_factory=dict, repr=False)
    _shapes: tuple[list[Shape], list[bool], bool] | None = field(default=None, repr=False, compare=False)
    _workload: Workload | None = field(default=None, repr=False, compare=False)

    def shapes(self) -> tuple[list[Shape], list[bool], bool]:
        """(shape per row, whether each is simple, whether any input must move): built once per ranking, not per
        cycle. A ranking is replaced, never changed, when rows are added or re-ranked, so the cache cannot go stale."""
        if self._shapes is None:
            shapes = [Shape.of(q) for q in self.reqs.reqs]
            self._shapes = (shapes, [s.simple for s in shapes], self.staging.any)
        return self._shapes

    def workload(self) -> Workload:
        """The distinct asks of the ranking's rows, alike, with their memory: the workload node scores expect
        when not told. Built once per ranking (as `shapes`), not once per cycle: the sharing replays run a
        cycle per arriving task, and rebuilding it was a sixth of their time."""
        if self._workload is None:
            shapes = self.shapes()[0]
            self._workload = Workload.of(((s, q.models) for s, q in zip(shapes, self.reqs.reqs, strict=True)), 1.0,
                                         memory=True)
        return self._workload

    def rejecting(self, r: int, p: int) -> list[Filter]:
        """The filters that reject pool p for request r (empty if it is feasible)."""
        return [f for f, m in self.masks if not m[r, p]]

    def total_with_delay(self, r: int, delay: F) -> F:
        """Row r's total score when each pool starts after `delay` seconds (inf: never).

        Same normalisation as `normalise`, over the request's few candidate pools in plain Python:
        it runs once per reservation per cycle, where numpy's per-call overhead dominates.
        """
        delays = delay.tolist()
        total = np.full(len(self.pools), -np.inf)
        for p, v in self.totals_with_delay(r, {p: delays[p] for p in self.prefs[r]}).items():
            total[p] = v
        return total

    def totals_with_delay(self, r: int, delays: dict[int, float]) -> dict[int, float]:
        """`total_with_delay` for the pools in `delays` with a finite delay, as a dict (no arrays)."""
        pools, totals = self._totals(r, list(delays), list(delays.values()))
        return dict(zip(pools, totals, strict=True))

    def best_with_delay(self, r: int, pools: list[int], delays: list[float]) -> int:
        """Index into `pools` of the best total when each starts after its delay (the first pool on a tie), or -1
        when none ever can: a reservation's pool, without building the totals' dict."""
        cands, totals = self._totals(r, pools, delays)
        best, best_total, best_pool = -1, -math.inf, 0
        for i in range(len(cands)):
            t, q = totals[i], cands[i]
            if best < 0 or t > best_total or (t == best_total and q < best_pool):
                best, best_total, best_pool = i, t, q
        return -1 if best < 0 else pools.index(best_pool)

    def _totals(self, r: int, pools: list[int], delays: list[float]) -> tuple[list[int], list[float]]:
        """The pools with a finite delay and their totals: `normalise` over them in plain Python (a reservation
        asks for a few pools, where numpy's per-call overhead dominates). Each pool's total is summed in a local,
        term by term in the ranking's order (the same additions as `normalise`, so the same bits)."""
        cands: list[int] = []
        starts: list[float] = []
        for i in range(len(pools)):
            d: float = delays[i]
            if not (math.isinf(d) or math.isnan(d)):  # finite: `math.isfinite` is no compiled primitive, a call by name
                cands.append(pools[i])
                starts.append(d)
        n = len(cands)
        if not n:
            return cands, []
        flat, terms, wsum = self._varying(r)
        cols: list[list[float]] = []  # per varying term: its values over the candidates, weight, highest, span
        ws: list[float] = []
        his: list[float] = []
        spans: list[float] = []
        for row, w, floor in terms:
            if row is not None:
                vals = [row[p] for p in cands]
            elif self.ctx.staging is not None:  # moving the inputs is part of the time to start
                moving = self.staging_rows[r]
                vals = [starts[i] + moving[cands[i]] for i in range(n)]
            else:
                vals = starts
            lo: float = vals[0]
            hi: float = lo
            for i in range(1, n):
                v: float = vals[i]
                if v < lo:
                    lo = v
                if v > hi:
                    hi = v
            if hi - lo < floor:
                hi = lo + floor
            cols.append(vals)
            ws.append(w)
            his.append(hi)
            spans.append(hi - lo if hi > lo else 0.0)
        out: list[float] = []
        for i in range(n):
            t = flat
            for k in range(len(cols)):
                span = spans[k]
                if span > 0.0:
                    t += ws[k] * (100.0 * (his[k] - cols[k][i]) / span)
                else:
                    t += ws[k] * 100.0
            out.append(t / wsum)
        return cands, out

    def parts(self, r: int, delay: F | None = None) -> dict[int, tuple[Part, ...]]:
        """Each candidate pool's parts for row r (pools with a finite `delay`, if given), normalised by the
        same `normalise` as the ranking: for explanations, not the hot path."""
        cands = [p for p in self.prefs[r] if delay is None or math.isfinite(delay[p])]
        if not cands:
            return {}
        wsum = max(sum(self.weights.values()), 1e-12)
        out: dict[int, list[Part]] = {p: [] for p in cands}
        every = np.ones((1, len(cands)), dtype=np.bool_)
        for name, w in self.weights.items():
            given = delay if name == "start" and delay is not None else None
            if given is not None and self.ctx.staging is not None:
                given = given + self.staging.seconds[r]
            row = np.array([[given[p] if given is not None else self.raw_rows[name][r][p] for p in cands]])
            floor = np.array([[self.floors[name][r]]]) if name in self.floors else None
            scores = normalise(row, every, floor)[0]
            for i, p in enumerate(cands):
                out[p].append(Part(name, float(row[0, i]), float(scores[i]), w, w * float(scores[i]) / wsum))
        return {p: tuple(v) for p, v in out.items()}

    def _varying(self, r: int) -> tuple[float, list[tuple[list[float] | None, float, float]], float]:
        """Row r's scores that differ between its pools, each as (its raw row, None for the start; weight; floor),
        the weighted 100s of those that do not (equal on every pool, they are equal on any subset), and the sum
        of the weights: what `_totals` needs, looked up once per row."""
        known = self._varies.get(r)
        if known is None:
            flat, terms = 0.0, []
            for name, w in self.weights.items():
                vals = {self.raw_rows[name][r][p] for p in self.prefs[r]} if name != "start" else None
                if vals is not None and len(vals) <= 1:
                    flat += 100.0 * w
                else:
                    floor = self.floors[name][r] if name in self.floors else 0.0
                    terms.append((self.raw_rows[name][r] if name != "start" else None, w, floor))
            known = self._varies[r] = (flat, terms, max(sum(self.weights.values()), 1e-12))
        return known

    def extended(self, more: Ranking) -> Ranking:
        """This ranking with `more`'s rows appended (same pools and policy)."""
        a, b = self.staging, more.staging
        staging = Staging(np.vstack([a.seconds, b.seconds]), np.vstack([a.gb, b.gb]), np.vstack([a.cny, b.cny]),
                          np.vstack([a.kwh, b.kwh]), np.vstack([a.hours, b.hours]))
        return Ranking(
            reqs=RequestTable.build([*self.reqs.reqs, *more.reqs.reqs]),
            pools=self.pools,
            masks=[(f, np.vstack([m, m2])) for (f, m), (_, m2) in zip(self.masks, more.masks, strict=True)],
            feasible=np.vstack([self.feasible, more.feasible]),
            raw={k: np.vstack([v, more.raw[k]]) for k, v in self.raw.items()},
            weights=self.weights,
            total=np.vstack([self.total, more.total]),
            prefs=self.prefs + more.prefs,
            ctx=ScoreContext(speed=np.vstack([self.ctx.speed, more.ctx.speed]), at=self.ctx.at,
                             staging=staging if self.ctx.staging is not None else None),
            speed_rows=self.speed_rows + more.speed_rows,
            total_rows=self.total_rows + more.total_rows,
            raw_rows={k: v + more.raw_rows[k] for k, v in self.raw_rows.items()},
            staging=staging,
            staging_rows=self.staging_rows + more.staging_rows,
            floors={k: v + more.floors[k] for k, v in self.floors.items()},
        )


def rank(reqs: RequestTable, pools: PoolTable, policy: Policy, at: float | None = None) -> Ranking:
    """`at`: the clock hour whose tariffs and grid intensity the price and carbon scores use (None: flat)."""
    masks = [(f, f.mask(reqs, pools)) for f in policy.filters]
    feasible = np.ones((len(reqs), len(pools)), dtype=np.bool_)
    for _, m in masks:
        feasible &= m
    staging = Staging.of(reqs, pools)
    ctx = ScoreContext(speed=reqs.speed(pools), at=at, staging=staging if policy.weigh_data else None)
    raw = {s.name: s.raw(reqs, pools, ctx) for s, _ in policy.scores}
    floors = {s.name: f for s, _ in policy.scores if (f := _floor(s, reqs, ctx)) is not None}
    weights = {s.name: w for s, w in policy.scores}
    total = np.zeros(feasible.shape, dtype=np.float64)
    for name, w in weights.items():
        total += w * normalise(raw[name], feasible, floors.get(name))
    total /= max(sum(weights.values()), 1e-12)
    total = np.where(feasible, total, -np.inf)
    order = np.argsort(-total, axis=1, kind="stable")
    counts = feasible.sum(axis=1)
    prefs = [row[:c].tolist() for row, c in zip(order, counts, strict=True)]
    return Ranking(reqs, pools, masks, feasible, raw, weights, total, prefs, ctx,
                   ctx.speed.tolist(), total.tolist(), {k: v.tolist() for k, v in raw.items()}, staging,
                   staging.rows(), {k: v[:, 0].tolist() for k, v in floors.items()})


def _floor(score: Score, reqs: RequestTable, ctx: ScoreContext) -> F | None:
    """A score's optional `floor(reqs, ctx)`: [request, 1] spreads that count fully."""
    floor = getattr(score, "floor", None)
    return floor(reqs, ctx) if floor is not None else None


class RankCache:
    """Rankings of every request seen so far, in one append-only Ranking. Where prices or carbon differ
    between pools by the hour (tariffs, hourly grid series), every row is ranked again when the clock hour
    changes, keeping its row number (`refresh`)."""

    def __init__(self, pools: PoolTable, policy: Policy) -> None:
        self.pools, self.policy = pools, policy
        self.index: dict[Request, int] = {}
        self.at: float | None = None
        self.hourly = time_dependent(pools.pools)
        self.ranking = rank(RequestTable.build([]), pools, policy)

    def refresh(self, calendar: float) -> None:
        """Take prices and carbon at the clock hour of `calendar` (epoch seconds)."""
        if not self.hourly:
            return
        at = hour_start(calendar)
        if at != self.at:
            self.at = at
            self.ranking = rank(RequestTable.build(list(self.index)), self.pools, self.policy, at)

    def row_of(self, request: Request) -> int:
        r = self.index.get(request)
        if r is None:
            r = self.index[request] = len(self.index)
            self.ranking = self.ranking.extended(rank(RequestTable.build([request]), self.pools, self.policy, self.at))
        return r

    def rows_of(self, jobs: Sequence[PendingJob]) -> list[int]:
        """The ranking row of each job's request, ranking new ones in one batch."""
        index = self.index
        new: list[Request] = []
        rows = []
        for j in jobs:
            r = index.get(j.request)
            if r is None:
                r = index[j.request] = len(index)
                new.append(j.request)
            rows.append(r)
        if new:
            self.ranking = self.ranking.extended(rank(RequestTable.build(new), self.pools, self.policy, self.at))
        return rows
