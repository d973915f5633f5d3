"""Figures of chapter 04: risk curves (SGD dots, ODE lines) and the error-vs-scale plot."""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure

__all__ = ["plot_risk_curves", "plot_cosines"]


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
    if ax is None:
        fig = Figure(figsize=(5.2, 3.6), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
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
    if ax is None:
        fig = Figure(figsize=(4.2, 4.0), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
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
