"""Figures of chapter 04: risk curves (SGD dots, ODE lines) and the error-vs-scale plot."""

from __future__ import annotations

import math

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._checks import check_bool, check_float, check_tensor, fail

__all__ = ["plot_risk_curves", "plot_cosines", "plot_gap_scaling", "plot_noise_floor"]


def axes_row(ax, n: int, fn: str, size: tuple[float, float]):
    """``(Figure, Axes)`` for ``n == 1``, ``(Figure, tuple of n Axes)`` otherwise: a new row of
    panels when ``ax`` is None, else the caller's Axes (checked; a one-line error names
    ``ax``)."""
    if ax is None:
        fig = Figure(figsize=size, layout="constrained")
        axes = fig.subplots(1, n)
        return fig, (tuple(axes) if n > 1 else axes)
    if n == 1:
        if not isinstance(ax, Axes):
            fail("ax", fn, "a matplotlib Axes or None", ax, exc=TypeError)
        return ax.figure, ax
    if not (hasattr(ax, "__len__") and not isinstance(ax, str) and len(ax) == n
            and all(isinstance(a, Axes) for a in ax)):
        rule = "a pair of matplotlib Axes or None" if n == 2 else (
            f"a sequence of {n} matplotlib Axes or None")
        fail("ax", fn, rule, ax, exc=TypeError)
    return ax[0].figure, tuple(ax)


def plot_risk_curves(sgd=None, curves: dict | None = None, *, delta: float = 0.0,
                     ax=None, title: str = "", logx: bool = False):
    r"""Excess risk :math:`R - \Delta/2` versus :math:`t`: SGD runs (mean, dots with the
    spread) and ODE curves (lines).

    Parameters
    ----------
    sgd : Trajectory, optional
        From :func:`simulate_sgd`; runs along the leading axis.
    curves : dict of str to Trajectory or MFTrajectory, optional
        Label -> ODE solution (the mean over a leading axis is drawn).
    delta : float
        Label-noise variance subtracted from the risks.

    Returns
    -------
    (Figure, Axes)
    """
    fn = "mfteach.sgd_odes.plot_risk_curves"
    from ._solve import MFTrajectory, Trajectory

    if sgd is not None and not isinstance(sgd, Trajectory):
        fail("sgd", fn, "a Trajectory (from simulate_sgd) or None", sgd, exc=TypeError)
    if curves is not None and not (isinstance(curves, dict) and all(
            isinstance(v, (Trajectory, MFTrajectory)) for v in curves.values())):
        fail("curves", fn, "a dict of label -> Trajectory or MFTrajectory, or None", curves,
             exc=TypeError)
    delta = check_float(delta, "delta", fn, min=0.0)
    check_bool(logx, "logx", fn)
    fig, ax = _new_ax(ax, (5.2, 3.6), fn)
    if sgd is not None:
        r = (sgd.risk - delta / 2).reshape(-1, sgd.risk.shape[-1]).detach().cpu().double()
        m = r.mean(0)
        lo, hi = torch.quantile(r, 0.1, dim=0), torch.quantile(r, 0.9, dim=0)
        t = sgd.t.cpu()
        ax.fill_between(t, lo.clamp_min(1e-12), hi.clamp_min(1e-12), color="0.85",
                        label=f"SGD, 10-90% of {r.shape[0]} runs")
        ax.plot(t, m.clamp_min(1e-12), "o", ms=3.5, color="k", label="SGD, mean")
    for i, (label, tr) in enumerate((curves or {}).items()):
        rr = (tr.risk - delta / 2).reshape(-1, tr.risk.shape[-1]).detach().cpu().double()
        ax.plot(tr.t.cpu(), rr.mean(0).clamp_min(1e-12), "-", color=f"C{i}", lw=1.8,
                label=label)
    ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(r"time $t = \nu\gamma/(pd)$")
    ax.set_ylabel(r"excess risk $R - \Delta/2$")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig, ax


def plot_cosines(cos_ode, cos_sgd=None, *, ax=None, title: str = ""):
    r"""Neuron cosines with two teacher directions over time (the paper's Fig. 2 left).

    Parameters
    ----------
    cos_ode : Tensor, shape (T, p, 2)
        :func:`teacher_cosines` along an ODE trajectory (lines).
    cos_sgd : Tensor, shape (T, p, 2), optional
        The same along one SGD run (dots).

    Returns
    -------
    (Figure, Axes)
    """
    fn = "mfteach.sgd_odes.plot_cosines"
    check_tensor(cos_ode, "cos_ode", fn, shape=(None, None, 2))
    if cos_sgd is not None:
        check_tensor(cos_sgd, "cos_sgd", fn, shape=(None, None, 2))
    fig, ax = _new_ax(ax, (4.2, 4.0), fn)
    c = cos_ode.detach().cpu()
    for j in range(c.shape[1]):
        ax.plot(c[:, j, 0], c[:, j, 1], "-", color=f"C{j % 10}", lw=1.2)
        ax.plot(c[-1, j, 0], c[-1, j, 1], "s", color=f"C{j % 10}", ms=5)
    if cos_sgd is not None:
        s = cos_sgd.detach().cpu()
        for j in range(s.shape[1]):
            ax.plot(s[:, j, 0], s[:, j, 1], ".", color=f"C{j % 10}", ms=2.5, alpha=0.6)
    r = math.sqrt(0.5)
    ax.plot([r], [r], "k*", ms=10, label="superposition")
    ax.plot([1, 0], [0, 1], "kx", ms=8, label="specialised")
    ax.set_xlabel(r"cosine with $w^*_1$")
    ax.set_ylabel(r"cosine with $w^*_2$")
    ax.set_xlim(-0.3, 1.05)
    ax.set_ylim(-0.3, 1.05)
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="lower left")
    if title:
        ax.set_title(title, fontsize=10)
    return fig, ax


def _new_ax(ax, size=(4.6, 3.6), fn: str = "mfteach.sgd_odes"):
    if ax is None:
        fig = Figure(figsize=size, layout="constrained")
        return fig, fig.add_subplot()
    if not isinstance(ax, Axes):
        fail("ax", fn, "a matplotlib Axes or None", ax, exc=TypeError)
    return ax.figure, ax


def plot_gap_scaling(scans: dict, *, ax=None):
    r"""SGD-ODE gap against :math:`\varepsilon = \sqrt{\gamma/(pd)}` on log-log axes, with
    the fitted slopes and a reference line of slope 1.

    Parameters
    ----------
    scans : dict of str to GapScan
        Label -> :func:`gap_vs_scale` result.

    Returns
    -------
    (Figure, Axes)
    """
    fn = "mfteach.sgd_odes.plot_gap_scaling"
    from ._experiments import GapScan

    if not (isinstance(scans, dict) and scans and all(isinstance(v, GapScan)
                                                      for v in scans.values())):
        fail("scans", fn, "a non-empty dict of label -> GapScan (from gap_vs_scale)", scans,
             exc=TypeError)
    fig, ax = _new_ax(ax, fn=fn)
    for i, (label, s) in enumerate(scans.items()):
        e, r = s.eps.numpy(), s.rms.numpy()
        ax.loglog(e, r, "o", color=f"C{i}", label=f"{label}: slope {s.fit.slope:.2f}")
        ax.loglog(e, math.exp(s.fit.intercept) * e**s.fit.slope, "-", color=f"C{i}", lw=1)
        ax.loglog(e, r[-1] * e / e[-1], ":", color="0.4", lw=1)
    ax.plot([], [], ":", color="0.4", label="slope 1 (Thm 1)")
    ax.set_xlabel(r"$\sqrt{\gamma/(pd)}$")
    ax.set_ylabel(r"rms of $\max_t |M^{SGD} - M^{ODE}|$")
    ax.legend(fontsize=8)
    return fig, ax


def plot_noise_floor(nf, *, ax=None):
    r"""Excess risk of the high-d ODE started at the teacher (left) and its late-time floor
    against :math:`\gamma\Delta/p` (right).

    Parameters
    ----------
    nf : NoiseFloor
        From :func:`noise_floor`.
    ax : pair of Axes, optional
        Where to draw the two panels (a new figure by default).

    Returns
    -------
    (Figure, (Axes, Axes))
    """
    fn = "mfteach.sgd_odes.plot_noise_floor"
    from ._experiments import NoiseFloor

    if not isinstance(nf, NoiseFloor):
        fail("nf", fn, "a NoiseFloor (from noise_floor)", nf, exc=TypeError)
    if ax is None:
        fig = Figure(figsize=(9.5, 3.6), layout="constrained")
        a1, a2 = fig.subplots(1, 2)
    else:
        if not (isinstance(ax, (tuple, list)) and len(ax) == 2
                and all(isinstance(a, Axes) for a in ax)):
            fail("ax", fn, "a pair of matplotlib Axes or None", ax, exc=TypeError)
        a1, a2 = ax
        fig = a1.figure
    for i, (x, tr) in enumerate(zip(nf.x.tolist(), nf.trajectories)):
        a1.plot(tr.t, (tr.risk - nf.delta / 2).reshape(-1, tr.t.shape[0]).mean(0), color=f"C{i}",
                label=f"gamma Delta / p = {x:.1e}")
    a1.set_yscale("log")
    a1.set_xlabel(r"time $t$")
    a1.set_ylabel(r"excess risk $R - \Delta/2$")
    a1.legend(fontsize=8)
    x, f = nf.x.numpy(), nf.floor.numpy()
    a2.loglog(x, f, "o", color="k", label=f"ODE floor, slope {nf.fit.slope:.2f}")
    a2.loglog(x, math.exp(nf.fit.intercept) * x**nf.fit.slope, "-", color="C0", lw=1)
    a2.set_xlabel(r"$\gamma\Delta/p$")
    a2.set_ylabel(r"excess risk at $t_{\max}$")
    a2.legend(fontsize=8)
    return fig, (a1, a2)
