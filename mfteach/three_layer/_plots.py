r"""Figures of the three-layer chapter (matplotlib ``Figure`` objects, no global state).

Every figure draws the theory beside the measurement: the loss bound beside the loss, the
Schur bound beside :math:`\lambda_{\min}(K_t)`, the predicted slopes beside the fitted ones.
Colours: ``"mf_half"`` blue, ``"mf_one"`` orange, ``"ntk"`` red (dashed for the mirror-pair
initialisation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .._checks import check_int, check_tensor, fail
from ..plotting import loglog_with_fit
from ._experiments import MovementSweep
from ._sweeps import GeneralizationSweep, NeuronLimit
from ._train import History

__all__ = ["plot_loss", "plot_kernel_eigenvalues", "plot_neurons", "plot_training",
           "plot_movement", "plot_neuron_limit", "plot_generalization", "plot_norms", "COLORS",
           "LABELS"]

COLORS = {"mf_half": "C0", "mf_one": "C1", "ntk": "C3", "ntk_antisymmetric": "C3"}
"""Colour of each scaling (and of the mirror-pair NTK variant) in every figure."""

LABELS = {"mf_half": "mean field, α = 1/2", "mf_one": "mean field, α = 1",
          "ntk": "NTK scaling", "ntk_antisymmetric": "NTK, f0 ≡ 0 (mirror pairs)"}
"""Legend label of each scaling."""


def _check_ax(ax, fn: str) -> None:
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        fail("ax", fn, "a matplotlib Axes or None", ax, exc=TypeError)


def _new_axes(ax, figsize=(4.6, 3.6)):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.16, right=0.97, bottom=0.15, top=0.88)
    return fig, ax


def _history(history, fn: str) -> History:
    if not isinstance(history, History):
        fail("history", fn, "an mfteach.three_layer.History", history, exc=TypeError)
    return history


def _drawable(x: torch.Tensor, fn: str, what: str, *, positive: bool = False,
              name: str = "history") -> np.ndarray:
    """A recorded quantity about to be drawn: finite (positive on a log axis), as numpy."""
    ok = bool(torch.isfinite(x).all()) and (not positive or bool((x > 0).all()))
    if not ok:
        fail(name, fn, f"a result with {'positive' if positive else 'finite'} {what}", x)
    return x.detach().to("cpu", torch.float64).numpy()


def _width_ticks(ax, widths) -> None:
    """Plain tick labels at the measured widths of a log axis (no 3x10^1 clutter)."""
    from matplotlib.ticker import NullFormatter, NullLocator

    ax.set_xticks([float(w) for w in widths], [str(int(w)) for w in widths])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _sparse_log_ticks(axis) -> None:
    """At most six decades labelled and no minor ticks on a log axis (a loss falling over
    15 decades would otherwise draw ~100 ticks, the bulk of a widget update)."""
    from matplotlib.ticker import LogLocator, NullLocator

    axis.set_major_locator(LogLocator(numticks=6))
    axis.set_minor_locator(NullLocator())
    _plain_labels(axis)


def _plain_labels(axis) -> None:
    """Tick labels as plain numbers ("0.1", "1e-06"): the default log labels are mathtext,
    parsed anew for every frame of an explorer."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _network(network: int, history: History, fn: str) -> int:
    return check_int(network, "network", fn, min=0, max=history.loss.shape[1] - 1)


def plot_loss(history: History, *, ax=None, max_networks: int = 5):
    r"""Training loss :math:`L(t)` of each network (solid) with its bound
    :math:`L(0)e^{-2\underline\lambda(t)t/N}` (dashed), eq. :eq:`tl-loss-bound`, on a log axis;
    the held-out loss of the first network dotted.

    Returns
    -------
    (fig, ax)
    """
    fn = "mfteach.three_layer.plot_loss"
    h = _history(history, fn)
    _check_ax(ax, fn)
    max_networks = check_int(max_networks, "max_networks", fn, min=1)
    fig, ax = _new_axes(ax)
    t = h.t.cpu().numpy()
    loss = _drawable(h.loss, fn, "losses", positive=True)
    bound = _drawable(h.loss_bound, fn, "loss bounds", positive=True)
    col = COLORS.get(h.scaling, "C0")
    for b in range(min(max_networks, loss.shape[1])):
        ax.plot(t, loss[:, b], color=col, lw=1.2, alpha=0.85,
                label="training loss L(t)" if b == 0 else None)
        ax.plot(t, bound[:, b], color=col, lw=1, ls="--", alpha=0.7,
                label="bound L(0) exp(−2λt/N), λ = inf λmin" if b == 0 else None)
    if h.test_loss is not None:
        ax.plot(t, _drawable(h.test_loss[:, 0], fn, "test losses"), color="k", lw=1,
                ls=":", label="held-out loss (network 1)")
    ax.set_yscale("log")
    _sparse_log_ticks(ax.yaxis)
    ax.set_xlabel("time t")
    ax.set_ylabel("loss")
    ax.set_title(f"{LABELS.get(h.scaling, h.scaling)}: linear rate", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    return fig, ax


def plot_kernel_eigenvalues(history: History, *, ax=None, network: int = 0):
    r""":math:`\lambda_{\min}(K_t)`, its running infimum and the Schur bound
    :math:`\lambda_{\min}(\hat k_1)\min_n A_t(x_n, x_n)` along training, for one network.

    Returns
    -------
    (fig, ax)
    """
    fn = "mfteach.three_layer.plot_kernel_eigenvalues"
    h = _history(history, fn)
    _check_ax(ax, fn)
    b = _network(network, h, fn)
    fig, ax = _new_axes(ax)
    t = h.t.cpu().numpy()
    col = COLORS.get(h.scaling, "C0")
    ax.plot(t, _drawable(h.lambda_min[:, b], fn, "eigenvalues"), color=col,
            label="λmin(K_t)")
    ax.plot(t, _drawable(h.lambda_inf[:, b], fn, "eigenvalues"), color=col, ls=":",
            label="running infimum of λmin(K_s), s ≤ t")
    ax.plot(t, _drawable(h.schur[:, b], fn, "Schur bounds"), color="k", ls="--",
            label="Schur bound λmin(k̂1) · min_n A_t(x_n, x_n)")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time t")
    ax.set_ylabel("eigenvalue of K_t on the training set")
    ax.set_title("the kernel stays positive definite", fontsize=9)
    ax.legend(fontsize=7)
    return fig, ax


def plot_neurons(history: History, *, ax=None, network: int = 0, teacher=None):
    r"""The first neuron functions :math:`h_i` on the slice at :math:`t = 0` (thin, grey)
    and at the end (coloured), with the network output and the teacher when given.

    Parameters
    ----------
    history : History
        From :func:`mfteach.three_layer.run` (with a slice).
    teacher : Tensor, shape (S,), optional
        The target on the slice (:func:`mfteach.three_layer.slice_target`).

    Returns
    -------
    (fig, ax)
    """
    fn = "mfteach.three_layer.plot_neurons"
    h = _history(history, fn)
    _check_ax(ax, fn)
    b = _network(network, h, fn)
    if h.slice_s is None:
        fail("history", fn, "a History with a slice (train with X_slice)", history)
    fig, ax = _new_axes(ax)
    s = h.slice_s.cpu().numpy()
    h0 = _drawable(h.slice_h0[b], fn, "neuron snapshots")
    hT = _drawable(h.slice_hT[b], fn, "neuron snapshots")
    for i in range(h0.shape[0]):
        ax.plot(s, h0[i], color="0.6", lw=0.9, label="h_i at t = 0" if i == 0 else None)
        ax.plot(s, hT[i], color=f"C{(i + 4) % 10}", lw=1.4,
                label="h_i at t = T" if i == 0 else None)
    ax.plot(s, _drawable(h.slice_fT[b], fn, "outputs"), color="k", lw=1.8,
            label="output f at t = T")
    if teacher is not None:
        check_tensor(teacher, "teacher", fn, shape=(len(s),))
        ax.plot(s, _drawable(teacher, fn, "teacher values", name="teacher"), color="k",
                ls=":", lw=1.5, label="teacher")
    ax.set_xlabel("position s on the slice x = cos(s) e1 + sin(s) e2")
    ax.set_ylabel("value")
    ax.set_title(f"neurons as functions (first {h0.shape[0]} of {h.m2})", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return fig, ax


def plot_training(history: History, teacher=None):
    """Three panels of one run: loss with its bound, the kernel's eigenvalue with the Schur
    bound, and the neuron functions before and after training (the live widget's figure).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fn = "mfteach.three_layer.plot_training"
    h = _history(history, fn)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12.0, 3.7))  # fixed margins: a layout engine would double the cost
    ax1, ax2, ax3 = fig.subplots(1, 3)
    fig.subplots_adjust(left=0.075, right=0.99, bottom=0.15, top=0.88, wspace=0.3)
    plot_loss(h, ax=ax1)
    plot_kernel_eigenvalues(h, ax=ax2)
    plot_neurons(h, ax=ax3, teacher=teacher)
    fig.suptitle(f"m1 = {h.m1}, m2 = {h.m2}, N = {h.n_train}, dt = {h.dt:g}", fontsize=9,
                 y=0.995)
    return fig


def plot_movement(sweeps: Sequence[MovementSweep], *, ax=None, mark: int | None = None):
    r"""Final neuron movement :math:`\|h(T) - h(0)\|` against the width, one series per
    scaling (seed mean with its standard error), with the fitted slopes and the predictions 0
    (mean field) and :math:`-1/2` (NTK).

    Returns
    -------
    (fig, ax)
    """
    fn = "mfteach.three_layer.plot_movement"
    if isinstance(sweeps, MovementSweep):
        sweeps = [sweeps]
    if not isinstance(sweeps, Sequence) or not sweeps or not all(
            isinstance(s, MovementSweep) for s in sweeps):
        fail("sweeps", fn, "a sequence of MovementSweep", sweeps, exc=TypeError)
    _check_ax(ax, fn)
    fig, ax = _new_axes(ax)
    for sw in sweeps:
        mv = _drawable(sw.movement, fn, "movements", positive=True, name="sweeps")
        col, w = COLORS[sw.scaling], np.asarray(sw.widths, dtype=float)
        mean = mv.mean(1)
        ax.errorbar(w, mean, yerr=mv.std(1, ddof=1) / np.sqrt(mv.shape[1]), fmt="o",
                    color=col, capsize=3,
                    label=f"{LABELS[sw.scaling]}: slope {sw.slope_mean:+.2f} ± "
                          f"{sw.slope_std:.2f} (seed spread)")
        fit = np.exp(sw.fit.intercept) * w ** sw.fit.slope
        ax.plot(w, fit, color=col, lw=1)
        pred = -0.5 if sw.scaling == "ntk" else 0.0
        ax.plot(w, mean[0] * (w / w[0]) ** pred, color=col, ls="--", lw=0.9, alpha=0.7)
    ax.plot([], [], color="k", ls="--", lw=0.9, label="theory: slope 0 (MF), -1/2 (NTK)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width m = m1 = m2")
    ax.set_ylabel("movement ‖h(T) − h(0)‖")
    from matplotlib.ticker import LogLocator

    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    _plain_labels(ax.yaxis)
    _width_ticks(ax, sorted({w for sw in sweeps for w in sw.widths}))
    if mark is not None:
        ws = [w for sw in sweeps for w in sw.widths]
        ax.axvline(check_int(mark, "mark", fn, min=min(ws), max=max(ws)), color="grey",
                   lw=0.8)
    ax.set_title("feature learning: flat under both mean-field scalings", fontsize=9)
    ax.legend(fontsize=6)
    return fig, ax


def plot_neuron_limit(limit: NeuronLimit):
    r"""Left: the first trained neurons on the slice at each :math:`m_1` (light to dark).
    Right: their RMS distance to the widest network against :math:`m_1`, per seed and mean,
    with the fit and the Monte-Carlo slope :math:`-1/2`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fn = "mfteach.three_layer.plot_neuron_limit"
    if not isinstance(limit, NeuronLimit):
        fail("limit", fn, "an mfteach.three_layer.NeuronLimit", limit, exc=TypeError)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 3.7))
    ax1, ax2 = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.88, wspace=0.25)
    s = limit.slice_s.cpu().numpy()
    h = _drawable(limit.h, fn, "neuron snapshots", name="limit")
    W = h.shape[0]
    for w in range(W):
        shade = 0.25 + 0.75 * w / max(W - 1, 1)
        for i in range(min(3, h.shape[2])):
            ax1.plot(s, h[w, 0, i], color=(0.1, 0.3, 0.8, shade) if i == 0 else
                     ((0.8, 0.3, 0.1, shade) if i == 1 else (0.2, 0.6, 0.2, shade)),
                     lw=1.2, label=f"$m_1 = {limit.m1s[w]}$" if i == 0 else None)
    ax1.set_xlabel(r"position $s$ on the slice")
    ax1.set_ylabel("$h_i(x(s))$ at $t = T$")
    ax1.set_title(f"three trained neurons ({LABELS[limit.scaling]}, m2 = {limit.m2})",
                  fontsize=9)
    ax1.legend(fontsize=7, ncol=2)
    dist = _drawable(limit.distance, fn, "distances", positive=True, name="limit")
    for b in range(dist.shape[1]):
        ax2.plot(limit.m1s[:-1], dist[:, b], color="0.7", lw=0.8, marker=".")
    loglog_with_fit(limit.m1s[:-1], dist.mean(1), fit=limit.fit, reference_slopes=(-0.5,),
                    ax=ax2, xlabel="first-layer width $m_1$",
                    ylabel=f"RMS distance to $m_1 = {limit.m1s[-1]}$",
                    label=f"seed mean (per-seed slope {limit.slope_mean:+.2f} ± "
                          f"{limit.slope_std:.2f})")
    _width_ticks(ax2, limit.m1s[:-1])
    ax2.set_title("the neurons converge to functions", fontsize=9)
    ax2.legend(fontsize=7)
    return fig


def plot_generalization(sweep: GeneralizationSweep):
    r"""Left: final held-out loss (solid, seed mean ± standard error) and training loss
    (dotted) against the training-set size, per variant. Right: the [REC] Rademacher template
    beside the measured generalisation gap.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fn = "mfteach.three_layer.plot_generalization"
    if not isinstance(sweep, GeneralizationSweep):
        fail("sweep", fn, "an mfteach.three_layer.GeneralizationSweep", sweep, exc=TypeError)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 3.7))
    ax1, ax2 = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.88, wspace=0.27)
    n = np.asarray(sweep.n_trains, dtype=float)
    test, test_se = (_drawable(x, fn, "test losses", positive=True, name="sweep")
                     for x in sweep.mean_and_error("test_loss"))
    train = _drawable(sweep.mean_and_error("train_loss")[0], fn, "training losses",
                      positive=True, name="sweep")
    for k, v in enumerate(sweep.variants):
        ls = "--" if v.endswith("antisymmetric") else "-"
        ax1.errorbar(n, test[k], yerr=test_se[k], color=COLORS[v], ls=ls, marker="o",
                     capsize=3, label=f"{LABELS[v]}: held out")
        ax1.plot(n, train[k], color=COLORS[v], ls=":", marker=".", lw=0.9)
        gap = sweep.test_loss[k] - sweep.train_loss[k]
        rad = sweep.rademacher[k]
        if bool(torch.isfinite(rad).all()):
            ax2.plot(n, _drawable(rad.mean(-1), fn, "bounds", name="sweep"), color=COLORS[v],
                     ls=ls, marker="s", label=f"{LABELS[v]}: [REC] bound")
            ax2.plot(n, np.abs(_drawable(gap.mean(-1), fn, "gaps", name="sweep")),
                     color=COLORS[v], ls=ls, marker="o", mfc="white", lw=0.9)
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    _width_ticks(ax1, sweep.n_trains)
    ax1.set_xlabel("training points $N$")
    ax1.set_ylabel("loss at the end (dotted: training)")
    ax1.set_title("held-out loss of the trained networks", fontsize=9)
    ax1.legend(fontsize=7)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    _width_ticks(ax2, sweep.n_trains)
    ax2.set_xlabel("training points $N$")
    ax2.set_ylabel("squares: bound; circles: |test - train|")
    ax2.set_title("Rademacher template against the measured gap", fontsize=9)
    ax2.legend(fontsize=7)
    return fig


def plot_norms(histories: Sequence[History]):
    r"""Left: the [REC] norm :math:`\|z_i(t) - z_i(0)\|_{L^2(\pi)}` (RMS over neurons, mean
    over networks) along training, per scaling. Right: the [REC] Rademacher template
    (solid) beside the measured generalisation gap, held-out minus training loss (dotted).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fn = "mfteach.three_layer.plot_norms"
    if isinstance(histories, History):
        histories = [histories]
    if not isinstance(histories, Sequence) or not histories or not all(
            isinstance(h, History) for h in histories):
        fail("histories", fn, "a sequence of History", histories, exc=TypeError)
    for h in histories:
        if h.rademacher is None or h.test_loss is None:
            fail("histories", fn, "histories with held-out points and a Lipschitz sigma2 "
                 "(tanh, erf, relu)", histories)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 3.7))
    ax1, ax2 = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.88, wspace=0.27)
    for h in histories:
        t = h.t.cpu().numpy()
        col = COLORS.get(h.scaling, "C0")
        ax1.plot(t, _drawable(h.z_norm.mean(1), fn, "norms", name="histories"), color=col,
                 label=LABELS.get(h.scaling, h.scaling))
        later = t > 0  # both vanish at t = 0 (log axis)
        ax2.plot(t[later], _drawable(h.rademacher.mean(1), fn, "bounds",
                                     name="histories")[later], color=col)
        gap = _drawable((h.test_loss - h.loss).mean(1), fn, "gaps", name="histories")
        ax2.plot(t[later], np.abs(gap[later]), color=col, ls=":")
    ax1.set_xlabel("time t")
    ax1.set_ylabel("RMS of ‖z_i(t) − z_i(0)‖ in L²(π)")
    ax1.set_title("[REC] the norm of the neuron displacement", fontsize=9)
    ax1.legend(fontsize=8)
    ax2.plot([], [], color="k", label="[REC] Rademacher template")
    ax2.plot([], [], color="k", ls=":", label="measured |test − train|")
    ax2.set_yscale("log")
    _sparse_log_ticks(ax2.yaxis)
    ax2.set_xlabel("time t")
    ax2.set_ylabel("generalisation gap and its bound")
    ax2.set_title(f"N = {histories[0].n_train}: the template is far from sharp", fontsize=9)
    ax2.legend(fontsize=8)
    return fig
