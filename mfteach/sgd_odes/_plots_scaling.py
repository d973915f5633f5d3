r"""Figures of the scaling experiments of chapter 04: dimension independence shown by SGD, and
the collapse of the SGD-ODE gap on :math:`\varepsilon = \sqrt{\gamma/(pd)}`."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._checks import fail
from ._plots import axes_row

__all__ = ["plot_dimension_independence", "plot_gap_collapse"]

_MARKERS = "osD^vP*X"



def plot_dimension_independence(runs, *, ax=None):
    r"""Left: mean SGD risk in each dimension (dots, with two standard errors) and the high-d
    ODE from the same overlaps (line). Right: the spread of :math:`M` over runs against
    :math:`\varepsilon = \sqrt{\gamma/(pd)}`, the fitted line and Thm 1's slope 1.

    Parameters
    ----------
    runs : DimensionRuns
        From :func:`dimension_independence`.
    ax : pair of Axes, optional

    Returns
    -------
    (Figure, (Axes, Axes))

    Examples
    --------
    >>> from mfteach.sgd_odes._scaling import dimension_independence
    >>> runs = dimension_independence("erf_sqrt2", [20, 40, 80], t_max=0.5, n_runs=4,
    ...                               n_replicates=2, gamma=1.0)
    >>> fig, (a1, a2) = plot_dimension_independence(runs)
    >>> a2.get_xscale()
    'log'
    """
    fn = "mfteach.sgd_odes.plot_dimension_independence"
    from ._scaling import DimensionRuns

    if not isinstance(runs, DimensionRuns):
        fail("runs", fn, "a DimensionRuns (from dimension_independence)", runs, exc=TypeError)
    fig, (a1, a2) = axes_row(ax, 2, fn, (9.5, 3.6))
    for i, d in enumerate(runs.ds):
        t = runs.t[i].numpy()
        m, se = runs.risk_mean[i].numpy(), runs.risk_stderr[i].numpy()
        a1.errorbar(t, m, yerr=2 * se, fmt="o", ms=3, color=f"C{i}", lw=0.8,
                    label=f"SGD, d = {d}")
    a1.plot(runs.t[-1].numpy(), runs.ode_risk[-1].numpy(), "-", color="k", lw=1.5,
            label="high-d ODE (no d)")
    a1.set_yscale("log")
    a1.set_xlabel(r"time $t = \nu\gamma/(pd)$")
    a1.set_ylabel(r"population risk $R$")
    a1.set_title(f"{runs.n_replicates * runs.n_runs} runs per d, same initial overlaps",
                 fontsize=9)
    a1.legend(fontsize=8)
    e = runs.eps.numpy()
    s = runs.spread.numpy()  # (n_rep, n_d)
    mean = s.mean(0)
    err = s.std(0, ddof=1) / math.sqrt(s.shape[0])
    a2.errorbar(e, mean, yerr=2 * err, fmt="o", color="k",
                label=f"spread of M over runs (mean of {s.shape[0]} replicates)")
    sf = runs.spread_fit
    icpt = float(np.mean([f.intercept for f in runs.fits]))
    a2.loglog(e, math.exp(icpt) * e**sf.mean, "-", color="C0", lw=1,
              label=f"fit: slope {sf.mean:.2f} ± {sf.stderr:.2f}")
    a2.loglog(e, mean[-1] * e / e[-1], ":", color="0.4", label="slope 1 (Thm 1)")
    a2.set_xlabel(r"$\varepsilon = \sqrt{\gamma/(pd)}$")
    a2.set_ylabel(r"time-averaged sd of $M_{ir}$ over runs")
    a2.legend(fontsize=8)
    return fig, (a1, a2)


def plot_gap_collapse(collapse, *, ax=None):
    r"""SGD-ODE gap of every :math:`(d, \gamma)` cell against :math:`\varepsilon =
    \sqrt{\gamma/(pd)}`: one marker per :math:`\gamma`, one colour per :math:`d`, the pooled
    fitted line and the slope-1 reference of Thm 1.

    Parameters
    ----------
    collapse : GapCollapse
        From :func:`gap_collapse`.
    ax : Axes, optional

    Returns
    -------
    (Figure, Axes)

    Examples
    --------
    >>> from mfteach.sgd_odes._scaling import gap_collapse
    >>> c = gap_collapse("erf_sqrt2", [20, 40, 80], [0.5, 1.0, 2.0], t_max=0.5, n_runs=4,
    ...                  n_replicates=2)
    >>> fig, ax = plot_gap_collapse(c)
    >>> ax.get_yscale()
    'log'
    """
    fn = "mfteach.sgd_odes.plot_gap_collapse"
    from ._scaling import GapCollapse

    if not isinstance(collapse, GapCollapse):
        fail("collapse", fn, "a GapCollapse (from gap_collapse)", collapse, exc=TypeError)
    if ax is None:
        fig = Figure(figsize=(5.2, 3.8), layout="constrained")
        ax = fig.add_subplot()
    elif not isinstance(ax, Axes):
        fail("ax", fn, "a matplotlib Axes or None", ax, exc=TypeError)
    fig = ax.figure
    c = collapse
    eps, gap, se = c.eps.numpy(), c.gap.numpy(), c.gap_stderr.numpy()
    for i in range(len(c.ds)):
        for j in range(len(c.gammas)):
            ax.errorbar(eps[i, j], gap[i, j], yerr=2 * se[i, j],
                        fmt=_MARKERS[j % len(_MARKERS)], color=f"C{i}", ms=5, lw=0.8)
    for i, d in enumerate(c.ds):
        ax.plot([], [], "s", color=f"C{i}", label=f"d = {d}")
    for j, g in enumerate(c.gammas):
        ax.plot([], [], _MARKERS[j % len(_MARKERS)], color="0.3", mfc="none",
                label=f"gamma = {g:g}")
    e = np.sort(eps.ravel())
    ax.loglog(e, math.exp(c.fit.intercept) * e**c.fit.slope, "-", color="k", lw=1,
              label=f"pooled fit: slope {c.spread.mean:.2f} ± {c.spread.stderr:.2f}")
    ref = math.exp(c.fit.intercept + c.fit.slope * math.log(e[-1]))
    ax.loglog(e, ref * e / e[-1], ":", color="0.4", label="slope 1 (Thm 1)")
    ax.set_xlabel(r"$\varepsilon = \sqrt{\gamma/(pd)}$")
    ax.set_ylabel(r"rms over runs of $\sup_t\max_{ir}|M^{SGD} - M^{ODE}|$")
    ax.set_title(f"scatter about the line: {c.scatter_eps:.3f} (vs {c.scatter_d:.3f} "
                 f"against 1/d)", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return fig, ax
