"""Figures of the finite-width chapter (matplotlib ``Figure`` objects, no global state)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .._checks import check_int, check_tensor, fail
from ..plotting import histogram_with_densities, loglog_with_fit
from ._cumulants import CumulantScaling, OutputCumulants
from ._edgeworth import edgeworth_density
from ._ntk import EnsembleVsGP, NTKDrift

__all__ = ["plot_output_law", "plot_cumulant_scaling", "plot_ntk_drift",
           "plot_ensemble_vs_gp"]


def _check_ax(ax, fn: str) -> None:
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        fail("ax", fn, "a matplotlib Axes or None", ax, exc=TypeError)


def _drawable(x, name: str, fn: str, what: str, *, positive: bool = False) -> None:
    """A result field about to be drawn must be finite (and positive on a log axis): a NaN
    would silently be left out of the figure."""
    if isinstance(x, torch.Tensor):
        ok = bool(torch.isfinite(x).all()) and (not positive or bool((x > 0).all()))
    else:
        ok = math.isfinite(x) and (not positive or x > 0)
    if not ok:
        fail(name, fn, f"a result with {'positive' if positive else 'finite'} {what}", x)


def _figure(ncols: int, width: float = 9.0, height: float = 3.6):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, ncols)
    fig.subplots_adjust(left=0.11, right=0.98, bottom=0.15, top=0.88, wspace=0.32)
    return fig, axes


def plot_output_law(samples: torch.Tensor, theory: OutputCumulants, width: int, *, ax=None,
                    bins: int = 80):
    r"""Histogram of :math:`f(x)` with the Gaussian and the one- and two-term Edgeworth
    densities of :math:`\kappa_r = N^{1-r/2}\kappa_r(Z)` (``theory``) overlaid.

    Returns
    -------
    (fig, ax)
    """
    fn = "mfteach.finite_width.plot_output_law"
    check_tensor(samples, "samples", fn, ndim=1)
    if samples.numel() < 2:
        fail("samples", fn, "a tensor of at least 2 samples", samples)
    if not isinstance(theory, OutputCumulants):
        fail("theory", fn, "an OutputCumulants", theory, exc=TypeError)
    width = check_int(width, "width", fn, min=1)
    bins = check_int(bins, "bins", fn, min=1, max=100_000)
    _check_ax(ax, fn)
    s = samples.detach().to("cpu", torch.float64).ravel()
    k = theory.kappa(width)
    sd = math.sqrt(k[1])
    lo, hi = float(torch.quantile(s, 0.0005)), float(torch.quantile(s, 0.9995))
    grid = torch.linspace(min(lo, -4 * sd), max(hi, 4 * sd), 400, dtype=torch.float64)
    dens = {f"{name}": (grid, edgeworth_density(grid, kappa2=k[1], kappa3=k[2], kappa4=k[3],
                                                terms=t))
            for t, name in ((0, "Gaussian"), (1, "Edgeworth, 1 term"),
                            (2, "Edgeworth, 2 terms"))}
    if theory.skewness_coef == 0:
        dens.pop("Edgeworth, 1 term")  # identical to the Gaussian for a symmetric law
    inside = s[(s >= grid[0]) & (s <= grid[-1])]
    fig, ax = histogram_with_densities(inside, dens, bins=bins, xlabel="output f(x)", ax=ax)
    ax.set_title(f"{theory.activation}, readout {theory.readout}, N = {width}: skew "
                 f"{theory.skewness(width):.2f}, ex. kurt {theory.excess_kurtosis(width):.2f}",
                 fontsize=9)
    ax.legend(fontsize=8)
    return fig, ax


def plot_cumulant_scaling(scaling: CumulantScaling, *, ax=None, mark: int | None = None):
    r""":math:`N\,\kappa_4/\kappa_2^2` and :math:`\sqrt N\,\kappa_3/\kappa_2^{3/2}` against
    the width, with standard errors and the (flat) closed forms.

    Returns
    -------
    (fig, ax)
    """
    fn = "mfteach.finite_width.plot_cumulant_scaling"
    if not isinstance(scaling, CumulantScaling):
        fail("scaling", fn, "a CumulantScaling", scaling, exc=TypeError)
    for field in ("skewness", "skewness_stderr", "excess_kurtosis", "excess_kurtosis_stderr"):
        _drawable(getattr(scaling, field), "scaling", fn, f"CumulantScaling.{field}")
    _check_ax(ax, fn)
    if mark is not None:
        mark = check_int(mark, "mark", fn, min=min(scaling.widths), max=max(scaling.widths))
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.5, 3.6))
        ax = fig.subplots()
    fig = ax.figure
    n = np.asarray(scaling.widths, dtype=float)
    for y, se, lab, col, p in (
            (scaling.excess_kurtosis, scaling.excess_kurtosis_stderr,
             r"$N\,\times$ excess kurtosis", "C0", 1.0),
            (scaling.skewness, scaling.skewness_stderr, r"$\sqrt{N}\,\times$ skewness", "C1",
             0.5)):
        ax.errorbar(n, y.cpu().numpy() * n**p, yerr=se.cpu().numpy() * n**p, fmt="o",
                    color=col, capsize=3, label=lab)
    if scaling.theory is not None:
        ax.axhline(scaling.theory.kurtosis_coef, color="C0", ls="--", label="theory")
        ax.axhline(scaling.theory.skewness_coef, color="C1", ls="--")
    if mark is not None:
        ax.axvline(mark, color="grey", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("width N")
    ax.set_ylabel("rescaled cumulant")
    ax.legend(fontsize=8)
    ax.set_title("flat in N: cumulants scale as $N^{1-r/2}$", fontsize=9)
    return fig, ax


def plot_ntk_drift(drifts: Sequence[NTKDrift]):
    r"""Left: relative NTK change against training step per width. Right: the final change
    against width on log-log axes, with the fit and the reference slopes -1/2 and -1.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(drifts, NTKDrift):
        drifts = [drifts]
    fn = "mfteach.finite_width.plot_ntk_drift"
    if not isinstance(drifts, Sequence) or not drifts or not all(
            isinstance(d, NTKDrift) for d in drifts):
        fail("drifts", fn, "a sequence of NTKDrift", drifts, exc=TypeError)
    for dr in drifts:
        _drawable(dr.drift[1:], "drifts", fn, "NTKDrift.drift after step 0", positive=True)
        _drawable(dr.final, "drifts", fn, "NTKDrift.final", positive=True)
        _drawable(dr.final_stderr, "drifts", fn, "NTKDrift.final_stderr")
    fig, (ax1, ax2) = _figure(2)
    steps = drifts[0].step.cpu().numpy()[1:]  # step 0 has no drift (log axis)
    for i, dr in enumerate(drifts):
        for j, n in enumerate(dr.widths):
            ax1.plot(steps, dr.drift[1:, j].mean(1).cpu().numpy(), color=f"C{j}",
                     ls="-" if i == 0 else "--",
                     label=f"N = {n}" + (f" ({dr.activation})" if len(drifts) > 1 else ""))
    ax1.set_yscale("log")
    ax1.set_xlabel("GD step")
    ax1.set_ylabel(r"$\|\Theta_t - \Theta_0\|_F / \|\Theta_0\|_F$")
    ax1.legend(fontsize=7, ncol=1 + (len(drifts) > 1))
    for i, dr in enumerate(drifts):
        loglog_with_fit(dr.widths, dr.final, yerr=dr.final_stderr, fit=dr.fit,
                        xlabel="width N", ylabel="final relative NTK change",
                        reference_slopes=(-0.5, -1.0) if i == 0 else (),
                        label=dr.activation, ax=ax2)
    ax2.legend(fontsize=7)
    return fig


def plot_ensemble_vs_gp(result: EnsembleVsGP):
    r"""Left: the trained outputs at the smallest and largest width against the GP law.
    Right: :math:`W_2` (Gaussian fit) and KS distance to the GP law against width, with the
    sampling floors.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fn = "mfteach.finite_width.plot_ensemble_vs_gp"
    if not isinstance(result, EnsembleVsGP):
        fail("result", fn, "an EnsembleVsGP", result, exc=TypeError)
    _drawable(result.outputs, "result", fn, "EnsembleVsGP.outputs")
    _drawable(result.gp_mean, "result", fn, "EnsembleVsGP.gp_mean")
    _drawable(result.gp_var, "result", fn, "EnsembleVsGP.gp_var", positive=True)
    for field in ("w2", "ks"):
        _drawable(getattr(result, field), "result", fn, f"EnsembleVsGP.{field}",
                  positive=True)
    fig, (ax1, ax2) = _figure(2)
    sd = math.sqrt(result.gp_var)
    grid = np.linspace(result.gp_mean - 5 * sd, result.gp_mean + 5 * sd, 300)
    for j, c in ((0, "C1"), (len(result.widths) - 1, "C0")):
        ax1.hist(result.outputs[j].cpu().numpy(), bins=40, density=True, alpha=0.35, color=c,
                 label=f"trained, N = {result.widths[j]}")
    ax1.plot(grid, np.exp(-0.5 * ((grid - result.gp_mean) / sd) ** 2)
             / (sd * math.sqrt(2 * math.pi)), "k-", label="GP of the linear flow")
    ax1.set_xlabel(r"$f_t(x_*)$")
    ax1.set_ylabel("density")
    ax1.legend(fontsize=8)
    n = np.asarray(result.widths, dtype=float)
    ax2.loglog(n, result.w2.cpu().numpy(), "o-", label=r"$W_2$ (Gaussian fit)")
    ax2.loglog(n, result.ks.cpu().numpy(), "s-", label="KS distance")
    ax2.axhline(result.w2_floor, color="C0", ls=":", label="sampling floors")
    ax2.axhline(result.ks_floor, color="C1", ls=":")
    ax2.loglog(n, result.ks[0].item() * (n / n[0]) ** -0.5, "k--", lw=0.8,
               label="slope -1/2")
    ax2.set_xlabel("width N")
    ax2.set_ylabel("distance to the GP law")
    ax2.legend(fontsize=7)
    return fig
