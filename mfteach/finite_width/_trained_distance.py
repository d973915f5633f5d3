r"""Distances of the trained ensemble's law to the Gaussian process of the linear flow.

Two distances at one test point :math:`x_*`, between the law :math:`\mu` of
:math:`f_k(x_*)` (estimated from :math:`M` networks) and the GP law
:math:`\mathcal N(m_\infty, s_\infty^2)` of :func:`gp_prediction`:

* an UPPER estimate, the exact :math:`W_2` of the empirical law :math:`\mu_M`
  (:func:`empirical_w2`): :math:`\mathbb{E}W_2^2(\mu_M, \mathcal N) \ge W_2^2(\mu, \mathcal N)`,
  with a sampling floor estimated from exact Gaussian samples;
* a LOWER bound, the moment-matched (Gelbrich 1990) distance
  :math:`\sqrt{(m - m_\infty)^2 + (s - s_\infty)^2} \le W_2(\mu, \mathcal N)`.

Carvalho et al. (2023, arXiv 2304.03385, contribution (3)) bound the distance of the trained
law to the pushed GP by :math:`N^{-1/2}(\log N)^{1+}`; a skewed readout already reaches
:math:`N^{-1/2}` at :math:`t = 0`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_budget, check_float, check_int, check_tensor, fail
from ..activations import resolve_activation
from ..models import _draw_generator
from ..stats import SlopeFit, SlopeSpread, _as_float_array, fit_loglog_slope, slope_spread
from ._cumulants import _output_cumulants
from ._ntk import _check_train_sizes, _gp_prediction, _sphere_data, _trained_ensemble
from ._training_law import _common

__all__ = ["empirical_w2", "two_term_slope", "TrainedDistance", "trained_distance"]


# --------------------------------------------------------------------------------------------
# Distances to the Gaussian process
# --------------------------------------------------------------------------------------------

def empirical_w2(samples: Tensor, mean: float, var: float) -> float:
    r"""Exact :math:`W_2` between the empirical law of ``samples`` and :math:`\mathcal N(m, s^2)`.

    In one dimension the optimal coupling is monotone, so with the order statistics
    :math:`x_{(i)}`, :math:`z_i = \Phi^{-1}(i/M)` and :math:`x' = x - m`,

    .. math::

        W_2^2 = \sum_{i=1}^M \int_{(i-1)/M}^{i/M}\big(x'_{(i)} - s\Phi^{-1}(u)\big)^2du
        = \overline{x'^2} - 2s\sum_i x'_{(i)}\big(\varphi(z_{i-1}) - \varphi(z_i)\big) + s^2

    (:math:`\int z^2\varphi = 1`). It is an UPPER estimate of the population distance
    :math:`W_2(\mu, \mathcal N)` in expectation,
    :math:`\mathbb{E}W_2^2(\mu_M, \mathcal N) \ge W_2^2(\mu, \mathcal N)` (:math:`W_2^2` is convex
    in each argument and :math:`\mathbb{E}\mu_M = \mu`), with a
    sampling floor :math:`W_2(\mu_M, \mu)` that is estimated by the same statistic on
    :math:`M` exact Gaussian samples (:func:`trained_distance`).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(100_000, generator=g, dtype=torch.float64)
    >>> empirical_w2(x, 0.0, 1.0) < 0.02, round(empirical_w2(x, 1.0, 1.0), 2)
    (True, 1.0)
    """
    fn = "mfteach.finite_width.empirical_w2"
    check_tensor(samples, "samples", fn, ndim=1)
    if samples.numel() < 2:
        fail("samples", fn, "a tensor of at least 2 samples", samples)
    if float(samples.detach().abs().max()) > 1e150:
        fail("samples", fn, "finite samples of magnitude at most 1e150 (W2^2 stays finite)",
             samples)
    mean = check_float(mean, "mean", fn, min=-1e150, max=1e150)
    var = check_float(var, "var", fn, min=0.0, max=1e300)
    return float(_empirical_w2(samples.unsqueeze(0), mean, var)[0])


def _empirical_w2(F: Tensor, mean: float, var: float) -> Tensor:
    """Row-wise exact W2 of the empirical laws of F (R, M) to N(mean, var), float64."""
    M = F.shape[1]
    x = torch.sort(F.to(torch.float64) - mean, dim=1).values
    u = torch.arange(0, M + 1, dtype=torch.float64, device=F.device) / M
    z = torch.special.ndtri(u[1:-1])
    pdf = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    pdf = torch.cat([pdf.new_zeros(1), pdf, pdf.new_zeros(1)])
    s = math.sqrt(var)
    w2sq = (x * x).mean(1) - 2 * s * (x * (pdf[:-1] - pdf[1:])).sum(1) + var
    return w2sq.clamp_min(0).sqrt()


def _lower_w2(F: Tensor, mean: float, var: float) -> Tensor:
    """Moment-matched W2 (Gelbrich lower bound) of rows of F to N(mean, var)."""
    F = F.to(torch.float64)
    return ((F.mean(1) - mean) ** 2 + (F.std(1) - math.sqrt(var)) ** 2).sqrt()


def two_term_slope(widths: Sequence[int], values) -> SlopeFit:
    r"""Exponent :math:`s` of :math:`\log W = c + s\log N + b\,N^{-1/2}` by least squares.

    An Edgeworth (Cornish-Fisher) expansion of a distance in powers of :math:`N^{-1/2}`,
    :math:`W = a_0 N^{s}(1 + a_1 N^{-1/2} + \dots)`, makes a pure power-law fit over
    moderate widths biased by the next order; this fit carries it as a nuisance term
    (ReLU, skewed readout, :math:`N = 32..256`: pure power :math:`-0.47`, this
    :math:`-0.50`). At least 4 widths; ``stderr`` is the OLS one.

    Examples
    --------
    >>> n = [16, 32, 64, 128, 256]
    >>> round(two_term_slope(n, [w ** -0.5 * math.exp(2 * w ** -0.5) for w in n]).slope, 6)
    -0.5
    """
    fn = "mfteach.finite_width.two_term_slope"
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        fail("widths", fn, "a sequence of at least 4 distinct ints >= 1", widths,
             exc=TypeError)
    w = [check_int(v, "widths", fn, min=1) for v in widths]
    if len(set(w)) < 4:
        fail("widths", fn, "a sequence of at least 4 distinct ints >= 1", widths)
    v = torch.from_numpy(_as_float_array(values, "values", fn))
    if v.numel() != len(w) or not bool(torch.isfinite(v).all()) or not bool((v > 0).all()):
        fail("values", fn, f"{len(w)} finite positive numbers (one per width)", values)
    n = torch.tensor(w, dtype=torch.float64)
    A = torch.stack([torch.ones_like(n), n.log(), n.rsqrt()], 1)
    coef = torch.linalg.lstsq(A, v.log().unsqueeze(1)).solution[:, 0]
    resid = v.log() - A @ coef
    dof = len(w) - 3
    cov = torch.linalg.inv(A.T @ A) * (float(resid @ resid) / dof if dof else 0.0)
    return SlopeFit(float(coef[1]), math.sqrt(max(float(cov[1, 1]), 0.0)), float(coef[0]),
                    len(w))


@dataclass(frozen=True)
class TrainedDistance:
    r"""Distances of trained ensembles to the GP law over widths and data sets.

    Attributes
    ----------
    widths : tuple of int
    step : tuple of int
        ``(0, steps)``: at initialisation and after training.
    upper, lower : Tensor, shape (R, 2, W)
        :func:`empirical_w2` (upper estimate in expectation) and the moment-matched
        Gelbrich distance (a lower bound), per data set, time and width.
    floor, floor_sd : Tensor, shape (R, 2)
        Root mean square and sd of :func:`empirical_w2` for ``n_networks`` exact samples of
        the GP law (``n_floor`` draws): the statistic's sampling floor.
    debiased : Tensor, shape (R, 2, W)
        :math:`\sqrt{\max(W_{\rm upper}^2 - \text{floor}^2, 0)}`: the sampling floor
        removed in quadrature (:math:`W_2^2(\mu_M, \mathcal N) \approx W_2^2(\mu, \mathcal N)
        + W_2^2(\mu_M, \mu)` to leading order), the quantity fitted.
    fitted : Tensor, shape (R, 2, W), bool
        Widths used in the fits: ``width >= fit_min_width`` (where the Edgeworth regime
        holds) and ``upper > 3 * floor`` (resolved above sampling).
    fits : tuple of tuple of (SlopeFit or None)
        Per time, per data set: :func:`mfteach.stats.fit_loglog_slope` of ``debiased``
        over the fitted widths (``None`` with fewer than 3). At moderate widths the next
        Edgeworth order biases this pure power law shallower (ReLU, skewed readout,
        N = 32..256, t = 0: -0.47 against the asymptotic -1/2); :func:`two_term_slope`
        removes that bias at the price of a larger spread.
    spread : tuple of (SlopeSpread or None)
        Per time, :func:`mfteach.stats.slope_spread` of the fits (``None`` with fewer than
        2 fits).
    cornish_fisher : Tensor, shape (W,)
        Leading order at :math:`t = 0`: :math:`s\sqrt{\gamma_1^2/18 + \gamma_2^2/96}` with
        the exact skewness and excess kurtosis of :func:`output_cumulants`.
    readout, activation : str
    n_networks : int
    """

    widths: tuple[int, ...]
    step: tuple[int, int]
    upper: Tensor
    lower: Tensor
    floor: Tensor
    floor_sd: Tensor
    debiased: Tensor
    fitted: Tensor
    fits: tuple[tuple[SlopeFit | None, ...], ...]
    spread: tuple[SlopeSpread | None, ...]
    cornish_fisher: Tensor
    readout: str
    activation: str
    n_networks: int


def trained_distance(activation: str, widths: Sequence[int], *, readout: str = "exponential",
                     n_networks: int = 2000, lr: float = 0.5, steps: int = 100,
                     n_train: int = 10, d: int = 3, n_datasets: int = 5, n_floor: int = 20,
                     fit_min_width: int = 32, generator: int | torch.Generator,
                     dtype: torch.dtype | None = None,
                     device: torch.device | str | None = None) -> TrainedDistance:
    r"""Upper and lower :math:`W_2` distances of the trained ensemble to the GP law.

    For each of ``n_datasets`` independent data sets (:func:`sphere_data`, ``n_train``
    points plus a test point :math:`x_*`) and each width, one :func:`trained_ensemble`
    (``readout`` law, outputs at steps 0 and ``steps``) against :func:`gp_prediction`:
    :func:`empirical_w2` (upper, in expectation) and the moment-matched distance (lower).
    Slopes are fitted per data set on the floor-debiased distance, only over widths
    ``>= fit_min_width`` and where ``upper > 3 * floor``: the :math:`N^{-1/2}` law is
    asymptotic, reached once the skewness :math:`\gamma_Z/\sqrt N` is small (ReLU with the
    skewed readout: :math:`\gamma_Z = 4.5`, so :math:`N \gtrsim 32`; below it the measured
    distance falls short of Cornish-Fisher), and must stand above the sampling floor. With
    the skewed ``"exponential"`` readout the law at :math:`t = 0` is already
    :math:`O(N^{-1/2})` from Gaussian (its skewness), the rate of Carvalho et al. (2023),
    contribution (3), up to their :math:`(\log N)^{1+}` factor. ``steps = 0`` skips
    training (both times are then the initialisation).

    Examples
    --------
    >>> r = trained_distance("relu", [8, 32], n_networks=200, steps=5, n_train=4, d=3,
    ...                      n_datasets=2, n_floor=4, generator=0)
    >>> r.upper.shape, bool((r.upper >= r.lower - 0.1).all())
    (torch.Size([2, 2, 2]), True)
    """
    fn = "mfteach.finite_width.trained_distance"
    widths, M, n_train, d, steps, dev, dt, lr = _common(
        fn, activation, widths, readout, n_networks, lr, steps, n_train, d, dtype, device,
        min_steps=0)
    n_datasets = check_int(n_datasets, "n_datasets", fn, min=1, max=1000)
    fit_min_width = check_int(fit_min_width, "fit_min_width", fn, min=1)
    n_floor = check_int(n_floor, "n_floor", fn, min=2, max=10**4)
    _check_train_sizes(fn, width=max(widths), n_networks=M, n_train=n_train, d=d,
                       steps=steps * n_datasets, n_widths=len(widths), dt=dt)
    check_budget("n_floor", fn, n_floor, nbytes=3.0 * n_floor * M * 8)
    g = _draw_generator(generator, dev, fn)
    act = resolve_activation(activation, fn)
    W = len(widths)
    up = torch.empty(n_datasets, 2, W, dtype=torch.float64)
    lo = torch.empty_like(up)
    floor = torch.empty(n_datasets, 2, dtype=torch.float64)
    floor_sd = torch.empty_like(floor)
    for r in range(n_datasets):
        Xa, ya = _sphere_data(n_train + 1, d, g, dt, dev, fn, "n_train")
        X, y, xs = Xa[:n_train], ya[:n_train], Xa[n_train:]
        laws = []
        for t, k in enumerate((0, steps)):
            gp = _gp_prediction(X, y, xs, act, lr, k, fn)
            laws.append((float(gp.mean[0]), max(float(gp.var[0]), 0.0)))
            ref = torch.randn(n_floor, M, generator=g, device=dev, dtype=torch.float64)
            ref = laws[t][0] + math.sqrt(laws[t][1]) * ref
            fl = _empirical_w2(ref, *laws[t])
            floor[r, t], floor_sd[r, t] = float(fl.square().mean().sqrt()), float(fl.std())
        for j, n in enumerate(widths):
            F = _trained_ensemble(X, y, xs, activation, n, M, lr, steps, g, False, readout,
                                  (0, steps) if steps else (0,))[:, :, 0]  # (2 or 1, M)
            F = F.expand(2, M) if not steps else F
            for t in range(2):
                up[r, t, j] = _empirical_w2(F[t:t + 1], *laws[t])[0]
                lo[r, t, j] = _lower_w2(F[t:t + 1], *laws[t])[0]
    debiased = (up**2 - floor.unsqueeze(2) ** 2).clamp_min(0).sqrt()
    big = torch.tensor([w >= fit_min_width for w in widths])
    fitted = (up > 3 * floor.unsqueeze(2)) & big
    fits = []
    for t in range(2):
        row = []
        for r in range(n_datasets):
            keep = fitted[r, t]
            ws = [w for w, k in zip(widths, keep) if k]
            vals = debiased[r, t][keep]
            row.append(fit_loglog_slope(ws, vals) if len(ws) >= 3 else None)
        fits.append(tuple(row))
    spread = tuple(slope_spread([f for f in row if f is not None])
                   if sum(f is not None for f in row) >= 2 else None for row in fits)
    oc = _output_cumulants(act, readout, float((xs**2).sum()) / d, 200, fn)
    s = math.sqrt(oc.kappa_neuron[1])
    nn = torch.tensor(widths, dtype=torch.float64)
    cf = s * (oc.skewness_coef**2 / nn / 18 + oc.kurtosis_coef**2 / nn**2 / 96).sqrt()
    return TrainedDistance(widths, (0, steps), up, lo, floor, floor_sd, debiased, fitted,
                           tuple(fits),
                           spread, cf, readout, act.name, M)
