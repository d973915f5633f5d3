r"""Plots of measurements beside the theory, with labelled axes.

Each helper takes arrays (torch tensors or numpy arrays), draws on ``ax`` when given (else on a
new figure from :func:`matplotlib.pyplot.subplots`) and returns ``(fig, ax)``. No helper changes
global state: no style sheets, no ``rcParams``, no ``plt.show()``; close figures you no longer
need with ``plt.close(fig)``.

Used by every chapter; the width-scaling plots (:func:`loglog_with_fit`) show the fitted slope
with its standard error next to the predicted one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ._checks import check_int, fail
from .stats import SlopeFit, fit_loglog_slope

__all__ = [
    "histogram_with_densities",
    "kernel_heatmap",
    "loglog_with_fit",
    "loss_curves",
    "particles_2d",
]


def _np(x, name: str, fn: str) -> np.ndarray:
    """A float64 numpy copy of a tensor / array / sequence (CPU, detached)."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        fail(name, fn, "a tensor, an array or a sequence of numbers", x, exc=TypeError)


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        return fig, ax
    return ax.figure, ax


def loss_curves(steps, losses, *, labels: Sequence[str] | None = None, logy: bool = True,
                ax=None, xlabel: str = "step", ylabel: str = "training loss",
                theory: tuple | None = None):
    r"""Training-loss curves, one line per network.

    Parameters
    ----------
    steps : array, shape (T,)
        E.g. ``history.step`` or ``history.t``.
    losses : array, shape (T,) or (T, B)
        E.g. ``history.loss``.
    labels : sequence of B str, optional
        Legend entries; without them many networks are drawn thin and unlabelled, with their
        mean in bold.
    logy : bool
        Logarithmic loss axis (default), where exponential convergence is a straight line.
    theory : (x, y) pair of arrays, optional
        A predicted curve, drawn dashed and labelled "theory".

    Returns
    -------
    (fig, ax)

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = loss_curves([0, 1, 2], [[1.0, 2.0], [0.5, 1.0], [0.25, 0.5]])
    >>> ax.get_xlabel(), ax.get_yscale()
    ('step', 'log')
    >>> plt.close(fig)
    """
    fn = "mfteach.plotting.loss_curves"
    x = _np(steps, "steps", fn).ravel()
    L = _np(losses, "losses", fn)
    if L.ndim == 1:
        L = L[:, None]
    if L.ndim != 2 or L.shape[0] != x.size:
        fail("losses", fn, f"an array of shape ({x.size},) or ({x.size}, B) matching steps",
             L.shape)
    if labels is not None and len(labels) != L.shape[1]:
        fail("labels", fn, f"a sequence of {L.shape[1]} labels (one per network)", labels)
    fig, ax = _axes(ax)
    if labels is not None:
        for j, lab in enumerate(labels):
            ax.plot(x, L[:, j], label=lab)
    elif L.shape[1] == 1:
        ax.plot(x, L[:, 0], label="measured")
    else:
        ax.plot(x, L, color="C0", alpha=0.25, lw=0.8)
        ax.plot(x, L.mean(axis=1), color="C0", lw=2, label=f"mean of {L.shape[1]} networks")
    if theory is not None:
        tx, ty = (_np(v, "theory", fn).ravel() for v in theory)
        ax.plot(tx, ty, "k--", label="theory")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return fig, ax


def loglog_with_fit(x, y, *, xlabel: str, ylabel: str, yerr=None, fit: SlopeFit | None = None,
                    reference_slopes: Sequence[float] = (-0.5,), label: str | None = None,
                    ax=None):
    r"""Points on log-log axes with their fitted power law and the predicted slopes.

    Draws ``y`` against ``x`` (with error bars ``yerr``), the least-squares line
    :math:`\log y = c + s\log x` labelled "fit: slope s ± stderr", and for each predicted
    slope :math:`p` in ``reference_slopes`` a dashed line :math:`y_0 (x/x_0)^p` through the
    first point, labelled "theory: slope p".

    Parameters
    ----------
    x, y : array, shape (k,)
        Positive values, e.g. widths and measured errors.
    xlabel, ylabel : str
        Axis labels (required: a scaling plot without units teaches nothing).
    yerr : array, shape (k,), optional
        Standard errors of ``y``; the lower bar is clipped to stay positive on the log axis.
    fit : SlopeFit, optional
        A fit computed elsewhere; by default ``mfteach.stats.fit_loglog_slope(x, y)``.
    reference_slopes : sequence of float
        Predicted exponents to draw (default :math:`-1/2`, the CLT rate).
    label : str, optional
        Legend entry of the points.

    Returns
    -------
    (fig, ax)

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = loglog_with_fit([1, 2, 4], [1.0, 0.7, 0.5], xlabel="width", ylabel="error")
    >>> [line.get_label() for line in ax.get_lines()][-2:]
    ['fit: slope -0.50 ± 0.01', 'theory: slope -0.5']
    >>> plt.close(fig)
    """
    fn = "mfteach.plotting.loglog_with_fit"
    xa = _np(x, "x", fn).ravel()
    ya = _np(y, "y", fn).ravel()
    if fit is None:
        fit = fit_loglog_slope(xa, ya)
    elif not isinstance(fit, SlopeFit):
        fail("fit", fn, "an mfteach.stats.SlopeFit or None", fit, exc=TypeError)
    fig, ax = _axes(ax)
    if yerr is not None:
        e = _np(yerr, "yerr", fn).ravel()
        if e.shape != ya.shape:
            fail("yerr", fn, f"an array of shape {ya.shape} matching y", e.shape)
        lower = np.minimum(e, 0.999 * ya)
        ax.errorbar(xa, ya, yerr=np.stack([lower, e]), fmt="o", capsize=3,
                    label=label or "measured")
    else:
        ax.plot(xa, ya, "o", label=label or "measured")
    grid = np.geomspace(xa.min(), xa.max(), 50)
    se = "" if math.isnan(fit.stderr) else f" ± {fit.stderr:.2f}"
    ax.plot(grid, np.exp(fit.intercept) * grid**fit.slope, "-", color="C0", alpha=0.7,
            label=f"fit: slope {fit.slope:.2f}{se}")
    for i, p in enumerate(reference_slopes):
        ax.plot(grid, ya[0] * (grid / xa[0]) ** p, "--", color=f"C{i + 1}",
                label=f"theory: slope {p:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return fig, ax


def histogram_with_densities(samples, densities: dict | None = None, *, bins: int = 50,
                             xlabel: str = "value", ax=None):
    r"""Normalised histogram of ``samples`` with predicted densities drawn over it.

    Parameters
    ----------
    samples : array, shape (m,) (flattened)
    densities : dict[str, (grid, values)], optional
        Predicted densities (e.g. the Gaussian limit and its Edgeworth correction), each
        drawn as a line with its label.
    bins : int
        Number of histogram bins.
    xlabel : str

    Returns
    -------
    (fig, ax)

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> g = np.linspace(-3, 3, 61)
    >>> fig, ax = histogram_with_densities(np.zeros(10), {"N(0,1)": (g, np.exp(-g**2 / 2))})
    >>> [line.get_label() for line in ax.get_lines()], ax.get_ylabel()
    (['N(0,1)'], 'density')
    >>> plt.close(fig)
    """
    fn = "mfteach.plotting.histogram_with_densities"
    s = _np(samples, "samples", fn).ravel()
    bins = check_int(bins, "bins", fn, min=1)
    densities = {} if densities is None else densities
    if not isinstance(densities, dict):
        fail("densities", fn, "a dict mapping labels to (grid, values) pairs", densities,
             exc=TypeError)
    fig, ax = _axes(ax)
    ax.hist(s, bins=bins, density=True, alpha=0.4, color="C0",
            label=f"samples (n={s.size})")
    for i, (lab, pair) in enumerate(densities.items()):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            fail("densities", fn, "a dict whose values are (grid, values) pairs",
                 {lab: type(pair).__name__}, exc=TypeError)
        gx, gy = (_np(v, "densities", fn).ravel() for v in pair)
        ax.plot(gx, gy, color=f"C{i + 1}", lw=2, label=str(lab))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend()
    return fig, ax


def kernel_heatmap(K, *, title: str = "", ax=None, cmap: str = "viridis"):
    r"""A kernel matrix :math:`K(x_i, x_j)` as an image with a colour bar.

    Parameters
    ----------
    K : array, shape (n1, n2) (a leading batch axis of size 1 is dropped)
    title : str

    Returns
    -------
    (fig, ax)

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = kernel_heatmap(torch.eye(3), title="identity")
    >>> ax.get_xlabel(), ax.get_title()
    ('input j', 'identity')
    >>> plt.close(fig)
    """
    fn = "mfteach.plotting.kernel_heatmap"
    k = _np(K, "K", fn)
    if k.ndim == 3 and k.shape[0] == 1:
        k = k[0]
    if k.ndim != 2:
        fail("K", fn, "a matrix of shape (n1, n2) or (1, n1, n2)", k.shape)
    fig, ax = _axes(ax)
    im = ax.imshow(k, cmap=cmap, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="K(x_i, x_j)")
    ax.set_xlabel("input j")
    ax.set_ylabel("input i")
    ax.set_title(title)
    return fig, ax


def particles_2d(W, a=None, *, directions=None, ax=None, xlabel: str = "$w_1$",
                 ylabel: str = "$w_2$", title: str = ""):
    r"""Neurons of a network with ``d = 2`` as points :math:`w_j \in \mathbb{R}^2`.

    The mean-field picture: the network is the empirical measure of its neurons
    :math:`(a_j, w_j)`. Points are coloured by :math:`a_j` (diverging colour map) and sized by
    :math:`|a_j|`.

    Parameters
    ----------
    W : array, shape (N, 2) (or (1, N, 2))
        Input weights.
    a : array, shape (N,) (or (1, N)), optional
        Output weights; uniform points without them.
    directions : array, shape (k, 2), optional
        Teacher directions (e.g. :math:`e_1` for ``teacher_data(kind="single_index")``),
        drawn as arrows from the origin and labelled "teacher direction".

    Returns
    -------
    (fig, ax)

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = particles_2d(torch.randn(20, 2, generator=torch.Generator().manual_seed(0)),
    ...                        torch.ones(20), directions=[[1.0, 0.0]])
    >>> ax.get_xlabel(), ax.get_aspect()
    ('$w_1$', 1.0)
    >>> plt.close(fig)
    """
    fn = "mfteach.plotting.particles_2d"
    w = _np(W, "W", fn)
    if w.ndim == 3 and w.shape[0] == 1:
        w = w[0]
    if w.ndim != 2 or w.shape[1] != 2:
        fail("W", fn, "an array of shape (N, 2): neurons in a 2-D input space", w.shape)
    fig, ax = _axes(ax)
    if a is None:
        ax.scatter(w[:, 0], w[:, 1], s=12, color="C0", label="neurons")
    else:
        av = _np(a, "a", fn).reshape(-1)
        if av.size != w.shape[0]:
            fail("a", fn, f"an array of {w.shape[0]} output weights matching W", av.shape)
        amax = float(np.abs(av).max()) or 1.0
        sc = ax.scatter(w[:, 0], w[:, 1], c=av, cmap="coolwarm", vmin=-amax, vmax=amax,
                        s=6 + 60 * np.abs(av) / amax, edgecolors="none", label="neurons")
        fig.colorbar(sc, ax=ax, label="output weight $a_j$")
    if directions is not None:
        u = _np(directions, "directions", fn).reshape(-1, 2)
        r = float(np.abs(w).max()) or 1.0
        for i, (u1, u2) in enumerate(u):
            nu = math.hypot(u1, u2) or 1.0
            ax.annotate("", xy=(r * u1 / nu, r * u2 / nu), xytext=(0, 0),
                        arrowprops={"arrowstyle": "->", "color": "k", "lw": 1.5})
            ax.plot([0, r * u1 / nu], [0, r * u2 / nu], "k-", lw=1.5,
                    label="teacher direction" if i == 0 else None)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right")
    return fig, ax
