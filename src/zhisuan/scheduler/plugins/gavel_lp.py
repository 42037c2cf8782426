"""Gavel's heterogeneity-aware max-min fairness (Narayanan et al., OSDI'20; `MaxMinFairnessPolicyWithPerf`).

X[i, j] is the fraction of time job i should run on accelerator type j. With T[i, j] its throughput there,
s_i its device count, w_i its weight and N_j the devices of type j:

    maximise  min_i  sum_j T[i, j] * s_i * X[i, j] / (w_i * T_prop[i])
    s.t.      sum_j X[i, j] <= 1            (a job runs on one type at a time)
              sum_i s_i * X[i, j] <= N_j    (no type is over-committed)
              X >= 0

T_prop[i] = sum_j T[i, j] N_j / sum_j N_j is the job's throughput under an equal share of every type
(Gavel's proportional baseline), so jobs are compared by how much of their own fair rate they get.
Solved with HiGHS (scipy). With a single type the optimum is known in closed form (the LP then only
fixes the common level; the test suite checks both agree): t* = min(N / sum w, min_i s_i / w_i) and
X_i = w_i t* / s_i — each job gets the same weighted share of device-time.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from zhisuan.scheduler.tables import F


class LpError(RuntimeError):
    pass


def max_min_allocation(throughput: F, devices: F, capacity: F, weights: F | None = None) -> F:
    """X (jobs x types) maximising the minimum normalised throughput. `throughput[i, j]` = 0 where job i
    may not run on type j; `devices` = s_i; `capacity` = N_j."""
    m, k = throughput.shape
    if m == 0:
        return np.zeros((0, k))
    w = np.ones(m) if weights is None else np.asarray(weights, dtype=float)
    total = float(capacity.sum())
    prop = (throughput * capacity).sum(axis=1) / total if total > 0 else np.zeros(m)
    ok = prop > 0
    x = np.zeros((m, k))
    if not ok.any():
        return x
    if k == 1:
        level = min(float(capacity[0]) / float(w[ok].sum()), float((devices[ok] / w[ok]).min()))
        x[ok, 0] = w[ok] * level / devices[ok]
        return x
    return _solve(throughput, devices, capacity, w, prop, ok, x)


def _solve(throughput: F, devices: F, capacity: F, w: F, prop: F, ok: np.ndarray, x: F) -> F:
    rows, cols = np.nonzero((throughput > 0) & ok[:, None])  # one variable per (job, type) it may use
    n = len(rows)
    m, k = throughput.shape
    jobs = np.nonzero(ok)[0]
    index = np.full(m, -1)
    index[jobs] = np.arange(len(jobs))
    coef = throughput[rows, cols] * devices[rows] / (w[rows] * prop[rows])
    j = index[rows]
    var = np.arange(n)
    nj = len(jobs)
    # level - sum_j a_ij x_ij <= 0 ; sum_j x_ij <= 1 ; sum_i s_i x_ij <= N_j   (the level is variable n)
    level = sp.coo_matrix((np.ones(nj), (np.arange(nj), np.full(nj, n))), shape=(nj, n + 1))
    minimum = sp.coo_matrix((-coef, (j, var)), shape=(nj, n + 1)) + level
    share = sp.coo_matrix((np.ones(n), (j, var)), shape=(nj, n + 1))
    fits = sp.coo_matrix((devices[rows], (cols, var)), shape=(k, n + 1))
    a_ub = sp.vstack([minimum, share, fits]).tocsr()
    b_ub = np.concatenate([np.zeros(nj), np.ones(nj), capacity])
    c = np.zeros(n + 1)
    c[n] = -1.0
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs")
    if res.status != 0:
        raise LpError(f"max-min fairness LP: {res.message}")
    x[rows, cols] = np.clip(res.x[:n], 0.0, 1.0)
    return x
