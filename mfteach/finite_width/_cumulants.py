r"""Cumulants of the output law: unbiased estimates with standard errors, and closed forms.

For one hidden layer the output is :math:`f = n^{-1/2}\sum_{i=1}^n Z_i` with i.i.d.
:math:`Z_i = a_i\phi(u_i)`. Cumulants add over independent terms and scale as
:math:`\kappa_r(cX) = c^r\kappa_r(X)`, so, exactly and for every width,

.. math::
    :label: cumulant-scaling

    \kappa_r(f) = n^{1 - r/2}\,\kappa_r(Z):\qquad \text{skewness} \propto n^{-1/2},\quad
    \text{excess kurtosis} \propto n^{-1}.

The coefficients :math:`\kappa_r(Z)` follow from the moments
:math:`\mathbb{E}Z^m = \mathbb{E}a^m\,\mathbb{E}\phi(u)^m` (closed form for ReLU, Gauss-Hermite
quadrature for any other activation).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._checks import check_choice, check_float, check_int, check_tensor, fail
from ..activations import Activation, get_activation, resolve_activation
from ..device import as_generator, resolve_device
from ..gaussian import MAX_DEGREE, gauss_hermite_expectation_1d, hermite_rule
from ..stats import SlopeFit
from ._sampling import READOUTS, _input_factor, readout_law, sample_outputs

__all__ = [
    "Cumulants",
    "OutputCumulants",
    "CumulantScaling",
    "k_statistics",
    "joint_cumulant4",
    "activation_moment",
    "output_cumulants",
    "fourth_cumulant_tensor",
    "fit_weighted_loglog_slope",
    "cumulant_scaling",
]


# --------------------------------------------------------------------------------------------
# Estimates from samples
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cumulants:
    r"""Unbiased k-statistics :math:`k_1, \dots, k_4` with delta-method standard errors.

    Attributes
    ----------
    kappa, stderr : Tensor, shape (4, ...)
        :math:`k_r` and its standard error, for :math:`r = 1, \dots, 4`.
    skewness, skewness_stderr : Tensor, shape (...)
        :math:`k_3/k_2^{3/2}` and its standard error.
    excess_kurtosis, excess_kurtosis_stderr : Tensor, shape (...)
        :math:`k_4/k_2^2` (0 for a Gaussian; its standard error is about
        :math:`\sqrt{24/S}` near Gaussianity).
    n_samples : int
    """

    kappa: Tensor
    stderr: Tensor
    skewness: Tensor
    skewness_stderr: Tensor
    excess_kurtosis: Tensor
    excess_kurtosis_stderr: Tensor
    n_samples: int


def k_statistics(samples: Tensor, *, dim: int = 0) -> Cumulants:
    r"""Fisher's unbiased k-statistics of ``samples`` along ``dim``, in float64.

    With the central sample moments :math:`m_j = \frac1S\sum_s (x_s - \bar x)^j`,

    .. math::

        k_1 = \bar x,\quad k_2 = \frac{S}{S-1}m_2,\quad k_3 = \frac{S^2}{(S-1)(S-2)}m_3,\quad
        k_4 = \frac{S^2\big((S+1)m_4 - 3(S-1)m_2^2\big)}{(S-1)(S-2)(S-3)},

    with :math:`\mathbb{E}k_r = \kappa_r` exactly. Standard errors are
    :math:`\sqrt{\widehat{\mathrm{Var}}\,\psi_r / S}` with the influence functions
    :math:`\psi_2 = c^2 - m_2`, :math:`\psi_3 = c^3 - m_3 - 3m_2c`,
    :math:`\psi_4 = c^4 - m_4 - 4m_3c - 6m_2(c^2 - m_2)` (:math:`c = x - \bar x`), which use the
    sample moments up to order 8; for a Gaussian they give
    :math:`\mathrm{sd}(\text{excess kurtosis}) = \sqrt{24/S}`.

    Parameters
    ----------
    samples : Tensor, shape (S, ...) (along ``dim``), S >= 4
    dim : int, keyword-only

    Returns
    -------
    Cumulants
        Float64 tensors on the device of ``samples``.

    Raises
    ------
    TypeError, ValueError
        If ``samples`` is not a finite floating tensor with at least 4 entries along ``dim``.

    References
    ----------
    R. A. Fisher (1930), "Moments and product moments of sampling distributions", Proc.
    London Math. Soc. 30; M. Kendall and A. Stuart, "The Advanced Theory of Statistics",
    Vol. 1, Ch. 12 (k-statistics), Ch. 10 (standard errors of moments).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> c = k_statistics(torch.randn(200_000, generator=g, dtype=torch.float64))
    >>> abs(float(c.excess_kurtosis)) < 5 * float(c.excess_kurtosis_stderr)
    True
    >>> round(float(c.excess_kurtosis_stderr) * (200_000 / 24) ** 0.5, 1)
    1.0
    """
    fn = "mfteach.finite_width.k_statistics"
    check_tensor(samples, "samples", fn)
    if not isinstance(dim, int) or not -samples.ndim <= dim < max(samples.ndim, 1):
        fail("dim", fn, f"an int axis of a {samples.ndim}-d tensor", dim, exc=TypeError)
    x = samples.to(torch.float64).movedim(dim, 0)
    S = x.shape[0]
    if S < 4:
        fail("samples", fn, "a tensor with at least 4 samples along `dim`", samples)
    mean = x.mean(0)
    c = x - mean
    c2 = c * c
    m2, m3, m4 = c2.mean(0), (c2 * c).mean(0), (c2 * c2).mean(0)
    k2 = S / (S - 1) * m2
    k3 = S * S / ((S - 1) * (S - 2)) * m3
    k4 = S * S * ((S + 1) * m4 - 3 * (S - 1) * m2 * m2) / ((S - 1) * (S - 2) * (S - 3))
    psi2 = c2 - m2
    psi3 = c2 * c - m3 - 3 * m2 * c
    psi4 = c2 * c2 - m4 - 4 * m3 * c - 6 * m2 * psi2

    def se(psi: Tensor) -> Tensor:
        return (psi.square().mean(0) / S).sqrt()

    kappa = torch.stack([mean, k2, k3, k4])
    stderr = torch.stack([se(c), se(psi2), se(psi3), se(psi4)])
    skew = k3 / k2**1.5
    kurt = k4 / k2**2
    skew_se = se(psi3 / m2**1.5 - 1.5 * m3 * psi2 / m2**2.5)
    kurt_se = se(psi4 / m2**2 - 2 * (m4 - 3 * m2 * m2) * psi2 / m2**3)
    return Cumulants(kappa, stderr, skew, skew_se, kurt, kurt_se, S)


def joint_cumulant4(samples: Tensor) -> tuple[Tensor, Tensor]:
    r"""Joint fourth cumulants :math:`\kappa(X_i, X_j, X_k, X_l)` of the columns of
    ``samples``, with standard errors.

    .. math::

        \hat\kappa_{ijkl} = \overline{c_ic_jc_kc_l} - \overline{c_ic_j}\,\overline{c_kc_l}
        - \overline{c_ic_k}\,\overline{c_jc_l} - \overline{c_ic_l}\,\overline{c_jc_k},
        \qquad c = x - \bar x,

    (bias :math:`O(1/S)`, negligible next to the standard error :math:`O(S^{-1/2})`), with
    the delta-method standard error from its influence function.

    Parameters
    ----------
    samples : Tensor, shape (S, k), k <= 6

    Returns
    -------
    kappa, stderr : Tensor, shape (k, k, k, k), float64, symmetric

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> kap, se = joint_cumulant4(torch.randn(50_000, 2, generator=g, dtype=torch.float64))
    >>> bool((kap.abs() < 6 * se).all())
    True
    """
    fn = "mfteach.finite_width.joint_cumulant4"
    check_tensor(samples, "samples", fn, ndim=2)
    S, k = samples.shape
    if S < 4 or k > 6:
        fail("samples", fn, "a tensor of shape (S, k) with S >= 4 and k <= 6", samples)
    c = samples.to(torch.float64)
    c = c - c.mean(0)
    m2 = c.T @ c / S
    kap = torch.empty(k, k, k, k, dtype=torch.float64, device=c.device)
    se = torch.empty_like(kap)
    for idx in itertools.combinations_with_replacement(range(k), 4):
        i, j, l, m = idx
        prod = c[:, i] * c[:, j] * c[:, l] * c[:, m]
        pairs = [((i, j), (l, m)), ((i, l), (j, m)), ((i, m), (j, l))]
        value = prod.mean() - sum(m2[p] * m2[q] for p, q in pairs)
        psi = prod - prod.mean()
        for a, rest in ((i, (j, l, m)), (j, (i, l, m)), (l, (i, j, m)), (m, (i, j, l))):
            psi = psi - (c[:, rest[0]] * c[:, rest[1]] * c[:, rest[2]]).mean() * c[:, a]
        for p, q in pairs:
            psi = psi - m2[p] * (c[:, q[0]] * c[:, q[1]] - m2[q])
            psi = psi - m2[q] * (c[:, p[0]] * c[:, p[1]] - m2[p])
        err = (psi.square().mean() / S).sqrt()
        for perm in set(itertools.permutations(idx)):
            kap[perm] = value
            se[perm] = err
    return kap, se


# --------------------------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------------------------

_activation = resolve_activation


def activation_moment(activation: str | Activation, m: int, q: float = 1.0, *,
                      degree: int = 200) -> float:
    r""":math:`\mathbb{E}\,\phi(u)^m` for :math:`u \sim N(0, q)`.

    Closed forms: ReLU :math:`q^{m/2}\,2^{m/2 - 1}\Gamma(\frac{m+1}{2})/\sqrt\pi`;
    linear :math:`q^{m/2}(m-1)!!` (even :math:`m`, 0 for odd). Any other activation (tanh, erf,
    custom): Gauss-Hermite quadrature with ``degree`` nodes
    (:func:`mfteach.gaussian.gauss_hermite_expectation_1d`), exponentially accurate for smooth
    :math:`\phi`.

    Examples
    --------
    >>> round(activation_moment("relu", 4), 12)  # E relu(u)^4 = 3/2
    1.5
    >>> round(activation_moment("erf_sqrt2", 4), 12)  # uniform on (-1, 1): 1/5
    0.2
    """
    fn = "mfteach.finite_width.activation_moment"
    act = _activation(activation, fn)
    m = check_int(m, "m", fn, min=0)
    q = check_float(q, "q", fn, min=0.0)
    degree = check_int(degree, "degree", fn, min=1, max=MAX_DEGREE)
    if act.name == "relu" and act is get_activation("relu"):
        if m == 0:
            return 1.0
        return q ** (m / 2) * 2 ** (m / 2 - 1) * math.gamma((m + 1) / 2) / math.sqrt(math.pi)
    if act.name == "linear" and act is get_activation("linear"):
        return 0.0 if m % 2 else q ** (m / 2) * float(np.prod(np.arange(m - 1, 0, -2)))
    return float(gauss_hermite_expectation_1d(lambda z: act.fn(z) ** m, q, degree=degree))


def _cumulants_from_moments(mu: Sequence[float]) -> list[float]:
    """kappa_1..kappa_r from raw moments mu_1..mu_r (mu[0] = E X)."""
    kappa: list[float] = []
    for r in range(1, len(mu) + 1):
        val = mu[r - 1]
        for j in range(1, r):
            val -= math.comb(r - 1, j - 1) * kappa[j - 1] * mu[r - j - 1]
        kappa.append(val)
    return kappa


@dataclass(frozen=True)
class OutputCumulants:
    r"""Exact cumulants of the one-hidden-layer output at one input, and their coefficients.

    Attributes
    ----------
    activation, readout : str
    q : float
        Input scale :math:`|x|^2/d` (the pre-activation variance).
    kappa_neuron : tuple of float
        :math:`(\kappa_1, \dots, \kappa_4)` of one term :math:`Z = a\phi(u)`.
    skewness_coef, kurtosis_coef : float
        :math:`\kappa_3(Z)/\kappa_2(Z)^{3/2}` and :math:`\kappa_4(Z)/\kappa_2(Z)^2`: the
        output's skewness is ``skewness_coef / sqrt(n)``, its excess kurtosis
        ``kurtosis_coef / n``.
    """

    activation: str
    readout: str
    q: float
    kappa_neuron: tuple[float, float, float, float]
    skewness_coef: float
    kurtosis_coef: float

    def kappa(self, width: int) -> tuple[float, float, float, float]:
        r"""Cumulants :math:`\kappa_r(f) = n^{1-r/2}\kappa_r(Z)` of the output at width n."""
        width = check_int(width, "width", "mfteach.finite_width.OutputCumulants.kappa", min=1)
        return tuple(k * width ** (1 - r / 2) for r, k in enumerate(self.kappa_neuron, 1))

    def skewness(self, width: int) -> float:
        """Skewness of the output at width n: ``skewness_coef / sqrt(n)``."""
        return self.skewness_coef / math.sqrt(width)

    def excess_kurtosis(self, width: int) -> float:
        """Excess kurtosis of the output at width n: ``kurtosis_coef / n``."""
        return self.kurtosis_coef / width


def output_cumulants(activation: str | Activation, *, readout: str = "gaussian",
                     q: float = 1.0, degree: int = 200) -> OutputCumulants:
    r"""Closed-form cumulants of :math:`f(x) = n^{-1/2}\sum_i a_i\phi(u_i)` at one input.

    With :math:`Z = a\phi(u)`, :math:`u \sim N(0, q)`, :math:`a` independent with
    :math:`\mathbb{E}a = 0`, :math:`\mathbb{E}a^2 = 1`:

    .. math::

        \kappa_2(Z) = \mathbb{E}\phi^2,\qquad \kappa_3(Z) = \mathbb{E}a^3\,\mathbb{E}\phi^3,
        \qquad \kappa_4(Z) = \mathbb{E}a^4\,\mathbb{E}\phi^4 - 3(\mathbb{E}\phi^2)^2,

    and :math:`\kappa_r(f) = n^{1-r/2}\kappa_r(Z)`, exact at
    every width. Gaussian :math:`a`: excess kurtosis
    :math:`\frac3n(\mathbb{E}\phi^4/(\mathbb{E}\phi^2)^2 - 1)` (ReLU :math:`15/n`,
    :math:`\operatorname{erf}(u/\sqrt2)` :math:`12/(5n)`); Rademacher :math:`a`:
    :math:`\frac1n(\mathbb{E}\phi^4/(\mathbb{E}\phi^2)^2 - 3)` (ReLU :math:`3/n`).

    Parameters
    ----------
    activation : str or Activation
    readout : {"gaussian", "rademacher", "exponential"}, keyword-only
    q : float, keyword-only
        :math:`|x|^2/d`, default 1.
    degree : int, keyword-only
        Gauss-Hermite nodes for activations without a closed form.

    Returns
    -------
    OutputCumulants

    Notes
    -----
    This is the leading (and, for one hidden layer, only) term of the :math:`n^{-1/2}` series
    of the paper's first contribution, whose coefficients are "determined by the statistics
    of parameter initialization and by the activation function" (Carvalho et al. 2023,
    abstract). For Gaussian :math:`a` it agrees with the one-layer four-point vertex of
    Roberts, Yaida & Hanin (2022). Book chapter 02.

    References
    ----------
    L. Carvalho, J. L. Costa, J. Mourão, G. Oliveira (2023), arXiv 2304.03385, contribution
    (1); D. Antognini (2019), arXiv 1908.10030 (the He4 correction at order 1/n).

    Examples
    --------
    >>> c = output_cumulants("relu")
    >>> round(c.kurtosis_coef, 12), c.skewness_coef
    (15.0, 0.0)
    >>> round(output_cumulants("relu", readout="rademacher").kurtosis_coef, 12)
    3.0
    """
    fn = "mfteach.finite_width.output_cumulants"
    check_choice(readout, "readout", fn, READOUTS)
    q = check_float(q, "q", fn, min=0.0, min_open=True)
    act = _activation(activation, fn)
    a_mom = readout_law(readout).moments
    phi_mom = [activation_moment(act, m, q, degree=degree) for m in range(1, 5)]
    mu = [a_mom[m] * phi_mom[m] for m in range(4)]
    kz = _cumulants_from_moments(mu)
    k2 = kz[1]
    if k2 <= 0:
        fail("activation", fn, "an activation with E[phi(u)^2] > 0", act.name)
    return OutputCumulants(act.name, readout, q, tuple(kz), kz[2] / k2**1.5, kz[3] / k2**2)


def _default_degree(r: int) -> int:
    return {1: 200, 2: 100, 3: 40, 4: 24}.get(r, 12)


def fourth_cumulant_tensor(x: Tensor, *, activation: str | Activation,
                           readout: str = "gaussian", degree: int | None = None) -> Tensor:
    r"""Leading coefficient of the multi-input fourth cumulant of the output.

    For inputs :math:`x_1, \dots, x_k`, :math:`n\,\kappa(f(x_i), f(x_j), f(x_l), f(x_m))`
    equals (exactly, for one hidden layer)

    .. math::

        \mathbb{E}a^4\,\mathbb{E}[\phi_i\phi_j\phi_l\phi_m] - (\mathbb{E}a^2)^2\big(
        \mathbb{E}\phi_i\phi_j\,\mathbb{E}\phi_l\phi_m + \mathbb{E}\phi_i\phi_l\,
        \mathbb{E}\phi_j\phi_m + \mathbb{E}\phi_i\phi_m\,\mathbb{E}\phi_j\phi_l\big),

    :math:`\phi_i = \phi(u_i)`, :math:`u \sim N(0, xx^\top/d)`. The expectations are computed
    by a tensor Gauss-Hermite rule in the :math:`r = \mathrm{rank}(xx^\top) \le \min(k, d)`
    independent directions.

    Parameters
    ----------
    x : Tensor, shape (k, d), k <= 4 (rank at most 4)
    activation : str or Activation
    readout : {"gaussian", "rademacher", "exponential"}
    degree : int, optional
        Nodes per direction; default 200, 100, 40, 24 for rank 1..4. Smooth activations
        converge exponentially; ReLU (a kink) only algebraically, about 1e-3 relative at the
        defaults.

    Returns
    -------
    Tensor, shape (k, k, k, k), float64 on the device of ``x``

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64) * 2 ** 0.5
    >>> T = fourth_cumulant_tensor(x, activation="erf_sqrt2")
    >>> round(float(T[0, 0, 0, 0]), 6)  # kappa_4(Z) = 3/5 - 3/9 at one input
    0.266667
    """
    fn = "mfteach.finite_width.fourth_cumulant_tensor"
    check_tensor(x, "x", fn, ndim=2)
    act = _activation(activation, fn)
    check_choice(readout, "readout", fn, READOUTS)
    x = x.to(torch.float64)
    L = _input_factor(x)  # (k, r)
    k, r = L.shape
    if r > 4 or k > 6:
        fail("x", fn, "at most 6 inputs spanning at most 4 directions", x)
    if degree is None:
        degree = _default_degree(r)
    degree = check_int(degree, "degree", fn, min=1, max=MAX_DEGREE)
    nodes, w = hermite_rule(degree, dtype=x.dtype, device=x.device)
    grids = torch.meshgrid(*([nodes] * r), indexing="ij")
    z = torch.stack([gr.reshape(-1) for gr in grids], dim=1)  # (P, r)
    wgrids = torch.meshgrid(*([w] * r), indexing="ij")
    weight = torch.stack([gr.reshape(-1) for gr in wgrids], 1).prod(1)  # (P,)
    phi = act.fn(z @ L.T)  # (P, k)
    m2 = torch.einsum("p,pi,pj->ij", weight, phi, phi)
    m4 = torch.einsum("p,pi,pj,pk,pl->ijkl", weight, phi, phi, phi, phi)
    a2, a4 = readout_law(readout).moments[1], readout_law(readout).moments[3]
    pairs = (torch.einsum("ij,kl->ijkl", m2, m2) + torch.einsum("ik,jl->ijkl", m2, m2)
             + torch.einsum("il,jk->ijkl", m2, m2))
    return a4 * m4 - a2 * a2 * pairs


# --------------------------------------------------------------------------------------------
# Scaling with width
# --------------------------------------------------------------------------------------------

def fit_weighted_loglog_slope(x, y, y_stderr) -> SlopeFit:
    r"""Weighted least-squares power law :math:`y \propto x^{s}` with propagated errors.

    Fits :math:`\log y = c + s\log x` with weights :math:`1/\sigma_i^2`,
    :math:`\sigma_i = \mathrm{se}(y_i)/y_i` (delta method). The slope's standard error is the
    one propagated from the given standard errors, :math:`(\sum_i w_i(\ell_i -
    \bar\ell_w)^2)^{-1/2}`, so it does not depend on the luck of the residuals; with two points
    it is still defined. (A candidate for :mod:`mfteach.stats`.)

    Examples
    --------
    >>> fit = fit_weighted_loglog_slope([1, 2, 4], [1.0, 0.5, 0.25], [0.01, 0.005, 0.0025])
    >>> round(fit.slope, 10), round(fit.stderr, 4)
    (-1.0, 0.0102)
    """
    fn = "mfteach.finite_width.fit_weighted_loglog_slope"
    xa, ya, sa = (np.asarray(torch.as_tensor(v).detach().cpu(), dtype=np.float64).ravel()
                  for v in (x, y, y_stderr))
    if not (xa.size == ya.size == sa.size) or xa.size < 2:
        fail("x", fn, "the same length as y and y_stderr, with at least 2 points",
             (xa.size, ya.size, sa.size))
    if not (np.all(np.isfinite(xa)) and np.all(xa > 0)):
        fail("x", fn, "finite and positive", xa.tolist())
    if not (np.all(np.isfinite(ya)) and np.all(ya > 0)):
        fail("y", fn, "finite and positive", ya.tolist())
    if not (np.all(np.isfinite(sa)) and np.all(sa > 0)):
        fail("y_stderr", fn, "finite and positive", sa.tolist())
    lx, ly = np.log(xa), np.log(ya)
    w = (ya / sa) ** 2
    xbar = float((w * lx).sum() / w.sum())
    ybar = float((w * ly).sum() / w.sum())
    sxx = float((w * (lx - xbar) ** 2).sum())
    if sxx <= 0:
        fail("x", fn, "at least two distinct values", xa.tolist())
    slope = float((w * (lx - xbar) * (ly - ybar)).sum()) / sxx
    return SlopeFit(slope=slope, stderr=math.sqrt(1.0 / sxx), intercept=ybar - slope * xbar,
                    n_points=int(xa.size))


@dataclass(frozen=True)
class CumulantScaling:
    r"""Measured output cumulants over a ladder of widths, with fitted slopes.

    Attributes
    ----------
    widths : tuple of int
    kappa, stderr : Tensor, shape (len(widths), 4)
        k-statistics :math:`k_1..k_4` of :math:`f(x)` and their standard errors.
    skewness, skewness_stderr, excess_kurtosis, excess_kurtosis_stderr : Tensor (len(widths),)
    fit_kappa3, fit_kappa4 : SlopeFit or None
        Weighted fits of :math:`|k_3|` and :math:`|k_4|` against width (predicted slopes
        :math:`-1/2` and :math:`-1`); ``None`` when a cumulant is not resolved (e.g.
        :math:`\kappa_3 = 0` for a symmetric readout).
    theory : OutputCumulants or None
        The closed form (one hidden layer only).
    n_samples, depth : int
    activation, readout : str
    """

    widths: tuple[int, ...]
    kappa: Tensor
    stderr: Tensor
    skewness: Tensor
    skewness_stderr: Tensor
    excess_kurtosis: Tensor
    excess_kurtosis_stderr: Tensor
    fit_kappa3: SlopeFit | None
    fit_kappa4: SlopeFit | None
    theory: OutputCumulants | None
    n_samples: int
    depth: int
    activation: str
    readout: str


def _resolved_fit(widths, values, errors, z: float = 3.0) -> SlopeFit | None:
    v, e = values.abs().cpu(), errors.cpu()
    if bool((v > z * e).all()):
        return fit_weighted_loglog_slope(widths, v, e)
    return None


def cumulant_scaling(activation: str | Activation, widths: Sequence[int], *, n_samples: int,
                     generator: int | torch.Generator, readout: str = "gaussian",
                     depth: int = 1, q: float = 1.0,
                     device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> CumulantScaling:
    r"""Cumulants of :math:`f(x)` (:math:`|x|^2/d = q`) at several widths, with slopes.

    Samples ``n_samples`` networks per width (:func:`sample_outputs`), computes k-statistics
    (:func:`k_statistics`) and fits :math:`|\kappa_3| \propto n^{s_3}`,
    :math:`|\kappa_4| \propto n^{s_4}` by weighted least squares
    (:func:`fit_weighted_loglog_slope`); theory: :math:`s_3 = -1/2`, :math:`s_4 = -1`
    (exact for one hidden layer, leading order deeper).

    Parameters
    ----------
    activation : str or Activation
    widths : sequence of int
        At least two distinct widths.
    n_samples, generator, readout, depth, device, dtype
        As :func:`sample_outputs`; one generator stream runs through the widths.
    q : float
        Pre-activation variance :math:`|x|^2/d` of the input.

    Returns
    -------
    CumulantScaling

    Examples
    --------
    >>> s = cumulant_scaling("relu", [2, 8], n_samples=20_000, generator=0)
    >>> round(s.fit_kappa4.slope)
    -1
    """
    fn = "mfteach.finite_width.cumulant_scaling"
    if (isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence)
            or len(set(widths)) < 2):
        fail("widths", fn, "a sequence of at least two distinct ints >= 1", widths,
             exc=TypeError if not isinstance(widths, Sequence) else ValueError)
    widths = tuple(check_int(w, "widths", fn, min=1) for w in widths)
    q = check_float(q, "q", fn, min=0.0, min_open=True)
    g = as_generator(generator, resolve_device(device, fn), fn)  # one stream for all widths
    x = torch.full((1, 1), math.sqrt(q), dtype=torch.float64)
    stats = []
    for n in widths:
        f = sample_outputs(x, activation=activation, width=n, n_samples=n_samples,
                           generator=g, readout=readout, depth=depth, device=device,
                           dtype=dtype)
        stats.append(k_statistics(f[:, 0]))
    kappa = torch.stack([s.kappa for s in stats])
    stderr = torch.stack([s.stderr for s in stats])
    act_name = activation.name if isinstance(activation, Activation) else activation
    theory = output_cumulants(activation, readout=readout, q=q) if depth == 1 else None
    return CumulantScaling(
        widths=widths, kappa=kappa, stderr=stderr,
        skewness=torch.stack([s.skewness for s in stats]),
        skewness_stderr=torch.stack([s.skewness_stderr for s in stats]),
        excess_kurtosis=torch.stack([s.excess_kurtosis for s in stats]),
        excess_kurtosis_stderr=torch.stack([s.excess_kurtosis_stderr for s in stats]),
        fit_kappa3=_resolved_fit(widths, kappa[:, 2], stderr[:, 2]),
        fit_kappa4=_resolved_fit(widths, kappa[:, 3], stderr[:, 3]),
        theory=theory, n_samples=n_samples, depth=depth, activation=act_name,
        readout=readout)
