"""Figures of the introduction chapter."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from .._checks import check_bool, check_choice, check_float, fail
from ._particles import ParticleTrajectory
from ._replicates import GapDecomposition, SweepReplicates
from ._sweep import QUANTITIES, WidthSweep, _fn, predicted_slope

__all__ = ["plot_loss_curves", "plot_width_scaling", "plot_slope_spread", "plot_test_loss",
           "plot_particles", "plot_training"]

_COLORS = {"ntk": "tab:blue", "mf": "tab:red"}
_LABELS = {"ntk": "NTK  ($s_N = N^{-1/2}$)", "mf": "mean-field  ($s_N = N^{-1}$)"}


def _np(x: Tensor) -> np.ndarray:
    return x.detach().cpu().to(torch.float64).numpy()


def _check_sweeps(sweeps, fn: str) -> list[WidthSweep]:
    if isinstance(sweeps, WidthSweep):
        sweeps = [sweeps]
    if not isinstance(sweeps, Sequence) or not sweeps or not all(
            isinstance(s, WidthSweep) for s in sweeps):
        fail("sweeps", fn, "a WidthSweep or a non-empty list of them", sweeps, exc=TypeError)
    for s in sweeps:
        for field in ("t", "loss", "weight_change", "kernel_change"):
            _check_drawable(getattr(s, field), "sweeps", fn, f"WidthSweep.{field}",
                            positive=field != "t")
        for fit in (s.weight_fit, s.kernel_fit):
            if not all(math.isfinite(v) for v in (fit.slope, fit.stderr, fit.intercept)):
                fail("sweeps", fn, "sweeps with finite fitted slopes", fit)
    return list(sweeps)


def _check_drawable(x: Tensor, name: str, fn: str, what: str, *,
                    positive: bool = False) -> None:
    """A result field about to be drawn: finite (and positive on a log axis), never a NaN
    that matplotlib would silently leave out."""
    if not isinstance(x, torch.Tensor) or not bool(torch.isfinite(x).all()):
        fail(name, fn, f"a result with finite {what}", x)
    if positive and not bool((x > 0).all()):
        fail(name, fn, f"a result with positive {what} (a logarithmic axis)", x)


def _check_ax(ax, fn: str) -> None:
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        fail("ax", fn, "a matplotlib Axes or None", ax, exc=TypeError)


def _check_traj(traj, fn: str, *, loss: bool = False) -> None:
    if not isinstance(traj, ParticleTrajectory):
        fail("traj", fn, "a ParticleTrajectory", traj, exc=TypeError)
    for field in ("t", "W", "a") + (("loss",) if loss else ()):
        _check_drawable(getattr(traj, field), "traj", fn, f"ParticleTrajectory.{field}",
                        positive=field == "loss")


def plot_loss_curves(sweeps: WidthSweep | Sequence[WidthSweep]):
    r"""Training loss against time :math:`t = \text{step}\times\eta`, one panel per sweep.

    Parameters
    ----------
    sweeps : WidthSweep or list of WidthSweep
        Typically the ``"ntk"`` and ``"mf"`` sweeps; one curve per width, darker for wider.

    Returns
    -------
    (fig, axes)
        A matplotlib ``Figure`` (not managed by pyplot) and its array of axes.
    """
    from matplotlib.figure import Figure

    sweeps = _check_sweeps(sweeps, _fn("plot_loss_curves"))
    fig = Figure(figsize=(4.6 * len(sweeps), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(sweeps), sharey=True))
    for ax, s in zip(axes, sweeps):
        shades = np.linspace(0.35, 1.0, len(s.widths))
        cmap = "Blues" if s.parametrization == "ntk" else "Reds"
        import matplotlib

        colors = matplotlib.colormaps[cmap](shades)
        for k, N in enumerate(s.widths):
            ax.plot(_np(s.t), _np(s.loss[k]), color=colors[k], label=f"N = {N}")
        ax.set_yscale("log")
        ax.set_xlabel(r"time $t = \mathrm{step}\times\eta$")
        ax.set_title(_LABELS[s.parametrization], fontsize=10)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("training loss (ensemble mean)")
    return fig, axes


def plot_width_scaling(sweeps: WidthSweep | Sequence[WidthSweep]):
    r"""Relative weight change and kernel change against width on log-log axes, with fits.

    Each sweep gives a series of ensemble means with standard-error bars, its fitted line
    (slope in the legend) and a dotted line with the predicted slope
    (:func:`predicted_slope`) through the widest point.

    Parameters
    ----------
    sweeps : WidthSweep or list of WidthSweep

    Returns
    -------
    (fig, axes)
        Two panels: weights (left), tangent kernel (right).
    """
    from matplotlib.figure import Figure

    sweeps = _check_sweeps(sweeps, _fn("plot_width_scaling"))
    fig = Figure(figsize=(9.5, 3.6), layout="constrained")
    axes = fig.subplots(1, 2)
    panels = (("weights", r"$\|W_T - W_0\|_F \,/\, \|W_0\|_F$"),
              ("kernel", r"$\|K_T - K_0\|_F \,/\, \|K_0\|_F$"))
    for ax, (q, ylabel) in zip(axes, panels):
        for s in sweeps:
            N = np.asarray(s.widths, dtype=float)
            mean = _np(s.weight_mean if q == "weights" else s.kernel_mean)
            err = _np(s.weight_stderr if q == "weights" else s.kernel_stderr)
            fit = s.weight_fit if q == "weights" else s.kernel_fit
            c = _COLORS[s.parametrization]
            ax.errorbar(N, mean, yerr=err, fmt="o", color=c, ms=4, capsize=2,
                        label=f"{s.parametrization}: slope {fit.slope:+.2f} ± {fit.stderr:.2f}")
            ax.plot(N, np.exp(fit.intercept) * N**fit.slope, "-", color=c, lw=1)
            p = predicted_slope(q, s.parametrization, s.activation)
            ax.plot(N, mean[-1] * (N / N[-1]) ** p, ":", color="k", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("width $N$")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8, title="dotted: theory", title_fontsize=8)
    return fig, axes


def plot_particles(traj: ParticleTrajectory, ax=None, *, trails: bool = True,
                   lim: float | None = None):
    r"""The particle picture: neurons :math:`w_j` in the plane, start and end, with trails.

    Initial positions are grey dots, grey lines are the paths :math:`w_j(t)`, and the final
    positions are drawn by ``mfteach.plotting.particles_2d`` (colour :math:`a_j`, area
    :math:`\propto |a_j|`) with the teacher directions :math:`e_1, e_2` of ``"two_index"``.

    Parameters
    ----------
    traj : ParticleTrajectory
    ax : matplotlib Axes, optional
        Drawn into a new figure (not managed by pyplot) when omitted.
    trails : bool
        Draw the paths.
    lim : float, optional
        Half-width of the square view; default from the data.

    Returns
    -------
    (fig, ax)

    Raises
    ------
    TypeError, ValueError
        If ``traj`` is not a :class:`ParticleTrajectory` or holds non-finite values, ``ax``
        is not an Axes, ``trails`` not a bool, or ``lim`` not a positive finite number.
    """
    from matplotlib.collections import LineCollection

    from ..plotting import particles_2d

    fn = _fn("plot_particles")
    _check_traj(traj, fn)
    _check_ax(ax, fn)
    trails = check_bool(trails, "trails", fn)
    if lim is not None:
        lim = check_float(lim, "lim", fn, min=0.0, min_open=True)
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(4.6, 3.9), layout="constrained").add_subplot()
    W, a = _np(traj.W), _np(traj.a)
    if lim is None:
        lim = float(np.quantile(np.abs(W), 0.98)) * 1.15 + 1e-9
    if trails:
        paths = np.transpose(W, (1, 0, 2))  # (N, T, 2): one polyline per neuron
        ax.add_collection(LineCollection(paths, colors="0.65", linewidths=0.6, zorder=0))
    ax.scatter(W[0, :, 0], W[0, :, 1], s=5, color="0.55", zorder=1, label="start")
    fig, ax = particles_2d(W[-1], a[-1], directions=[[1.0, 0.0], [0.0, 1.0]], ax=ax,
                           xlabel="$w_{j1}$", ylabel="$w_{j2}$")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    # Plain text, not mathtext: a title that changes every frame would be re-parsed each time.
    ax.set_title(f"{traj.parametrization}, N={traj.width}, t={float(traj.t[-1]):g}: "
                 f"‖ΔW‖/‖W₀‖ = {traj.weight_change:.3f}", fontsize=8)
    ax.legend(fontsize=7, loc="lower left")
    return fig, ax


def plot_training(traj: ParticleTrajectory):
    """Loss curve (left) and particle picture (right) of one run: the live widget's figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    _check_traj(traj, _fn("plot_training"), loss=True)
    fig = Figure(figsize=(8.6, 3.7))  # fixed margins: a layout engine would double the cost
    ax_loss, ax_p = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    fig.subplots_adjust(left=0.09, right=0.97, bottom=0.14, top=0.9, wspace=0.3)
    ax_loss.plot(_np(traj.t), _np(traj.loss), color=_COLORS[traj.parametrization])
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel(r"time $t = \mathrm{step}\times\eta$")
    ax_loss.set_ylabel("training loss")
    plot_particles(traj, ax=ax_p)
    return fig


def _check_replicates(reps, fn: str) -> list[SweepReplicates]:
    if isinstance(reps, SweepReplicates):
        reps = [reps]
    if not isinstance(reps, Sequence) or not reps or not all(
            isinstance(r, SweepReplicates) for r in reps):
        fail("replicates", fn, "a SweepReplicates or a non-empty list of them", reps,
             exc=TypeError)
    for r in reps:
        for sp in (r.weight_slope, r.kernel_slope):
            if not all(math.isfinite(v) for v in (*sp.slopes, sp.stderr)):
                fail("replicates", fn, "results with finite slopes", sp)
    return list(reps)


def plot_slope_spread(replicates: SweepReplicates | Sequence[SweepReplicates], *,
                      quantity: str = "kernel", ax=None):
    r"""Fitted slope of each data set, with its fit error, next to the heuristic exponent.

    One row per :class:`SweepReplicates` (e.g. ReLU and tanh): a dot with the per-data-set
    fit's error bar for every data set, the mean over data sets with its standard error as a
    band, and the heuristic exponent of :func:`predicted_slope` as a dotted line. The spread
    of the dots is what a single data set's error bar does not show.

    Parameters
    ----------
    replicates : SweepReplicates or list of SweepReplicates
    quantity : {"weights", "kernel"}
    ax : matplotlib Axes, optional

    Returns
    -------
    (fig, ax)
    """
    from matplotlib.figure import Figure

    fn = _fn("plot_slope_spread")
    reps = _check_replicates(replicates, fn)
    check_choice(quantity, "quantity", fn, QUANTITIES)
    _check_ax(ax, fn)
    if ax is None:
        fig = Figure(figsize=(5.6, 0.9 + 0.8 * len(reps)), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    for row, r in enumerate(reps):
        sp = r.kernel_slope if quantity == "kernel" else r.weight_slope
        fits = [s.kernel_fit if quantity == "kernel" else s.weight_fit for s in r.sweeps]
        y = row + np.linspace(-0.2, 0.2, len(fits))
        c = _COLORS[r.parametrization] if r.activation == "relu" else "tab:green"
        ax.errorbar([f.slope for f in fits], y, xerr=[f.stderr for f in fits], fmt="o",
                    color=c, ms=4, capsize=2, label=f"{r.activation}: one data set each")
        ax.axvspan(sp.mean - sp.stderr, sp.mean + sp.stderr, ymin=(row + 0.1) / len(reps),
                   ymax=(row + 0.9) / len(reps), color=c, alpha=0.2,
                   label=f"{r.activation}: mean {sp.mean:+.2f} ± {sp.stderr:.2f}")
        pred = predicted_slope(quantity, r.parametrization, r.activation)
        ax.plot([pred, pred], [row - 0.4, row + 0.4], ":", color="k", lw=1.2)
    ax.set_yticks(range(len(reps)))
    ax.set_yticklabels([f"{r.activation} ({r.parametrization})" for r in reps])
    ax.set_ylim(-0.6, len(reps) - 0.4)
    ax.set_xlabel(f"fitted slope of the relative {quantity} change against $N$ "
                  "(dotted: heuristic)")
    ax.legend(fontsize=7, loc="best")
    return fig, ax


_INIT_STYLE = {"standard": ("-", "o", "standard init"),
               "antisymmetric": ("--", "s", "antisymmetric init ($f_0 = 0$)")}


def plot_test_loss(decomposition: GapDecomposition, *, ax=None):
    r"""Held-out loss at the end of training against width, for both scalings and both inits.

    Mean over data sets with its standard error; solid lines for the standard initialisation,
    dashed for the antisymmetric one (:math:`f_0 = 0`).

    Parameters
    ----------
    decomposition : GapDecomposition
    ax : matplotlib Axes, optional

    Returns
    -------
    (fig, ax)
    """
    from matplotlib.figure import Figure

    fn = _fn("plot_test_loss")
    if not isinstance(decomposition, GapDecomposition):
        fail("decomposition", fn, "a GapDecomposition", decomposition, exc=TypeError)
    _check_ax(ax, fn)
    if ax is None:
        fig = Figure(figsize=(5.4, 3.6), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    N = np.asarray(decomposition.widths, dtype=float)
    for (p, init), r in decomposition.replicates.items():
        E = r.test_loss().to(torch.float64)
        _check_drawable(E, "decomposition", fn, "held-out losses", positive=True)
        mean = _np(E.mean(0))
        err = _np(E.std(0) / math.sqrt(E.shape[0]))
        ls, marker, label = _INIT_STYLE[init]
        ax.errorbar(N, mean, yerr=err, fmt=marker, ls=ls, color=_COLORS[p], ms=4, capsize=2,
                    label=f"{'NTK' if p == 'ntk' else 'mean-field'}, {label}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width $N$")
    ax.set_ylabel("held-out loss at the end of training")
    ax.set_title("mean ± standard error over data sets", fontsize=9)
    ax.legend(fontsize=7)
    return fig, ax

