r"""The leading finite-width cumulants of a deep network's output, layer by layer.

For the network of :mod:`mfteach.finite_width._sampling` (:math:`L` hidden layers of width
:math:`N`, i.i.d. :math:`\mathcal N(0, 1)` hidden weights, no biases), condition on layer
:math:`l`: the pre-activations of layer :math:`l + 1` are then i.i.d.
:math:`\mathcal N(0, G_{l+1})`, exactly, with the random variance
:math:`G_{l+1} = \frac1N\sum_j\phi(h^l_j)^2`. Its mean is the kernel
:math:`K_{l+1} = m(K_l)`, :math:`m(K) = \mathbb{E}_{u\sim \mathcal N(0, K)}\phi(u)^2`, and its
fluctuation defines the vertex :math:`V_l = N\operatorname{Var}G_l`. By the law of total
variance and a first-order expansion of :math:`m` (both exact to leading order in
:math:`1/N`),

.. math::

    V_1 = 0, \qquad V_{l+1} = \operatorname{Var}_{K_l}\!\big(\phi^2\big) + m'(K_l)^2\,V_l ,

and the law of total cumulance (the output is :math:`N^{-1/2}\sum_i a_i\phi(h^L_i)`, given
layer :math:`L` a sum of i.i.d. terms of mean zero) gives

.. math::

    \kappa_2 = K_{L+1},\qquad
    N\,\kappa_4 = \mathbb{E}a^4\,\mathbb{E}_{K_L}\phi^4 - 3\big(\mathbb{E}_{K_L}\phi^2\big)^2
    + 3\,m'(K_L)^2\,V_L ,\qquad \sqrt N\,\kappa_3 = \mathbb{E}a^3\,\mathbb{E}_{K_L}\phi^3 .

The first two terms are the one-layer coefficient at the last layer's kernel; the third is the
non-Gaussianity passed up from the layers below. For ReLU, :math:`m(K) = K/2`, :math:`m' = \frac12`
and :math:`\operatorname{Var}_K\phi^2 = \frac54K^2`, so :math:`V_l/K_l^2 = 5(l - 1)` and, with a
Gaussian readout, :math:`N\,\kappa_4/\kappa_2^2 = 15L` **exactly linear in depth**: the
excess kurtosis is :math:`15L/N`, the :math:`L/N` picture of finite-width theory
(Roberts, Yaida & Hanin 2022, ch. 4-5; Hanin & Nica 2020). This is the same recursion as their
four-point vertex, written for one input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import check_choice, check_float, check_int
from ..activations import Activation, get_activation
from ..gaussian import gauss_hermite_expectation_1d
from ._cumulants import MAX_DEGREE, _activation, _activation_moment
from ._sampling import READOUTS, readout_law

__all__ = ["DeepCumulants", "deep_cumulants"]


@dataclass(frozen=True)
class DeepCumulants:
    r"""Leading-order cumulants of the output of a depth-:math:`L` network at one input.

    Attributes
    ----------
    depth : int
    kernel : tuple of float
        :math:`K_1, \dots, K_{L+1}` (:math:`K_1 = |x|^2/d`, :math:`K_{L+1} = \kappa_2`).
    vertex : tuple of float
        :math:`V_1, \dots, V_L`, :math:`V_l = N\operatorname{Var}G_l` to leading order.
    kappa2 : float
    sqrt_n_kappa3 : float
        :math:`\sqrt N\,\kappa_3`.
    n_kappa4 : float
        :math:`N\,\kappa_4`.
    """

    depth: int
    kernel: tuple
    vertex: tuple
    kappa2: float
    sqrt_n_kappa3: float
    n_kappa4: float

    @property
    def n_excess_kurtosis(self) -> float:
        r""":math:`N\,\kappa_4/\kappa_2^2`."""
        return self.n_kappa4 / self.kappa2**2

    def excess_kurtosis(self, width: int) -> float:
        """The leading-order excess kurtosis at width ``width``."""
        width = check_int(width, "width", "mfteach.finite_width.DeepCumulants.excess_kurtosis",
                          min=1)
        return self.n_excess_kurtosis / width


def _slope_m(act: Activation, K: float, degree: int) -> float:
    r""":math:`m'(K) = \frac{d}{dK}\mathbb{E}_{\mathcal N(0, K)}\phi^2
    = \mathbb{E}[\phi(u)^2(u^2 - K)]/(2K^2)` (differentiating the Gaussian density in its
    variance)."""
    if act is get_activation("relu"):
        return 0.5
    if act is get_activation("linear"):
        return 1.0
    with torch.no_grad():
        v = gauss_hermite_expectation_1d(lambda u: act.fn(u) ** 2 * (u * u - K), K,
                                         degree=degree)
    return float(v) / (2 * K * K)


def deep_cumulants(activation: str | Activation, depth: int, *, readout: str = "gaussian",
                   q: float = 1.0, degree: int = 200) -> DeepCumulants:
    r"""The leading :math:`1/N` cumulants of a depth-:math:`L` network's output (module
    docstring): the kernel and vertex recursions and the law of total cumulance.

    Parameters
    ----------
    activation : str or Activation
    depth : int
        :math:`L \ge 1` hidden layers (``depth=1`` reproduces
        :func:`mfteach.finite_width.output_cumulants`).
    readout : {"gaussian", "rademacher", "exponential"}
    q : float
        :math:`K_1 = |x|^2/d`.
    degree : int
        Gauss-Hermite nodes for activations without closed forms.

    Returns
    -------
    DeepCumulants

    Examples
    --------
    >>> [round(deep_cumulants("relu", L).n_excess_kurtosis, 9) for L in (1, 2, 3)]  # 15 L
    [15.0, 30.0, 45.0]
    """
    fn = "mfteach.finite_width.deep_cumulants"
    act = _activation(activation, fn)
    L = check_int(depth, "depth", fn, min=1, max=10_000)
    q = check_float(q, "q", fn, min=0.0, min_open=True, max=1e100)
    degree = check_int(degree, "degree", fn, min=1, max=MAX_DEGREE)
    check_choice(readout, "readout", fn, READOUTS)
    a = readout_law(readout).moments
    K = [q]
    V = [0.0]
    for layer in range(L):
        m2 = _activation_moment(act, 2, K[-1], degree, fn)
        if layer < L - 1:
            var = _activation_moment(act, 4, K[-1], degree, fn) - m2 * m2
            V.append(var + _slope_m(act, K[-1], degree) ** 2 * V[-1])
        K.append(m2)
    KL = K[L - 1]
    m2, m3, m4 = (_activation_moment(act, k, KL, degree, fn) for k in (2, 3, 4))
    n_kappa4 = a[3] * m4 - 3 * m2 * m2 + 3 * _slope_m(act, KL, degree) ** 2 * V[L - 1]
    return DeepCumulants(depth=L, kernel=tuple(K), vertex=tuple(V), kappa2=K[L],
                         sqrt_n_kappa3=a[2] * m3, n_kappa4=n_kappa4)
