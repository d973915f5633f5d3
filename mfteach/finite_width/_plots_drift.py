"""Figure of the NTK drift study (a matplotlib ``Figure``, no global state)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .._checks import fail
from ._drift_study import DriftStudy

__all__ = ["plot_drift_study"]


def _as_studies(value, name: str, fn: str, allow_none: bool = False) -> list[DriftStudy]:
    if value is None and allow_none:
        return []
    if isinstance(value, DriftStudy):
        return [value]
    if (isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value
            or not all(isinstance(s, DriftStudy) for s in value)):
        fail(name, fn, "a DriftStudy or a non-empty sequence of DriftStudy", value,
             exc=TypeError)
    return list(value)


def _check_drawable(st: DriftStudy, name: str, fn: str) -> None:
    for field in ("sup_mean", "sup_stderr", "fraction", "fraction_stderr"):
        v = getattr(st, field)
        if not bool(torch.isfinite(v).all()) or (field == "sup_mean" and not bool(
                (v > 0).all())):
            fail(name, fn, f"a DriftStudy with finite{' positive' * (field == 'sup_mean')} "
                 f"DriftStudy.{field}", v)


def plot_drift_study(study: DriftStudy | Sequence[DriftStudy], *,
                     fraction: DriftStudy | Sequence[DriftStudy] | None = None):
    r"""(a) Sup-in-time relative NTK change against width, one thin line per data set and
    the mean over data sets with its standard error, with the reference slopes
    :math:`-1/2` (rigorous bound) and :math:`-1` (smooth heuristic); (b) the fraction of
    networks whose loss reached the threshold against width, with binomial error bars.

    Parameters
    ----------
    study : DriftStudy or sequence of DriftStudy
        Panel (a); also panel (b) unless ``fraction`` is given.
    fraction : DriftStudy or sequence of DriftStudy, optional
        Studies for panel (b) (e.g. a cheaper call at small widths with many networks).

    Returns
    -------
    (fig, axes)

    Examples
    --------
    >>> from mfteach.finite_width import ntk_drift_study
    >>> st = ntk_drift_study("relu", [8, 32], n_datasets=2, n_networks=2, max_steps=20,
    ...                      generator=0)
    >>> fig, (ax1, ax2) = plot_drift_study(st)
    >>> ax2.get_ylabel()
    'fraction with loss < threshold'
    """
    fn = "mfteach.finite_width.plot_drift_study"
    studies = _as_studies(study, "study", fn)
    fracs = _as_studies(fraction, "fraction", fn, allow_none=True) or studies
    for st in studies:
        _check_drawable(st, "study", fn)
    for st in fracs:
        _check_drawable(st, "fraction", fn)
    names = list(dict.fromkeys(st.activation for st in [*studies, *fracs]))
    color = {a: f"C{i}" for i, a in enumerate(names)}  # one colour per activation
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.5, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.15, top=0.9, wspace=0.3)
    for st in studies:
        n = np.asarray(st.widths, dtype=float)
        col = color[st.activation]
        for i in range(st.sup_mean.shape[0]):
            ax1.plot(n, st.sup_mean[i].cpu().numpy(), color=col, lw=0.6, alpha=0.45)
        mean = st.sup_mean.mean(0).cpu().numpy()
        se = (st.sup_mean.std(0) / st.sup_mean.shape[0] ** 0.5).cpu().numpy()
        sp = st.spread
        ax1.errorbar(n, mean, yerr=np.minimum(se, 0.9 * mean), fmt="o-", color=col,
                     capsize=3, label=f"{st.activation}: slope {sp.mean:+.2f} ± "
                     f"{sp.stderr:.2f} ({sp.n} data sets)")
    n0 = float(min(min(st.widths) for st in studies))
    n1 = float(max(max(st.widths) for st in studies))
    y0 = float(max(st.sup_mean.mean(0)[0] for st in studies))
    grid = np.geomspace(n0, n1, 50)
    for p, ls in ((-0.5, "--"), (-1.0, ":")):
        ax1.plot(grid, y0 * (grid / n0) ** p, "k" + ls, lw=0.9, label=f"theory: slope {p:g}")
    ax1.set_xscale("log", base=2)
    ax1.set_yscale("log")
    ax1.set_xlabel("width N")
    ax1.set_ylabel(r"$\sup_t \|\Theta_t - \Theta_0\|_F / \|\Theta_0\|_F$")
    ax1.set_title("NTK drift during the whole training", fontsize=9)
    ax1.legend(fontsize=7)
    for st in fracs:
        n = np.asarray(st.widths, dtype=float)
        M = st.reached.shape[0] * st.reached.shape[2]
        ax2.errorbar(n, st.fraction.cpu().numpy(), yerr=st.fraction_stderr.cpu().numpy(),
                     fmt="s-", color=color[st.activation], capsize=3,
                     label=f"{st.activation} ({M} networks, loss < {st.loss_threshold:g} "
                           f"in {st.max_steps} steps)")
    ax2.axhline(1.0, color="k", ls="--", lw=0.9, label="theory: 1 as N grows (global min.)")
    ax2.set_xscale("log", base=2)
    ax2.set_ylim(-0.05, 1.08)
    ax2.set_xlabel("width N")
    ax2.set_ylabel("fraction with loss < threshold")
    ax2.set_title("gradient descent reaches a global minimum", fontsize=9)
    ax2.legend(fontsize=7)
    return fig, (ax1, ax2)
