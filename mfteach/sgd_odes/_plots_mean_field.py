r"""Figures of the mean-field experiments of chapter 04 (:mod:`._mean_field`): the error of
the reduced ODE against :math:`p`, the high-d mean field (Fig. 3 right of arXiv 2302.05882)
and the cosine histogram (its App. (d))."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.ticker import NullFormatter

from .._checks import fail
from ._plots import axes_row

__all__ = ["plot_mean_field_error", "plot_high_d_mean_field", "plot_cosine_histogram"]



def plot_mean_field_error(res, *, ax=None):
    r"""Log-log: the risk error and the per-neuron error of the reduced ODE against
    :math:`p` (mean over initialisations, two standard errors), with the fitted slopes and
    the :math:`p^{-1/2}` guide of Thm 2.

    Parameters
    ----------
    res : MeanFieldError
        From :func:`mean_field_error`.
    ax : Axes, optional

    Returns
    -------
    (Figure, Axes)

    Examples
    --------
    >>> from mfteach.sgd_odes import mean_field_error
    >>> fig, ax = plot_mean_field_error(mean_field_error((16, 32, 64), n_init=2, t_max=0.5,
    ...                                                  n_save=11))
    >>> ax.get_xscale(), ax.get_yscale()
    ('log', 'log')
    """
    fn = "mfteach.sgd_odes.plot_mean_field_error"
    from ._mean_field import MeanFieldError

    if not isinstance(res, MeanFieldError):
        fail("res", fn, "a MeanFieldError (from mean_field_error)", res, exc=TypeError)
    fig, ax = axes_row(ax, 1, fn, (5.4, 3.9))
    p = np.asarray(res.ps, dtype=float)
    rows = ((res.risk_mean, res.risk_stderr, res.risk_fit,
             r"$\sup_t|R_{full} - R_{MF}|$", "o", "C0"),
            (res.overlap_mean, res.overlap_stderr, res.overlap_fit,
             r"$\sup_t$ rms$_i\,|(M_i, q_i)_{full} - (M_i, q_i)_{MF}|$", "s", "C1"))
    for mean, se, fit, label, mk, col in rows:
        m, s = mean.numpy(), se.numpy()
        ax.errorbar(p, m, yerr=2 * s, fmt=mk, color=col, ms=5, lw=0.8,
                    label=f"{label}: slope {fit.mean:.2f} ± {fit.stderr:.2f}")
        c = math.exp(float(np.mean(np.log(m) - fit.mean * np.log(p))))
        ax.loglog(p, c * p**fit.mean, "-", color=col, lw=1)
    m = res.overlap_mean.numpy()
    ax.loglog(p, m[0] * (p / p[0]) ** -0.5, ":", color="0.3", label=r"$p^{-1/2}$ (Thm 2)")
    ax.set_xticks(p, [str(int(v)) for v in p])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("student width $p$")
    ax.set_ylabel("error of the mean-field ODE")
    ax.set_title(f"{res.activation}, k = {res.k}, d = {res.d}, {res.n_init} initialisations",
                 fontsize=9)
    ax.legend(fontsize=7)
    return fig, ax


def plot_high_d_mean_field(res, *, ax=None):
    r"""Left: risk against :math:`t`, SGD (mean with two standard errors) beside the high-d
    mean-field ODE and, when solved, the full high-d ODE. Right: the fraction of
    :math:`\|w_i\|^2` outside the teacher subspace, :math:`\overline{q_i/Q_{ii}}`.

    Parameters
    ----------
    res : HighDMeanField
        From :func:`high_d_mean_field`.
    ax : pair of Axes, optional

    Returns
    -------
    (Figure, (Axes, Axes))

    Examples
    --------
    >>> from mfteach.sgd_odes import high_d_mean_field
    >>> r = high_d_mean_field(p=8, k=2, d=50, gamma=1.0, t_max=0.5, n_runs=2, n_save=3)
    >>> fig, (a1, a2) = plot_high_d_mean_field(r)
    >>> a1.get_yscale()
    'log'
    """
    fn = "mfteach.sgd_odes.plot_high_d_mean_field"
    from ._mean_field import HighDMeanField

    if not isinstance(res, HighDMeanField):
        fail("res", fn, "a HighDMeanField (from high_d_mean_field)", res, exc=TypeError)
    fig, (a1, a2) = axes_row(ax, 2, fn, (9.5, 3.6))
    t = res.t.numpy()
    n = res.sgd_risk.shape[0]
    for a, sgd, mf, hd in ((a1, res.sgd_risk, res.mf_risk, res.hd_risk),
                           (a2, res.sgd_outside, res.mf_outside, res.hd_outside)):
        se = sgd.std(0).numpy() / math.sqrt(n) if n > 1 else np.zeros_like(t)
        a.errorbar(t, sgd.mean(0).numpy(), yerr=2 * se, fmt="o", ms=3, color="k", lw=0.8,
                   label=f"SGD ({n} runs)")
        a.plot(t, mf.mean(0).numpy(), "-", color="C0", label=r"high-d MF ODE ($\Xi = I$)")
        if hd is not None:
            a.plot(t, hd.mean(0).numpy(), "--", color="C1",
                   label=r"high-d ODE (with $\gamma/p$)")
        a.set_xlabel(r"time $t = \nu\gamma/(pd)$")
        a.legend(fontsize=8)
    a1.set_yscale("log")
    a1.set_ylabel(r"population risk $R$")
    a1.set_title(f"square, p = {res.p}, k = {res.k}, d = {res.d}, gamma = {res.gamma:g}",
                 fontsize=9)
    a2.set_ylabel(r"$\overline{q_i/Q_{ii}}$: weight outside span$(W^*)$")
    a2.set_ylim(0, 1.02)
    return fig, (a1, a2)


def plot_cosine_histogram(res, *, ax=None, bins: int = 40):
    r"""One panel per recorded time: histogram of SGD's :math:`\cos(w_j, w^*)` and the
    mean-field law :func:`cosine_density` at the MF ODE's :math:`r(t)` (at :math:`t = 0` the
    isotropic law, uniform for ``d = 3``).

    Parameters
    ----------
    res : CosineHistogram
        From :func:`cosine_histogram`.
    ax : sequence of Axes, optional
        One per recorded time.
    bins : int, keyword-only, default 40

    Returns
    -------
    (Figure, tuple of Axes)

    Examples
    --------
    >>> from mfteach.sgd_odes import cosine_histogram
    >>> fig, axes = plot_cosine_histogram(cosine_histogram(p=50, times=(0.0, 0.1), n_runs=2))
    >>> len(axes)
    2
    """
    fn = "mfteach.sgd_odes.plot_cosine_histogram"
    from .._checks import check_int
    from ._mean_field import CosineHistogram, cosine_density

    if not isinstance(res, CosineHistogram):
        fail("res", fn, "a CosineHistogram (from cosine_histogram)", res, exc=TypeError)
    bins = check_int(bins, "bins", fn, min=2, max=10**4)
    n_t = res.t.numel()
    fig, axes = axes_row(ax, n_t, fn, (3.2 * n_t, 3.0)) if n_t > 1 else axes_row(ax, 1, fn,
                                                                          (3.4, 3.0))
    axes = axes if isinstance(axes, tuple) else (axes,)
    c = np.linspace(-0.999, 0.999, 400)
    for i, a in enumerate(axes):
        a.hist(res.cosines[i].flatten().numpy(), bins=bins, range=(-1, 1), density=True,
               color="0.75", label=f"SGD ({res.n_runs} x {res.p} neurons)")
        r = float(res.ratio[i].mean())
        a.plot(c, cosine_density(c, d=res.d, ratio=min(max(r, 1e-300), 1.0)), "-",
               color="C0", label=f"mean-field law, r = {r:.3g}")
        a.set_xlabel(r"$\cos(w_j, w^*)$")
        a.set_title(f"t = {float(res.t[i]):.3g}", fontsize=9)
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=7)
    return fig, axes
