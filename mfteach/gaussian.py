r"""Closed-form Gaussian expectations of activations, and the quadrature that checks them.

Every function here returns a *true* expectation over a zero-mean Gaussian vector whose
covariance is given entrywise (``c11, c12, c22``) or as a matrix ``C`` of shape ``(..., k, k)``.
All functions broadcast over leading axes, compute on the device and in the dtype of their
inputs, and are built from differentiable torch operations (autograd and CUDA work).

* Arc-cosine kernels of orders 0 and 1 (step and ReLU): :func:`arccos_kernel`.
* The plain-erf dual and the dual of its derivative: :func:`erf_dual`, :func:`erf_dual_prime`.
* The SGD-ODE integrals for :math:`g(u) = \operatorname{erf}(u/\sqrt2)`: :func:`erf_I2`,
  :func:`erf_I2_noise`, :func:`erf_I3`, :func:`erf_I4`.
  All four are true expectations. Beware: some public SGD-ODE code uses
  ``I2 = arcsin(.)/pi``, half of :math:`\mathbb{E}[g g] = \frac2\pi\arcsin(.)`
  (see :func:`erf_I2`).
* The numerical fallback for any activation: :func:`gauss_hermite_expectation` (2-D) and
  :func:`gauss_hermite_expectation_1d`.

Validation (non-negative variances, :math:`c_{12}^2 \le c_{11}c_{22}`, square symmetric ``C``)
forces one host-device synchronisation per call. Inner loops that have already validated their
inputs (an ODE right-hand side) may pass ``validate=False``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ._checks import check_bool, check_int, check_same_device_dtype, check_tensor, fail
from .device import resolve_device, resolve_dtype

__all__ = [
    "arccos_kernel",
    "erf_dual",
    "erf_dual_prime",
    "erf_I2",
    "erf_I2_noise",
    "erf_I3",
    "erf_I4",
    "gauss_hermite_expectation",
    "gauss_hermite_expectation_1d",
    "hermite_rule",
    "MAX_DEGREE",
]

_PI = math.pi

#: Largest Gauss-Hermite degree accepted (NumPy's ``hermegauss`` overflows beyond ~350).
MAX_DEGREE = 300


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------

def _rtol(dtype: torch.dtype) -> float:
    """Relative slack for the covariance checks: sqrt(machine epsilon) of ``dtype``."""
    return math.sqrt(torch.finfo(dtype).eps)


def _as_tensors(fn: str, **values) -> list[Tensor]:
    """Turn numbers into tensors like the tensor arguments, check them and broadcast them.

    Python numbers take the dtype and device of the tensor arguments (float64 on the CPU when
    there are none). Tensors must agree on device and dtype and be floating point and finite.
    """
    tensors = {k: v for k, v in values.items() if isinstance(v, Tensor)}
    for k, v in tensors.items():
        check_tensor(v, k, fn)
    check_same_device_dtype(fn, **tensors)
    if tensors:
        ref = next(iter(tensors.values()))
        dtype, device = ref.dtype, ref.device
    else:
        dtype, device = torch.float64, torch.device("cpu")
    out = {}
    for k, v in values.items():
        if not isinstance(v, Tensor):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                fail(k, fn, "a floating-point torch.Tensor or a real number", v, exc=TypeError)
            if not math.isfinite(float(v)):
                fail(k, fn, "finite (no NaN or inf entries)", v)
            v = torch.tensor(float(v), dtype=dtype, device=device)
        out[k] = v
    try:
        shapes = torch.broadcast_shapes(*(v.shape for v in out.values()))
    except RuntimeError:
        names = list(out)
        got = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in out.items())
        raise ValueError(
            f"The {names[0]!r} parameter of {fn} must broadcast with "
            f"{', '.join(repr(n) for n in names[1:])}. Got shapes {got} instead.") from None
    return [v.expand(shapes) for v in out.values()]


def _covariance_2d(fn: str, c11, c12, c22, validate: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Check and broadcast the entries of a 2x2 covariance [[c11, c12], [c12, c22]]."""
    check_bool(validate, "validate", fn)
    c11, c12, c22 = _as_tensors(fn, c11=c11, c12=c12, c22=c22)
    if validate and c11.numel():
        with torch.no_grad():
            for name, c in (("c11", c11), ("c22", c22)):
                if bool((c < 0).any()):
                    fail(name, fn, "a variance >= 0 everywhere", c,
                         hint=f"Smallest entry: {float(c.min()):.6g}.")
            # Cauchy-Schwarz: c12^2 <= c11 c22, with a sqrt(eps) relative slack for rounding.
            rt = _rtol(c12.dtype)
            bound = (c11 * c22).sqrt() * (1 + rt) + rt * torch.finfo(c12.dtype).tiny ** 0.5
            if bool((c12.abs() > bound).any()):
                excess = float((c12.abs() - (c11 * c22).sqrt()).max())
                fail("c12", fn, "a covariance with c12**2 <= c11 * c22 (a valid 2x2 "
                     "covariance matrix)", c12, hint=f"Largest |c12| - sqrt(c11 c22): "
                     f"{excess:.6g}.")
    return c11, c12, c22


def _covariance_matrix(fn: str, C, k: int, validate: bool) -> Tensor:
    """Check a batch of k x k covariance matrices: square, symmetric, non-negative diagonal."""
    check_bool(validate, "validate", fn)
    check_tensor(C, "C", fn)
    if C.ndim < 2 or C.shape[-1] != k or C.shape[-2] != k:
        fail("C", fn, f"a tensor of shape (..., {k}, {k}) (a batch of {k}x{k} covariance "
             "matrices)", C)
    if validate and C.numel():
        with torch.no_grad():
            diag = torch.diagonal(C, dim1=-2, dim2=-1)
            if bool((diag < 0).any()):
                fail("C", fn, "a covariance with a non-negative diagonal", C,
                     hint=f"Smallest diagonal entry: {float(diag.min()):.6g}.")
            asym = (C - C.transpose(-1, -2)).abs()
            slack = _rtol(C.dtype) * (1 + C.abs())
            if bool((asym > slack).any()):
                fail("C", fn, "a symmetric matrix (C == C.mT within sqrt(eps) relative)", C,
                     hint=f"Largest |C - C.mT|: {float(asym.max()):.6g}.")
    return C


def _safe_sqrt(x: Tensor) -> Tensor:
    """sqrt(max(x, 0)) whose gradient is 0, not inf or NaN, where x <= 0."""
    pos = x > 0
    return torch.where(pos, torch.where(pos, x, torch.ones_like(x)).sqrt(), torch.zeros_like(x))


def _two_product(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """``(p, e)`` with ``p = fl(a * b)`` and ``p + e == a * b`` exactly.

    Dekker's product with Veltkamp's splitting (T. J. Dekker (1971), Numer. Math. 18,
    224-242): exact barring underflow; where the splitting overflows (``|a|``, ``|b|`` beyond
    about 1e300 in float64, 1e34 in float32) ``e`` is 0, i.e. the plain product.
    """
    split = 134217729.0 if a.dtype == torch.float64 else 4097.0  # 2^27 + 1, 2^12 + 1
    p = a * b

    def halves(x):
        c = split * x
        hi = c - (c - x)
        return hi, x - hi

    ah, al = halves(a)
    bh, bl = halves(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, torch.where(torch.isfinite(e), e, torch.zeros_like(e))


def _det2(c11: Tensor, c12: Tensor, c22: Tensor) -> Tensor:
    """``c11 * c22 - c12**2`` to a few ulps of the result, also when it cancels (a nearly
    degenerate covariance): both products are split into exact sums (:func:`_two_product`)."""
    p, e = _two_product(c11, c22)
    r, f = _two_product(c12, c12)
    return (p - r) + (e - f)


# Coefficients of sin(t) - t cos(t) = sum_k (-1)^(k+1) 2k t^(2k+1) / (2k+1)!, k = 1..10: the
# truncation error is below 1e-17 relative for t <= 1.
_SIN_TCOS = [(-1) ** (k + 1) * 2 * k / math.factorial(2 * k + 1) for k in range(1, 11)]


def _sin_minus_tcos(t: Tensor) -> Tensor:
    r""":math:`\sin t - t\cos t` for :math:`t \in [0, \pi]`, to a few ulps relative: the
    series at :math:`t < 1` (the direct form cancels like :math:`t^2`), direct beyond (at most
    a factor 5 lost there)."""
    small = t < 1
    ts = torch.where(small, t, torch.zeros_like(t))
    t2 = ts * ts
    series = torch.full_like(t, _SIN_TCOS[-1])
    for c in reversed(_SIN_TCOS[:-1]):
        series = series * t2 + c
    series = series * t2 * ts
    return torch.where(small, series, torch.sin(t) - t * torch.cos(t))


# --------------------------------------------------------------------------------------------
# Arc-cosine kernels (step, ReLU)
# --------------------------------------------------------------------------------------------

def arccos_kernel(order: int, c11, c12, c22, *, validate: bool = True) -> Tensor:
    r"""Arc-cosine kernel: :math:`\mathbb{E}[s_n(u)\, s_n(v)]` for the step (n=0) or ReLU (n=1).

    Here :math:`(u, v)` is a zero-mean Gaussian pair with covariance
    :math:`\begin{pmatrix} c_{11} & c_{12} \\ c_{12} & c_{22} \end{pmatrix}`,
    :math:`s_0(u) = \mathbf 1\{u > 0\}` and :math:`s_1(u) = \max(u, 0)`. With
    :math:`\cos\vartheta = c_{12}/\sqrt{c_{11}c_{22}}`,

    .. math::

        \mathbb{E}[s_0(u)s_0(v)] = \frac{\pi - \vartheta}{2\pi}, \qquad
        \mathbb{E}[s_1(u)s_1(v)] = \sqrt{c_{11}c_{22}}\,
            \frac{\sin\vartheta + (\pi - \vartheta)\cos\vartheta}{2\pi}.

    Parameters
    ----------
    order : int
        0 (step function) or 1 (ReLU).
    c11, c12, c22 : Tensor or float, broadcastable shapes (...)
        Entries of the covariance; ``c11, c22 >= 0`` and ``c12**2 <= c11 * c22``.
    validate : bool, keyword-only, default True
        Check the covariance (one host-device synchronisation).

    Returns
    -------
    Tensor, shape (...)
        The expectation, in the dtype and on the device of the inputs.

    Raises
    ------
    ValueError
        If ``order`` is not 0 or 1, a variance is negative, or ``c12**2 > c11 * c22`` beyond a
        relative slack of :math:`\sqrt{\epsilon}`.
    TypeError
        If an argument is not a floating tensor or a real number, or tensors disagree in dtype.

    Notes
    -----
    These are *expectations*: Cho & Saul's :math:`k_n(x, y) = \frac1\pi \|x\|^n\|y\|^n
    J_n(\vartheta)` carries an extra factor 2 (their integral is :math:`2\,\mathbb{E}`).

    The angle is computed as :math:`\pi - \vartheta = \operatorname{atan2}(\sqrt{c_{11}c_{22}
    - c_{12}^2},\, -c_{12})`, with the determinant :math:`c_{11}c_{22} - c_{12}^2` evaluated
    from exact splittings of the two products (Dekker), so that it is accurate to a few ulps
    even when it cancels; the ReLU kernel is :math:`(\sqrt{c_{11}c_{22}-c_{12}^2} +
    (\pi-\vartheta)c_{12})/(2\pi)`, or :math:`\sqrt{c_{11}c_{22}}\,(\sin u - u\cos u)/(2\pi)`
    by its series at :math:`u = \pi - \vartheta < 1`. For the given (exactly represented)
    inputs both kernels are therefore accurate to a few ulps, near :math:`\vartheta = 0` and
    :math:`\pi` as well. They can only be as good as their inputs, though: near the degenerate
    covariance the angle is ill-conditioned, an error :math:`\delta` in :math:`c_{12}` moves it
    by :math:`\delta/\sqrt{c_{11}c_{22} - c_{12}^2}`, e.g. :math:`\sqrt\epsilon` for
    :math:`\delta = \epsilon c_{11}` at coincident inputs. A covariance assembled from
    different roundings of the same quantity (``c12`` from a matrix product, ``c11`` from a sum
    of squares) loses half the digits of the angle, and thereby of the step kernel; feed the
    same number (or use :func:`mfteach.kernels.ntk`, which carries the angle accurately).
    Hence:

    * a degenerate variance (``c11 == 0`` or ``c22 == 0``) gives 0, the exact value since
      :math:`s_n(0) = 0`, without NaN;
    * autograd gives finite gradients of the ReLU kernel on the diagonal
      (:math:`c_{12}^2 = c_{11}c_{22}`), where :math:`\partial/\partial c_{12} = (\pi -
      \vartheta)/(2\pi) = \mathbb{E}[s_0 s_0]` (Price's theorem). The step kernel's gradient
      is genuinely infinite there.

    Introduced in the book in chapter 01 (wide networks and their kernels), where it gives the
    NNGP and NTK of ReLU networks. For other activations use :func:`gauss_hermite_expectation`.

    References
    ----------
    Y. Cho and L. K. Saul (2009), "Kernel Methods for Deep Learning", NeurIPS 22, Sec. 2.1:
    :math:`J_0 = \pi - \vartheta`, :math:`J_1 = \sin\vartheta + (\pi-\vartheta)\cos\vartheta`.

    Examples
    --------
    >>> import torch
    >>> float(arccos_kernel(1, 1.0, 0.0, 1.0)) * 2 * math.pi  # rho = 0: 1 / (2 pi)
    1.0
    >>> float(arccos_kernel(0, 1.0, 0.0, 1.0)), float(arccos_kernel(0, 2.0, 2.0, 2.0))
    (0.25, 0.5)
    >>> c = torch.tensor([2.0, 0.0])  # rho = 1: E relu(u)^2 = c / 2; degenerate c11 = 0
    >>> arccos_kernel(1, c, c, torch.tensor([2.0, 3.0]))
    tensor([1., 0.])
    """
    fn = "mfteach.gaussian.arccos_kernel"
    order = check_int(order, "order", fn, min=0, max=1)
    c11, c12, c22 = _covariance_2d(fn, c11, c12, c22, validate)
    s = _safe_sqrt(_det2(c11, c12, c22))  # sqrt(c11 c22) sin(theta)
    comp = torch.atan2(s, -c12)  # pi - theta, in [0, pi]
    if order == 0:
        degenerate = (c11 <= 0) | (c22 <= 0)
        return torch.where(degenerate, torch.zeros_like(comp), comp / (2 * _PI))
    # sin(t) + (pi - t) cos(t) = sin(u) - u cos(u) at u = pi - t, which cancels like u^3 near
    # t = pi (c12 close to -sqrt(c11 c22)): the series there.
    near_pi = comp < 1
    tail = _safe_sqrt(c11 * c22) * _sin_minus_tcos(torch.where(near_pi, comp,
                                                               torch.zeros_like(comp)))
    return torch.where(near_pi, tail, s + comp * c12) / (2 * _PI)


# --------------------------------------------------------------------------------------------
# erf duals
# --------------------------------------------------------------------------------------------

def erf_dual(c11, c12, c22, *, validate: bool = True) -> Tensor:
    r"""Dual of the plain error function: :math:`\mathbb{E}[\operatorname{erf}(u)
    \operatorname{erf}(v)]`.

    For a zero-mean Gaussian pair :math:`(u, v)` with covariance
    :math:`[[c_{11}, c_{12}], [c_{12}, c_{22}]]`,

    .. math::

        \mathbb{E}[\operatorname{erf}(u)\operatorname{erf}(v)] = \frac{2}{\pi}
        \arcsin\frac{2c_{12}}{\sqrt{(1 + 2c_{11})(1 + 2c_{22})}}.

    Parameters
    ----------
    c11, c12, c22 : Tensor or float, broadcastable shapes (...)
        Entries of the covariance; ``c11, c22 >= 0`` and ``c12**2 <= c11 * c22``.
    validate : bool, keyword-only, default True
        Check the covariance (one host-device synchronisation).

    Returns
    -------
    Tensor, shape (...)
        The expectation, in the dtype and on the device of the inputs.

    Raises
    ------
    ValueError
        If a variance is negative or ``c12**2 > c11 * c22``.
    TypeError
        If an argument is not a floating tensor or a real number.

    Notes
    -----
    The arcsin argument is clamped to :math:`[-1, 1]` against rounding. This is the *plain*
    erf; for :math:`g(u) = \operatorname{erf}(u/\sqrt2)` use :func:`erf_I2`, which equals
    ``erf_dual(c11 / 2, c12 / 2, c22 / 2)``. Introduced in the book in chapter 01 (wide
    networks and their kernels).

    References
    ----------
    C. K. I. Williams (1998), "Computing with infinite networks", Neural Computation 10(5),
    1203-1216: the erf ("arcsin") covariance function,
    :math:`\frac2\pi\arcsin\frac{2x^\top\Sigma x'}{\sqrt{(1+2x^\top\Sigma x)
    (1+2x'^\top\Sigma x')}}`.

    Examples
    --------
    >>> round(float(erf_dual(1.0, 0.5, 1.0)), 6)  # (2/pi) arcsin(1/3)
    0.216347
    """
    fn = "mfteach.gaussian.erf_dual"
    c11, c12, c22 = _covariance_2d(fn, c11, c12, c22, validate)
    arg = 2 * c12 / ((1 + 2 * c11) * (1 + 2 * c22)).sqrt()
    return (2 / _PI) * torch.asin(arg.clamp(-1.0, 1.0))


def erf_dual_prime(c11, c12, c22, *, validate: bool = True) -> Tensor:
    r"""Dual of the derivative of erf: :math:`\mathbb{E}[\operatorname{erf}'(u)
    \operatorname{erf}'(v)]`.

    With :math:`\operatorname{erf}'(u) = \frac{2}{\sqrt\pi}e^{-u^2}`,

    .. math::

        \mathbb{E}[\operatorname{erf}'(u)\operatorname{erf}'(v)] = \frac{4}{\pi}
        \frac{1}{\sqrt{(1 + 2c_{11})(1 + 2c_{22}) - 4c_{12}^2}},

    i.e. :math:`\frac4\pi \det(I + 2C)^{-1/2}`. This is the derivative of :func:`erf_dual`
    with respect to :math:`c_{12}` (Price's theorem); the NTK recursion needs it.

    Parameters
    ----------
    c11, c12, c22 : Tensor or float, broadcastable shapes (...)
        Entries of the covariance; ``c11, c22 >= 0`` and ``c12**2 <= c11 * c22``.
    validate : bool, keyword-only, default True
        Check the covariance (one host-device synchronisation).

    Returns
    -------
    Tensor, shape (...)

    Raises
    ------
    ValueError
        If a variance is negative or ``c12**2 > c11 * c22``.
    TypeError
        If an argument is not a floating tensor or a real number.

    Notes
    -----
    Introduced in the book in chapter 01 (wide networks and their kernels), NTK of erf networks.

    References
    ----------
    C. K. I. Williams (1998), Neural Computation 10(5), 1203-1216 (the erf kernel, whose
    :math:`c_{12}`-derivative this is).

    Examples
    --------
    >>> round(float(erf_dual_prime(0.0, 0.0, 0.0)) * math.pi / 4, 12)
    1.0
    """
    fn = "mfteach.gaussian.erf_dual_prime"
    c11, c12, c22 = _covariance_2d(fn, c11, c12, c22, validate)
    det = (1 + 2 * c11) * (1 + 2 * c22) - 4 * c12 * c12
    return (4 / _PI) / det.sqrt()


# --------------------------------------------------------------------------------------------
# SGD-ODE integrals for g(u) = erf(u / sqrt 2)
# --------------------------------------------------------------------------------------------

def erf_I2(c11, c12, c22, *, validate: bool = True) -> Tensor:
    r"""SGD-ODE integral :math:`I_2 = \mathbb{E}[g(z_1) g(z_2)]` for
    :math:`g(u) = \operatorname{erf}(u/\sqrt2)`.

    .. math::

        I_2 = \frac{2}{\pi}\arcsin\frac{c_{12}}{\sqrt{(1 + c_{11})(1 + c_{22})}}.

    Parameters
    ----------
    c11, c12, c22 : Tensor or float, broadcastable shapes (...)
        Covariance of :math:`(z_1, z_2)`, e.g. overlaps :math:`(Q_{jj}, M_{jr}, P_{rr})`.
    validate : bool, keyword-only, default True
        Check the covariance (one host-device synchronisation).

    Returns
    -------
    Tensor, shape (...)
        The *true* expectation. :math:`\mathbb{E}[g(z)^2] = 1/3` for :math:`z \sim N(0, 1)`.

    Raises
    ------
    ValueError
        If a variance is negative or ``c12**2 > c11 * c22``.
    TypeError
        If an argument is not a floating tensor or a real number.

    Notes
    -----
    **Factor-2 trap.** Some public SGD-ODE code (``committee_learning/ode/erf_integrals.cpp``
    in IdePHICS/DimensionlessDynamicsSGD) defines ``I2 = arcsin(.) / pi``, *half* of the
    expectation returned here; a risk written with it is off by a factor 2 unless its
    prefactors compensate. The population risk of a committee machine with
    :math:`f = \frac1p\sum_j g(\lambda_j)` is
    :math:`\frac12\mathbb{E}(f - f^*)^2 = \frac12[\frac1{k^2}\sum_{rs} I_2(P) -
    \frac{2}{pk}\sum_{jr} I_2(Q, M, P) + \frac1{p^2}\sum_{ij} I_2(Q)]` with *this* :math:`I_2`.

    Equal to ``erf_dual(c11 / 2, c12 / 2, c22 / 2)``. Used in the book in chapter 04
    (one-pass SGD and its ODEs).

    References
    ----------
    D. Saad and S. A. Solla (1995), "On-line learning in soft committee machines",
    Phys. Rev. E 52, 4225; C. K. I. Williams (1998), Neural Computation 10(5), 1203-1216.

    Examples
    --------
    >>> round(float(erf_I2(1.0, 1.0, 1.0)) * 3, 12)  # E[g(z)^2] = 1/3
    1.0
    >>> round(float(erf_I2(1.0, 0.5, 1.0)), 5)  # (2/pi) arcsin(1/4)
    0.16086
    """
    fn = "mfteach.gaussian.erf_I2"
    c11, c12, c22 = _covariance_2d(fn, c11, c12, c22, validate)
    arg = c12 / ((1 + c11) * (1 + c22)).sqrt()
    return (2 / _PI) * torch.asin(arg.clamp(-1.0, 1.0))


def erf_I2_noise(c11, c12, c22, *, validate: bool = True) -> Tensor:
    r"""SGD-ODE noise integral :math:`\mathbb{E}[g'(z_1) g'(z_2)]` for
    :math:`g(u) = \operatorname{erf}(u/\sqrt2)`.

    With :math:`g'(u) = \sqrt{2/\pi}\, e^{-u^2/2}`,

    .. math::

        \mathbb{E}[g'(z_1)g'(z_2)] = \frac{2}{\pi\sqrt{(1 + c_{11})(1 + c_{22}) - c_{12}^2}}.

    Parameters
    ----------
    c11, c12, c22 : Tensor or float, broadcastable shapes (...)
        Covariance of :math:`(z_1, z_2)`.
    validate : bool, keyword-only, default True
        Check the covariance (one host-device synchronisation).

    Returns
    -------
    Tensor, shape (...)
        The true expectation (the term multiplying the label-noise variance in the
        :math:`\gamma^2` part of the ODE for :math:`Q`).

    Raises
    ------
    ValueError
        If a variance is negative or ``c12**2 > c11 * c22``.
    TypeError
        If an argument is not a floating tensor or a real number.

    Notes
    -----
    Used in the book in chapter 04 (one-pass SGD and its ODEs). See the factor-2 trap in
    :func:`erf_I2`: conventions for these integrals differ between codes; here every
    function is a plain expectation.

    References
    ----------
    D. Saad and S. A. Solla (1995), Phys. Rev. E 52, 4225.

    Examples
    --------
    >>> round(float(erf_I2_noise(0.0, 0.0, 0.0)) * math.pi / 2, 12)
    1.0
    """
    fn = "mfteach.gaussian.erf_I2_noise"
    c11, c12, c22 = _covariance_2d(fn, c11, c12, c22, validate)
    det = (1 + c11) * (1 + c22) - c12 * c12
    return (2 / _PI) / det.sqrt()


def erf_I3(C: Tensor, *, validate: bool = True) -> Tensor:
    r"""SGD-ODE integral :math:`I_3 = \mathbb{E}[g'(z_1)\, z_2\, g(z_3)]` for
    :math:`g(u) = \operatorname{erf}(u/\sqrt2)`.

    For :math:`z \sim N(0, C)` with :math:`C` of shape 3x3,

    .. math::

        I_3 = \frac{2}{\pi}\,\frac{C_{23}(1 + C_{11}) - C_{12}C_{13}}
              {(1 + C_{11})\sqrt{(1 + C_{11})(1 + C_{33}) - C_{13}^2}}.

    Parameters
    ----------
    C : Tensor, shape (..., 3, 3)
        Covariance matrices of :math:`(z_1, z_2, z_3)`: symmetric, non-negative diagonal.
    validate : bool, keyword-only, default True
        Check ``C`` (one host-device synchronisation).

    Returns
    -------
    Tensor, shape (...)
        The true expectation.

    Raises
    ------
    ValueError
        If ``C`` is not (..., 3, 3), not symmetric within :math:`\sqrt\epsilon` relative, or
        has a negative diagonal entry.
    TypeError
        If ``C`` is not a floating tensor.

    Notes
    -----
    Derivation: :math:`\mathbb{E}[z_2 h(z_1, z_3)]` is linear in :math:`z_2`'s regression on
    :math:`(z_1, z_3)` (Stein's lemma); the remaining 2-D integrals are Gaussian.
    Positive semi-definiteness is not checked (only the diagonal and symmetry). Used in the
    book in chapter 04 (one-pass SGD and its ODEs). See the factor-2 trap in :func:`erf_I2`.

    References
    ----------
    D. Saad and S. A. Solla (1995), "On-line learning in soft committee machines",
    Phys. Rev. E 52, 4225.

    Examples
    --------
    >>> import torch
    >>> C = torch.eye(3, dtype=torch.float64) + 0.5 * (1 - torch.eye(3, dtype=torch.float64))
    >>> round(float(erf_I3(C)), 6)
    0.123281
    """
    fn = "mfteach.gaussian.erf_I3"
    C = _covariance_matrix(fn, C, 3, validate)
    c11, c12, c13 = C[..., 0, 0], C[..., 0, 1], C[..., 0, 2]
    c23, c33 = C[..., 1, 2], C[..., 2, 2]
    a = 1 + c11
    return (2 / _PI) * (c23 * a - c12 * c13) / (a * (a * (1 + c33) - c13 * c13).sqrt())


def erf_I4(C: Tensor, *, validate: bool = True) -> Tensor:
    r"""SGD-ODE integral :math:`I_4 = \mathbb{E}[g'(z_1) g'(z_2) g(z_3) g(z_4)]` for
    :math:`g(u) = \operatorname{erf}(u/\sqrt2)`.

    For :math:`z \sim N(0, C)` with :math:`C` of shape 4x4,

    .. math::

        I_4 = \frac{4}{\pi^2\sqrt{L_4}}\arcsin\frac{L_0}{\sqrt{L_1 L_2}},

    with

    .. math::

        L_4 &= (1 + C_{11})(1 + C_{22}) - C_{12}^2,\\
        L_0 &= L_4 C_{34} - C_{23}C_{24}(1 + C_{11}) - C_{13}C_{14}(1 + C_{22})
               + C_{12}C_{13}C_{24} + C_{12}C_{14}C_{23},\\
        L_1 &= L_4 (1 + C_{33}) - C_{23}^2(1 + C_{11}) - C_{13}^2(1 + C_{22})
               + 2C_{12}C_{13}C_{23},\\
        L_2 &= L_4 (1 + C_{44}) - C_{24}^2(1 + C_{11}) - C_{14}^2(1 + C_{22})
               + 2C_{12}C_{14}C_{24}.

    Parameters
    ----------
    C : Tensor, shape (..., 4, 4)
        Covariance matrices of :math:`(z_1, \dots, z_4)`: symmetric, non-negative diagonal.
    validate : bool, keyword-only, default True
        Check ``C`` (one host-device synchronisation).

    Returns
    -------
    Tensor, shape (...)
        The true expectation.

    Raises
    ------
    ValueError
        If ``C`` is not (..., 4, 4), not symmetric within :math:`\sqrt\epsilon` relative, or
        has a negative diagonal entry.
    TypeError
        If ``C`` is not a floating tensor.

    Notes
    -----
    Derivation: :math:`g'(z_1)g'(z_2) = \frac2\pi e^{-(z_1^2+z_2^2)/2}` reweights the Gaussian;
    the remaining :math:`\mathbb{E}[g g]` is an :math:`I_2` of the reweighted covariance of
    :math:`(z_3, z_4)`, and :math:`L_4 = \det(I + C_{12\text{-block}})`. The arcsin argument
    is clamped to :math:`[-1, 1]` against rounding. Positive semi-definiteness is not checked.
    The full erf ODE needs :math:`O(p^2(p+k)^2)` of these per right-hand side;
    :mod:`mfteach.sgd_odes` evaluates them from this formula's structure rather than block by
    block. Used in the book in chapter 04 (one-pass SGD and its ODEs). See the factor-2
    trap in :func:`erf_I2`.

    References
    ----------
    D. Saad and S. A. Solla (1995), "On-line learning in soft committee machines",
    Phys. Rev. E 52, 4225.

    Examples
    --------
    >>> import torch
    >>> C = torch.tensor([[1, .3, .2, .1], [.3, 1.2, .25, .15], [.2, .25, .9, .6],
    ...                   [.1, .15, .6, 1.1]], dtype=torch.float64)
    >>> round(float(erf_I4(C)), 7)
    0.057987
    """
    fn = "mfteach.gaussian.erf_I4"
    C = _covariance_matrix(fn, C, 4, validate)
    c11, c12, c13, c14 = C[..., 0, 0], C[..., 0, 1], C[..., 0, 2], C[..., 0, 3]
    c22, c23, c24 = C[..., 1, 1], C[..., 1, 2], C[..., 1, 3]
    c33, c34, c44 = C[..., 2, 2], C[..., 2, 3], C[..., 3, 3]
    a1, a2 = 1 + c11, 1 + c22
    l4 = a1 * a2 - c12 * c12
    l0 = l4 * c34 - c23 * c24 * a1 - c13 * c14 * a2 + c12 * c13 * c24 + c12 * c14 * c23
    l1 = l4 * (1 + c33) - c23 * c23 * a1 - c13 * c13 * a2 + 2 * c12 * c13 * c23
    l2 = l4 * (1 + c44) - c24 * c24 * a1 - c14 * c14 * a2 + 2 * c12 * c14 * c24
    arg = (l0 / (l1 * l2).sqrt()).clamp(-1.0, 1.0)
    return 4 / (_PI**2 * l4.sqrt()) * torch.asin(arg)


# --------------------------------------------------------------------------------------------
# Gauss-Hermite quadrature: the numerical fallback
# --------------------------------------------------------------------------------------------

def hermite_rule(degree: int, *, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    r"""Nodes and weights of the probabilists' Gauss-Hermite rule for :math:`N(0, 1)`.

    :math:`\sum_i w_i f(x_i) \approx \mathbb{E}[f(x)]`, exact for polynomials of degree
    :math:`\le 2\,\text{degree} - 1`; the weights sum to 1.

    Parameters
    ----------
    degree : int, 1 <= degree <= 300
        Number of nodes. NumPy's ``hermegauss`` overflows beyond about 350 nodes; 300 is the
        cap (:data:`MAX_DEGREE`).
    dtype, device : keyword-only
        Where to put the result (default float64 on the CPU).

    Returns
    -------
    nodes, weights : Tensor, shape (degree,)

    Examples
    --------
    >>> x, w = hermite_rule(3)
    >>> round(float((w * x**4).sum()), 12)  # E x^4 = 3
    3.0
    """
    fn = "mfteach.gaussian.hermite_rule"
    degree = check_int(degree, "degree", fn, min=1, max=MAX_DEGREE)
    dtype = resolve_dtype(dtype, fn)
    device = resolve_device(device, fn)
    x, w = _hermite_numpy(degree)
    return (torch.tensor(x, dtype=dtype, device=device),
            torch.tensor(w, dtype=dtype, device=device))


@functools.lru_cache(maxsize=32)
def _hermite_numpy(degree: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(degree)
    w = w / math.sqrt(2 * math.pi)
    x.flags.writeable = False
    w.flags.writeable = False
    return x, w


# Node evaluations per chunk in the 2-D rule: bounds memory for large kernel matrices.
_CHUNK_NODES = 1 << 22


def gauss_hermite_expectation(fn2: Callable[[Tensor, Tensor], Tensor], c11, c12, c22, *,
                              degree: int = 64, validate: bool = True) -> Tensor:
    r""":math:`\mathbb{E}[f(u, v)]` for a zero-mean Gaussian pair, by 2-D Gauss-Hermite
    quadrature.

    With the Cholesky factor of :math:`C = [[c_{11}, c_{12}], [c_{12}, c_{22}]]`,
    :math:`u = \sqrt{c_{11}}\,x`, :math:`v = \frac{c_{12}}{\sqrt{c_{11}}}x +
    \sqrt{c_{22} - c_{12}^2/c_{11}}\,y` for independent standard :math:`x, y`, and

    .. math::

        \mathbb{E}[f(u, v)] \approx \sum_{i,j} w_i w_j f(u_{ij}, v_{ij})

    with the probabilists' Hermite rule :math:`(x_i, w_i)` of :func:`hermite_rule`.

    Parameters
    ----------
    fn2 : callable ``(u, v) -> Tensor``
        Elementwise function of two tensors of equal shape, e.g.
        ``lambda u, v: torch.tanh(u) * torch.tanh(v)``.
    c11, c12, c22 : Tensor or float, broadcastable shapes (...)
        Entries of the covariance; ``c11, c22 >= 0``, ``c12**2 <= c11 * c22``.
    degree : int, keyword-only, default 64
        Nodes per axis; the cost is :math:`O(\text{degree}^2)` evaluations per entry. The rule
        is exact for polynomials of degree :math:`\le 2\,\text{degree} - 1` in each variable;
        for smooth activations (tanh, erf) 64 gives ~1e-12 at unit variances, kinks (ReLU)
        converge only algebraically (use :func:`arccos_kernel`).
    validate : bool, keyword-only, default True
        Check the covariance (one host-device synchronisation).

    Returns
    -------
    Tensor, shape (...)
        In the dtype and on the device of the inputs; differentiable in ``c11, c12, c22``
        away from ``c11 = 0``.

    Raises
    ------
    ValueError
        If a variance is negative, ``c12**2 > c11 * c22``, or ``degree < 1``.
    TypeError
        If ``fn2`` is not callable or an argument has the wrong type.

    Notes
    -----
    The batch is processed in chunks of about :math:`2^{22}` node evaluations to bound memory.
    ``c11 == 0`` is handled (then :math:`u \equiv 0` and :math:`v = \sqrt{c_{22}}\,y`).
    The fallback named in chapter 01 (wide networks and their kernels) for activations without
    a closed-form dual.

    Examples
    --------
    >>> import torch
    >>> e = gauss_hermite_expectation(lambda u, v: torch.erf(u) * torch.erf(v), 1.0, 0.5, 1.0)
    >>> abs(float(e - erf_dual(1.0, 0.5, 1.0))) < 1e-10
    True
    """
    fn = "mfteach.gaussian.gauss_hermite_expectation"
    if not callable(fn2):
        fail("fn2", fn, "a callable (u, v) -> Tensor", fn2, exc=TypeError)
    degree = check_int(degree, "degree", fn, min=1, max=MAX_DEGREE)
    c11, c12, c22 = _covariance_2d(fn, c11, c12, c22, validate)
    shape = c11.shape
    x, w = hermite_rule(degree, dtype=c11.dtype, device=c11.device)
    l11 = _safe_sqrt(c11)
    pos = l11 > 0
    l21 = torch.where(pos, c12 / torch.where(pos, l11, torch.ones_like(l11)),
                      torch.zeros_like(c12))
    l22 = _safe_sqrt(c22 - l21 * l21)
    l11, l21, l22 = (t.reshape(-1, 1, 1) for t in (l11, l21, l22))  # (B, 1, 1)
    xi, yj = x.reshape(1, -1, 1), x.reshape(1, 1, -1)  # (1, deg, 1), (1, 1, deg)
    ww = w.reshape(-1, 1) * w.reshape(1, -1)  # (deg, deg)
    n = l11.shape[0]
    step = max(1, _CHUNK_NODES // (degree * degree))
    parts = []
    for start in range(0, n, step):
        sl = slice(start, start + step)
        u = (l11[sl] * xi).expand(-1, degree, degree)  # (b, deg, deg)
        v = l21[sl] * xi + l22[sl] * yj  # (b, deg, deg)
        parts.append((fn2(u, v) * ww).sum(dim=(-2, -1)))
    out = torch.cat(parts) if parts else torch.zeros(0, dtype=c11.dtype, device=c11.device)
    return out.reshape(shape)


def gauss_hermite_expectation_1d(fn: Callable[[Tensor], Tensor], q, *, degree: int = 128,
                                 validate: bool = True) -> Tensor:
    r""":math:`\mathbb{E}[f(z)]` for :math:`z \sim N(0, q)`, by Gauss-Hermite quadrature.

    .. math::

        \mathbb{E}[f(z)] \approx \sum_i w_i f(\sqrt{q}\, x_i).

    Parameters
    ----------
    fn : callable ``Tensor -> Tensor``
        Elementwise function.
    q : Tensor or float, shape (...)
        Variance, ``q >= 0``.
    degree : int, keyword-only, default 128
        Number of nodes (cost :math:`O(\text{degree})` per entry).
    validate : bool, keyword-only, default True
        Check ``q >= 0``.

    Returns
    -------
    Tensor, shape (...)

    Raises
    ------
    ValueError
        If ``q < 0`` somewhere or ``degree < 1``.
    TypeError
        If ``fn`` is not callable or ``q`` has the wrong type.

    Examples
    --------
    >>> round(float(gauss_hermite_expectation_1d(lambda z: z**4, 2.0)), 10)  # 3 q^2
    12.0
    """
    name = "mfteach.gaussian.gauss_hermite_expectation_1d"
    if not callable(fn):
        fail("fn", name, "a callable Tensor -> Tensor", fn, exc=TypeError)
    degree = check_int(degree, "degree", name, min=1, max=MAX_DEGREE)
    check_bool(validate, "validate", name)
    (q,) = _as_tensors(name, q=q)
    if validate and q.numel() and bool((q < 0).any()):
        fail("q", name, "a variance >= 0 everywhere", q)
    x, w = hermite_rule(degree, dtype=q.dtype, device=q.device)
    z = _safe_sqrt(q).unsqueeze(-1) * x  # (..., degree)
    return (fn(z) * w).sum(-1)
