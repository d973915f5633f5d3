"""Widgets of chapter 04, "One-pass SGD and its ODEs".

Views over :mod:`mfteach.sgd_odes` (no maths here):

* :func:`triangle_explorer` (precomputed, works in the static HTML): input dimension d x
  width p x learning rate gamma -> SGD risk (dots) with the high-dimensional, gradient-flow
  and mean-field ODE curves, and the scale sqrt(gamma/(pd)) of the SGD-ODE gap.
* :func:`triangle_widget` (live): the same figure with free d, p, gamma, Delta and activation
  (sizes capped so that an update stays interactive on one CPU core).
* :func:`plateau_widget` (live): the Saad-Solla plateau reached from small random weights,
  specialisation and the noise floor for p = k = K, as gamma/p and Delta vary.
* :func:`specialization_widget` (live): k = 2, neuron cosines with the two teachers over
  time, gradient-flow ODE (lines) against one SGD run (dots).

All fix their seeds (common random numbers). The live widgets' sizes and time grids are chosen
so that a cold update stays within :data:`mfteach.widgets.UPDATE_BUDGET_S` on a 2-core CPU:
the ODE steps (:data:`PLATEAU_DT`, :data:`SPECIALIZATION_DT`) are as coarse as keeps the curves
within a fraction of a pixel of a fine integration (``tests/widgets/test_sgd_odes_widgets.py``),
and the SGD runs are capped (:data:`MAX_SGD_STEPS`, :data:`MAX_SPECIALIZATION_SGD_STEPS`).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .. import sgd_odes as so
from . import controls
from ._explorer import precomputed_explorer
from ._live import LiveWidget

__all__ = ["triangle_explorer", "triangle_widget", "plateau_widget", "specialization_widget",
           "triangle_frame", "triangle_compute", "plateau_compute", "specialization_compute",
           "LIVE_WIDGETS", "EXPLORERS", "SEED", "MAX_SGD_STEPS", "TRIANGLE_N_SAVE", "PLATEAU_DT",
           "SPECIALIZATION_DT", "MAX_SPECIALIZATION_SGD_STEPS", "PLATEAU_SCALE", "PLATEAU_D",
           "PLATEAU_T_MAX"]

SEED = 0
"""Seed of the initial weights and of the SGD samples."""


@lru_cache(maxsize=64)
def triangle_data(d: int, p: int, gamma: float, *, k: int = 2, t_max: float = 1.5,
                  n_runs: int = 2, activation: str = "erf_sqrt2", delta: float = 0.0,
                  n_save: int = 16):
    """SGD runs and the three ODEs from the same initial overlaps (see
    :func:`mfteach.sgd_odes.limits_triangle`)."""
    return so.limits_triangle(activation, p, d, gamma=gamma, k=k, delta=delta, t_max=t_max,
                              n_runs=n_runs, n_save=n_save, generator=SEED)


def _triangle_title(d: int, p: int, gamma: float, extra: str = "") -> str:
    return (f"d = {d}, p = {p}, gamma = {gamma:.3g}{extra}\nsqrt(gamma/(pd)) = "
            f"{math.sqrt(gamma / (p * d)):.3f}, gamma/p = {gamma / p:.3g}")


def triangle_frame(log10_d: float, log2_p: int, gamma: float):
    """One frame of :func:`triangle_explorer` (a matplotlib Figure)."""
    d, p = int(round(10**log10_d)), int(2**log2_p)
    sgd, curves = triangle_data(d, p, float(gamma))
    fig, ax = so.plot_risk_curves(sgd, curves, title=_triangle_title(d, p, float(gamma)))
    return fig


EXPLORER_GRID = {"log10_d": [1.0, 2.0, 3.0], "log2_p": [1, 3, 5], "gamma": [1.0, 2.0, 4.0]}
"""Settings precomputed by :func:`triangle_explorer`: 27 frames, d = 10 to 1000, p = 2 to 32
(where the mean-field ODE joins the high-d ODE), gamma/p from 1/32 to 2. Affordable since the
erf right-hand side is computed from its structure (``mfteach/sgd_odes/_erf_drift.py``; one
evaluation at p = 30 went from 0.55 s to 1.5 ms, ``benchmarks/bench_erf_rhs.py``); the SGD
runs at d = 1000, p = 32 (48 000 steps at gamma = 1) are now most of the cost."""


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


PLATEAU_DT = 2.0
"""Largest RK4 step of :func:`plateau_compute` (the risk within half a pixel of dt = 0.25 over
the slider range, ``tests/widgets/test_sgd_odes_widgets.py``; steps of 4 go unstable)."""

PLATEAU_SCALE = 0.3
"""Initial scale :math:`s` of the student weights of :func:`plateau_compute`: :math:`W_0 = sG`
with :math:`G` i.i.d. :math:`N(0, 1)` in :data:`PLATEAU_D` dimensions (seed :data:`SEED`), the
overlaps of real random weights (every symmetry broken, so that K = 3 specialises fully
instead of stalling at a partially specialised saddle as from ``near_plateau``)."""

PLATEAU_D = 100
"""Input dimension of the weights drawn by :func:`plateau_compute` (only their overlaps enter
the ODE)."""

PLATEAU_T_MAX = {2: 260.0, 3: 400.0}
r"""Time range of :func:`plateau_compute` per K. The plateau lasts about
:math:`\log(1/\epsilon_0)/\lambda` (:func:`mfteach.sgd_odes.plateau_escape`;
:math:`1/\lambda` = 30.4 at K = 2, 65.1 at K = 3, shorter for :math:`\gamma > 0`) and the risk
then relaxes to the noise floor at the teacher's slowest rate (1/45 at K = 2, 1/70 at K = 3).
Chosen for the longest setting (gamma = 0) and checked on the widget's whole control grid
(``tests/test_sgd_odes_plateau.py``): every run reaches the plateau, specialises (each student
within cosine 0.99 of its own teacher) and ends within 5 % of its floor (1e-3 of the plateau
without noise). The risk leaves the plateau by t = 110 (K = 2) and 170 (K = 3) at s = 0.3."""


_PLATEAU_EARLY = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0,
                  8.0, 9.0, 10.0, 11.0, 12.0)
"""Records over the fast approach to the plateau (the risk falls by a factor 30 by t = 5)."""


@lru_cache(maxsize=64)
def plateau_compute(K: int, gamma_over_p: float, delta: float, t_max: float | None = None,
                    dt: float = PLATEAU_DT):
    """High-d ODE from random weights of scale :data:`PLATEAU_SCALE` (erf, p = k = K, P = I)
    to :data:`PLATEAU_T_MAX` (or ``t_max``).

    Returns
    -------
    tuple
        ``(K, gamma_over_p, delta, trajectory)``.
    """
    K = int(K)
    t_max = PLATEAU_T_MAX[K] if t_max is None else float(t_max)
    W, W_star = so.init_weights(K, K, PLATEAU_D, n_runs=1, generator=SEED)
    o = so.overlaps(PLATEAU_SCALE * W[0], W_star[0])
    # finer records over the fast approach to the plateau, steps of PLATEAU_DT after it
    times = torch.cat([torch.tensor(_PLATEAU_EARLY, dtype=torch.float64),
                       torch.arange(14.0, t_max + 1e-9, 2.0, dtype=torch.float64)])
    tr = so.solve_ode(o.Q, o.M, o.P, activation="erf_sqrt2", gamma=gamma_over_p * K, delta=delta,
                      times=times, dt=dt)
    return K, float(gamma_over_p), float(delta), tr


def _plateau_plot(res):
    K, gamma_over_p, delta, tr = res
    fig, ax = so.plot_risk_curves(None, {"high-d ODE": tr}, delta=delta, logx=False,
                                  title=f"p = k = {K}, gamma/p = {gamma_over_p:.3g}, "
                                        f"Delta = {delta:.3g}: plateau, specialisation, floor")
    pr = so.plateau_risk(K)
    ax.axhline(pr, color="k", ls=":", lw=1, label="plateau (Saad-Solla closed form)")
    floor = so.noise_floor_theory(K, gamma_over_p * K, delta)
    if floor > 0:
        ax.axhline(floor, color="C3", ls="--", lw=1,
                   label="noise floor, first order in gamma")
    ax.set_ylim(bottom=0.3 * floor if floor > 0 else 1e-3 * pr)
    ax.legend(fontsize=8)
    return fig


def plateau_widget() -> LiveWidget:
    """Live widget: risk of the high-d ODE for p = k = K from small random weights.

    The risk falls onto the Saad-Solla plateau, stays there while the students are nearly
    identical, drops when they specialise and settles on the noise floor (gamma Delta > 0).
    Controls: K (2 or 3), gamma/p (0 to 0.5), Delta (0 to 0.1).

    Returns
    -------
    LiveWidget
    """
    ctrls = {
        "K": controls.int_slider("K = p = k", 2, 2, 3),
        "gamma_over_p": controls.float_slider("gamma / p", 0.1, 0.0, 0.5, step=0.05),
        "delta": controls.float_slider("Delta", 0.05, 0.0, 0.1, step=0.01),
    }
    return LiveWidget(plateau_compute, _plateau_plot, ctrls,
                      title="Saad-Solla plateau, specialisation and the noise floor")


TRIANGLE_N_SAVE = 11
"""Recorded times of one :func:`triangle_widget` update (the explorer keeps 16): each ODE
takes at least one RK4 step per interval, so 11 instead of 16 cuts the ODE time by a third."""

MAX_SGD_STEPS = 3_000
"""Cap on the SGD steps of one :func:`triangle_widget` update: ``t_max`` shrinks below 1.5
when ``1.5 p d / gamma`` exceeds it (2 runs at d = 1000 take about 0.14 ms a step on one
CPU core, so the cap costs about 0.4 s, on top of about 0.15 s for the three ODEs)."""


def triangle_compute(log10_d: float, log2_p: int, log10_gamma: float, delta: float,
                     activation: str):
    """SGD and the three ODEs at one setting of :func:`triangle_widget` (k = 2, 2 runs).

    Returns
    -------
    tuple
        ``(d, p, gamma, delta, activation, t_max, sgd, curves)``.
    """
    d, p = int(round(10**log10_d)), int(2**log2_p)
    gamma = round(10**log10_gamma, 4)
    t_max = min(1.5, MAX_SGD_STEPS * gamma / (p * d))
    sgd, curves = triangle_data(d, p, gamma, t_max=round(t_max, 4), activation=activation,
                                delta=float(delta), n_save=TRIANGLE_N_SAVE)
    return d, p, gamma, float(delta), activation, t_max, sgd, curves


def _triangle_plot(res):
    d, p, gamma, delta, activation, t_max, sgd, curves = res
    extra = f", {activation}, Delta = {delta:.3g}"
    fig, ax = so.plot_risk_curves(sgd, curves, delta=delta,
                                  title=_triangle_title(d, p, gamma, extra))
    if t_max < 1.5:
        ax.text(0.98, 0.02, f"t_max cut to {t_max:.2g} ({MAX_SGD_STEPS} SGD steps)",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.3")
    return fig


def triangle_widget() -> LiveWidget:
    """Live widget: where a setting sits in the triangle of limits (k = 2, 2 SGD runs).

    Controls: log10 d (1 to 3), log2 p (1 to 5), log10 gamma (-1 to 0.6), Delta (0 to 0.2),
    activation (erf or square). SGD (dots) against the high-d, gradient-flow and mean-field
    ODEs (lines) up to t = 1.5, shortened when the run would need more than
    :data:`MAX_SGD_STEPS` steps. The square activation diverges at large gamma/p (a message,
    not a figure).

    Returns
    -------
    LiveWidget
    """
    ctrls = {
        "log10_d": controls.float_slider("log10 d", 2.0, 1.0, 3.0, step=0.25),
        "log2_p": controls.int_slider("log2 p", 2, 1, 5),
        "log10_gamma": controls.float_slider("log10 gamma", 0.0, -1.0, 0.6, step=0.1),
        "delta": controls.float_slider("Delta", 0.0, 0.0, 0.2, step=0.02),
        "activation": controls.dropdown("activation", [("erf(u/√2)", "erf_sqrt2"),
                                                         ("u²", "square")]),
    }
    return LiveWidget(triangle_compute, _triangle_plot, ctrls,
                      title="Triangle of limits: SGD against the high-d, gradient-flow and "
                            "mean-field ODEs")


SPECIALIZATION_DT = 0.5
"""RK4 step of the gradient-flow ODE in :func:`specialization_compute` (80 steps to t = 40;
the cosines stay within 2e-4 of dt = 0.05, a tenth of a pixel)."""

MAX_SPECIALIZATION_SGD_STEPS = 3_200
"""Cap on the SGD steps of one :func:`specialization_widget` update (the defaults' 3 200 steps,
about 0.2 s): beyond it the SGD dots stop at ``t = 3200 gamma / (p d)`` while the ODE lines
still run to ``t = 40``. The paper's p = 10, gamma = 0.05 would need 80 000 steps (about 5 s);
``mfteach.sgd_odes.specialization`` runs it in a cell."""

_SPEC_D = 10


@lru_cache(maxsize=64)
def specialization_compute(p: int, gamma: float, seed: int, t_max: float = 40.0,
                           dt: float = SPECIALIZATION_DT):
    """Cosines of :func:`mfteach.sgd_odes.specialization` (k = 2, d = 10, erf, Delta = 0).

    Returns
    -------
    tuple
        ``(p, gamma, seed, c_ode, c_sgd, t_sgd)``: the ODE cosines to ``t_max``, the SGD
        cosines to ``t_sgd <= t_max`` (shorter when the run would need more than
        :data:`MAX_SPECIALIZATION_SGD_STEPS` steps).
    """
    p, gamma, seed = int(p), float(gamma), int(seed)
    steps = t_max * p * _SPEC_D / gamma
    t_sgd = t_max if steps <= MAX_SPECIALIZATION_SGD_STEPS else round(
        MAX_SPECIALIZATION_SGD_STEPS * gamma / (p * _SPEC_D), 4)
    c_ode, c_sgd, _, _ = so.specialization(p=p, k=2, d=_SPEC_D, gamma=gamma, t_max=t_sgd,
                                           n_save=41, dt=dt, generator=seed)
    if t_sgd < t_max:  # the ODE from the same initial weights, to the full time
        W, W_star = so.init_weights(p, 2, _SPEC_D, n_runs=1, generator=seed)
        o = so.overlaps(W, W_star)
        ode = so.solve_ode(o.Q, o.M, o.P, activation="erf_sqrt2", gamma=gamma, regime="gf",
                           t_max=t_max, n_save=41, dt=dt)
        c_ode = so.teacher_cosines(ode.Q[0], ode.M[0], ode.P[0])
    return p, gamma, seed, c_ode, c_sgd, t_sgd


def _specialization_plot(res):
    p, gamma, seed, c_ode, c_sgd, t_sgd = res
    fig, ax = so.plot_cosines(c_ode, c_sgd,
                              title=f"p = {p}, gamma = {gamma:.3g}, seed {seed}, d = 10")
    if t_sgd < c_ode.shape[0] - 1:  # the ODE is saved at t = 0, 1, ..., 40
        ax.text(0.98, 0.98, f"SGD dots to t = {t_sgd:.2g}\n"
                f"({MAX_SPECIALIZATION_SGD_STEPS} steps); ODE to t = {c_ode.shape[0] - 1}",
                transform=ax.transAxes, ha="right", va="top", fontsize=7, color="0.3")
    return fig


def specialization_widget() -> LiveWidget:
    r"""Live widget: specialisation of the p student neurons onto k = 2 teachers (Fig. 2 left).

    Each neuron's cosines :math:`M_{jr}/\sqrt{Q_{jj}P_{rr}}` with the two teachers, from
    t = 0 to t = 40: gradient-flow ODE (lines, squares at the end) against one SGD run
    (dots) from the same initial weights, d = 10, erf, Delta = 0. Controls: p (2 to 10),
    gamma (0.05 to 1, log scale), seed (0 to 5, the initial weights and the SGD samples).

    The paper's Fig. 2 (left) uses p = 10, gamma = 0.05 (80 000 SGD steps, about 5 s on one
    CPU core); the defaults p = 4, gamma = 0.5 (3 200 steps) keep an update interactive, and
    gamma/p stays small enough that SGD follows the gradient-flow ODE. Settings that need
    more than :data:`MAX_SPECIALIZATION_SGD_STEPS` steps show the SGD dots for the early
    times only (a note on the figure says to when); the ODE lines always run to t = 40.

    Returns
    -------
    LiveWidget
    """
    ctrls = {
        "p": controls.int_slider("width p", 4, 2, 10),
        "gamma": controls.float_log_slider("learning rate gamma", 0.5, 0.05, 1.0),
        "seed": controls.int_slider("seed", 0, 0, 5),
    }
    return LiveWidget(specialization_compute, _specialization_plot, ctrls,
                      title="Specialisation: neuron cosines with the two teachers")


LIVE_WIDGETS = [triangle_widget, plateau_widget, specialization_widget]
EXPLORERS = [triangle_explorer]
