r"""Figures of the plateau's length (chapter 04): escape times against the saddle's rate."""

from __future__ import annotations

import numpy as np

from .._checks import fail
from ._plateau import PlateauEscape
from ._plateau_random import PlateauFromRandom
from ._plots import axes_row

__all__ = ["plot_plateau_escape", "plot_plateau_from_random"]



def plot_plateau_escape(res: PlateauEscape, *, ax=None):
    r"""Left: escape times (dots) against :math:`\log(1/\epsilon)`, one colour per
    :math:`\gamma`, with lines of the predicted slope :math:`1/\lambda(\gamma)` (through the
    points' mean). Right: the fitted slopes (four standard errors plus the discretisation
    allowance) against :math:`1/\lambda` over :math:`\gamma`.

    Parameters
    ----------
    res : PlateauEscape
        From :func:`plateau_escape`.
    ax : pair of matplotlib Axes, optional

    Returns
    -------
    (Figure, tuple of two Axes)

    Raises
    ------
    TypeError
        ``res`` is not a :class:`PlateauEscape`, or ``ax`` not a pair of Axes.

    Examples
    --------
    >>> from mfteach.sgd_odes import plateau_escape
    >>> r = plateau_escape(perturbations=(1e-2, 3e-3, 1e-3, 3e-4), gammas=(0.0,), dt=2.0)
    >>> fig, axes = plot_plateau_escape(r)
    >>> axes[0].get_xlabel()
    'log(1/ε) (initial distance from the saddle)'
    """
    fn = "mfteach.sgd_odes.plot_plateau_escape"
    if not isinstance(res, PlateauEscape):
        fail("res", fn, "a PlateauEscape (from plateau_escape)", res, exc=TypeError)
    fig, (left, right) = axes_row(ax, 2, fn, (10.0, 3.9))
    x = np.log(1 / res.perturbations.numpy())
    xx = np.linspace(x.min() - 0.3, x.max() + 0.3, 20)
    for i, g in enumerate(res.gammas.tolist()):
        te, lam = res.t_escape[i].numpy(), float(res.rate[i])
        c = float(np.mean(te - x / lam))
        left.plot(x, te, "o", color=f"C{i}", ms=5, label=f"ODE, γ = {g:g}")
        left.plot(xx, c + xx / lam, "-", color=f"C{i}", lw=1,
                  label=f"slope 1/λ = {1 / lam:.3f}")
    left.set_xlabel("log(1/ε) (initial distance from the saddle)")
    left.set_ylabel(r"escape time $t_{esc}$")
    left.set_title(f"K = {res.K}: leaving the plateau", fontsize=9)
    left.legend(fontsize=7)
    gs = res.gammas.numpy()
    slopes = np.array([f.slope for f in res.fits])
    err = np.array([4 * f.stderr for f in res.fits]) + res.allowance.numpy()
    right.plot(gs, 1 / res.rate.numpy(), "-", color="0.3", lw=1,
               label="1/λ (Jacobian at the saddle)")
    right.errorbar(gs, slopes, yerr=err, fmt="o", color="k", capsize=3,
                   label="fitted slope (4 s.e. + allowance)")
    right.set_xlabel(r"learning rate $\gamma$ (variance term $\gamma/p$)")
    right.set_ylabel(r"$dt_{esc}/d\log(1/\epsilon)$")
    right.set_title("the variance term shortens the plateau", fontsize=9)
    right.legend(fontsize=7)
    return fig, np.asarray([left, right])


def plot_plateau_from_random(res: PlateauFromRandom, *, ax=None):
    r"""Left: plateau length against the initial scale :math:`s` (one line per
    initialisation, log :math:`s` axis) with the law's slope :math:`\frac1\lambda` per unit of
    :math:`\log(1/s)`. Right: the time the plateau ends against
    :math:`\log(1/\epsilon_0)`, the initial distance from the symmetric subspace, with the
    escape law of :func:`plateau_escape` (slope :math:`1/\lambda`).

    Parameters
    ----------
    res : PlateauFromRandom
        From :func:`plateau_from_random`.
    ax : pair of matplotlib Axes, optional

    Returns
    -------
    (Figure, tuple of two Axes)

    Raises
    ------
    TypeError
        ``res`` is not a :class:`PlateauFromRandom`, or ``ax`` not a pair of Axes.

    Examples
    --------
    >>> from mfteach.sgd_odes import plateau_from_random
    >>> r = plateau_from_random(scales=(0.01, 3e-3, 1e-3, 3e-4), n_init=2, dt=2.0)
    >>> fig, axes = plot_plateau_from_random(r)
    >>> axes[0].get_xscale()
    'log'
    """
    fn = "mfteach.sgd_odes.plot_plateau_from_random"
    if not isinstance(res, PlateauFromRandom):
        fail("res", fn, "a PlateauFromRandom (from plateau_from_random)", res, exc=TypeError)
    fig, (left, right) = axes_row(ax, 2, fn, (10.0, 3.9))
    s = res.scales.numpy()
    L = res.length.numpy()
    lam = res.rate
    for i in range(L.shape[0]):
        left.plot(s, L[i], "o-", ms=4, lw=0.8, color=f"C{i}", alpha=0.8,
                  label="one initialisation" if i == 0 else None)
    ss = np.geomspace(s.min(), s.max(), 20)
    c = float(np.median(L[:, -1] - np.log(1 / s[-1]) / lam))
    left.plot(ss, c + np.log(1 / ss) / lam, "--", color="k", lw=1.2,
              label=f"slope 1/λ = {1 / lam:.2f} per unit log(1/s)")
    left.set_xscale("log")
    left.set_xlabel(r"initial scale $s$ ($W_0 = sG$, $Q_{ii} \approx s^2$)")
    left.set_ylabel("plateau length (time in the band)")
    left.set_title(f"K = {res.K}, d = {res.d}: {res.spread}", fontsize=8)
    left.legend(fontsize=7)
    le = np.log(1 / res.eps0.numpy())
    tl = res.t_leave.numpy()
    for i in range(L.shape[0]):
        right.plot(le[i], tl[i], "o", ms=4, color=f"C{i}")
    xx = np.linspace(le.min(), le.max(), 20)
    c2 = float(np.median(res.offset.numpy()[:, -1]))
    right.plot(xx, c2 + xx / lam, "-", color="0.3", lw=1,
               label=f"log(1/ε₀)/λ {'+' if c2 >= 0 else '−'} {abs(c2):.2f}")
    right.set_xlabel(r"$\log(1/\epsilon_0)$, $\epsilon_0 = \|HM_0H\|_F/(1 - 1/K)$")
    right.set_ylabel("time the plateau ends")
    right.set_title("the distance from the symmetric subspace plays ε", fontsize=9)
    right.legend(fontsize=7)
    return fig, np.asarray([left, right])
