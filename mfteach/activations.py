r"""Activation functions, their derivatives and their Gaussian moments.

An :class:`Activation` bundles a pointwise nonlinearity :math:`\phi` with its derivative
:math:`\phi'`; :func:`get_activation` looks one up by name. The Gaussian expectations that
wide-network theory needs come with closed forms where they exist and Gauss-Hermite quadrature
otherwise:

* :func:`gaussian_moments`: :math:`\mathbb{E}\phi(z)`, :math:`\mathbb{E}\phi(z)^2`,
  :math:`\mathbb{E}\phi'(z)^2` for :math:`z \sim N(0, q)`;
* :func:`dual` and :func:`dual_prime`: :math:`\mathbb{E}[\phi(u)\phi(v)]` and
  :math:`\mathbb{E}[\phi'(u)\phi'(v)]` for a Gaussian pair (the NNGP and NTK recursions).

=============  ======================================  ======================================
name           :math:`\phi(u)`                         :math:`\phi'(u)`
=============  ======================================  ======================================
``relu``       :math:`\max(u, 0)`                      :math:`\mathbf 1\{u > 0\}`
``erf``        :math:`\operatorname{erf}(u)`           :math:`\frac{2}{\sqrt\pi} e^{-u^2}`
``tanh``       :math:`\tanh u`                         :math:`1 - \tanh^2 u`
``erf_sqrt2``  :math:`\operatorname{erf}(u/\sqrt2)`    :math:`\sqrt{2/\pi}\, e^{-u^2/2}`
``square``     :math:`u^2`                             :math:`2u`
``linear``     :math:`u`                               :math:`1`
=============  ======================================  ======================================

``erf_sqrt2`` is the :math:`g` of the SGD-ODE chapter (:math:`g(z) = 2\Phi(z) - 1`, uniform
on :math:`(-1, 1)` for :math:`z \sim N(0, 1)`); ``erf`` is the plain erf of the kernel
chapters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from . import gaussian as _g
from ._checks import check_choice, check_int, fail

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "GaussianMoments",
    "dual",
    "dual_prime",
    "gaussian_moments",
    "get_activation",
    "resolve_activation",
]

_PI = math.pi
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class Activation:
    r"""A pointwise activation :math:`\phi` with its derivative :math:`\phi'`.

    Attributes
    ----------
    name : str
        Registry name (see :data:`ACTIVATIONS`).
    fn : callable ``Tensor -> Tensor``
        :math:`\phi`, elementwise, differentiable torch operations.
    deriv : callable ``Tensor -> Tensor``
        :math:`\phi'`, elementwise (for ReLU the step :math:`\mathbf 1\{u > 0\}`, so
        :math:`\phi'(0) = 0` as in torch's autograd).
    formula : str
        LaTeX for :math:`\phi(u)`, for labels and tables.

    Examples
    --------
    >>> import torch
    >>> act = get_activation("square")
    >>> act(torch.tensor(3.0)), act.deriv(torch.tensor(3.0))
    (tensor(9.), tensor(6.))
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    deriv: Callable[[Tensor], Tensor]
    formula: str = ""

    def __call__(self, u: Tensor) -> Tensor:
        return self.fn(u)


def _relu_deriv(u: Tensor) -> Tensor:
    return (u > 0).to(u.dtype)


def _erf_deriv(u: Tensor) -> Tensor:
    return (2 / math.sqrt(_PI)) * torch.exp(-u * u)


def _erf_sqrt2(u: Tensor) -> Tensor:
    return torch.erf(u / _SQRT2)


def _erf_sqrt2_deriv(u: Tensor) -> Tensor:
    return math.sqrt(2 / _PI) * torch.exp(-0.5 * u * u)


def _tanh_deriv(u: Tensor) -> Tensor:
    t = torch.tanh(u)
    return 1 - t * t


def _square(u: Tensor) -> Tensor:
    return u * u


def _square_deriv(u: Tensor) -> Tensor:
    return 2 * u


def _linear(u: Tensor) -> Tensor:
    return u


def _linear_deriv(u: Tensor) -> Tensor:
    return torch.ones_like(u)


_REGISTRY: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("relu", torch.relu, _relu_deriv, r"\max(u, 0)"),
        Activation("erf", torch.erf, _erf_deriv, r"\operatorname{erf}(u)"),
        Activation("tanh", torch.tanh, _tanh_deriv, r"\tanh(u)"),
        Activation("erf_sqrt2", _erf_sqrt2, _erf_sqrt2_deriv,
                   r"\operatorname{erf}(u/\sqrt{2})"),
        Activation("square", _square, _square_deriv, r"u^2"),
        Activation("linear", _linear, _linear_deriv, r"u"),
    )
}

#: Names accepted by :func:`get_activation`.
ACTIVATIONS: tuple[str, ...] = tuple(_REGISTRY)


def get_activation(name: str | Activation) -> Activation:
    r"""Look up an activation by name.

    Parameters
    ----------
    name : str or Activation
        One of :data:`ACTIVATIONS`: ``"relu"``, ``"erf"`` (plain erf), ``"tanh"``,
        ``"erf_sqrt2"`` (:math:`\operatorname{erf}(u/\sqrt2)`), ``"square"``, ``"linear"``.
        An :class:`Activation` is returned unchanged.

    Returns
    -------
    Activation

    Raises
    ------
    ValueError
        If ``name`` is not a known name (the message lists them).
    TypeError
        If ``name`` is neither a string nor an :class:`Activation`.

    Examples
    --------
    >>> import torch
    >>> get_activation("relu")(torch.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
    if isinstance(name, Activation):
        return name
    check_choice(name, "name", "mfteach.activations.get_activation", ACTIVATIONS)
    return _REGISTRY[name]


@dataclass(frozen=True)
class GaussianMoments:
    r"""Moments of an activation under :math:`z \sim N(0, q)`.

    Attributes
    ----------
    mean : Tensor, shape (...)
        :math:`\mathbb{E}\,\phi(z)`.
    second : Tensor, shape (...)
        :math:`\mathbb{E}\,\phi(z)^2`.
    deriv_second : Tensor, shape (...)
        :math:`\mathbb{E}\,\phi'(z)^2`.
    method : str
        ``"closed form"`` or ``"quadrature"`` (for the entries without a closed form).
    """

    mean: Tensor
    second: Tensor
    deriv_second: Tensor
    method: str


def _closed_moments(name: str, q: Tensor) -> tuple[Tensor, Tensor, Tensor] | None:
    """Closed-form (E phi, E phi^2, E phi'^2) for z ~ N(0, q), or None if there is none."""
    zero, one = torch.zeros_like(q), torch.ones_like(q)
    if name == "relu":
        # E phi'^2 = P(z > 0): 1/2 for q > 0; 0 at q = 0 since phi'(0) = 0.
        return q.clamp_min(0).sqrt() / math.sqrt(2 * _PI), q / 2, torch.where(q > 0, one / 2,
                                                                                zero)
    if name == "erf":
        return (zero, (2 / _PI) * torch.asin(2 * q / (1 + 2 * q)),
                (4 / _PI) / (1 + 4 * q).sqrt())
    if name == "erf_sqrt2":
        return zero, (2 / _PI) * torch.asin(q / (1 + q)), (2 / _PI) / (1 + 2 * q).sqrt()
    if name == "square":
        return q, 3 * q * q, 4 * q
    if name == "linear":
        return zero, q, one
    return None


def gaussian_moments(activation: str | Activation, q, *, degree: int = 300) -> GaussianMoments:
    r"""Gaussian moments :math:`\mathbb{E}\phi(z)`, :math:`\mathbb{E}\phi(z)^2`,
    :math:`\mathbb{E}\phi'(z)^2` for :math:`z \sim N(0, q)`.

    Closed forms (:math:`\mathbb{E}\phi`; :math:`\mathbb{E}\phi^2`; :math:`\mathbb{E}\phi'^2`):

    * ``relu``: :math:`\sqrt{q/(2\pi)}`; :math:`q/2`; :math:`1/2`.
    * ``erf``: 0; :math:`\frac2\pi\arcsin\frac{2q}{1+2q}`; :math:`\frac{4}{\pi\sqrt{1+4q}}`.
    * ``erf_sqrt2``: 0; :math:`\frac2\pi\arcsin\frac{q}{1+q}`; :math:`\frac{2}{\pi\sqrt{1+2q}}`.
    * ``square``: :math:`q`; :math:`3q^2`; :math:`4q`.
    * ``linear``: 0; :math:`q`; 1.
    * ``tanh``: 0 (odd); Gauss-Hermite quadrature for the other two.

    Parameters
    ----------
    activation : str or Activation
        A name from :data:`ACTIVATIONS` or an :class:`Activation` (a custom one is handled by
        quadrature).
    q : Tensor or float, shape (...)
        Variance, ``q >= 0``.
    degree : int, keyword-only, default 300
        Gauss-Hermite nodes for the entries without a closed form (at most
        :data:`mfteach.gaussian.MAX_DEGREE`). tanh has poles at :math:`\pm i\pi/2`, so in the
        standard variable the integrand is analytic only in a strip of half-width
        :math:`\pi/(2\sqrt q)` and the error grows with :math:`q`. Measured at degree 300
        against adaptive quadrature: below 1e-12 for :math:`q \le 2`, about 5e-9 at
        :math:`q = 4`, about 1e-5 at :math:`q = 10`.

    Returns
    -------
    GaussianMoments
        Tensors of the shape of ``q``, in its dtype and on its device (float64 on the CPU
        for a Python number).

    Raises
    ------
    ValueError
        If ``q < 0`` somewhere, the activation name is unknown, or ``degree < 1``.
    TypeError
        If ``q`` is not a floating tensor or a real number.

    Notes
    -----
    For ReLU at ``q == 0`` the value of :math:`\mathbb{E}\phi'^2` is 0, the exact expectation
    with :math:`\phi'(0) = 0` (the limit :math:`q \to 0^+` is 1/2). :math:`\mathbb{E}\phi^2`
    and :math:`\mathbb{E}\phi'^2` are the diagonal of :func:`dual` and :func:`dual_prime`:
    they drive the variance and gradient-variance recursions of deep wide networks (book
    chapter 01) and the risk of the SGD-ODE at :math:`M = 0` (book chapter 04). For
    ``erf_sqrt2`` at :math:`q = 1`, :math:`\mathbb{E}\phi^2 = 1/3` because
    :math:`\phi(z) = 2\Phi(z) - 1` is uniform on :math:`(-1, 1)`.

    References
    ----------
    C. K. I. Williams (1998), "Computing with infinite networks", Neural Computation 10(5),
    1203-1216 (erf); Y. Cho and L. K. Saul (2009), "Kernel Methods for Deep Learning",
    NeurIPS 22 (ReLU).

    Examples
    --------
    >>> m = gaussian_moments("erf_sqrt2", 1.0)
    >>> round(float(m.second), 12), m.method
    (0.333333333333, 'closed form')
    >>> round(float(gaussian_moments("tanh", 1.0).second), 6)
    0.394294
    """
    fn = "mfteach.activations.gaussian_moments"
    act = resolve_activation(activation, fn)
    degree = check_int(degree, "degree", fn, min=1, max=_g.MAX_DEGREE)
    (q,) = _g._as_tensors(fn, q=q)
    if q.numel() and bool((q < 0).any()):
        fail("q", fn, "a variance >= 0 everywhere", q)
    closed = _closed_moments(act.name, q) if _REGISTRY.get(act.name) is act else None
    if closed is not None:
        return GaussianMoments(*closed, method="closed form")

    def quad(f):
        return _g.gauss_hermite_expectation_1d(f, q, degree=degree, validate=False)

    if act.name == "tanh" and _REGISTRY["tanh"] is act:
        mean = torch.zeros_like(q)
    else:
        mean = quad(act.fn)
    return GaussianMoments(mean, quad(lambda z: act.fn(z) ** 2),
                           quad(lambda z: act.deriv(z) ** 2), method="quadrature")


def resolve_activation(activation, fn: str = "mfteach.activations.resolve_activation"
                       ) -> Activation:
    """Return ``activation`` as an :class:`Activation`: a registry name is looked up, an
    ``Activation`` passes through, anything else raises a one-line error naming ``fn``.
    """
    if isinstance(activation, Activation):
        return activation
    if not isinstance(activation, str):
        fail("activation", fn, "a str or an mfteach.activations.Activation", activation,
             exc=TypeError)
    check_choice(activation, "activation", fn, ACTIVATIONS)
    return _REGISTRY[activation]


def _closed_dual(name: str, c11, c12, c22, derivative: bool):
    """Closed-form E[phi phi] (or E[phi' phi']) for a registered activation, else None."""
    if name == "relu":
        return _g.arccos_kernel(0 if derivative else 1, c11, c12, c22, validate=False)
    if name == "erf":
        f = _g.erf_dual_prime if derivative else _g.erf_dual
        return f(c11, c12, c22, validate=False)
    if name == "erf_sqrt2":
        f = _g.erf_I2_noise if derivative else _g.erf_I2
        return f(c11, c12, c22, validate=False)
    if name == "square":
        # Isserlis: E[u^2 v^2] = c11 c22 + 2 c12^2; E[2u 2v] = 4 c12.
        return 4 * c12 if derivative else c11 * c22 + 2 * c12 * c12
    if name == "linear":
        return torch.ones_like(c12) if derivative else c12
    return None


def _dual(activation, c11, c12, c22, degree, derivative: bool, fn: str) -> Tensor:
    act = resolve_activation(activation, fn)
    degree = check_int(degree, "degree", fn, min=1, max=_g.MAX_DEGREE)
    c11, c12, c22 = _g._covariance_2d(fn, c11, c12, c22, True)
    if _REGISTRY.get(act.name) is act:
        out = _closed_dual(act.name, c11, c12, c22, derivative)
        if out is not None:
            return out
    f = act.deriv if derivative else act.fn
    return _g.gauss_hermite_expectation(lambda u, v: f(u) * f(v), c11, c12, c22,
                                        degree=degree, validate=False)


def dual(activation: str | Activation, c11, c12, c22, *, degree: int = 64) -> Tensor:
    r"""Dual activation :math:`\mathbb{E}[\phi(u)\phi(v)]` for a zero-mean Gaussian pair.

    Uses the closed form when there is one (``relu``: :func:`~mfteach.gaussian.arccos_kernel`
    of order 1; ``erf``: :func:`~mfteach.gaussian.erf_dual`; ``erf_sqrt2``:
    :func:`~mfteach.gaussian.erf_I2`; ``square``: :math:`c_{11}c_{22} + 2c_{12}^2`;
    ``linear``: :math:`c_{12}`) and :func:`~mfteach.gaussian.gauss_hermite_expectation`
    otherwise (``tanh``, custom activations).

    Parameters
    ----------
    activation : str or Activation
        A name from :data:`ACTIVATIONS` or an :class:`Activation`.
    c11, c12, c22 : Tensor or float, broadcastable shapes (...)
        Covariance of :math:`(u, v)`; ``c11, c22 >= 0`` and ``c12**2 <= c11 * c22``.
    degree : int, keyword-only, default 64
        Gauss-Hermite nodes per axis for the quadrature fallback.

    Returns
    -------
    Tensor, shape (...)

    Raises
    ------
    ValueError
        Unknown activation name, invalid covariance, ``degree < 1``.
    TypeError
        Wrong argument types.

    Notes
    -----
    The NNGP recursion of book chapter 01 is :math:`K^{l+1} = \sigma_w^2\,
    \mathrm{dual}(K^l_{xx}, K^l_{xx'}, K^l_{x'x'}) + \sigma_b^2`. The ReLU closed forms are
    accurate to a few ulps for the given covariance also when it is nearly degenerate (angle
    near 0 or pi), but only as good as that covariance: near coincidence the angle is
    ill-conditioned in ``c12``, so entries assembled by different roundings (a Gram matrix
    against separately computed variances) lose half the digits of the step kernel
    (:func:`dual_prime`); :func:`mfteach.kernels.ntk` avoids that by carrying the angle.

    Examples
    --------
    >>> round(float(dual("tanh", 1.0, 1.0, 1.0)), 6) == round(float(
    ...     gaussian_moments("tanh", 1.0).second), 6)
    True
    """
    return _dual(activation, c11, c12, c22, degree, False, "mfteach.activations.dual")


def dual_prime(activation: str | Activation, c11, c12, c22, *, degree: int = 64) -> Tensor:
    r"""Derivative dual :math:`\mathbb{E}[\phi'(u)\phi'(v)]` for a zero-mean Gaussian pair.

    Closed forms: ``relu``: :func:`~mfteach.gaussian.arccos_kernel` of order 0; ``erf``:
    :func:`~mfteach.gaussian.erf_dual_prime`; ``erf_sqrt2``:
    :func:`~mfteach.gaussian.erf_I2_noise`; ``square``: :math:`4c_{12}`; ``linear``: 1.
    Quadrature otherwise. By Price's theorem this is :math:`\partial\,\mathrm{dual} /
    \partial c_{12}`.

    Parameters
    ----------
    activation : str or Activation
        A name from :data:`ACTIVATIONS` or an :class:`Activation`.
    c11, c12, c22 : Tensor or float, broadcastable shapes (...)
        Covariance of :math:`(u, v)`.
    degree : int, keyword-only, default 64
        Gauss-Hermite nodes per axis for the quadrature fallback.

    Returns
    -------
    Tensor, shape (...)

    Raises
    ------
    ValueError
        Unknown activation name, invalid covariance, ``degree < 1``.
    TypeError
        Wrong argument types.

    Notes
    -----
    The NTK recursion of book chapter 01 is :math:`\Theta^{l+1} = K^{l+1} + \sigma_w^2\,
    \mathrm{dual\_prime}(K^l)\,\Theta^l`.

    Examples
    --------
    >>> float(dual_prime("relu", 1.0, 0.0, 1.0))
    0.25
    """
    return _dual(activation, c11, c12, c22, degree, True, "mfteach.activations.dual_prime")
