r"""Figures of the ResNet chapter (matplotlib ``Figure`` objects, no pyplot state), each with
the theory beside the measurement. Margins are fixed (a layout engine doubles a widget update),
log ticks are plain text, and what a log axis cannot show (a zero eigenvalue) is left out or
drawn at a marked floor, never as NaN.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .._checks import check_int, check_tensor, fail
from ._experiments import DepthConvergence, FlowGrid, GramSpectrum, WidthSweep
from ._model import ORDER
from ._pl import LazyPrediction, PLBound, PLTrace
from ._train import History, fit_log_rate

__all__ = ["plot_gram_spectrum", "plot_width_sweep", "plot_training", "plot_depth_convergence",
           "plot_flow", "COLORS"]

COLORS = {"measured": "C0", "lazy": "k", "floor": "C3", "bound": "C2", "kernel": "C3",
          "euler": "C0", "midpoint": "C1", "flow": "C0", "target": "C3"}
"""Colour of each quantity in every figure of the chapter."""

_SINGULAR = 1e-12  # an eigenvalue below this times the scale is zero to rounding (float64)
_LOSS = "training loss ½ mean ‖f(x) − y‖²"


def _drawable(x, fn: str, what: str, name: str) -> np.ndarray:
    """A recorded quantity about to be drawn: finite, as float64 numpy."""
    t = torch.as_tensor(x)
    if not bool(torch.isfinite(t).all()):
        fail(name, fn, f"a result with finite {what}", x)
    return t.detach().to("cpu", torch.float64).numpy()


def _pos(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points of a curve that a log axis can show (positive y)."""
    return x[y > 0], y[y > 0]


def _log_axis(ax) -> None:
    """A log y axis (call it after drawing): at most six labelled decades, or 1, 2, 5 within
    2 decades; plain-text labels (mathtext is parsed anew for every frame); no minor ticks."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    ax.set_yscale("log")
    lo, hi = ax.dataLim.intervaly
    subs = (1.0, 2.0, 5.0) if 0 < lo and hi < 100 * lo else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(subs=subs, numticks=6))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _value_axis(ax, values) -> None:
    """Log x axis labelled at the measured values (every other one beyond eight)."""
    from matplotlib.ticker import NullLocator

    ax.set_xscale("log")
    vs = [int(v) for v in values][:: 1 if len(values) <= 8 else 2]
    ax.set_xticks([float(v) for v in vs], [str(v) for v in vs])
    ax.xaxis.set_minor_locator(NullLocator())


def _finish(ax, xlabel: str | None, ylabel: str, title: str, loc: str, *, log: bool = True,
            fontsize: float = 6.5) -> None:
    """Log y axis, labels (``xlabel=None``: the gradient step, four ticks), title, legend."""
    from matplotlib.ticker import MaxNLocator

    if log:
        _log_axis(ax)
    if xlabel is None:
        ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))  # tick layout is costly
    ax.set_xlabel("gradient step k" if xlabel is None else xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=fontsize, loc=loc, framealpha=0.7)


def _figure(ncols: int, width: float, *, left: float, height: float = 3.7, top=0.86):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))  # fixed margins: a layout engine doubles the cost
    axes = np.atleast_1d(fig.subplots(1, ncols))
    fig.subplots_adjust(left=left, right=0.985, bottom=0.15, top=top, wspace=0.34)
    return fig, axes


def _single(ax, fn: str, size):
    from matplotlib.axes import Axes

    if ax is None:
        fig, axes = _figure(1, size[0], left=0.16, height=size[1], top=0.9)
        return fig, axes[0]
    if not isinstance(ax, Axes):
        fail("ax", fn, "a matplotlib Axes or None", ax, exc=TypeError)
    return ax.figure, ax


def _type(value, cls, name: str, fn: str, what: str):
    if not isinstance(value, cls):
        fail(name, fn, f"an mfteach.resnet.{what}", value, exc=TypeError)
    return value


def _runs(ax, k, y: np.ndarray, b: int, label: str) -> None:
    """Run ``b`` bold and up to four others thin (positive points only: a log axis)."""
    for r in [r for r in range(min(y.shape[1], 5)) if r != b]:
        ax.plot(*_pos(k, y[:, r]), color=COLORS["measured"], lw=0.6, alpha=0.35)
    ax.plot(*_pos(k, y[:, b]), color=COLORS["measured"], lw=1.6, label=label)


def _gram_panel(ax, s: GramSpectrum, fn: str, mark=None) -> None:
    """lambda_min(K_M) against M: draws, median, kernel level, M = N; singular at a floor."""
    M = np.asarray(s.widths, dtype=float)
    lam = _drawable(s.lam_min, fn, "eigenvalues", "spectrum")  # (W, S)
    N = s.n_points
    scale = max(float(np.abs(lam).max()), abs(s.lam_kernel), 1e-300)
    singular = (_drawable(s.rank, fn, "ranks", "spectrum") < N) | (lam <= _SINGULAR * scale)
    pos = [v for v in [*lam[~singular], s.lam_kernel] if v > _SINGULAR * scale]
    floor = 1e-3 * min(pos) if pos else _SINGULAR * scale
    ax.plot(np.broadcast_to(M[:, None], lam.shape)[~singular], lam[~singular], ".",
            color="0.7", ms=4)
    full = ~singular.any(1)
    ax.plot(M[full], np.median(lam[full], 1), "o-", color=COLORS["measured"], ms=4,
            label="λmin(K_M), median of draws")
    if (low := singular.any(1)).any():
        ax.plot(M[low], np.full(int(low.sum()), floor), "v", color="0.3", ms=6,
                label=f"singular (rank ≤ M < N), at {floor:.0e}")
    if s.lam_kernel > _SINGULAR * scale:
        ax.axhline(s.lam_kernel, color=COLORS["kernel"], ls="--", lw=1,
                   label=f"kernel: λmin(K) = {s.lam_kernel:.2g}")
    ax.axvline(N, color="0.4", lw=1, ls=":", label=f"M = N = {N}")
    if mark is not None:
        ax.plot([mark[0]], [max(mark[1], floor)], "*", color="C1", ms=11, mec="k", mew=0.5,
                label=f"this run: M = {mark[0]}")
    _value_axis(ax, s.widths)
    _log_axis(ax)


def plot_gram_spectrum(spectrum: GramSpectrum):
    r"""The feature Gram :math:`K_M` at the data against :math:`M`: :math:`\lambda_{\min}(K_M)`
    per draw and median, beside :math:`M = N` (rank :math:`K_M \le M`: singular below, drawn at
    a marked floor) and the kernel's :math:`\lambda_{\min}(K)` (left); :math:`\|K_M - K\|_F/N`
    per draw and geometric mean :math:`\bar e_M`, the fit :math:`e^aM^s` (``slope`` ±
    ``slope_se``, :math:`a = \overline{\log\bar e} - s\overline{\log M}`) and the rate
    :math:`cM^{-1/2}`, :math:`\log c = \overline{\log\bar e + \frac12\log M}` (right).

    Parameters
    ----------
    spectrum : GramSpectrum
        From :func:`mfteach.resnet.gram_spectrum`.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError, ValueError
        One line: another type, or non-finite or non-positive errors.

    Examples
    --------
    >>> from mfteach.resnet import gram_spectrum, toy_data
    >>> X, _ = toy_data(6, min_distance=0.4, generator=0)
    >>> len(plot_gram_spectrum(gram_spectrum(X, [3, 12, 48], n_draws=3, generator=0)).axes)
    2
    """
    fn = "mfteach.resnet.plot_gram_spectrum"
    s = _type(spectrum, GramSpectrum, "spectrum", fn, "GramSpectrum (from gram_spectrum)")
    err = _drawable(s.rms_error, fn, "errors", "spectrum")
    if not (err > 0).all():
        fail("spectrum", fn, "a result with positive errors (a log axis)", s.rms_error)
    fig, (ax1, ax2) = _figure(2, 10.5, left=0.085)
    _gram_panel(ax1, s, fn)
    _finish(ax1, "features M", "smallest eigenvalue of K_M",
            f"{s.family} features: K_M is singular below M = N", "lower right", log=False)
    M = np.asarray(s.widths, dtype=float)
    ax2.plot(M, err, ".-", color="0.75", lw=0.7, ms=3)
    le, lm = np.log(err).mean(1), np.log(M)  # log of the geometric mean over draws
    ax2.plot(M, np.exp(le), "o", color=COLORS["measured"], ms=4,
             label="‖K_M − K‖_F / N, geometric mean of draws")
    a = float(le.mean() - s.slope * lm.mean())
    ax2.plot(M, np.exp(a) * M ** s.slope, "-", color=COLORS["measured"], lw=1,
             label=f"fit: slope {s.slope:+.2f} ± {s.slope_se:.2f} (s.e. over draws)")
    c = float(np.exp((le + 0.5 * lm).mean()))
    ax2.plot(M, c * M ** -0.5, "--", color="k", lw=1, label="theory: c M^(−1/2)")
    _value_axis(ax2, s.widths)
    _finish(ax2, "features M", "RMS entry error ‖K_M − K‖_F / N",
            "K_M → K at the Monte-Carlo rate (mean of M rank-one terms)", "lower left")
    fig.suptitle(f"feature Gram at N = {s.n_points} points", fontsize=9, y=0.995)
    return fig


def _late_rate(h: History, b: int, loss=None) -> str:
    """The late log-loss rate of run ``b`` (of ``loss`` on the same steps, when given)."""
    try:
        fit = fit_log_rate(h if loss is None else replace(h, loss=loss))
    except ValueError:  # too few records in the late window (or non-positive losses)
        return "no late-window fit"
    return f"late rate {float(fit.rate[b]):.3g}/step"


def _loss_panel(ax, h: History, lazy, b: int, fn: str) -> None:
    k = h.step.cpu().numpy().astype(float)
    _runs(ax, k, _drawable(h.loss, fn, "losses", "history"), b, f"measured, {_late_rate(h, b)}")
    if lazy is not None:
        ax.plot(*_pos(k, _drawable(lazy.loss, fn, "lazy losses", "lazy")[:, b]),
                color=COLORS["lazy"], ls="--", lw=1, label=f"lazy (rn-lazy), "
                f"{_late_rate(h, b, lazy.loss)}, ρ∞ = {float(lazy.rate[b]):.3g}")
        plateau = float(lazy.plateau[b])
        if plateau > 0:
            ax.axhline(plateau, color=COLORS["lazy"], ls=":", lw=0.9,
                       label=f"lazy plateau L∞ = {plateau:.2g} (ker K_M)")
    _finish(ax, None, _LOSS, "linear convergence when λmin(K_M) > 0", "lower left")


def _pl_panel(ax, h: History, bound, bound_step: int, b: int, fn: str) -> None:
    k = h.step.cpu().numpy().astype(float)
    ratio, floor = (_drawable(x, fn, "PL ratios", "history") for x in (h.pl_ratio, h.pl_floor))
    _runs(ax, k, ratio, b, "‖∇L‖² / L")
    if float(floor[0, b]) > _SINGULAR * float(ratio[0, b]):
        ax.plot(*_pos(k, floor[:, b]), color=COLORS["floor"], ls="--", lw=1.1,
                label="floor 2 min_l λmin(K_M(x_l)) / (LN)")
    else:
        ax.plot([], [], " ", label="floor 0: K_M singular (M < N)")
    if bound is not None:
        bd = _drawable(bound.bound, fn, "bounds", "pl_bound")
        if isinstance(bound, PLTrace):
            ks, bd = bound.step.cpu().numpy().astype(float), bd[:, min(b, bd.shape[1] - 1)]
        else:
            ks, bd = np.array([float(bound_step)]), bd[min(b, bd.size - 1):][:1]
        ax.plot(*(p := _pos(ks, bd)), "v", color=COLORS["bound"], ms=6, label="bound (rn-pl-"
                f"bound){', with the Jacobians' if len(p[0]) else ' = 0: K_M singular'}")
    _finish(ax, None, "PL ratio ‖∇L‖² / L", "the local PL inequality", "lower left")


def plot_training(history: History, lazy: LazyPrediction | None = None,
                  pl_bound: PLBound | PLTrace | None = None, *,
                  spectrum: GramSpectrum | None = None, flow: FlowGrid | None = None,
                  targets: torch.Tensor | None = None, network: int = 0,
                  bound_step: int | None = None):
    r"""One run (the live widget's figure): the loss of ``network`` (bold; up to four others
    thin) with its late rate (:func:`mfteach.resnet.fit_log_rate`), the lazy curve
    :eq:`rn-lazy` (dashed) and the lazy plateau when :math:`K_M` is singular (dotted); the PL
    ratio :math:`\|\nabla\mathcal{L}\|^2/\mathcal{L}` with the Gram floor
    :math:`2\min_l\lambda_{\min}(K_M(x_l))/(LN)` (:eq:`rn-pl0` at step 0) and the bound
    :eq:`rn-pl-bound` (triangles); then, when given, :math:`\lambda_{\min}(K_M)` against
    :math:`M` (this run starred) and the learned flow.

    Parameters
    ----------
    history : History
        From :func:`mfteach.resnet.train`.
    lazy : LazyPrediction, optional
        From :func:`mfteach.resnet.lazy_prediction` with ``step=history.step``.
    pl_bound : PLBound or PLTrace, optional
        From :func:`mfteach.resnet.pl_lower_bound`, drawn at ``bound_step``, a step of the run
        (default: the last recorded step, the bound of ``history.final``), or
        :func:`mfteach.resnet.pl_trace`.
    spectrum, flow, targets : optional
        From :func:`mfteach.resnet.gram_spectrum` and :func:`mfteach.resnet.flow_grid`
        (of ``history.final``); ``targets`` (n, 2), crosses in the flow.
    network : int
        The network drawn in bold.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError, ValueError
        One line: a bad argument, a prediction at other steps, non-finite values.

    Examples
    --------
    >>> from mfteach.resnet import init_resnet, lazy_prediction, toy_data, train
    >>> X, Y = toy_data(6, amplitude=0.2, min_distance=0.4, generator=0)
    >>> net = init_resnet(2, 2, 32, 4, bandwidth=0.5, scheme="euler", generator=1)
    >>> h = train(net, X, Y, lr=5.0, steps=30, record_every=3)
    >>> len(plot_training(h, lazy_prediction(net, X, Y, lr=5.0, step=h.step)).axes)
    2
    """
    fn = "mfteach.resnet.plot_training"
    h = _type(history, History, "history", fn, "History (from train)")
    b = check_int(network, "network", fn, min=0, max=h.loss.shape[1] - 1)
    if lazy is not None:
        _type(lazy, LazyPrediction, "lazy", fn, "LazyPrediction")
        if lazy.loss.shape != h.loss.shape or not torch.equal(lazy.step.cpu(), h.step.cpu()):
            fail("lazy", fn, "a LazyPrediction at the history's steps and networks "
                 "(lazy_prediction(..., step=history.step))", lazy.loss)
    _type(pl_bound, (PLBound, PLTrace, type(None)), "pl_bound", fn, "PLBound, PLTrace or None")
    last = int(h.step[-1])
    bound_step = check_int(last if bound_step is None else bound_step, "bound_step", fn, min=0,
                           max=last)
    for x, cls, what in ((spectrum, GramSpectrum, "spectrum"), (flow, FlowGrid, "flow")):
        _type(x, (cls, type(None)), what, fn, f"{cls.__name__} or None")
    n = 2 + (spectrum is not None) + (flow is not None)
    fig, axes = _figure(n, 3.75 * n, left=0.24 / n)
    _loss_panel(axes[0], h, lazy, b, fn)
    _pl_panel(axes[1], h, pl_bound, bound_step, b, fn)
    if spectrum is not None:
        _gram_panel(axes[2], spectrum, fn, mark=(h.final.n_features,
                                                 float(h.gram_min_input[b])))
        _finish(axes[2], "features M", "smallest eigenvalue of K_M", "expressivity: λmin(K_M) "
                "> 0 needs M ≥ N", "lower right", log=False, fontsize=6)
    if flow is not None:
        plot_flow(flow, targets=targets, ax=axes[-1])
    net = h.final
    fig.suptitle(f"{net.feats.family} features, M = {net.n_features}, L = {net.depth} "
                 f"({net.scheme}), N = {h.n_train}, bandwidth σ = {net.feats.bandwidth:g}, "
                 f"lr η = {h.lr:.3g}, {int(h.step[-1])} steps", fontsize=9, y=0.995)
    return fig


def plot_width_sweep(sweep: WidthSweep):
    r"""Training across :math:`M = N`, one colour per width: the loss (median over data sets,
    band: all) beside the lazy prediction :eq:`rn-lazy` (dashed); the PL ratio beside its floor
    :math:`2\lambda_{\min}(K_M)/(LN)` :eq:`rn-pl0` (dashed, absent when :math:`M < N`); the
    fitted late rate of :math:`\log\mathcal{L}` against that of the lazy curve on the same
    window (``rate``, ``lazy_rate``), beside the diagonal.

    Parameters
    ----------
    sweep : WidthSweep
        From :func:`mfteach.resnet.width_sweep`.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError, ValueError
        One line: another type, or non-finite recorded values.

    Examples
    --------
    >>> from mfteach.resnet import width_sweep
    >>> sw = width_sweep([4, 32], n_train=6, depth=4, steps=40, n_data=2, generator=0)
    >>> len(plot_width_sweep(sw).axes)
    3
    """
    fn = "mfteach.resnet.plot_width_sweep"
    from matplotlib import colormaps

    sw = _type(sweep, WidthSweep, "sweep", fn, "WidthSweep (from width_sweep)")
    k = sw.step.cpu().numpy().astype(float)
    loss, lazy, ratio, floor, rate, lazy_rate = (
        _drawable(getattr(sw, a), fn, a.replace("_", " ") + " values", "sweep")
        for a in ("loss", "lazy_loss", "pl_ratio", "pl_floor0", "rate", "lazy_rate"))
    N, W = sw.n_train, len(sw.widths)
    fig, (ax1, ax2, ax3) = _figure(3, 13.5, left=0.06)
    for w, M in enumerate(sw.widths):
        col = colormaps["viridis"](0.9 * w / max(W - 1, 1))
        lo, hi = loss[w].min(1), loss[w].max(1)
        ax1.fill_between(k[lo > 0], lo[lo > 0], hi[lo > 0], color=col, alpha=0.15, lw=0)
        side = "<" if M < N else ("=" if M == N else ">")
        ax1.plot(*_pos(k, np.median(loss[w], 1)), color=col, lw=1.5, label=f"M = {M} {side} N")
        ax1.plot(*_pos(k, np.median(lazy[w], 1)), color=col, lw=1, ls="--")
        ax2.plot(*_pos(k, np.median(ratio[w], 1)), color=col, lw=1.5, label=f"M = {M}")
        f0 = float(np.median(floor[w]))
        if f0 > _SINGULAR * float(np.median(ratio[w, 0])):
            ax2.axhline(f0, color=col, ls="--", lw=1)
        ax3.plot(lazy_rate[w], rate[w], "o", color=col, ms=5, label=f"M = {M}")
    ax1.plot([], [], color="0.3", label="measured: median, band: all data sets")
    ax1.plot([], [], color="0.3", ls="--", label="lazy prediction (rn-lazy)")
    ax2.plot([], [], color="0.3", ls="--", label="floor 2 λmin(K_M) / (LN) (rn-pl0)")
    _finish(ax1, None, _LOSS, "linear convergence above M = N, a plateau below", "lower left")
    _finish(ax2, None, "PL ratio ‖∇L‖² / L (median)", "the PL ratio stays above its Gram "
            "floor", "lower left")
    top = 1.08 * max(float(rate.max()), float(lazy_rate.max()), 1e-12)
    ax3.plot([0, top], [0, top], color="k", ls="--", lw=0.9, label="theory: fitted = lazy")
    ax3.set(xlim=(min(0.0, float(lazy_rate.min())), top), ylim=(min(0.0, float(rate.min())), top))
    _finish(ax3, "late rate of the lazy curve per step", "late rate of the measured loss per "
            "step", "measured against lazy, same late window", "upper left", log=False)
    fig.suptitle(f"N = {N} points, L = {sw.depth} blocks, lr η = {sw.lr:g}, target "
                 f"amplitude {sw.amplitude:g}, {loss.shape[2]} data sets per width",
                 fontsize=9, y=0.995)
    return fig


def plot_depth_convergence(conv: DepthConvergence, *, ax=None):
    r"""Output error of the depth-:math:`L` ResNet against its neural ODE per scheme (fitted
    order ± s.e. in the legend; largest state error dotted), beside the declared orders
    :math:`L^{-1}` (Euler) and :math:`L^{-2}` (midpoint) through each first point.

    Parameters
    ----------
    conv : DepthConvergence
        From :func:`mfteach.resnet.depth_convergence`.
    ax : matplotlib Axes, optional
        Draw there (the Figure returned is its figure).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError, ValueError
        One line: another type, non-finite values.

    Examples
    --------
    >>> from mfteach.resnet import depth_convergence, init_resnet, toy_data, train
    >>> X, Y = toy_data(5, generator=0)
    >>> net = train(init_resnet(2, 2, 16, 2, bandwidth=0.5, generator=1), X, Y, lr=5.0,
    ...             steps=10).final
    >>> len(plot_depth_convergence(depth_convergence(net, X, [4, 8, 16])).axes)
    1
    """
    fn = "mfteach.resnet.plot_depth_convergence"
    c = _type(conv, DepthConvergence, "conv", fn, "DepthConvergence")
    fig, ax = _single(ax, fn, (5.2, 3.9))
    Ls = np.asarray(c.depths, dtype=float)
    for scheme, err in c.error_output.items():
        e = _drawable(err, fn, "errors", "conv")
        col = COLORS.get(scheme, "C2")
        ax.plot(*_pos(Ls, e), "o-", color=col, ms=4, label=f"{scheme}: fitted order "
                f"{c.order[scheme]:.2f} ± {c.order_se[scheme]:.2f}")
        if scheme in c.error_path:
            ax.plot(*_pos(Ls, _drawable(c.error_path[scheme], fn, "errors", "conv")), ":",
                    color=col, lw=0.9)
        p = ORDER.get(scheme)
        if p is not None and e[0] > 0:
            ax.plot(Ls, e[0] * (Ls / Ls[0]) ** -p, "--", color="k", lw=0.8, alpha=0.7,
                    label=f"theory: order {p}, L^(−{p})")
    ax.plot([], [], ":", color="0.3", label="largest state error along depth")
    _value_axis(ax, c.depths)
    _finish(ax, "depth L (blocks, step h = 1/L)", "max |f_L(x) − f_ODE(x)| over the data",
            "the ResNet converges to its neural ODE", "lower left", fontsize=7)
    return fig


def plot_flow(grid: FlowGrid, *, targets: torch.Tensor | None = None, ax=None):
    r"""The learned flow: the grid at :math:`s = 0` (light grey) and carried to :math:`s = 1`,
    the data's paths coloured by depth :math:`s` (viridis, dark at 0), inputs (open circles),
    outputs (dots) and the targets (crosses, when given).

    Parameters
    ----------
    grid : FlowGrid
        From :func:`mfteach.resnet.flow_grid`.
    targets : Tensor, shape (n, 2), optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError, ValueError
        One line: another type, non-finite values.

    Examples
    --------
    >>> from mfteach.resnet import flow_grid, init_resnet, toy_data
    >>> X, _ = toy_data(5, generator=0)
    >>> len(plot_flow(flow_grid(init_resnet(2, 2, 8, 4, generator=1), X)).axes)
    1
    """
    fn = "mfteach.resnet.plot_flow"
    g = _type(grid, FlowGrid, "grid", fn, "FlowGrid (from flow_grid)")
    fig, ax = _single(ax, fn, (4.8, 4.4))
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import MaxNLocator

    lines = _drawable(g.lines, fn, "grid lines", "grid")  # (L+1, 2 n_lines, n_points, 2)
    pts = _drawable(g.points, fn, "trajectories", "grid")  # (L+1, n, 2)
    s = _drawable(g.depth_s, fn, "depths", "grid")
    ax.add_collection(LineCollection(lines[0], colors="0.8", linewidths=0.7,
                                     label="grid at s = 0"))
    ax.add_collection(LineCollection(lines[-1], colors=COLORS["flow"], linewidths=0.7,
                                     alpha=0.6, label="grid carried to s = 1"))
    segs = np.stack([pts[:-1], pts[1:]], 2).transpose(1, 0, 2, 3).reshape(-1, 2, 2)
    traj = LineCollection(segs, cmap="viridis", linewidths=1.4)
    traj.set_array(np.tile((s[:-1] + s[1:]) / 2, pts.shape[1]))  # colour: depth s
    traj.set_clim(0.0, 1.0)
    ax.add_collection(traj)
    ax.plot(pts[0, :, 0], pts[0, :, 1], "o", mfc="white", mec="k", ms=4, mew=0.7,
            label="x, then its path (colour: s)")
    ax.plot(pts[-1, :, 0], pts[-1, :, 1], "o", color="k", ms=3.5, label="f(x) at s = 1")
    if targets is not None:
        check_tensor(targets, "targets", fn, shape=(pts.shape[1], None))
        Y = _drawable(targets, fn, "targets", "targets")
        ax.plot(Y[:, 0], Y[:, 1], "x", color=COLORS["target"], ms=5, mew=1.2, label="y")
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")
    ax.xaxis.set_major_locator(MaxNLocator(4))  # few ticks: their layout is costly
    ax.yaxis.set_major_locator(MaxNLocator(4))
    _finish(ax, "state coordinate x1", "state coordinate x2",
            f"the learned flow through L = {pts.shape[0] - 1} blocks", "upper right",
            log=False, fontsize=6)
    return fig
