"""Gavel's rounds (Narayanan et al., OSDI'20, `scheduler.py`): an allocation X from the max-min LP, and
per round each job's priority = X / the share of its type's time it has received since the last reset.

As in Gavel's simulator: rounds of 360 s; the LP is re-solved when jobs arrived or left, at most every
1,920 s (`minimum_time_between_allocation_resets`) unless nothing runs; each reset seeds every job's
time on every type with half a round, as do arrivals; a job not in the last solve has X = 0 (priority 0:
it only takes devices nobody with a share wants). A round's priorities order the queue, and only when a
round begins may a waiting job of higher priority preempt a running one (Gavel's lease: a job keeps its
devices for the round it was given). Between rounds, freed devices go to waiting jobs in priority order
(Gavel's simulator leaves them idle until the round ends: noted as a deviation).

Vectorised: per job a row of numpy arrays (allocation, time received per type, current run).
"""

from __future__ import annotations

import math

import numpy as np

from zhisuan.model import Request
from zhisuan.scheduler.capacity import Allocation
from zhisuan.scheduler.framework import StateView
from zhisuan.scheduler.plugins.gavel_lp import max_min_allocation
from zhisuan.scheduler.snapshot import PendingJob

ROUND = 360.0  # Gavel's time_per_iteration
RESET = 1920.0  # Gavel's minimum_time_between_allocation_resets


class GavelBook:
    def __init__(self, round_s: float = ROUND, reset_s: float = RESET) -> None:
        self.round, self.reset_every = round_s, reset_s
        self.rows: dict[str, int] = {}
        self.asks: dict[str, Request] = {}
        self.free: list[int] = []
        self.types: dict[str, int] = {}  # chip -> column
        self.x = np.zeros((0, 0))  # allocation
        self.received = np.zeros((0, 0))  # seconds on each type since the last reset (seeded)
        self.start = np.zeros(0)  # start of the current run (nan: not running)
        self.kind = np.zeros(0, dtype=np.int64)  # type of the current run
        self.rank = np.zeros(0)
        self.running: dict[str, Allocation] = {}
        self.victims: list[Allocation] = []
        self.reset_at = -math.inf
        self.stale = False  # jobs arrived or left since the last solve
        self.round_index: int | None = None
        self.may_preempt = False

    # ---- rows --------------------------------------------------------------------------------------

    def _grow(self, rows: int, cols: int) -> None:
        r0, c0 = self.x.shape
        if rows <= r0 and cols <= c0:
            return
        r1 = r0 if rows <= r0 else max(rows, 2 * r0, 64)
        c1 = max(cols, c0)
        for name, fill in (("x", 0.0), ("received", self.round / 2)):
            old = getattr(self, name)
            new = np.full((r1, c1), fill)
            new[:r0, :c0] = old
            setattr(self, name, new)
        if r1 > r0:
            self.start = np.concatenate([self.start, np.full(r1 - r0, np.nan)])
            self.kind = np.concatenate([self.kind, np.zeros(r1 - r0, dtype=np.int64)])
            self.rank = np.concatenate([self.rank, np.zeros(r1 - r0)])

    def _type(self, chip: str) -> int:
        col = self.types.get(chip)
        if col is None:
            col = self.types[chip] = len(self.types)
            self._grow(self.x.shape[0], col + 1)
        return col

    def _row(self, job_id: str) -> int:
        row = self.rows.get(job_id)
        if row is None:
            row = self.free.pop() if self.free else len(self.rows)
            self._grow(row + 1, len(self.types))
            self.rows[job_id] = row
            self.x[row] = 0.0
            self.received[row] = self.round / 2
            self.start[row] = np.nan
            self.rank[row] = 0.0
            self.stale = True
        return row

    # ---- events ------------------------------------------------------------------------------------

    def submitted(self, job: PendingJob) -> None:
        row = self._row(job.id)  # first: it may grow the arrays
        job.rank = float(self.rank[row])
        self.asks[job.id] = job.request

    def started(self, alloc: Allocation, chip: str, now: float) -> None:
        row = self._row(alloc.job_id)
        self.start[row], self.kind[row] = now, self._type(chip)
        self.running[alloc.job_id] = alloc

    def ended(self, alloc: Allocation, at: float) -> None:
        row = self.rows.get(alloc.job_id)
        self.running.pop(alloc.job_id, None)
        if row is None or math.isnan(self.start[row]):
            return
        self.received[row, self.kind[row]] += max(0.0, at - max(float(self.start[row]), self.reset_at))
        self.start[row] = np.nan

    def forget(self, job_id: str) -> None:
        row = self.rows.pop(job_id, None)
        self.asks.pop(job_id, None)
        self.running.pop(job_id, None)
        if row is not None:
            self.free.append(row)
            self.start[row] = np.nan
            self.stale = True

    # ---- a cycle -----------------------------------------------------------------------------------

    def prepare(self, pending: dict[str, PendingJob], view: StateView, now: float) -> list[str] | None:
        """Nothing between rounds. When one begins: re-solve if due, rank every job, let waiting jobs
        preempt the running ones they outrank."""
        index = math.floor(now / self.round)
        if index == self.round_index:
            self.may_preempt = False
            return []
        self.round_index = index
        for a in self.victims:
            a.rank = math.inf
        self.victims = []
        self.may_preempt = False
        if not pending:
            return []
        if self.stale and (now - self.reset_at >= self.reset_every or not self.running):
            self._solve(view, now)
        rank = self._ranks(now)
        best = -math.inf
        for job in pending.values():
            job.rank = r = float(rank[self.rows[job.id]])
            best = max(best, r)
        for job_id, alloc in self.running.items():
            r = float(rank[self.rows[job_id]])
            if r < best:
                alloc.rank = r
                self.victims.append(alloc)
        self.may_preempt = bool(self.victims)
        return None

    def _ranks(self, now: float) -> np.ndarray:
        """Priority of each row this round: max over types of X / (its share of that type's time)."""
        n = self.x.shape[0]
        live = np.zeros(n, dtype=bool)
        live[list(self.rows.values())] = True
        received = np.where(live[:, None], self.received, 0.0)
        on = live & ~np.isnan(self.start)
        rows = np.nonzero(on)[0]
        received[rows, self.kind[rows]] += now - np.maximum(self.start[rows], self.reset_at)
        total = received.sum(axis=0)
        share = np.divide(received, total, out=np.zeros_like(received), where=total > 0)
        ratio = np.divide(self.x, share, out=np.zeros_like(self.x), where=share > 0)
        self.rank = np.where(live, ratio.max(axis=1, initial=0.0), 0.0)
        return self.rank

    def _solve(self, view: StateView, now: float) -> None:
        capacity = view.capacity()
        for chip in capacity:
            self._type(chip)
        ids = list(self.rows)
        rows = np.array([self.rows[j] for j in ids], dtype=np.int64)
        k = len(self.types)
        speeds: dict[Request, dict[str, float]] = {}
        throughput = np.zeros((len(ids), k))
        devices = np.zeros(len(ids))
        for i, j in enumerate(ids):
            req = self.asks.get(j)
            if req is None:
                continue
            tp = speeds.get(req)
            if tp is None:
                tp = speeds[req] = view.throughput(req)
            for chip, v in tp.items():
                throughput[i, self.types[chip]] = v
            devices[i] = req.devices
        cap = np.zeros(k)
        for chip, n in capacity.items():
            cap[self.types[chip]] = n
        x = max_min_allocation(throughput, np.maximum(devices, 1.0), cap)
        self.x[:] = 0.0
        self.x[rows, :k] = x
        # a reset: time received is counted afresh from here (runs in progress from now on)
        self.received[:] = self.round / 2
        self.reset_at = now
        self.stale = False

    def next_change(self) -> float | None:
        """The next round, while jobs wait (the simulator wakes a cycle then)."""
        if len(self.rows) <= len(self.running):
            return None
        return (math.floor(self.round_index or 0) + 1) * self.round if self.round_index is not None else None
