"""Widgets of chapter 04, "One-pass SGD and its ODEs".

Views over :mod:`mfteach.sgd_odes` (no maths here):

* :func:`triangle_explorer` (precomputed, works in the static HTML): input dimension d x
  width p x learning rate gamma -> SGD risk (dots) with the high-dimensional, gradient-flow
  and mean-field ODE curves, and the scale sqrt(gamma/(pd)) of the SGD-ODE gap.
* :func:`plateau_widget` (live): the Saad-Solla plateau and the noise floor for p = k = K,
  as gamma/p and Delta vary.

Both fix their seeds (common random numbers).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .. import sgd_odes as so
from . import controls
from ._explorer import precomputed_explorer
from ._live import LiveWidget

__all__ = ["triangle_explorer", "plateau_widget", "triangle_frame", "plateau_compute",
           "LIVE_WIDGETS", "EXPLORERS", "SEED"]

SEED = 0
"""Seed of the initial weights and of the SGD samples."""


@lru_cache(maxsize=64)
def triangle_data(d: int, p: int, gamma: float, *, k: int = 2, t_max: float = 1.5,
                  n_runs: int = 2):
    """SGD runs and the three ODEs from the same initial overlaps (erf, Delta = 0)."""
    W, Ws = so.init_weights(p, k, d, n_runs=n_runs, generator=SEED)
    o = so.overlaps(W, Ws)
    kw = dict(t_max=t_max, n_save=16)
    sgd = so.simulate_sgd(W, Ws, activation="erf", gamma=gamma, generator=SEED + 1, **kw)
    hd = so.solve_ode(o.Q, o.M, o.P, activation="erf", gamma=gamma, dt=0.25, **kw)
    gf = so.solve_ode(o.Q, o.M, o.P, activation="erf", regime="gf", dt=0.25, **kw)
    q0 = torch.diagonal(o.Q - o.M @ torch.linalg.solve(o.P, o.M.mT), dim1=-2, dim2=-1)
    mf = so.solve_mf_ode(o.M, q0, o.P, activation="erf", d=d if d >= k + 2 else None,
                         dt=0.25, **kw)
    return sgd, {"high-d ODE": hd, "gradient-flow ODE": gf, "mean-field ODE": mf}


def triangle_frame(log10_d: float, log2_p: int, gamma: float):
    """One frame of :func:`triangle_explorer` (a matplotlib Figure)."""
    d, p = int(round(10**log10_d)), int(2**log2_p)
    sgd, curves = triangle_data(d, p, float(gamma))
    fig, ax = so.plot_risk_curves(sgd, curves, title=(
        f"d = {d}, p = {p}, gamma = {gamma}: sqrt(gamma/(pd)) = {math.sqrt(gamma / (p * d)):.3f},"
        f" gamma/p = {gamma / p:.3g}"))
    return fig


EXPLORER_GRID = {"log10_d": [1.0, 3.0], "log2_p": [1, 3], "gamma": [1.0, 4.0]}
"""Settings precomputed by :func:`triangle_explorer` (8 frames, about 6 s on one CPU core)."""


def triangle_explorer():
    """Precomputed explorer: where a setting sits in the triangle of limits (erf, k = 2).

    Returns
    -------
    ipywidgets.VBox
        See :func:`mfteach.widgets.precomputed_explorer`.
    """
    return precomputed_explorer(
        triangle_frame, EXPLORER_GRID,
        description="SGD (dots: mean of 2 runs, band: spread) against the high-dimensional "
                    "ODE (with the gamma/p variance term), the gradient-flow ODE and the "
                    "mean-field ODE. Large d: SGD follows the high-d ODE; small gamma/p: the "
                    "gradient-flow ODE joins it; large p: the mean-field ODE.")


@lru_cache(maxsize=64)
def plateau_compute(K: int, gamma_over_p: float, delta: float, t_max: float = 150.0):
    """High-d ODE from a near-symmetric start (erf, p = k = K, P = I, M = 1e-3)."""
    Q0 = 0.2 * torch.eye(K, dtype=torch.float64)
    M0 = torch.full((K, K), 1e-3, dtype=torch.float64)
    M0[0, 0] += 1e-4  # breaks the symmetry a little, so that the plateau ends
    P = torch.eye(K, dtype=torch.float64)
    times = torch.cat([torch.zeros(1, dtype=torch.float64),
                       torch.logspace(-1, math.log10(t_max), 40, dtype=torch.float64)])
    tr = so.solve_ode(Q0, M0, P, activation="erf", gamma=gamma_over_p * K, delta=delta,
                      times=times, dt=0.25)
    return K, delta, tr


def _plateau_plot(res):
    K, delta, tr = res
    fig, ax = so.plot_risk_curves(None, {"high-d ODE": tr}, delta=delta, logx=False,
                                  title=f"p = k = {K}: plateau and noise floor")
    ax.axhline(so.plateau_risk(K), color="k", ls=":", lw=1,
               label="plateau (Saad-Solla closed form)")
    ax.legend(fontsize=8)
    return fig


def plateau_widget() -> LiveWidget:
    """Live widget: risk of the high-d ODE for p = k = K from a symmetric start.

    Controls: K (2 or 3), gamma/p (0 to 0.5), Delta (0 to 0.1).

    Returns
    -------
    LiveWidget
    """
    ctrls = {
        "K": controls.int_slider("K = p = k", 2, 2, 3),
        "gamma_over_p": controls.float_slider("gamma / p", 0.1, 0.0, 0.5, step=0.05),
        "delta": controls.float_slider("Delta", 0.0, 0.0, 0.1, step=0.01),
    }
    return LiveWidget(plateau_compute, _plateau_plot, ctrls,
                      title="Saad-Solla plateau, specialisation and the noise floor",
                      budget_s=8.0)


LIVE_WIDGETS = [plateau_widget]
EXPLORERS = [triangle_explorer]
