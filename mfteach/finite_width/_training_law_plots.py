"""Figures of the trained ensemble's law (matplotlib ``Figure`` objects, no global state)."""

from __future__ import annotations

import math

import numpy as np

from .._checks import fail
from ._plots import _drawable, _figure
from ._trained_distance import TrainedDistance
from ._training_law import TrainingCumulants

__all__ = ["plot_training_cumulants", "plot_trained_distance"]


def plot_training_cumulants(result: TrainingCumulants):
    r"""Measured :math:`\sqrt N\,\kappa_3` and :math:`N\kappa_4` of :math:`f_k(x_*)` against
    the GD step, per width (points with standard-error bars), and the pushed prediction
    (:func:`pushed_cumulants`, lines; width-independent after rescaling).

    Returns
    -------
    (fig, axes)
    """
    fn = "mfteach.finite_width.plot_training_cumulants"
    if not isinstance(result, TrainingCumulants):
        fail("result", fn, "a TrainingCumulants (from training_cumulants)", result,
             exc=TypeError)
    for name in ("kappa", "stderr", "predicted"):
        _drawable(getattr(result, name), "result", fn, f"{name} values")
    fig, axes = _figure(2, width=10.0)
    step = result.step.cpu().numpy()
    colors = [f"C{i}" for i in range(len(result.widths))]
    for ax, r, p, label in ((axes[0], 2, 0.5, r"$\sqrt{N}\,\kappa_3$"),
                            (axes[1], 3, 1.0, r"$N\,\kappa_4$")):
        for j, (n, c) in enumerate(zip(result.widths, colors)):
            s = n**p
            ax.errorbar(step + 0.6 * (j - len(result.widths) / 2), s * result.kappa[j, :, r]
                        .cpu().numpy(), yerr=s * result.stderr[j, :, r].cpu().numpy(),
                        fmt="o", ms=3, color=c, capsize=2, label=f"measured, N = {n}")
        ax.plot(step, result.widths[0] ** p * result.predicted[0, :, r].cpu().numpy(), "k-",
                lw=1.5, label="pushed prediction")
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_xlabel("GD step k (time t = lr k)")
        ax.set_ylabel(label + r" of $f_k(x_*)$")
        ax.legend(fontsize=7)
    axes[0].set_title(f"{result.activation}, readout {result.readout}", fontsize=9)
    axes[1].set_title("finite-width field pushed through the linear flow", fontsize=9)
    return fig, axes


def plot_trained_distance(result: TrainedDistance):
    r"""Upper (:func:`empirical_w2`) and lower (moment-matched) :math:`W_2` to the GP law
    against the width, at :math:`t = 0` and after training: data-set means with their
    spread, the sampling floor, the Cornish-Fisher leading order at :math:`t = 0`, and the
    fitted slopes (mean :math:`\pm` standard error over the data sets).

    Returns
    -------
    (fig, axes)
    """
    fn = "mfteach.finite_width.plot_trained_distance"
    if not isinstance(result, TrainedDistance):
        fail("result", fn, "a TrainedDistance (from trained_distance)", result,
             exc=TypeError)
    for name in ("upper", "floor", "cornish_fisher"):
        _drawable(getattr(result, name), "result", fn, f"{name} values", positive=True)
    _drawable(result.lower, "result", fn, "lower values")
    fig, axes = _figure(2, width=10.0)
    n = np.asarray(result.widths, dtype=float)
    for t, ax in enumerate(axes):
        up = result.upper[:, t].cpu().numpy()
        lo = result.lower[:, t].cpu().numpy()
        R = up.shape[0]
        err = up.std(0, ddof=1) / math.sqrt(R) if R > 1 else None
        ax.errorbar(n, up.mean(0), yerr=err, fmt="o-", color="C0", capsize=2,
                    label="upper: exact $W_2$ of the empirical law")
        lerr = lo.std(0, ddof=1) / math.sqrt(R) if R > 1 else None
        ax.errorbar(n, np.maximum(lo.mean(0), 1e-6), yerr=lerr, fmt="s--", color="C1",
                    capsize=2, label="lower: moment-matched (Gelbrich)")
        fl = float(result.floor[:, t].mean())
        ax.axhline(fl, color="0.5", ls=":", label=f"sampling floor (M = {result.n_networks})")
        if t == 0:
            ax.plot(n, result.cornish_fisher.cpu().numpy(), "k-", lw=1,
                    label="Cornish-Fisher leading order")
        sp = result.spread[t]
        if sp is not None:
            ref = float(np.exp(np.log(up.mean(0)).mean()))
            ax.plot(n, ref * (n / np.exp(np.log(n).mean())) ** sp.mean, color="C2", lw=1,
                    label=f"fit: slope {sp.mean:+.2f} ± {sp.stderr:.2f} ({sp.n} sets)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width N")
        ax.set_ylabel(r"$W_2$ to the GP law (units of f)")
        ax.set_title(f"step {result.step[t]} ({result.readout} readout)", fontsize=9)
        ax.legend(fontsize=7)
    return fig, axes
