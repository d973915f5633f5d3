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

from ._checks import check_bool, check_float, check_int, fail
from .stats import SlopeFit, _as_float_array, fit_loglog_slope

__all__ = [
    "histogram_with_densities",
    "kernel_heatmap",
    "loglog_with_fit",
    "loss_curves",
    "particles_2d",
]


def _np(x, name: str, fn: str, *, finite: bool = True, positive: bool = False,
        min_size: int = 1) -> np.ndarray:
    """A float64 numpy copy of a tensor / array / sequence of real numbers (CPU, detached),
    refusing non-finite entries (a NaN would be drawn as nothing, silently) and fewer than
    ``min_size`` entries, with a one-line message naming ``name``."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            fail(name, fn, "a tensor, an array or a sequence of real numbers", x,
                 exc=TypeError)
        a = x.detach().to("cpu", torch.float64).numpy()
    else:
        if isinstance(x, (str, bytes)) or x is None:
            fail(name, fn, "a tensor, an array or a sequence of real numbers", x,
                 exc=TypeError)
        try:
            raw = np.asarray(x)
        except (TypeError, ValueError):  # ragged sequences
            fail(name, fn, "a tensor, an array or a sequence of real numbers", x,
                 exc=TypeError)
        shape = raw.shape
        a = _as_float_array(raw if raw.dtype != object else x, name, fn).reshape(shape)
    if a.size < min_size:
        fail(name, fn, f"an array with at least {min_size} entr"
             f"{'y' if min_size == 1 else 'ies'}", x)
    if finite and not np.isfinite(a).all():
        fail(name, fn, "finite (no NaN or inf entries)", x)
    if positive and not (a > 0).all():
        fail(name, fn, "positive (a logarithmic axis)", x)
    return a


def _label(value, name: str, fn: str) -> str:
    if not isinstance(value, str):
        fail(name, fn, "a str", value, exc=TypeError)
    return value


def _axes(ax, fn: str = "mfteach.plotting"):
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        return fig, ax
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        fail("ax", fn, "a matplotlib Axes or None", ax, exc=TypeError)
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

    Raises
    ------
    TypeError, ValueError
        For non-numeric, empty or non-finite data (a NaN would silently leave a gap),
        mismatched shapes, non-positive losses on the log axis (``logy=True``), or a bad
        ``labels``, ``theory`` or ``ax``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = loss_curves([0, 1, 2], [[1.0, 2.0], [0.5, 1.0], [0.25, 0.5]])
    >>> ax.get_xlabel(), ax.get_yscale()
    ('step', 'log')
    >>> plt.close(fig)
    """
    fn = "mfteach.plotting.loss_curves"
    logy = check_bool(logy, "logy", fn)
    xlabel, ylabel = _label(xlabel, "xlabel", fn), _label(ylabel, "ylabel", fn)
    x = _np(steps, "steps", fn).ravel()
    L = _np(losses, "losses", fn, positive=logy)
    if L.ndim == 1:
        L = L[:, None]
    if L.ndim != 2 or L.shape[0] != x.size:
        fail("losses", fn, f"an array of shape ({x.size},) or ({x.size}, B) matching steps",
             L.shape)
    if labels is not None and (isinstance(labels, str) or not isinstance(labels, Sequence)
                               or not all(isinstance(lab, str) for lab in labels)):
        fail("labels", fn, "a sequence of str (one per network) or None", labels,
             exc=TypeError)
    if labels is not None and len(labels) != L.shape[1]:
        fail("labels", fn, f"a sequence of {L.shape[1]} labels (one per network)", labels)
    if theory is not None:
        if not (isinstance(theory, (tuple, list)) and len(theory) == 2):
            fail("theory", fn, "an (x, y) pair of arrays or None", theory, exc=TypeError)
        tx, ty = (_np(v, "theory", fn, positive=logy and i == 1).ravel()
                  for i, v in enumerate(theory))
        if tx.shape != ty.shape:
            fail("theory", fn, "an (x, y) pair of arrays of the same length",
                 (tx.shape, ty.shape))
    fig, ax = _axes(ax, fn)
    if labels is not None:
        for j, lab in enumerate(labels):
            ax.plot(x, L[:, j], label=lab)
    elif L.shape[1] == 1:
        ax.plot(x, L[:, 0], label="measured")
    else:
        ax.plot(x, L, color="C0", alpha=0.25, lw=0.8)
        ax.plot(x, L.mean(axis=1), color="C0", lw=2, label=f"mean of {L.shape[1]} networks")
    if theory is not None:
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
        A fit computed elsewhere (e.g. a weighted fit, defined with two points); by default
        ``mfteach.stats.fit_loglog_slope(x, y)`` when there are at least 3 points. With
        fewer points and no ``fit`` no fit line is drawn (a least-squares slope through two
        points has no standard error).
    reference_slopes : sequence of float
        Predicted exponents to draw (default :math:`-1/2`, the CLT rate).
    label : str, optional
        Legend entry of the points.

    Returns
    -------
    (fig, ax)

    Raises
    ------
    TypeError, ValueError
        For non-numeric, empty, non-finite or non-positive ``x`` and ``y`` (log axes),
        mismatched shapes, negative or non-finite ``yerr``, non-finite ``reference_slopes``,
        a ``fit`` that is not a finite :class:`~mfteach.stats.SlopeFit`, or a bad ``ax``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = loglog_with_fit([1, 2, 4], [1.0, 0.7, 0.5], xlabel="width", ylabel="error")
    >>> [line.get_label() for line in ax.get_lines()][-2:]
    ['fit: slope -0.50 ± 0.01', 'theory: slope -0.5']
    >>> plt.close(fig)
    """
    fn = "mfteach.plotting.loglog_with_fit"
    xlabel, ylabel = _label(xlabel, "xlabel", fn), _label(ylabel, "ylabel", fn)
    if label is not None:
        _label(label, "label", fn)
    xa = _np(x, "x", fn, positive=True).ravel()
    ya = _np(y, "y", fn, positive=True).ravel()
    if ya.shape != xa.shape:
        fail("y", fn, f"an array of {xa.size} values matching 'x'", ya.shape)
    if isinstance(reference_slopes, (str, bytes)) or not isinstance(reference_slopes,
                                                                   Sequence):
        fail("reference_slopes", fn, "a sequence of real numbers", reference_slopes,
             exc=TypeError)
    refs = [check_float(p, "reference_slopes", fn) for p in reference_slopes]
    if fit is None:
        if xa.size >= 3 and np.unique(xa).size >= 2:
            fit = fit_loglog_slope(xa, ya)
    elif not isinstance(fit, SlopeFit):
        fail("fit", fn, "an mfteach.stats.SlopeFit or None", fit, exc=TypeError)
    elif not (math.isfinite(fit.slope) and math.isfinite(fit.intercept)):
        fail("fit", fn, "a SlopeFit with a finite slope and intercept", fit)
    e = None
    if yerr is not None:
        e = _np(yerr, "yerr", fn).ravel()
        if e.shape != ya.shape:
            fail("yerr", fn, f"an array of shape {ya.shape} matching y", e.shape)
        if (e < 0).any():
            fail("yerr", fn, "non-negative (standard errors)", yerr)
    fig, ax = _axes(ax, fn)
    if e is not None:
        lower = np.minimum(e, 0.999 * ya)
        ax.errorbar(xa, ya, yerr=np.stack([lower, e]), fmt="o", capsize=3,
                    label=label or "measured")
    else:
        ax.plot(xa, ya, "o", label=label or "measured")
    grid = np.geomspace(xa.min(), xa.max(), 50)
    if fit is not None:
        se = "" if math.isnan(fit.stderr) else f" ± {fit.stderr:.2f}"
        ax.plot(grid, np.exp(fit.intercept) * grid**fit.slope, "-", color="C0", alpha=0.7,
                label=f"fit: slope {fit.slope:.2f}{se}")
    for i, p in enumerate(refs):
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
        Number of histogram bins (at most 100 000).
    xlabel : str

    Returns
    -------
    (fig, ax)

    Raises
    ------
    TypeError, ValueError
        For empty or non-finite ``samples`` (or a range that overflows), a bad ``bins``,
        densities that are not finite ``(grid, values)`` pairs of equal length, or a bad
        ``ax``.

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
    xlabel = _label(xlabel, "xlabel", fn)
    s = _np(samples, "samples", fn).ravel()
    if not math.isfinite(float(s.max()) - float(s.min())):
        fail("samples", fn, "values whose range max - min is finite", samples)
    bins = check_int(bins, "bins", fn, min=1, max=100_000)
    densities = {} if densities is None else densities
    if not isinstance(densities, dict):
        fail("densities", fn, "a dict mapping labels to (grid, values) pairs", densities,
             exc=TypeError)
    curves = []
    for lab, pair in densities.items():
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            fail("densities", fn, "a dict whose values are (grid, values) pairs",
                 {lab: type(pair).__name__}, exc=TypeError)
        gx, gy = (_np(v, "densities", fn).ravel() for v in pair)
        if gx.shape != gy.shape:
            fail("densities", fn, "a dict of (grid, values) pairs of the same length",
                 {lab: (gx.size, gy.size)})
        curves.append((str(lab), gx, gy))
    fig, ax = _axes(ax, fn)
    ax.hist(s, bins=bins, density=True, alpha=0.4, color="C0",
            label=f"samples (n={s.size})")
    for i, (lab, gx, gy) in enumerate(curves):
        ax.plot(gx, gy, color=f"C{i + 1}", lw=2, label=lab)
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

    Raises
    ------
    TypeError, ValueError
        For an empty, non-finite or non-matrix ``K``, an unknown ``cmap`` or a bad ``ax``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = kernel_heatmap(torch.eye(3), title="identity")
    >>> ax.get_xlabel(), ax.get_title()
    ('input j', 'identity')
    >>> plt.close(fig)
    """
    fn = "mfteach.plotting.kernel_heatmap"
    title = _label(title, "title", fn)
    k = _np(K, "K", fn)
    if k.ndim == 3 and k.shape[0] == 1:
        k = k[0]
    if k.ndim != 2:
        fail("K", fn, "a matrix of shape (n1, n2) or (1, n1, n2)", k.shape)
    import matplotlib

    if not isinstance(cmap, matplotlib.colors.Colormap) and (
            not isinstance(cmap, str) or cmap not in matplotlib.colormaps):
        fail("cmap", fn, "a matplotlib colormap or its name, e.g. 'viridis'", cmap,
             exc=TypeError if not isinstance(cmap, str) else ValueError)
    fig, ax = _axes(ax, fn)
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

    Raises
    ------
    TypeError, ValueError
        For empty or non-finite ``W``, ``a`` or ``directions``, mismatched shapes, a zero
        direction, or a bad ``ax``.

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
    xlabel, ylabel = _label(xlabel, "xlabel", fn), _label(ylabel, "ylabel", fn)
    title = _label(title, "title", fn)
    w = _np(W, "W", fn)
    if w.ndim == 3 and w.shape[0] == 1:
        w = w[0]
    if w.ndim != 2 or w.shape[1] != 2:
        fail("W", fn, "an array of shape (N, 2): neurons in a 2-D input space", w.shape)
    av = None
    if a is not None:
        av = _np(a, "a", fn).reshape(-1)
        if av.size != w.shape[0]:
            fail("a", fn, f"an array of {w.shape[0]} output weights matching W", av.shape)
    u = None
    if directions is not None:
        u = _np(directions, "directions", fn)
        if u.ndim not in (1, 2) or u.shape[-1] != 2:
            fail("directions", fn, "an array of shape (k, 2) (or (2,))", u.shape)
        u = u.reshape(-1, 2)
        if not (np.hypot(u[:, 0], u[:, 1]) > 0).all():
            fail("directions", fn, "non-zero directions", directions)
    fig, ax = _axes(ax, fn)
    if av is None:
        ax.scatter(w[:, 0], w[:, 1], s=12, color="C0", label="neurons")
    else:
        amax = float(np.abs(av).max()) or 1.0
        sc = ax.scatter(w[:, 0], w[:, 1], c=av, cmap="coolwarm", vmin=-amax, vmax=amax,
                        s=6 + 60 * np.abs(av) / amax, edgecolors="none", label="neurons")
        fig.colorbar(sc, ax=ax, label="output weight $a_j$")
    if u is not None:
        r = float(np.abs(w).max()) or 1.0
        for i, (u1, u2) in enumerate(u):
            nu = math.hypot(u1, u2)
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
