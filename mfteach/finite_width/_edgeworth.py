r"""Edgeworth expansions of a nearly Gaussian law, and distances to samples.

For a law with cumulants :math:`\kappa_2 = s^2`, :math:`\kappa_3`, :math:`\kappa_4` and
standardized cumulants :math:`\gamma_1 = \kappa_3/s^3`, :math:`\gamma_2 = \kappa_4/s^4`,

.. math::
    :label: edgeworth

    p(u) \approx \frac{1}{s}\varphi(v)\Big[1 + \frac{\gamma_1}{6}He_3(v)
    + \Big(\frac{\gamma_2}{24}He_4(v) + \frac{\gamma_1^2}{72}He_6(v)\Big)\Big],
    \qquad v = \frac{u - \kappa_1}{s},

where the :math:`\gamma_1` term is of order :math:`N^{-1/2}` (one term) and the bracket of
order :math:`N^{-1}` (two terms) for a width-:math:`N` output. Integrating term by term
(:math:`\int He_k\varphi = -He_{k-1}\varphi`) gives the distribution function

.. math::

    F(u) \approx \Phi(v) - \varphi(v)\Big[\frac{\gamma_1}{6}He_2(v)
    + \frac{\gamma_2}{24}He_3(v) + \frac{\gamma_1^2}{72}He_5(v)\Big].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import check_float, check_int, check_tensor, fail

__all__ = ["hermite_e", "edgeworth_density", "edgeworth_cdf", "ks_distance"]

#: Highest Hermite degree (the recurrence costs k tensor operations).
_MAX_HERMITE = 1000
#: Beyond |v| = 40 the Gaussian factor is below 1e-347: the density is 0 and the cdf 0 or 1
#: in float64, whatever the polynomial (evaluating it there would give inf * 0).
_V_MAX = 40.0


def hermite_e(k: int, v: Tensor) -> Tensor:
    r"""Probabilists' Hermite polynomial :math:`He_k(v)`: :math:`He_{k+1} = vHe_k - kHe_{k-1}`.

    Examples
    --------
    >>> hermite_e(4, torch.tensor(2.0))  # v^4 - 6 v^2 + 3
    tensor(-5.)
    """
    fn = "mfteach.finite_width.hermite_e"
    k = check_int(k, "k", fn, min=0, max=_MAX_HERMITE)
    check_tensor(v, "v", fn)
    prev, cur = torch.ones_like(v), v.clone()
    if k == 0:
        return prev
    for j in range(1, k):
        prev, cur = cur, v * cur - j * prev
    return cur


def _standardize(fn, u, kappa1, kappa2, kappa3, kappa4, terms):
    if not isinstance(u, Tensor):
        if isinstance(u, (str, bytes)):
            fail("u", fn, "a tensor or an array of real numbers", u, exc=TypeError)
        try:
            u = torch.as_tensor(u, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            fail("u", fn, "a tensor or an array of real numbers", u, exc=TypeError)
    check_tensor(u, "u", fn, finite=False)
    if bool(torch.isnan(u).any()):
        fail("u", fn, "free of NaN entries (+-inf is allowed)", u)
    k1 = check_float(kappa1, "kappa1", fn)
    k2 = check_float(kappa2, "kappa2", fn, min=0.0, min_open=True)
    k3 = check_float(kappa3, "kappa3", fn)
    k4 = check_float(kappa4, "kappa4", fn)
    terms = check_int(terms, "terms", fn, min=0, max=2)
    s = math.sqrt(k2)
    g1, g2 = k3 / s / s / s, k4 / k2 / k2  # no overflow in s**3 or k2**2
    if not math.isfinite(g1) or g1 * g1 / 72 * 2e10 > torch.finfo(u.dtype).max:
        fail("kappa3", fn, "small enough that the standardized third cumulant kappa3 / "
             "kappa2^1.5 gives a finite expansion", kappa3)
    if not math.isfinite(g2) or abs(g2) / 24 * 3e6 > torch.finfo(u.dtype).max:
        fail("kappa4", fn, "small enough that the standardized fourth cumulant kappa4 / "
             "kappa2^2 gives a finite expansion", kappa4)
    if terms < 2:
        g2 = 0.0
    v = (u - k1) / s
    if not bool(torch.isfinite(u).all()) or not bool(torch.isfinite(v).all()):
        v = torch.nan_to_num(v, nan=0.0)  # inf - k1 stays inf; an overflow is an inf too
    return u, v, s, (g1 if terms >= 1 else 0.0), g2, terms


def edgeworth_density(u, *, kappa2: float, kappa3: float = 0.0, kappa4: float = 0.0,
                      kappa1: float = 0.0, terms: int = 2) -> Tensor:
    r"""Edgeworth density with ``terms`` correction terms.

    Parameters
    ----------
    u : Tensor or array-like
        Points where the density is evaluated.
    kappa2 : float, keyword-only
        Variance :math:`s^2 > 0`.
    kappa3, kappa4, kappa1 : float, keyword-only
        Third and fourth cumulants, mean.
    terms : {0, 1, 2}
        0: the Gaussian :math:`\mathcal N(\kappa_1, \kappa_2)`; 1: plus the
        :math:`\gamma_1 He_3` term (order :math:`N^{-1/2}`); 2: plus the order-:math:`N^{-1}`
        terms
        :math:`\gamma_2 He_4/24 + \gamma_1^2 He_6/72`.

    Returns
    -------
    Tensor, shape of ``u``
        Integrates to 1 for every ``terms`` (the Hermite terms integrate to 0); it may dip
        below 0 in the tails when the cumulants are large (small width).

    Raises
    ------
    TypeError, ValueError
        For a non-positive ``kappa2``, non-finite cumulants, standardized cumulants so large
        that the expansion overflows, a NaN in ``u`` (``+-inf`` give the limits 0 and 0 / 1),
        or ``terms`` outside 0..2.

    References
    ----------
    F. Y. Edgeworth (1905); W. Feller, "An Introduction to Probability Theory and Its
    Applications", Vol. II, Ch. XVI.2 (the expansion for sums of i.i.d. variables).

    Examples
    --------
    >>> u = torch.linspace(-12, 12, 4001, dtype=torch.float64)
    >>> p = edgeworth_density(u, kappa2=1.0, kappa3=0.5, kappa4=1.5)
    >>> round(float(torch.trapezoid(p, u)), 8)
    1.0
    """
    u, v, s, g1, g2, _ = _standardize("mfteach.finite_width.edgeworth_density", u, kappa1,
                                      kappa2, kappa3, kappa4, terms)
    far = v.abs() > _V_MAX
    v = torch.where(far, torch.zeros_like(v), v)
    phi = torch.exp(-0.5 * v * v) / math.sqrt(2 * math.pi)
    corr = 1 + g1 / 6 * hermite_e(3, v)
    if terms >= 2:
        corr = corr + g2 / 24 * hermite_e(4, v) + g1 * g1 / 72 * hermite_e(6, v)
    return torch.where(far, torch.zeros_like(v), phi * corr / s)


def edgeworth_cdf(u, *, kappa2: float, kappa3: float = 0.0, kappa4: float = 0.0,
                  kappa1: float = 0.0, terms: int = 2) -> Tensor:
    r"""Distribution function of :func:`edgeworth_density` (same arguments).

    Examples
    --------
    >>> float(edgeworth_cdf(torch.tensor(0.0, dtype=torch.float64), kappa2=1.0, kappa4=2.0))
    0.5
    """
    u, v, s, g1, g2, _ = _standardize("mfteach.finite_width.edgeworth_cdf", u, kappa1,
                                      kappa2, kappa3, kappa4, terms)
    far = v.abs() > _V_MAX
    tail = (v > 0).to(v.dtype)  # the cdf is 0 or 1 out there
    v = torch.where(far, torch.zeros_like(v), v)
    phi = torch.exp(-0.5 * v * v) / math.sqrt(2 * math.pi)
    Phi = 0.5 * torch.erfc(-v / math.sqrt(2))
    corr = g1 / 6 * hermite_e(2, v)
    if terms >= 2:
        corr = corr + g2 / 24 * hermite_e(3, v) + g1 * g1 / 72 * hermite_e(5, v)
    return torch.where(far, tail, Phi - phi * corr)


def ks_distance(samples: Tensor, cdf) -> float:
    r"""Kolmogorov-Smirnov distance :math:`\sup_u |F_S(u) - F(u)|` of samples to a model CDF.

    Parameters
    ----------
    samples : Tensor, shape (S,)
    cdf : callable ``Tensor -> Tensor``
        The model distribution function, e.g.
        ``lambda u: edgeworth_cdf(u, kappa2=..., terms=2)``.

    Returns
    -------
    float
        Under the model, about :math:`0.87/\sqrt S` on average (Kolmogorov's law), so
        differences well above :math:`1/\sqrt S` are resolved.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(10_000, generator=g, dtype=torch.float64)
    >>> ks_distance(x, lambda u: edgeworth_cdf(u, kappa2=1.0, terms=0)) < 2 / 100
    True
    """
    fn = "mfteach.finite_width.ks_distance"
    check_tensor(samples, "samples", fn, ndim=1)
    if not callable(cdf):
        fail("cdf", fn, "a callable Tensor -> Tensor", cdf, exc=TypeError)
    S = samples.shape[0]
    if S < 1:
        fail("samples", fn, "a non-empty tensor", samples)
    xs = torch.sort(samples.to(torch.float64)).values
    F = cdf(xs)
    if not isinstance(F, Tensor) or F.shape != xs.shape:
        fail("cdf", fn, f"a callable returning a tensor of the shape of its argument "
             f"({S},)", F, exc=TypeError)
    F = F.to(torch.float64)
    if not bool(torch.isfinite(F).all()):  # (an Edgeworth cdf may leave [0, 1] a little)
        fail("cdf", fn, "a callable returning finite values", F)
    i = torch.arange(1, S + 1, dtype=torch.float64, device=xs.device)
    return float(torch.maximum(i / S - F, F - (i - 1) / S).max())
