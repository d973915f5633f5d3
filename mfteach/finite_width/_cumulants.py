r"""Cumulants of the output law: unbiased estimates with standard errors, and closed forms.

For one hidden layer the output is :math:`f = N^{-1/2}\sum_{i=1}^N Z_i` with i.i.d.
:math:`Z_i = a_i\phi(u_i)`. Cumulants add over independent terms and scale as
:math:`\kappa_r(cX) = c^r\kappa_r(X)`, so, exactly and for every width,

.. math::
    :label: cumulant-scaling

    \kappa_r(f) = N^{1 - r/2}\,\kappa_r(Z):\qquad \text{skewness} \propto N^{-1/2},\quad
    \text{excess kurtosis} \propto N^{-1}.

The coefficients :math:`\kappa_r(Z)` follow from the moments
:math:`\mathbb{E}Z^m = \mathbb{E}a^m\,\mathbb{E}\phi(u)^m` (closed form for ReLU, Gauss-Hermite
quadrature for any other activation).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .._checks import check_choice, check_float, check_int, check_tensor, fail
from ..activations import Activation, get_activation, resolve_activation
from ..device import as_generator
from ..gaussian import MAX_DEGREE, gauss_hermite_expectation_1d, hermite_rule
from ..stats import SlopeFit, fit_weighted_loglog_slope
from ._sampling import (
    READOUTS,
    _check_common,
    _check_sample_budget,
    _check_widths,
    _input_factor,
    readout_law,
    sample_outputs,
)

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
        :math:`k_r` and its standard error, for :math:`r = 1, \dots, 4`; exactly 0 for
        :math:`r \ge 2` (and standard errors 0) where the samples are constant.
    skewness, skewness_stderr : Tensor, shape (...)
        :math:`k_3/k_2^{3/2}` and its standard error.
    excess_kurtosis, excess_kurtosis_stderr : Tensor, shape (...)
        :math:`k_4/k_2^2` (0 for a Gaussian; its standard error is about
        :math:`\sqrt{24/S}` near Gaussianity).
    n_samples : int
        The sample size S.

    Notes
    -----
    The four standardized attributes are undefined for constant samples
    (:math:`k_2 = 0`): reading them then raises ``ValueError``, never returns NaN.
    """

    kappa: Tensor
    stderr: Tensor
    n_samples: int
    standardized: tuple[Tensor, Tensor, Tensor, Tensor] | None = field(default=None,
                                                                        repr=False)

    def _standardized(self, i: int) -> Tensor:
        if self.standardized is None:
            raise ValueError(
                "The 'samples' parameter of mfteach.finite_width.k_statistics must have a "
                "non-zero spread for the skewness and excess kurtosis (standardized by k_2) "
                "to be defined. Got constant samples instead; their cumulants k_2..k_4 are 0.")
        return self.standardized[i]

    @property
    def skewness(self) -> Tensor:
        """:math:`k_3/k_2^{3/2}`."""
        return self._standardized(0)

    @property
    def skewness_stderr(self) -> Tensor:
        """Standard error of :attr:`skewness`."""
        return self._standardized(1)

    @property
    def excess_kurtosis(self) -> Tensor:
        """:math:`k_4/k_2^2`."""
        return self._standardized(2)

    @property
    def excess_kurtosis_stderr(self) -> Tensor:
        """Standard error of :attr:`excess_kurtosis`."""
        return self._standardized(3)


def _pow2_scale(a: Tensor) -> Tensor:
    """A power of 2 near ``a`` (>= 0) where ``a > 0``, else 1: dividing by it is exact."""
    safe = torch.where(a > 0, a, torch.ones_like(a))
    return torch.exp2(torch.floor(torch.log2(safe)))


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
        Float64 tensors on the device of ``samples``. Constant samples (along ``dim``) have
        :math:`k_1` equal to the constant and :math:`k_2 = k_3 = k_4 = 0` exactly, with zero
        standard errors; their skewness and excess kurtosis are undefined, and reading them
        raises ``ValueError``.

    Raises
    ------
    TypeError, ValueError
        If ``samples`` is not a finite float32/float64 tensor with at least 4 entries along
        ``dim``, or so large that its fourth cumulant overflows float64.

    Notes
    -----
    The moments are computed in units of a power of 2 of the spread (an exact rescaling),
    so samples of any magnitude give their cumulants without overflow in the eighth moments.

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
    >>> k_statistics(torch.full((5,), 2.0)).kappa.tolist()
    [2.0, 0.0, 0.0, 0.0]
    """
    return _k_statistics(samples, dim, "mfteach.finite_width.k_statistics", "samples")


def _k_statistics(samples: Tensor, dim, fn: str, name: str) -> Cumulants:
    check_tensor(samples, name, fn)
    if samples.ndim == 0:
        fail(name, fn, "a tensor with at least one dimension (the samples)", samples)
    if isinstance(dim, bool) or not isinstance(dim, int):
        fail("dim", fn, f"an int axis of a {samples.ndim}-d tensor", dim, exc=TypeError)
    if not -samples.ndim <= dim < samples.ndim:
        fail("dim", fn, f"an int axis of a {samples.ndim}-d tensor", dim)
    x = samples.to(torch.float64).movedim(dim, 0)
    S = x.shape[0]
    if S < 4:
        fail(name, fn, "a tensor with at least 4 samples along `dim`", samples)
    const = x.amax(0) == x.amin(0)  # (...)
    s1 = _pow2_scale(x.abs().amax(0))
    xs = x / s1
    mean = xs.mean(0)
    c = xs - mean
    s2 = _pow2_scale(c.abs().amax(0))
    c = torch.where(const, torch.zeros_like(c), c / s2)  # spread of order 1: no overflow
    s = s1 * s2  # an exact power of 2 per column
    mean = torch.where(const, x[0], mean * s1)
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

    kappa = torch.stack([mean, k2 * s**2, k3 * s**3, k4 * s**4])
    stderr = torch.stack([se(c) * s, se(psi2) * s**2, se(psi3) * s**3, se(psi4) * s**4])
    if not (bool(torch.isfinite(kappa).all()) and bool(torch.isfinite(stderr).all())):
        fail(name, fn, "small enough that its fourth cumulant is finite in float64", samples)
    standardized = None
    if not bool(const.any()):
        skew = k3 / k2**1.5
        kurt = k4 / k2**2
        skew_se = se(psi3 / m2**1.5 - 1.5 * m3 * psi2 / m2**2.5)
        kurt_se = se(psi4 / m2**2 - 2 * (m4 - 3 * m2 * m2) * psi2 / m2**3)
        standardized = (skew, skew_se, kurt, kurt_se)
    return Cumulants(kappa, stderr, S, standardized)


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
    if S < 4 or not 1 <= k <= 6:
        fail("samples", fn, "a tensor of shape (S, k) with S >= 4 and 1 <= k <= 6", samples)
    x = samples.to(torch.float64)
    const = x.amax(0) == x.amin(0)
    s1 = _pow2_scale(x.abs().amax(0))
    c = x / s1
    c = c - c.mean(0)
    s2 = _pow2_scale(c.abs().amax(0))
    c = torch.where(const, torch.zeros_like(c), c / s2)  # exact rescaling: no overflow
    scale = s1 * s2  # (k,)
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
    units = torch.einsum("i,j,k,l->ijkl", scale, scale, scale, scale)
    kap, se = kap * units, se * units
    if not (bool(torch.isfinite(kap).all()) and bool(torch.isfinite(se).all())):
        fail("samples", fn, "small enough that its fourth cumulants are finite in float64",
             samples)
    return kap, se


# --------------------------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------------------------

_activation = resolve_activation


def activation_moment(activation: str | Activation, m: int, q: float = 1.0, *,
                      degree: int = 200) -> float:
    r""":math:`\mathbb{E}\,\phi(u)^m` for :math:`u \sim \mathcal N(0, q)`.

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
    q = check_float(q, "q", fn, min=0.0, min_open=True)
    degree = check_int(degree, "degree", fn, min=1, max=MAX_DEGREE)
    return _activation_moment(act, m, q, degree, fn)


def _activation_moment(act: Activation, m: int, q: float, degree: int, fn: str) -> float:
    if m == 0:
        return 1.0
    relu = act.name == "relu" and act is get_activation("relu")
    linear = act.name == "linear" and act is get_activation("linear")
    if linear and m % 2:
        return 0.0
    if relu or linear:
        # E relu(u)^m = q^{m/2} 2^{m/2-1} Gamma((m+1)/2)/sqrt(pi); E u^m = twice that (m even),
        # summed in logarithms so that a result beyond float64 is refused, not inf.
        log = ((m / 2) * math.log(q) + (m / 2 - 1) * math.log(2)
               + math.lgamma((m + 1) / 2) - 0.5 * math.log(math.pi) + (linear and math.log(2)))
        if log > math.log(torch.finfo(torch.float64).max):
            _moment_overflow(m, q, fn)
        if m > 64:
            return math.exp(log)
        if relu:  # the direct forms for the usual orders (same digits as before)
            return (q ** (m / 2) * 2 ** (m / 2 - 1) * math.gamma((m + 1) / 2)
                    / math.sqrt(math.pi))
        return q ** (m / 2) * float(np.prod(np.arange(m - 1, 0, -2)))
    if m > 4 * MAX_DEGREE:
        fail("m", fn, f"an int <= {4 * MAX_DEGREE} for an activation without a closed form "
             f"(Gauss-Hermite quadrature)", m)
    with torch.no_grad():
        value = float(gauss_hermite_expectation_1d(lambda z: act.fn(z) ** m, q,
                                                   degree=degree))
    if not math.isfinite(value):
        _moment_overflow(m, q, fn)
    return value


def _moment_overflow(m: int, q: float, fn: str) -> None:
    if q > 1:
        fail("q", fn, f"small enough that E[phi(u)^{m}] is finite in float64", q)
    fail("m", fn, "small enough that E[phi(u)^m] is finite in float64", m)


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
        output's skewness is ``skewness_coef / sqrt(N)``, its excess kurtosis
        ``kurtosis_coef / N``.
    """

    activation: str
    readout: str
    q: float
    kappa_neuron: tuple[float, float, float, float]
    skewness_coef: float
    kurtosis_coef: float

    def kappa(self, width: int) -> tuple[float, float, float, float]:
        r"""Cumulants :math:`\kappa_r(f) = N^{1-r/2}\kappa_r(Z)` of the output at width N."""
        width = check_int(width, "width", "mfteach.finite_width.OutputCumulants.kappa", min=1)
        return tuple(k * width ** (1 - r / 2) for r, k in enumerate(self.kappa_neuron, 1))

    def skewness(self, width: int) -> float:
        """Skewness of the output at width N: ``skewness_coef / sqrt(N)``."""
        width = check_int(width, "width", "mfteach.finite_width.OutputCumulants.skewness",
                          min=1)
        return self.skewness_coef / math.sqrt(width)

    def excess_kurtosis(self, width: int) -> float:
        """Excess kurtosis of the output at width N: ``kurtosis_coef / N``."""
        width = check_int(width, "width",
                          "mfteach.finite_width.OutputCumulants.excess_kurtosis", min=1)
        return self.kurtosis_coef / width


def output_cumulants(activation: str | Activation, *, readout: str = "gaussian",
                     q: float = 1.0, degree: int = 200) -> OutputCumulants:
    r"""Closed-form cumulants of :math:`f(x) = N^{-1/2}\sum_i a_i\phi(u_i)` at one input.

    With :math:`Z = a\phi(u)`, :math:`u \sim \mathcal N(0, q)`, :math:`a` independent with
    :math:`\mathbb{E}a = 0`, :math:`\mathbb{E}a^2 = 1`:

    .. math::

        \kappa_2(Z) = \mathbb{E}\phi^2,\qquad \kappa_3(Z) = \mathbb{E}a^3\,\mathbb{E}\phi^3,
        \qquad \kappa_4(Z) = \mathbb{E}a^4\,\mathbb{E}\phi^4 - 3(\mathbb{E}\phi^2)^2,

    and :math:`\kappa_r(f) = N^{1-r/2}\kappa_r(Z)`, exact at
    every width. Gaussian :math:`a`: excess kurtosis
    :math:`\frac3N(\mathbb{E}\phi^4/(\mathbb{E}\phi^2)^2 - 1)` (ReLU :math:`15/N`,
    :math:`\operatorname{erf}(u/\sqrt2)` :math:`12/(5N)`); Rademacher :math:`a`:
    :math:`\frac1N(\mathbb{E}\phi^4/(\mathbb{E}\phi^2)^2 - 3)` (ReLU :math:`3/N`).

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
    This is the leading (and, for one hidden layer, only) term of the :math:`N^{-1/2}` series
    of the paper's first contribution, whose coefficients are "determined by the statistics
    of parameter initialization and by the activation function" (Carvalho et al. 2023,
    abstract). For Gaussian :math:`a` it agrees with the one-layer four-point vertex of
    Roberts, Yaida & Hanin (2022). Book chapter 02.

    References
    ----------
    L. Carvalho, J. L. Costa, J. Mourão, G. Oliveira (2023), arXiv 2304.03385, contribution
    (1); D. Antognini (2019), arXiv 1908.10030 (the He4 correction at order 1/N).

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
    degree = check_int(degree, "degree", fn, min=1, max=MAX_DEGREE)
    return _output_cumulants(act, readout, q, degree, fn)


def _output_cumulants(act: Activation, readout: str, q: float, degree: int,
                      fn: str) -> OutputCumulants:
    a_mom = readout_law(readout).moments
    phi_mom = [_activation_moment(act, m, q, degree, fn) for m in range(1, 5)]
    mu = [a_mom[m] * phi_mom[m] for m in range(4)]
    kz = _cumulants_from_moments(mu)
    k2 = kz[1]
    if k2 <= 0 and q >= 1e-100:
        fail("activation", fn, "an activation with E[phi(u)^2] > 0", act.name)
    try:
        coefs = (kz[2] / k2**1.5, kz[3] / k2**2)
    except (ZeroDivisionError, ValueError, OverflowError):
        coefs = (math.nan, math.nan)
    if not all(math.isfinite(v) for v in (*kz, *coefs)) or (coefs[1] == 0 and kz[3] != 0):
        fail("q", fn, "a pre-activation variance whose moments E[phi(u)^m], m <= 4, are "
             "representable in float64", q)
    return OutputCumulants(act.name, readout, q, tuple(kz), *coefs)


def _default_degree(r: int) -> int:
    return {1: 200, 2: 100, 3: 40, 4: 24}.get(r, 12)


def fourth_cumulant_tensor(x: Tensor, *, activation: str | Activation,
                           readout: str = "gaussian", degree: int | None = None) -> Tensor:
    r"""Leading coefficient of the multi-input fourth cumulant of the output.

    For inputs :math:`x_1, \dots, x_k`, :math:`N\,\kappa(f(x_i), f(x_j), f(x_l), f(x_m))`
    equals (exactly, for one hidden layer)

    .. math::

        \mathbb{E}a^4\,\mathbb{E}[\phi_i\phi_j\phi_l\phi_m] - (\mathbb{E}a^2)^2\big(
        \mathbb{E}\phi_i\phi_j\,\mathbb{E}\phi_l\phi_m + \mathbb{E}\phi_i\phi_l\,
        \mathbb{E}\phi_j\phi_m + \mathbb{E}\phi_i\phi_m\,\mathbb{E}\phi_j\phi_l\big),

    :math:`\phi_i = \phi(u_i)`, :math:`u \sim \mathcal N(0, xx^\top/d)`. The expectations are
    computed by a tensor Gauss-Hermite rule in the
    :math:`r = \mathrm{rank}(xx^\top) \le \min(k, d)` independent directions.

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
    if x.shape[0] < 1 or x.shape[1] < 1:
        fail("x", fn, "a tensor of shape (k, d) with k, d >= 1", x)
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
    out = a4 * m4 - a2 * a2 * pairs
    if not bool(torch.isfinite(out).all()):
        fail("x", fn, "small enough that the fourth moments of phi(x.w/sqrt(d)) are finite "
             "in float64", x)
    return out


# --------------------------------------------------------------------------------------------
# Scaling with width
# --------------------------------------------------------------------------------------------

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
    (:func:`k_statistics`) and fits :math:`|\kappa_3| \propto N^{s_3}`,
    :math:`|\kappa_4| \propto N^{s_4}` by weighted least squares
    (:func:`fit_weighted_loglog_slope`); theory: :math:`s_3 = -1/2`, :math:`s_4 = -1`
    (exact for one hidden layer, leading order deeper).

    Parameters
    ----------
    activation : str or Activation
    widths : sequence of int
        At least two distinct widths (the slopes are weighted fits whose standard errors come
        from the measured ones, defined with two points).
    n_samples, generator, readout, depth, device, dtype
        As :func:`sample_outputs` (``n_samples >= 4``); one generator stream runs through the
        widths.
    q : float
        Pre-activation variance :math:`|x|^2/d` of the input, in :math:`[10^{-100},
        10^{100}]` (the fourth cumulants stay representable).

    Raises
    ------
    TypeError, ValueError
        For bad arguments, named as this function's (never its helpers'), or sizes beyond
        the size limits (CONTRIBUTING.md).

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
    widths = _check_widths(widths, fn)
    q = check_float(q, "q", fn, min=1e-100, max=1e100)
    x = torch.full((1, 1), math.sqrt(q), dtype=torch.float64)
    # Validate every argument here, under this function's name, before any sampling.
    _, act, _, n_samples, depth, _, dev, dt = _check_common(
        fn, x, activation, max(widths), n_samples, readout, depth, None, device, dtype)
    if n_samples < 4:
        fail("n_samples", fn, "an int >= 4 (the fourth k-statistic needs 4 samples)",
             n_samples)
    N = max(widths)
    _check_sample_budget(fn, n_out=1, per_network=N * (2 + (N if depth > 1 else 0)),
                         width=N, n_samples=n_samples, chunk_size=None,
                         depth=depth * len(widths), dt=dt, dev=dev, width_name="widths")
    g = as_generator(generator, dev, fn)  # one stream for all widths
    stats = []
    for n in widths:
        f = sample_outputs(x, activation=activation, width=n, n_samples=n_samples,
                           generator=g, readout=readout, depth=depth, device=device,
                           dtype=dtype)
        stats.append(_k_statistics(f[:, 0], 0, fn, "q"))
    kappa = torch.stack([s.kappa for s in stats])
    stderr = torch.stack([s.stderr for s in stats])
    act_name = activation.name if isinstance(activation, Activation) else activation
    theory = _output_cumulants(act, readout, q, 200, fn) if depth == 1 else None
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
