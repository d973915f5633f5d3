r"""Figures of the width limit, the PL bound along training and the digits comparison
(chapter 6), in the style of :mod:`mfteach.resnet._plots`."""

from __future__ import annotations

import numpy as np

from ._digits import MNIST_REFERENCE
from ._digits_comparison import DigitsComparison
from ._pl import PLTrace
from ._plots import COLORS, _drawable, _figure, _finish, _pos, _type, _value_axis
from ._width_limit import WidthLimit

__all__ = ["plot_width_limit", "plot_pl_trace", "plot_digits"]


def plot_width_limit(limit: WidthLimit):
    r"""RMS error of finite-:math:`M` training against the infinite-width network trained by
    gradient descent with the exact kernel (outputs and trajectories), per seed and their
    geometric mean, with the fitted slope ± s.e. and the theory line :math:`\propto
    M^{-1/2}` through the first mean.

    Parameters
    ----------
    limit : WidthLimit
        From :func:`mfteach.resnet.width_limit`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from mfteach.resnet import toy_data, width_limit
    >>> X, Y = toy_data(5, amplitude=0.3, generator=0)
    >>> lim = width_limit(X, Y, [16, 64], depth=2, steps=5, n_seeds=2, generator=1)
    >>> len(plot_width_limit(lim).axes)
    2
    """
    fn = "mfteach.resnet.plot_width_limit"
    w = _type(limit, WidthLimit, "limit", fn, "WidthLimit")
    Ms = np.asarray(w.widths, dtype=float)
    fig, axes = _figure(2, 10.0, left=0.08)
    panels = [(w.output_error, w.output_slope, w.output_stderr, "outputs f(x) on a grid"),
              (w.trajectory_error, w.trajectory_slope, w.trajectory_stderr,
               "trajectories x_l(x), l = 1..L")]
    for ax, (err, slope, se, what) in zip(axes, panels):
        e = _drawable(err, fn, "errors", "limit")  # (W, S)
        for s in range(e.shape[1]):
            ax.plot(*_pos(Ms, e[:, s]), color="0.6", lw=0.7, alpha=0.7)
        gm = np.exp(np.log(np.where(e > 0, e, np.nan)).mean(1))
        ax.plot(Ms, gm, "o-", color=COLORS["measured"], ms=4,
                label=f"geometric mean of {e.shape[1]} seeds: slope {slope:.2f} ± {se:.2f}")
        if np.isfinite(gm[0]):
            ax.plot(Ms, gm[0] * (Ms / Ms[0]) ** -0.5, "--", color=COLORS["lazy"], lw=0.9,
                    label="theory: M^(−1/2)")
        ax.plot([], [], color="0.6", lw=0.7, label="each seed (feature draw)")
        _value_axis(ax, w.widths)
        _finish(ax, "features M", "RMS error against M = ∞", f"trained {what}",
                "lower left", fontsize=7)
    fig.suptitle("finite-width training converges to the infinite-width (kernel) network",
                 fontsize=10)
    return fig


def plot_pl_trace(trace: PLTrace):
    r"""The PL ratio :math:`\|\nabla\mathcal{L}\|^2/\mathcal{L}` of every network along
    training against its lower bound :eq:`rn-pl-bound` at the same iterates (left), and the
    loss (right).

    Parameters
    ----------
    trace : PLTrace
        From :func:`mfteach.resnet.pl_trace`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from mfteach.resnet import init_resnet, pl_trace, toy_data
    >>> X, Y = toy_data(6, amplitude=0.2, generator=0)
    >>> net = init_resnet(2, 2, 32, 4, bandwidth=0.5, scheme="euler", generator=1)
    >>> len(plot_pl_trace(pl_trace(net, X, Y, lr=5.0, steps=20, every=10)).axes)
    2
    """
    fn = "mfteach.resnet.plot_pl_trace"
    t = _type(trace, PLTrace, "trace", fn, "PLTrace")
    k = _drawable(t.step, fn, "steps", "trace").astype(float)
    ratio = _drawable(t.pl_ratio, fn, "PL ratios", "trace")
    bound = _drawable(t.bound, fn, "bounds", "trace")
    loss = _drawable(t.loss, fn, "losses", "trace")
    fig, (a1, a2) = _figure(2, 10.0, left=0.08)
    for b in range(ratio.shape[1]):
        first = b == 0
        a1.plot(*_pos(k, ratio[:, b]), "o-", color=COLORS["measured"], ms=3, lw=1.0,
                alpha=0.8, label="measured |∇L|² / L" if first else None)
        a1.plot(*_pos(k, bound[:, b]), "v--", color=COLORS["bound"], ms=3, lw=0.9,
                alpha=0.8, label="bound (2 / L²N) Σ λ_min(K_M(x_l)) s²" if first else None)
        a2.plot(*_pos(k, loss[:, b]), color=COLORS["measured"], lw=1.0, alpha=0.8,
                label="each data set" if first else None)
    _finish(a1, None, "PL ratio (per data set)", "the PL ratio stays above its Gram bound",
            "lower left", fontsize=7)
    _finish(a2, None, "training loss", "linear convergence", "lower left", fontsize=7)
    return fig


def plot_digits(comparison: DigitsComparison):
    r"""Test error along training for each model and depth (median over seeds, band: all
    seeds), and the final train and test errors (mean ± sd) beside the authors' MNIST
    results (``MNIST_REFERENCE``, a different data set and size: the comparison is of the
    ordering, not the level).

    Parameters
    ----------
    comparison : DigitsComparison
        From :func:`mfteach.resnet.digits_comparison`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fn = "mfteach.resnet.plot_digits"
    c = _type(comparison, DigitsComparison, "comparison", fn, "DigitsComparison")
    curve = 100 * _drawable(c.test_error_curve, fn, "errors", "comparison")  # (m, L, E+1, S)
    tr = 100 * _drawable(c.train_error, fn, "errors", "comparison")
    te = 100 * _drawable(c.test_error, fn, "errors", "comparison")
    fig, (a1, a2) = _figure(2, 10.5, left=0.07)
    epochs = np.arange(curve.shape[2])
    styles = {"rkhs": "-", "shl": "--"}
    labels, x = [], 0.0
    for i, m in enumerate(c.models):
        for j, L in enumerate(c.depths):
            col = f"C{j}"
            a1.fill_between(epochs, curve[i, j].min(-1), curve[i, j].max(-1), color=col,
                            alpha=0.12, lw=0)
            a1.plot(epochs, np.median(curve[i, j], -1), styles.get(m, ":"), color=col,
                    label=f"{m.upper()}, L = {L}")
            a2.errorbar([x - 0.15], [te[i, j].mean()], [te[i, j].std()], fmt="o", color=col,
                        ms=4, capsize=2)
            a2.errorbar([x + 0.15], [tr[i, j].mean()], [tr[i, j].std()], fmt="s", color=col,
                        ms=3, mfc="white", capsize=2)
            ref = MNIST_REFERENCE.get((m, L))
            if ref is not None:
                a2.plot([x], [ref], "*", color="k", ms=7)
            labels.append(f"{m.upper()}\nL = {L}")
            x += 1
    _finish(a1, "epoch", "test error (%)", f"digits: {c.n_train} train / {c.n_test} test "
            f"images, q = {c.q}, M = {c.n_features}", "upper right", fontsize=7)
    a2.plot([], [], "o", color="0.3", label="test error (mean ± sd)")
    a2.plot([], [], "s", color="0.3", mfc="white", label="train error")
    a2.plot([], [], "*", color="k", label="authors' MNIST test error (20 seeds)")
    a2.set_xticks(np.arange(len(labels)), labels)
    top = max(float((te.mean(-1) + te.std(-1)).max()), float((tr.mean(-1) + tr.std(-1)).max()))
    a2.set_ylim(0, 1.45 * top)
    _finish(a2, "", "error (%)", "final errors", "upper left", log=False, fontsize=7)
    return fig
