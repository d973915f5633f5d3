r"""Figures of the two-timescale chapter (matplotlib ``Figure`` objects, no pyplot state).

Every figure draws the theory beside the measurement: the fitted linear rate beside
:math:`U(\mu_t)` (Thm 3.7), the prior's level :math:`k/d` beside the parameter alignment, the
slopes :math:`-1/2` and :math:`-1` beside the initial alignments (Thm 5.4), the rate
:math:`n^{-1/2}` beside the kernels' test errors (Thm 4.4), the orders :math:`+1` in
:math:`\eta` and :math:`-1` in :math:`N` beside the discretisation gaps (Thm 3.7) and the chord
beside :math:`G` along a mixture (Thm 3.1). Margins are fixed (no layout engine: it would
double the cost of a widget update) and log-axis tick labels are plain text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from .._checks import check_choice, check_int, fail
from ..plotting import loglog_with_fit
from ..stats import fit_loglog_slope
from ._experiments import (
    AlignmentScaling,
    DiscretisationSweep,
    KernelComparison,
    fit_linear_rate,
)
from ._langevin import History
from ._mixture import MixtureCheck
from ._model import TARGETS, relevant_directions

__all__ = ["plot_training", "plot_alignment_scaling", "plot_kernel_comparison", "plot_dof",
           "plot_discretisation", "plot_mixture", "COLORS"]

COLORS = {"U": "C0", "G": "C1", "alignment": "C2", "param_alignment": "C4", "dof": "C3",
          "learned": "C3", "initial": "C0", "isotropic": "0.35"}
"""Colour of each quantity (and of each kernel) in every figure of the chapter."""

_KERNEL_LABELS = {"learned": "learned kernel k_μT", "initial": "initial kernel k_μ0",
                  "isotropic": "isotropic RBF kernel"}
_MAX_RUNS = 5


# ---------------------------------------------------------------------------------------------
# Helpers (the same conventions as the other chapters' figures)
# ---------------------------------------------------------------------------------------------

def _drawable(x, fn: str, what: str, *, positive: bool = False,
              name: str = "history") -> np.ndarray:
    """A recorded quantity about to be drawn: finite (positive on a log axis), as numpy."""
    t = torch.as_tensor(x)
    ok = bool(torch.isfinite(t).all()) and (not positive or bool((t > 0).all()))
    if not ok:
        fail(name, fn, f"a result with {'positive' if positive else 'finite'} {what}", x)
    return t.detach().to("cpu", torch.float64).numpy()


def _plain_labels(axis) -> None:
    """Tick labels as plain numbers ("0.1", "1e-06"), not mathtext (parsed for every frame)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _sparse_log_ticks(axis) -> None:
    """At most six decades labelled and no minor ticks on a log axis."""
    from matplotlib.ticker import LogLocator, NullLocator

    axis.set_major_locator(LogLocator(numticks=6))
    axis.set_minor_locator(NullLocator())
    _plain_labels(axis)


def _log_ticks_125(axis) -> None:
    """Labels at 1, 2 and 5 times the powers of ten on a log axis that spans about a decade
    (decade ticks alone would leave it unlabelled), no minor ticks."""
    from matplotlib.ticker import LogLocator, NullLocator

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_minor_locator(NullLocator())
    _plain_labels(axis)


def _value_ticks(axis, values) -> None:
    """Plain tick labels at the measured values of a log axis (no 3x10^1 clutter)."""
    from matplotlib.ticker import NullFormatter, NullLocator

    axis.set_ticks([float(v) for v in values], [f"{float(v):g}" for v in values])
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def _max_n_locator(n: int):
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(n)


def _figure(ncols: int, width: float, *, left: float = 0.07, wspace: float = 0.28):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 3.7))  # fixed margins: a layout engine doubles the cost
    axes = fig.subplots(1, ncols)
    fig.subplots_adjust(left=left, right=0.985, bottom=0.15, top=0.86, wspace=wspace)
    return fig, axes


def _history(history, fn: str, name: str = "history") -> History:
    if not isinstance(history, History):
        fail(name, fn, "an mfteach.two_timescale.History", history, exc=TypeError)
    return history


def _mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over the last axis (zero error for one run)."""
    m = x.mean(-1)
    if x.shape[-1] < 2:
        return m, np.zeros_like(m)
    return m, x.std(-1, ddof=1) / math.sqrt(x.shape[-1])


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------

def plot_training(history: History, *, target: str = "x1x2", run: int = 0):
    r"""Four panels of one :class:`History`: the objective, the alignments, the degrees of
    freedom and the particles (the live widget's figure).

    1. :math:`U(\mu_t)` and :math:`G(\mu_t)` (log axis) with the linear rate fitted by
       :func:`mfteach.two_timescale.fit_linear_rate`,
       :math:`U_\infty + (U_0 - U_\infty)e^{-\rho t}` (Thm 3.7), and :math:`U_\infty`.
    2. Kernel alignment :math:`\hat A(\mu_t)` and parameter alignment :math:`P(\mu_t)`, with
       the initial level of :math:`\hat A` and the prior's expectation :math:`P(\nu) = k/d`.
    3. Degrees of freedom :math:`d_{\bar\lambda_a}(\mu_t)`, its initial level and the bound
       :math:`\min(n, N)`.
    4. First-layer weights :math:`(u_1, u_2)` of every particle at :math:`t = 0` (grey) and at
       the end (coloured), the prior's one-standard-deviation circle
       :math:`\|u\| = 1/\sqrt{\lambda_w}` and the target's relevant directions.

    Parameters
    ----------
    history : History
        From :func:`mfteach.two_timescale.run` or :func:`mfteach.two_timescale.train`
        (``W0`` and ``W`` are used for the particles; ``d >= 2``).
    target : {"x1x2", "single_index"}
        The target the run learned (its relevant directions, and :math:`k`).
    run : int
        The run drawn in bold (others, up to five, are drawn thin in panels 1 to 3).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError, ValueError
        For a bad argument, or non-finite recorded values (one line).

    Examples
    --------
    >>> from mfteach.two_timescale import run
    >>> h = run(d=3, n_train=20, n_test=10, n_particles=10, n_runs=2, steps=40,
    ...         record_every=4, generator=0)
    >>> fig = plot_training(h)
    >>> len(fig.axes)
    4
    """
    fn = "mfteach.two_timescale.plot_training"
    h = _history(history, fn)
    check_choice(target, "target", fn, TARGETS)
    B = h.U.shape[1]
    b = check_int(run, "run", fn, min=0, max=B - 1)
    d = h.W.shape[-1] - int(h.bias)
    if d < 2:
        fail("history", fn, "a History with at least 2 input coordinates (the particle "
             "panel draws u1 and u2)", history)
    t = h.t.cpu().numpy()
    others = [r for r in range(min(B, _MAX_RUNS)) if r != b]
    fig, (ax1, ax2, ax3, ax4) = _figure(4, 15.0, left=0.05, wspace=0.32)

    # 1. the objective and its linear rate
    U = _drawable(h.U, fn, "objectives U", positive=True)
    G = _drawable(h.G, fn, "objectives G", positive=True)
    for r in others:
        ax1.plot(t, U[:, r], color=COLORS["U"], lw=0.6, alpha=0.35)
    ax1.plot(t, G[:, b], color=COLORS["G"], lw=1.4, label="G = U + (λ̄w/2) E‖w‖²")
    ax1.plot(t, U[:, b], color=COLORS["U"], lw=1.6, label="U(μ_t)")
    try:
        fit = fit_linear_rate(h)
    except ValueError:  # too few records for a fit: the measurement alone
        fit = None
    if fit is not None:
        # the fit is per data set, of the mean over its chains (n_chains = 1: run b itself)
        nc = max(1, B // max(1, fit.rate.numel()))
        r = min(b // nc, fit.rate.numel() - 1)
        Ubar = U[:, r * nc:(r + 1) * nc].mean(1)
        rho, u_inf = float(fit.rate[r]), float(fit.u_inf[r])
        end = getattr(fit, "window_end", None)
        keep = t <= (fit.t_end if end is None else float(end[r]))
        if math.isfinite(rho) and math.isfinite(u_inf) and u_inf > 0 and Ubar[0] > u_inf:
            what = "" if nc == 1 else f" (mean of {nc} chains)"
            ax1.plot(t[keep], u_inf + (Ubar[0] - u_inf) * np.exp(-rho * t[keep]), color="k",
                     ls="--", lw=1, label=f"Thm 3.7: U∞ + (U0 − U∞)e^(−ρt){what}, "
                     f"ρ = {rho:.3g}")
            ax1.axhline(u_inf, color="k", ls=":", lw=0.8, label="U∞ (mean of the tail)")
    ax1.set_yscale("log")
    _sparse_log_ticks(ax1.yaxis)
    if max(U.max(), G.max()) < 10 * min(U.min(), G.min()):  # within a decade: 1, 2, 5
        from matplotlib.ticker import LogLocator

        ax1.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0), numticks=6))
    ax1.set_xlabel("time t = kη")
    ax1.set_ylabel("objective")
    ax1.set_title("the objective falls at a linear rate", fontsize=9)
    ax1.legend(fontsize=6.5, loc="upper right", framealpha=0.6)

    # 2. the alignments
    A = _drawable(h.alignment, fn, "alignments")
    for r in others:
        ax2.plot(t, A[:, r], color=COLORS["alignment"], lw=0.6, alpha=0.35)
    ax2.plot(t, A[:, b], color=COLORS["alignment"], lw=1.6, label="kernel alignment Â(μ_t)")
    ax2.axhline(A[0, b], color=COLORS["alignment"], ls=":", lw=0.9,
                label=f"Â(μ0) = {A[0, b]:.3f}")
    if h.param_alignment is not None:
        P = _drawable(h.param_alignment, fn, "parameter alignments")
        for r in others:
            ax2.plot(t, P[:, r], color=COLORS["param_alignment"], lw=0.6, alpha=0.35)
        ax2.plot(t, P[:, b], color=COLORS["param_alignment"], lw=1.6,
                 label="parameter alignment P(μ_t)")
        k = relevant_directions(max(d, 2), target).shape[0]
        ax2.axhline(k / d, color=COLORS["param_alignment"], ls="--", lw=0.9,
                    label=f"prior: E P(μ0) = k/d = {k}/{d}")
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("time t = kη")
    ax2.set_ylabel("alignment")
    ax2.set_title("the learned kernel aligns with the target", fontsize=9)
    ax2.legend(fontsize=6.5, loc="lower right")

    # 3. the degrees of freedom
    D = _drawable(h.dof, fn, "degrees of freedom")
    for r in others:
        ax3.plot(t, D[:, r], color=COLORS["dof"], lw=0.6, alpha=0.35)
    ax3.plot(t, D[:, b], color=COLORS["dof"], lw=1.6, label="d_λ(μ_t) = tr Σ(Σ + nλ̄a I)⁻¹")
    ax3.axhline(D[0, b], color=COLORS["dof"], ls=":", lw=0.9, label=f"d_λ(μ0) = {D[0, b]:.1f}")
    bound = min(h.n_train, h.n_particles)
    if bound <= 1.3 * float(D.max()):
        ax3.axhline(bound, color="k", ls="--", lw=0.8, label=f"bound min(n, N) = {bound}")
    ax3.set_xlabel("time t = kη")
    ax3.set_ylabel("degrees of freedom")
    noise = f", label noise σ̃ = {h.label_noise:g}" if h.label_noise else ""
    ax3.set_title(f"degrees of freedom{noise}", fontsize=9)
    ax3.legend(fontsize=6.5, loc="lower right")

    # 4. the particles
    W0 = _drawable(h.W0[b, :, :2], fn, "particles")
    W1 = _drawable(h.W[b, :, :2], fn, "particles")
    ax4.scatter(W0[:, 0], W0[:, 1], s=6, color="0.7", label="t = 0", linewidths=0)
    ax4.scatter(W1[:, 0], W1[:, 1], s=9, color="C1", label=f"t = {t[-1]:g}", linewidths=0)
    r0 = 1.0 / math.sqrt(h.lambda_w)
    reach = max(float(np.abs(W1).max()), float(np.abs(W0).max()), r0) * 1.05
    phi = np.linspace(0.0, 2 * math.pi, 97)
    ax4.plot(r0 * np.cos(phi), r0 * np.sin(phi), color="0.4", lw=0.8, ls=":",
             label="prior ν = N(0, I/λw): ‖u‖ = 1/√λw")
    dirs = relevant_directions(max(d, 2), target)[:, :2].numpy()
    for i, v in enumerate(dirs):
        ax4.plot([-reach * v[0], reach * v[0]], [-reach * v[1], reach * v[1]], color="k",
                 lw=0.9, ls="--", label="relevant directions of f°" if i == 0 else None)
    ax4.set_xlim(-reach, reach)
    ax4.set_ylim(-reach, reach)
    ax4.set_xlabel("u1 (first input coordinate)")
    ax4.set_ylabel("u2")
    ax4.set_title(f"first-layer weights, {h.n_particles} particles", fontsize=9)
    ax4.legend(fontsize=6, loc="upper right", framealpha=0.6)
    for ax in (ax1, ax2, ax3, ax4):  # few ticks: their layout is the bulk of a redraw
        ax.xaxis.set_major_locator(_max_n_locator(4))
        if ax is not ax1:
            ax.yaxis.set_major_locator(_max_n_locator(4))
    temp = getattr(h, "temperature", None)
    temp = f", temperature {temp:g}" if isinstance(temp, float) and temp != h.lam else ""
    fig.suptitle(f"{target}: n = {h.n_train}, N = {h.n_particles}, λ = {h.lam:g}{temp}, "
                 f"η = {h.eta:g}", fontsize=9, y=0.995)
    return fig


# ---------------------------------------------------------------------------------------------
# Sweeps
# ---------------------------------------------------------------------------------------------

def _seed_lines(ax, x, values: np.ndarray) -> None:
    """Thin grey line per seed, positive points only (log axes)."""
    for r in range(values.shape[1]):
        keep = values[:, r] > 0
        if keep.sum() >= 2:
            ax.plot(np.asarray(x, float)[keep], values[keep, r], color="0.75", lw=0.7,
                    marker=".", ms=3)


def plot_alignment_scaling(scaling: AlignmentScaling):
    r"""Initial alignments against the input dimension, log-log: :math:`\hat A(\mu_0)` (left)
    and :math:`P(\mu_0)` (right), per seed (thin) and their mean with the fitted slope
    (per-seed spread in the label), beside the orders of Thm 5.4, :math:`-1/2` and :math:`-1`.

    Parameters
    ----------
    scaling : AlignmentScaling
        From :func:`mfteach.two_timescale.initial_alignment`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from mfteach.two_timescale import initial_alignment
    >>> s = initial_alignment([4, 8, 16], n=50, n_particles=50, n_runs=2, generator=0)
    >>> len(plot_alignment_scaling(s).axes)
    2
    """
    fn = "mfteach.two_timescale.plot_alignment_scaling"
    if not isinstance(scaling, AlignmentScaling):
        fail("scaling", fn, "an mfteach.two_timescale.AlignmentScaling", scaling,
             exc=TypeError)
    fig, (ax1, ax2) = _figure(2, 10.0)
    ds = np.asarray(scaling.ds, dtype=float)
    for ax, values, fit, slopes, ref, what in (
            (ax1, scaling.kernel, scaling.kernel_fit, scaling.kernel_slopes, -0.5,
             "kernel alignment Â(μ0)"),
            (ax2, scaling.parameter, scaling.parameter_fit, scaling.parameter_slopes, -1.0,
             "parameter alignment P(μ0)")):
        v = _drawable(values, fn, "alignments", positive=True, name="scaling")
        sl = _drawable(slopes, fn, "slopes", name="scaling")
        _seed_lines(ax, ds, v)
        spread = f" ± {sl.std(ddof=1):.2f}" if sl.size > 1 else ""
        loglog_with_fit(ds, v.mean(1), fit=fit, reference_slopes=(ref,), ax=ax,
                        xlabel="input dimension d", ylabel=what,
                        label=f"seed mean (per-seed slopes {sl.mean():+.2f}{spread})")
        _value_ticks(ax.xaxis, scaling.ds)
        _log_ticks_125(ax.yaxis)
        ax.legend(fontsize=7)
    ax1.set_title("Thm 5.4: Â(μ0) = O(d^(−1/2)) at initialisation", fontsize=9)
    ax2.set_title("Thm 5.4: P(μ0) = O(1/d) (exactly k/d in expectation)", fontsize=9)
    return fig


def plot_kernel_comparison(comparison: KernelComparison):
    r"""Test error of kernel ridge regression against the sample size, log-log, for the
    learned kernel :math:`k_{\mu_T}`, the initial one :math:`k_{\mu_0}` and an isotropic RBF
    kernel (seed mean ± standard error, fitted slopes in the labels), beside the rate
    :math:`n^{-1/2}` of the excess-risk bound (Thm 4.4).

    Parameters
    ----------
    comparison : KernelComparison
        From :func:`mfteach.two_timescale.kernel_comparison`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from mfteach.two_timescale import run, kernel_comparison
    >>> h = run(d=3, n_train=20, n_test=10, n_particles=10, n_runs=2, steps=4, generator=0)
    >>> c = kernel_comparison(h, sample_sizes=[5, 10, 20], n_val=10, n_test=10, generator=1)
    >>> len(plot_kernel_comparison(c).axes)
    1
    """
    fn = "mfteach.two_timescale.plot_kernel_comparison"
    if not isinstance(comparison, KernelComparison):
        fail("comparison", fn, "an mfteach.two_timescale.KernelComparison", comparison,
             exc=TypeError)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.6, 3.9))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.14, top=0.9)
    n = np.asarray(comparison.sample_sizes, dtype=float)
    first = None
    for name, err in comparison.errors.items():
        e = _drawable(err, fn, "test errors", positive=True, name="comparison")
        mean, se = _mean_se(e)
        slope = fit_loglog_slope(n, mean).slope if n.size >= 3 else float("nan")
        ax.errorbar(n, mean, yerr=np.stack([np.minimum(se, 0.999 * mean), se]),
                    color=COLORS.get(name, None), marker="o", ms=4, capsize=3, lw=1.3,
                    label=f"{_KERNEL_LABELS.get(name, name)}: slope {slope:+.2f}")
        if name == "learned" or first is None:
            first = mean[0]
    ax.plot(n, first * (n / n[0]) ** -0.5, color="k", ls="--", lw=0.9,
            label="Thm 4.4 rate n^(−1/2) (through the learned kernel)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _value_ticks(ax.xaxis, comparison.sample_sizes)
    _log_ticks_125(ax.yaxis)
    ax.set_xlabel("training samples n of the ridge regression")
    ax.set_ylabel("test mean squared error")
    ax.set_title("learning μ learns the kernel", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def plot_dof(histories: Mapping[str, History]):
    r"""Degrees of freedom :math:`d_{\bar\lambda_a}(\mu_t)` (left) and test loss (right)
    against time for several labelled runs, seed mean with a band of one standard error.

    The theory beside them (Takakura & Suzuki 2024, §5.2, Thm 5.5; the constant is ours,
    :math:`c = 1/6`): intrinsic noise :math:`\sigma` subtracts
    :math:`\frac{\sigma^2}{6n}d_{\bar\lambda_a}` from the expected objective and raises the
    degrees of freedom; the label-noise procedure adds :math:`\frac{\tilde\sigma^2}{6n}
    d_{\bar\lambda_a}` and lowers them. Each curve's legend entry gives its expected
    penalty; the dotted line is the common initial level (common random numbers).

    Parameters
    ----------
    histories : dict of str to History
        Label -> run (several seeds each), all with a test set (:func:`mfteach.two_timescale.run`).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from mfteach.two_timescale import run
    >>> kw = dict(d=3, n_train=20, n_test=10, n_particles=10, n_runs=2, steps=8, generator=0)
    >>> fig = plot_dof({"plain": run(**kw), "label noise": run(label_noise=1.0, **kw)})
    >>> len(fig.axes)
    2
    """
    fn = "mfteach.two_timescale.plot_dof"
    if isinstance(histories, History):
        histories = {"run": histories}
    if not isinstance(histories, Mapping) or not histories or not all(
            isinstance(k, str) and isinstance(v, History) for k, v in histories.items()):
        fail("histories", fn, "a non-empty dict of label -> mfteach.two_timescale.History",
             histories, exc=TypeError)
    if any(h.test_loss is None for h in histories.values()):
        fail("histories", fn, "runs with a test set (run, or train with X_test and f_test)",
             histories)
    fig, (ax1, ax2) = _figure(2, 10.5, left=0.07)
    start = None
    for i, (label, h) in enumerate(histories.items()):
        t = h.t.cpu().numpy()
        col = f"C{i % 10}"
        dof = _drawable(h.dof, fn, "degrees of freedom", name="histories")
        test = _drawable(h.test_loss, fn, "test losses", positive=True, name="histories")
        m, se = _mean_se(dof)
        if h.label_noise:
            pen = f" (+σ̃²/6n d_λ = {h.label_noise ** 2 / (6 * h.n_train) * m[-1]:.2g})"
        else:
            pen = ""
        ax1.fill_between(t, m - se, m + se, color=col, alpha=0.2, lw=0)
        ax1.plot(t, m, color=col, lw=1.5, label=label + pen)
        tm, tse = _mean_se(test)
        ax2.fill_between(t, np.maximum(tm - tse, 0.5 * tm), tm + tse, color=col, alpha=0.2,
                         lw=0)
        ax2.plot(t, tm, color=col, lw=1.5, label=label)
        if start is None:
            start = m[0]
    ax1.axhline(start, color="0.4", ls=":", lw=0.9, label="d_λ(μ0) (first run)")
    ax1.plot([], [], " ", label="Thm 5.5: label noise lowers d_λ, intrinsic noise raises it")
    ax1.set_xlabel("time t = kη")
    ax1.set_ylabel("degrees of freedom d_λ(μ_t)")
    ax1.set_title("degrees of freedom (seed mean ± s.e.)", fontsize=9)
    ax1.legend(fontsize=6.5)
    ax2.set_yscale("log")
    _sparse_log_ticks(ax2.yaxis)
    ax2.set_xlabel("time t = kη")
    ax2.set_ylabel("test loss ½ mean (f − f°)²")
    ax2.set_title("test loss (seed mean ± s.e.)", fontsize=9)
    ax2.legend(fontsize=7)
    return fig


_KINDS = {"eta": (1.0, "step size η", "Thm 3.7: order η"),
          "N": (-1.0, "particles N", "Thm 3.7: order 1/N"),
          "particles": (-1.0, "particles N", "Thm 3.7: order 1/N")}


def plot_discretisation(sweep: DiscretisationSweep):
    r"""A discretisation gap against :math:`\eta` or :math:`N`, log-log: per seed (thin),
    seed mean with its fitted slope (per-seed spread in the label) and the predicted order
    (+1 in :math:`\eta`, :math:`-1` in :math:`N`; Takakura & Suzuki 2024, Thm 3.7).

    Parameters
    ----------
    sweep : DiscretisationSweep
        From :func:`mfteach.two_timescale.time_discretisation` (kind ``"eta"``) or
        :func:`mfteach.two_timescale.particle_discretisation` (kind ``"particles"``). Only
        ``kind``, ``values``, ``gap``, ``fit`` and ``slopes`` are read.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError, ValueError
        For another type, or a seed-mean gap that is not positive (a log axis).

    Examples
    --------
    >>> from mfteach.two_timescale import time_discretisation
    >>> s = time_discretisation([0.4, 0.2, 0.1], t_final=0.8, n=10, n_particles=8, n_runs=2,
    ...                         n_chains=2, generator=0)
    >>> len(plot_discretisation(s).axes)
    1
    """
    fn = "mfteach.two_timescale.plot_discretisation"
    if not isinstance(sweep, DiscretisationSweep):
        fail("sweep", fn, "an mfteach.two_timescale.DiscretisationSweep", sweep,
             exc=TypeError)
    if sweep.kind not in _KINDS:
        fail("sweep", fn, "a sweep of kind 'eta' or 'particles'", sweep.kind)
    order, xlabel, theory = _KINDS[sweep.kind]
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.6, 3.9))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.14, top=0.9)
    x = np.asarray(sweep.values, dtype=float)
    gap = _drawable(sweep.gap, fn, "gaps", name="sweep")
    sl = _drawable(sweep.slopes, fn, "slopes", name="sweep")
    mean = gap.mean(1)
    if not (mean > 0).all():
        fail("sweep", fn, "a sweep with positive seed-mean gaps (a log axis); more chains "
             "or a longer average lower the sampling noise", sweep.gap)
    _seed_lines(ax, x, gap)
    spread = f" ± {sl.std(ddof=1):.2f}" if sl.size > 1 else ""
    loglog_with_fit(x, mean, fit=sweep.fit, reference_slopes=(order,), ax=ax, xlabel=xlabel,
                    ylabel="gap of the objective G", label=f"seed mean (per-seed slopes "
                    f"{sl.mean():+.2f}{spread})")
    _value_ticks(ax.xaxis, sweep.values)
    _log_ticks_125(ax.yaxis)
    ax.set_title(f"{theory}: predicted slope {order:+g}", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def plot_mixture(check: MixtureCheck):
    r""":math:`G` along the mixture :math:`(1 - s)\mu_1 + s\mu_2` with its chord (left), and
    :math:`G - \text{chord}` with the rounding band (right): Thm 3.1 puts :math:`G` below
    the chord (its second differences nonnegative).

    Parameters
    ----------
    check : MixtureCheck
        From :func:`mfteach.two_timescale.convexity_along_mixture`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from mfteach.two_timescale import make_data, init_particles, convexity_along_mixture
    >>> data = make_data(30, 3, generator=0)
    >>> chk = convexity_along_mixture(data.X, data.y, init_particles(3, 10, generator=1),
    ...                               0.3 * init_particles(3, 14, generator=2), lam=0.02)
    >>> len(plot_mixture(chk).axes)
    2
    """
    fn = "mfteach.two_timescale.plot_mixture"
    if not isinstance(check, MixtureCheck):
        fail("check", fn, "an mfteach.two_timescale.MixtureCheck", check, exc=TypeError)
    fig, (ax1, ax2) = _figure(2, 10.0, left=0.08)
    s = _drawable(check.s, fn, "grid points", name="check")
    G = _drawable(check.G, fn, "objectives", name="check")
    chord = _drawable(check.chord, fn, "chords", name="check")
    tol = _drawable(check.tol, fn, "tolerances", name="check")
    for b in range(min(G.shape[1], _MAX_RUNS)):
        col = f"C{b % 10}"
        ax1.plot(s, G[:, b], color=col, marker=".", lw=1.4,
                 label="G((1 − s)μ1 + sμ2)" if b == 0 else None)
        ax1.plot(s, chord[:, b], color=col, ls="--", lw=0.9,
                 label="chord (1 − s)G(μ1) + sG(μ2)" if b == 0 else None)
        ax2.plot(s, G[:, b] - chord[:, b], color=col, marker=".", lw=1.4,
                 label="G − chord" if b == 0 else None)
    ax2.axhline(0.0, color="k", lw=0.9, label="Thm 3.1: G − chord ≤ 0")
    ax2.axhline(float(tol.max()), color="k", ls=":", lw=0.8, label="rounding of G")
    ax1.set_xlabel("mixture weight s")
    ax1.set_ylabel("objective G")
    ax1.set_title("G along a segment of measures", fontsize=9)
    ax1.legend(fontsize=7)
    ax2.set_xlabel("mixture weight s")
    ax2.set_ylabel("G − chord")
    verdict = "convex" if check.convex else "NOT convex"
    mid = _drawable(check.midpoint_gap, fn, "midpoint gaps", name="check")
    ax2.set_title(f"{verdict}: midpoint gap {mid.max():.3g} (max over runs)", fontsize=9)
    ax2.legend(fontsize=7)
    return fig
