"""Cost of one erf ODE right-hand side and of a whole solve (issue 16), side by side.

Three implementations of the same drift, in one run, CPU, one thread, k = 2, gamma = 0.5,
Delta = 0.01, random realisable overlaps:

* ``generic``: the former code, one ``erf_I3``/``erf_I4`` per gathered covariance block
  (p^2 n^2 arcsines, n = p + k), kept as ``_rhs(..., reference=True)``;
* ``torch``: the structured formulas of ``mfteach/sgd_odes/_erf_drift.py`` vectorised in torch
  (the CUDA and autograd path);
* ``compiled``: the same formulas as a numba loop over i <= j, a <= b (the CPU default).

Each is timed on what the solver calls per stage (``_rhs`` on a built Omega). The paper
authors' Cython code (IdePHICS/DimensionlessDynamicsSGD) is not installable here; the
per-evaluation times the issue measured for it, 0.02 ms (p = 4) and 0.19 ms (p = 10), are
quoted as ``issue_authors_ms`` and marked as quoted, not measured.

The whole solve: ``solve_ode`` to t = 20 at p = 4 and p = 10, RK4 at dt = 0.2, 0.1, 0.05 and
Euler at dt = 0.01, 0.001 (the peers' scheme), each (best of 3) with its largest deviation from an
independent high-order solution (``scipy.integrate.solve_ivp``, DOP853, rtol 1e-12), wall time
and right-hand-side evaluations; the generic code is timed on the RK4 dt = 0.1 solve.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

import mfteach.sgd_odes._solve as solve_mod
from mfteach.sgd_odes import init_weights, omega, overlaps, solve_ode
from mfteach.sgd_odes._erf_drift import erf_rhs, i4_count, numba
from mfteach.sgd_odes._rhs import _rhs

ISSUE_AUTHORS_MS = {4: 0.02, 10: 0.19}
GAMMA, DELTA, K = 0.5, 0.01, 2


def _omega(p: int, batch: int = 1):
    W, Ws = init_weights(p, K, 200, n_runs=batch, generator=p)
    o = overlaps(W, Ws)
    return omega(o.Q, o.M, o.P)


def _per_eval(fn, budget_s: float) -> float:
    """Median seconds of one call, repeating until about ``budget_s`` is spent."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    reps = max(3, min(2000, int(budget_s / max(one, 1e-7))))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def per_evaluation(quick: bool) -> dict:
    out = {}
    sizes = (4, 10, 30) if quick else (4, 10, 30, 100)
    for p in sizes:
        Om = _omega(p)[0]
        res = {"i4_generic": i4_count(p, K, structured=False), "i4_structured": i4_count(p, K)}
        budget = 0.2 if quick else 1.0
        if numba is not None:
            res["compiled_ms"] = 1e3 * _per_eval(
                lambda Om=Om, p=p: erf_rhs(Om, p, GAMMA, DELTA, "high_d", compiled=True), budget)
        res["torch_ms"] = 1e3 * _per_eval(
            lambda Om=Om, p=p: erf_rhs(Om, p, GAMMA, DELTA, "high_d", compiled=False), budget)
        if p <= 30:
            res["generic_ms"] = 1e3 * _per_eval(
                lambda Om=Om, p=p: _rhs(Om, p, K, "erf_sqrt2", GAMMA, DELTA, "high_d", True),
                budget)
        else:  # its (p, p, n, n, 4) int64 index tensor alone: 3.3 GB at p = 100
            res["generic_ms"] = "not run (index tensor of %.1f GB)" % (
                32 * p * p * (p + K) ** 2 / 1e9)
        best = res.get("compiled_ms", res["torch_ms"])
        if isinstance(res["generic_ms"], float):
            res["speedup_over_generic"] = res["generic_ms"] / best
        if p in ISSUE_AUTHORS_MS:
            res["issue_authors_ms (quoted)"] = ISSUE_AUTHORS_MS[p]
            res["ratio_to_authors (quoted)"] = best / ISSUE_AUTHORS_MS[p]
        out[f"p={p}"] = res
    # batched over initial conditions: 8 Omegas at p = 30 (and 100), one call
    for p in ((30,) if quick else (30, 100)):
        Om = _omega(p, batch=8)
        if numba is not None:
            out[f"batched_8_p={p}_compiled_ms_per_item"] = 1e3 * _per_eval(
                lambda Om=Om, p=p: erf_rhs(Om, p, GAMMA, DELTA, "high_d", compiled=True), 0.5) / 8
        out[f"batched_8_p={p}_torch_ms_per_item"] = 1e3 * _per_eval(
            lambda Om=Om, p=p: erf_rhs(Om, p, GAMMA, DELTA, "high_d", compiled=False), 0.5) / 8
    return out


def _dop853(Om: torch.Tensor, p: int, t_max: float, times: np.ndarray) -> np.ndarray:
    """Q and M at ``times`` from scipy's DOP853 on the fast RHS (an independent integrator)."""
    from scipy.integrate import solve_ivp

    P = Om[p:, p:]

    def f(_, y):
        Q = torch.from_numpy(y[:p * p].reshape(p, p))
        Q = 0.5 * (Q + Q.T)
        M = torch.from_numpy(y[p * p:].reshape(p, K))
        Omt = torch.cat([torch.cat([Q, M], 1), torch.cat([M.T, P], 1)], 0)
        dQ, dM = erf_rhs(Omt, p, GAMMA, DELTA, "high_d")
        return np.concatenate([dQ.numpy().ravel(), dM.numpy().ravel()])

    y0 = np.concatenate([Om[:p, :p].numpy().ravel(), Om[:p, p:].numpy().ravel()])
    sol = solve_ivp(f, (0.0, t_max), y0, method="DOP853", rtol=1e-12, atol=1e-14,
                    t_eval=times)
    return sol.y.T


def whole_solve(quick: bool) -> dict:
    out = {}
    t_max = 20.0
    for p in ((4,) if quick else (4, 10)):
        Om = _omega(p)[0]
        Q0, M0, P = Om[:p, :p].clone(), Om[:p, p:].clone(), Om[p:, p:].clone()
        ref = _dop853(Om, p, t_max, np.linspace(0.0, t_max, 11))
        res = {}
        runs = [("rk4", 0.2), ("rk4", 0.1), ("rk4", 0.05), ("euler", 0.01)]
        if not quick:
            runs.append(("euler", 0.001))
        for solver, dt in runs:
            wall = math.inf
            for _ in range(1 if dt < 0.01 else 3):  # best of 3: the machine may be shared
                t0 = time.perf_counter()
                tr = solve_ode(Q0, M0, P, activation="erf_sqrt2", gamma=GAMMA, delta=DELTA,
                               t_max=t_max, n_save=11, dt=dt, solver=solver)
                wall = min(wall, time.perf_counter() - t0)
            y = torch.cat([tr.Q.reshape(11, -1), tr.M.reshape(11, -1)], 1).numpy()
            stages = {"rk4": 4, "euler": 1}[solver]
            res[f"{solver}_dt={dt}"] = {"seconds": wall,
                                        "max_error": float(np.abs(y - ref).max()),
                                        "rhs_evals": stages * math.ceil(t_max / dt)}
        # the generic code on the same RK4 solve (monkeypatched into the solver)
        orig = solve_mod._rhs
        solve_mod._rhs = lambda *a, orig=orig: orig(*a, reference=True)
        try:
            t0 = time.perf_counter()
            solve_ode(Q0, M0, P, activation="erf_sqrt2", gamma=GAMMA, delta=DELTA, t_max=t_max,
                      n_save=11, dt=0.1)
            res["generic_rk4_dt=0.1_seconds"] = time.perf_counter() - t0
        finally:
            solve_mod._rhs = orig
        res["speedup_rk4_dt=0.1"] = (res["generic_rk4_dt=0.1_seconds"]
                                     / res["rk4_dt=0.1"]["seconds"])
        out[f"p={p}"] = res
    return out


def run(quick: bool = False) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {"setting": "erf_sqrt2, k = 2, gamma = 0.5, Delta = 0.01, CPU, one thread",
                "numba": numba.__version__ if numba is not None else None,
                "per_evaluation": per_evaluation(quick), "solve_to_t20": whole_solve(quick)}
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    import json
    print(json.dumps(run(quick=True), indent=2))
