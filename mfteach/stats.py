r"""Monte-Carlo estimates with standard errors, and fitted log-log slopes.

Every width-scaling statement in the book ("the error falls like :math:`n^{-1/2}`") is checked
by a fitted slope with its standard error, and every Monte-Carlo comparison carries the
standard error of the mean. These two small tools are shared by the chapters and the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_float, check_int, check_tensor, fail

__all__ = ["MCEstimate", "SlopeFit", "SlopeSpread", "mc_estimate", "fit_loglog_slope",
           "fit_weighted_loglog_slope", "slope_spread", "normal_isf", "bonferroni_z"]


@dataclass(frozen=True)
class MCEstimate:
    """A Monte-Carlo mean with its standard error ``s / sqrt(n)``.

    ``mean`` and ``stderr`` have the shape of one sample; ``n_samples`` is ``n``.
    """

    mean: torch.Tensor
    stderr: torch.Tensor
    n_samples: int


@dataclass(frozen=True)
class SlopeFit:
    r"""Least-squares fit of :math:`\log y = \text{intercept} + \text{slope}\,\log x`.

    ``stderr`` is the usual OLS standard error of the slope; it needs at least three points
    (two points fix a line exactly and leave no residual to estimate the error from).
    """

    slope: float
    stderr: float
    intercept: float
    n_points: int

    def __str__(self) -> str:
        return f"slope {self.slope:+.3f} ± {self.stderr:.3f} ({self.n_points} points)"


def mc_estimate(samples: torch.Tensor, dim: int = 0) -> MCEstimate:
    """Mean and standard error of the mean of ``samples`` along ``dim``.

    ``samples`` must be a finite float32/float64 tensor with at least 2 entries along ``dim``
    (a ``ValueError``/``TypeError`` names it otherwise).

    Examples
    --------
    >>> est = mc_estimate(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    >>> float(est.mean), round(float(est.stderr), 6)
    (2.5, 0.645497)
    """
    fn = "mfteach.stats.mc_estimate"
    check_tensor(samples, "samples", fn)
    if samples.ndim == 0:
        fail("samples", fn, "a tensor with at least one dimension", samples)
    dim = check_int(dim, "dim", fn, min=-samples.ndim, max=samples.ndim - 1)
    n = samples.shape[dim]
    if n < 2:
        fail("samples", fn, "at least 2 samples along `dim`", samples)
    mean = samples.mean(dim)
    stderr = samples.std(dim, unbiased=True) / math.sqrt(n)
    if not (bool(torch.isfinite(mean).all()) and bool(torch.isfinite(stderr).all())):
        # huge but finite samples: the sums overflow; rescale by a power of 2 (exact)
        amax = samples.abs().amax(dim, keepdim=True)
        scale = torch.exp2(torch.floor(torch.log2(torch.where(amax > 0, amax,
                                                              torch.ones_like(amax)))))
        xs = samples / scale
        scale = scale.squeeze(dim)
        mean = xs.mean(dim) * scale
        stderr = xs.std(dim, unbiased=True) / math.sqrt(n) * scale
        if not (bool(torch.isfinite(mean).all()) and bool(torch.isfinite(stderr).all())):
            fail("samples", fn, f"small enough that their standard deviation is finite in "
                 f"{samples.dtype}", samples)
    return MCEstimate(mean=mean, stderr=stderr, n_samples=n)


def _as_float_array(v, name: str, fn: str) -> np.ndarray:
    """A flat float64 numpy copy of a tensor, array or sequence of real numbers; a one-line
    ``TypeError`` naming ``name`` for anything else (strings, complex numbers, objects), and a
    ``ValueError`` for numbers beyond the float64 range."""
    if isinstance(v, torch.Tensor):
        if v.is_complex():
            fail(name, fn, "an array of real numbers", v, exc=TypeError)
        return v.detach().to("cpu", torch.float64).numpy().ravel()
    if isinstance(v, (str, bytes)):
        fail(name, fn, "an array of real numbers", v, exc=TypeError)
    try:
        raw = np.asarray(v)
    except (TypeError, ValueError, OverflowError):
        fail(name, fn, "an array of real numbers", v, exc=TypeError)
    if raw.dtype.kind not in "biuf" and raw.dtype != object:
        fail(name, fn, "an array of real numbers", v, exc=TypeError)
    try:
        if raw.dtype == object and not all(
                isinstance(e, (int, float, np.integer, np.floating)) and not isinstance(e, bool)
                for e in raw.ravel()):
            fail(name, fn, "an array of real numbers", v, exc=TypeError)
        out = raw.astype(np.float64).ravel()
    except OverflowError:
        fail(name, fn, "an array of finite real numbers", v)
    except (TypeError, ValueError):
        fail(name, fn, "an array of real numbers", v, exc=TypeError)
    return out


def fit_loglog_slope(x, y) -> SlopeFit:
    r"""Fit a power law :math:`y \propto x^{\text{slope}}` by least squares on log-log axes.

    Parameters
    ----------
    x, y : array-like of positive numbers, same length (at least 3)

    Raises
    ------
    ValueError
        With fewer than 3 points (the slope's standard error is undefined with 2), unequal
        lengths, non-positive or non-finite values, or a constant ``x``.

    Examples
    --------
    >>> fit = fit_loglog_slope([1, 2, 4, 8], [1.0, 0.5, 0.25, 0.125])
    >>> round(fit.slope, 12), round(fit.stderr, 12)
    (-1.0, 0.0)
    """
    fn = "mfteach.stats.fit_loglog_slope"
    xa, ya = _as_float_array(x, "x", fn), _as_float_array(y, "y", fn)
    if xa.size < 3:
        fail("x", fn, "an array of at least 3 points (a slope's standard error needs a "
             "residual)", xa.tolist())
    if ya.size != xa.size:
        fail("y", fn, f"an array of the same length as x ({xa.size})", ya.tolist())
    if not (np.all(np.isfinite(xa)) and np.all(xa > 0)):
        fail("x", fn, "finite and positive", xa.tolist())
    if not (np.all(np.isfinite(ya)) and np.all(ya > 0)):
        fail("y", fn, "finite and positive", ya.tolist())
    lx, ly = np.log(xa), np.log(ya)
    sxx = float(((lx - lx.mean()) ** 2).sum())
    if not sxx > 0:
        fail("x", fn, "an array with at least two distinct values", xa.tolist())
    A = np.stack([np.ones_like(lx), lx], axis=1)
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    n = lx.size
    resid = ly - A @ coef
    se = math.sqrt(float(resid @ resid) / (n - 2) / sxx)
    return SlopeFit(slope=float(coef[1]), stderr=se, intercept=float(coef[0]), n_points=n)


def fit_weighted_loglog_slope(x, y, y_stderr) -> SlopeFit:
    r"""Weighted least-squares power law :math:`y \propto x^{s}` with propagated errors.

    Fits :math:`\log y = c + s\log x` with weights :math:`1/\sigma_i^2`,
    :math:`\sigma_i = \mathrm{se}(y_i)/y_i` (delta method). The slope's standard error is the
    one propagated from the given standard errors, :math:`(\sum_i w_i(\ell_i -
    \bar\ell_w)^2)^{-1/2}`, so it does not depend on the luck of the residuals; with two points
    it is still defined.

    Examples
    --------
    >>> fit = fit_weighted_loglog_slope([1, 2, 4], [1.0, 0.5, 0.25], [0.01, 0.005, 0.0025])
    >>> round(fit.slope, 10), round(fit.stderr, 4)
    (-1.0, 0.0102)
    """
    fn = "mfteach.stats.fit_weighted_loglog_slope"
    xa, ya, sa = (_as_float_array(v, name, fn)
                  for v, name in ((x, "x"), (y, "y"), (y_stderr, "y_stderr")))
    if xa.size < 2:
        fail("x", fn, "an array of at least 2 points", xa.tolist())
    for v, name in ((ya, "y"), (sa, "y_stderr")):
        if v.size != xa.size:
            fail(name, fn, f"an array of the same length as x ({xa.size})", v.tolist())
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
    if not sxx > 0:
        fail("x", fn, "at least two distinct values", xa.tolist())
    slope = float((w * (lx - xbar) * (ly - ybar)).sum()) / sxx
    fit = SlopeFit(slope=slope, stderr=math.sqrt(1.0 / sxx), intercept=ybar - slope * xbar,
                   n_points=int(xa.size))
    if not all(math.isfinite(v) for v in (fit.slope, fit.stderr, fit.intercept)):
        fail("y_stderr", fn, "standard errors whose weights (y / y_stderr)^2 are finite",
             sa.tolist())
    return fit


@dataclass(frozen=True)
class SlopeSpread:
    r"""One exponent measured on several independent data sets (or initialisations).

    The number a chapter interprets is ``mean`` :math:`\pm` ``stderr``, the standard
    error over the ``n`` replicates, :math:`s/\sqrt n`; ``sd`` is their sample standard
    deviation (how far one data set's slope may fall from another's) and ``fit_stderr``
    the mean of the per-replicate fit errors (what one data set alone would have claimed).

    Attributes
    ----------
    slopes : tuple of float
        The fitted slope of each replicate.
    mean, sd, stderr, fit_stderr : float
    n : int
        Number of replicates (at least 2).
    """

    slopes: tuple[float, ...]
    mean: float
    sd: float
    stderr: float
    fit_stderr: float
    n: int

    def __str__(self) -> str:
        return (f"slope {self.mean:+.3f} ± {self.stderr:.3f} over {self.n} data sets "
                f"(sd {self.sd:.3f})")

    def z_score(self, predicted: float) -> float:
        """Distance of ``mean`` from ``predicted`` in units of ``stderr``."""
        predicted = check_float(predicted, "predicted", "mfteach.stats.SlopeSpread.z_score")
        return (self.mean - predicted) / self.stderr if self.stderr > 0 else (
            0.0 if self.mean == predicted else math.copysign(math.inf, self.mean - predicted))


def slope_spread(fits) -> SlopeSpread:
    r"""Mean, spread and standard error of slopes fitted on independent replicates.

    Parameters
    ----------
    fits : sequence of SlopeFit
        One fit per independent data set or initialisation (at least 2; the book uses 5 or
        more for a slope it interprets).

    Returns
    -------
    SlopeSpread

    Raises
    ------
    TypeError, ValueError
        For fewer than 2 fits or an entry that is not a :class:`SlopeFit`.

    Examples
    --------
    >>> fits = [SlopeFit(s, 0.01, 0.0, 4) for s in (-0.9, -1.0, -1.1)]
    >>> sp = slope_spread(fits)
    >>> round(sp.mean, 6), round(sp.sd, 6), round(sp.stderr, 6)
    (-1.0, 0.1, 0.057735)
    """
    fn = "mfteach.stats.slope_spread"
    if isinstance(fits, (str, bytes, SlopeFit)) or not hasattr(fits, "__len__"):
        fail("fits", fn, "a sequence of SlopeFit (one per replicate)", fits, exc=TypeError)
    fits = list(fits)
    if len(fits) < 2:
        fail("fits", fn, "at least 2 fits (a spread needs two replicates)", fits)
    for f in fits:
        if not isinstance(f, SlopeFit):
            fail("fits", fn, "a sequence of SlopeFit (one per replicate)", f, exc=TypeError)
    s = np.array([f.slope for f in fits], dtype=np.float64)
    if not np.all(np.isfinite(s)):
        fail("fits", fn, "fits with finite slopes", s.tolist())
    n = s.size
    sd = float(s.std(ddof=1))
    return SlopeSpread(slopes=tuple(float(v) for v in s), mean=float(s.mean()), sd=sd,
                       stderr=sd / math.sqrt(n),
                       fit_stderr=float(np.mean([f.stderr for f in fits])), n=n)


def normal_isf(p: float) -> float:
    """Upper-tail quantile ``z`` of the standard normal: ``P(Z > z) = p`` (bisection on erfc).

    Examples
    --------
    >>> round(normal_isf(0.025), 4)
    1.96
    """
    p = check_float(p, "p", "mfteach.stats.normal_isf", min=0.0, max=0.5, min_open=True)
    lo, hi = 0.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * math.erfc(mid / math.sqrt(2.0)) > p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def bonferroni_z(m: int = 1, family_rate: float = 1e-6) -> float:
    """Two-sided z so that ``m`` simultaneous z-tests have false-alarm rate ``family_rate``.

    Examples
    --------
    >>> round(bonferroni_z(1), 2), round(bonferroni_z(100), 2)
    (4.89, 5.73)
    """
    fn = "mfteach.stats.bonferroni_z"
    m = check_int(m, "m", fn, min=1)
    family_rate = check_float(family_rate, "family_rate", fn, min=0.0, max=1.0,
                              min_open=True, max_open=True)
    try:
        p = family_rate / (2 * m)
    except OverflowError:
        p = 0.0
    if not p > 0:
        fail("m", fn, "small enough that family_rate / (2 m) is a positive float", m)
    return normal_isf(p)
