r"""Kernels of the three-layer flow: the random-feature kernel :math:`k_1` and the tangent kernel.

Random-feature kernel. With :math:`\theta \sim N(0, I_d)` and ReLU features,

.. math::

    k_1(x, x') = \mathbb{E}_\theta[\sigma_1(\theta^\top x)\sigma_1(\theta^\top x')]
    = \|x\|\|x'\|\,\frac{\sin\vartheta + (\pi - \vartheta)\cos\vartheta}{2\pi},
    \qquad \cos\vartheta = \frac{x^\top x'}{\|x\|\|x'\|},

the first arc-cosine kernel (Cho & Saul 2009, as an expectation: half their :math:`k_1`);
:func:`feature_kernel` is the closed form, :func:`random_feature_kernel` its finite-:math:`m_1`
estimate :math:`\hat k_1 = \frac1{m_1}\Phi\Phi^\top`.

Tangent kernel. Under gradient flow with the learning rates of the scaling
(:mod:`mfteach.three_layer`), the outputs obey :math:`\partial_t f_t(x_n) = -\frac1N\sum_{n'}
K_t(x_n, x_{n'})\,(f_t(x_{n'}) - y_{n'})` with

.. math::

    K_t(x, x') = \underbrace{\frac1{m_2}\sum_i
        \sigma_2(h_i(x))\sigma_2(h_i(x'))}_{\text{from } c}
    + \underbrace{\Big[\frac1{m_2}\sum_i c_i^2\,
        \sigma_2'(h_i(x))\sigma_2'(h_i(x'))\Big]}_{A_t(x,x')}\,\hat k_1(x, x'),

the same formula in all three scalings (the learning rates :math:`\eta_c, \eta_z` absorb the
width factors). As :math:`m_1, m_2 \to \infty` the sums become expectations over the law
:math:`\mu_t` of :math:`(c, h)`: Chen, Vanden-Eijnden & Bruna's kernel gradient flow
(arXiv:2210.16286, abstract; the formula is our derivation). :math:`A_t` is PSD (a Gram matrix)
and :math:`\hat k_1` is PD for distinct inputs and :math:`m_1 \ge N`, so by Schur's product
theorem, :math:`\lambda_{\min}(A\circ B) \ge \lambda_{\min}(B)\min_n A_{nn}`,

.. math::

    \lambda_{\min}(K_t) \ge \lambda_{\min}(\hat k_1)\,\min_n \frac1{m_2}\sum_i c_i^2\,
    \sigma_2'(h_i(x_n))^2 ,

:func:`schur_bound`; the first term of :math:`K_t` is PSD and only helps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_budget, check_same_device_dtype, check_tensor, fail
from ..gaussian import arccos_kernel
from ._model import ThreeLayer, _batched_inputs, _check_net, _neurons, features

__all__ = ["feature_kernel", "random_feature_kernel", "KernelParts", "kernel_parts",
           "tangent_kernel", "schur_bound", "empirical_ntk"]


def feature_kernel(X1: Tensor, X2: Tensor | None = None) -> Tensor:
    r"""Closed-form ReLU random-feature kernel :math:`k_1(x, x')`, eq. :eq:`tl-k1`.

    Parameters
    ----------
    X1 : Tensor, shape (..., n1, d)
    X2 : Tensor, shape (..., n2, d), optional
        ``None`` means ``X1``.

    Returns
    -------
    Tensor, shape (..., n1, n2)

    Notes
    -----
    For :math:`\theta \sim N(0, I_d)` the pair :math:`(\theta^\top x, \theta^\top x')` is
    Gaussian with covariance :math:`\begin{pmatrix}\|x\|^2 & x^\top x'\\ x^\top x' &
    \|x'\|^2\end{pmatrix}`, so :math:`k_1` is :func:`mfteach.gaussian.arccos_kernel` of order 1.

    Examples
    --------
    >>> x = torch.eye(2, dtype=torch.float64)
    >>> feature_kernel(x)  # diagonal 1/2 on the unit sphere, 1/(2 pi) at a right angle
    tensor([[0.5000, 0.1592],
            [0.1592, 0.5000]], dtype=torch.float64)
    """
    fn = "mfteach.three_layer.feature_kernel"
    check_tensor(X1, "X1", fn)
    if X1.ndim < 2:
        fail("X1", fn, "a tensor of shape (..., n, d)", X1)
    if X2 is None:
        X2 = X1
    check_tensor(X2, "X2", fn)
    if X2.ndim < 2 or X2.shape[-1] != X1.shape[-1]:
        fail("X2", fn, f"a tensor of shape (..., n2, {X1.shape[-1]}) like X1", X2)
    check_same_device_dtype(fn, X1=X1, X2=X2)
    c12 = X1 @ X2.transpose(-1, -2)
    c11 = X1.square().sum(-1).unsqueeze(-1)
    c22 = X2.square().sum(-1).unsqueeze(-2)
    c11, c12, c22 = torch.broadcast_tensors(c11, c12, c22)
    # Cauchy-Schwarz holds up to rounding; clamp so that the validation cannot trip on it.
    bound = (c11 * c22).sqrt()
    c12 = torch.maximum(torch.minimum(c12, bound), -bound)
    return arccos_kernel(1, c11, c12, c22, validate=False)


def random_feature_kernel(net: ThreeLayer, X: Tensor, X2: Tensor | None = None) -> Tensor:
    r"""Finite-width random-feature kernel :math:`\hat k_1 = \frac1{m_1}\Phi(X)\Phi(X')^\top`.

    Parameters
    ----------
    net : ThreeLayer
        Its frozen first layer ``theta`` and ``sigma1`` are used.
    X, X2 : Tensor, shape (n, d) or (B, n, d)

    Returns
    -------
    Tensor, shape (B, n, n2)
    """
    fn = "mfteach.three_layer.random_feature_kernel"
    _check_net(net, fn)
    Xb = _batched_inputs(net, X, fn)
    P1 = features(Xb, net.theta, net.sigma1)
    P2 = P1 if X2 is None else features(_batched_inputs(net, X2, fn, "X2"), net.theta,
                                        net.sigma1)
    return P1 @ P2.transpose(-1, -2) / net.m1


@dataclass(frozen=True)
class KernelParts:
    r"""The pieces of the tangent kernel :eq:`tl-kernel` on a set of inputs.

    Attributes
    ----------
    k1 : Tensor, shape (B, n, n)
        :math:`\hat k_1`.
    A : Tensor, shape (B, n, n)
        :math:`\frac1{m_2}\sum_i c_i^2\sigma_2'(h_i(x))\sigma_2'(h_i(x'))` (PSD).
    from_c : Tensor, shape (B, n, n)
        :math:`\frac1{m_2}\sum_i\sigma_2(h_i(x))\sigma_2(h_i(x'))` (PSD).
    """

    k1: Tensor
    A: Tensor
    from_c: Tensor

    @property
    def from_z(self) -> Tensor:
        """The second-layer part :math:`A\\circ\\hat k_1`, shape (B, n, n)."""
        return self.A * self.k1

    @property
    def total(self) -> Tensor:
        """:math:`K_t`, shape (B, n, n)."""
        return self.from_c + self.A * self.k1

    @property
    def schur_bound(self) -> Tensor:
        r""":math:`\lambda_{\min}(\hat k_1)\min_n A_{nn}`, shape (B,), eq. :eq:`tl-schur`."""
        lam = torch.linalg.eigvalsh(self.k1)[..., 0]
        return lam * torch.diagonal(self.A, dim1=-2, dim2=-1).amin(-1)


def _parts(net: ThreeLayer, Phi: Tensor, H: Tensor, k1: Tensor | None = None) -> KernelParts:
    """Kernel pieces from features Phi (B, n, m1) and pre-activations H (B, n, m2)."""
    if k1 is None:
        k1 = Phi @ Phi.transpose(-1, -2) / net.m1
    S = net.sigma2(H)  # (B, n, m2)
    D = net.sigma2.deriv(H) * net.c.unsqueeze(-2)  # (B, n, m2): c_i sigma2'(h_i(x_n))
    m2 = net.m2
    return KernelParts(k1=k1, A=D @ D.transpose(-1, -2) / m2,
                       from_c=S @ S.transpose(-1, -2) / m2)


def kernel_parts(net: ThreeLayer, X: Tensor) -> KernelParts:
    r"""The pieces :math:`\hat k_1`, :math:`A_t` and the :math:`c`-part of :math:`K_t` on ``X``.

    Parameters
    ----------
    net : ThreeLayer
    X : Tensor, shape (n, d) or (B, n, d)

    Returns
    -------
    KernelParts
    """
    fn = "mfteach.three_layer.kernel_parts"
    _check_net(net, fn)
    Xb = _batched_inputs(net, X, fn)
    Phi = features(Xb, net.theta, net.sigma1)
    return _parts(net, Phi, _neurons(net, Phi))


def tangent_kernel(net: ThreeLayer, X: Tensor) -> Tensor:
    r"""The tangent kernel :math:`K_t(x_n, x_{n'})` of the flow, eq. :eq:`tl-kernel`.

    It equals :math:`\eta_c J_c J_c^\top + \eta_z J_z J_z^\top`, with :math:`J` the Jacobians
    of the outputs with respect to :math:`c` and :math:`z` and :math:`\eta` the scaling's
    learning rates (the tests check this against autograd).

    Parameters
    ----------
    net : ThreeLayer
    X : Tensor, shape (n, d) or (B, n, d)

    Returns
    -------
    Tensor, shape (B, n, n)

    Examples
    --------
    >>> from mfteach.three_layer import init_three_layer, sphere_data
    >>> X, _ = sphere_data(4, 3, generator=0)
    >>> K = tangent_kernel(init_three_layer(3, 64, 32, generator=1), X)
    >>> K.shape, bool(torch.linalg.eigvalsh(K).min() > 0)
    (torch.Size([1, 4, 4]), True)
    """
    return kernel_parts(net, X).total


def schur_bound(net: ThreeLayer, X: Tensor) -> Tensor:
    r"""Schur lower bound :math:`\lambda_{\min}(\hat k_1)\min_n A_t(x_n, x_n)` on
    :math:`\lambda_{\min}(K_t)`, eq. :eq:`tl-schur`.

    Parameters
    ----------
    net : ThreeLayer
    X : Tensor, shape (n, d) or (B, n, d)

    Returns
    -------
    Tensor, shape (B,)
    """
    return kernel_parts(net, X).schur_bound


def empirical_ntk(net: ThreeLayer, X: Tensor) -> Tensor:
    r"""The learning-rate-weighted Jacobian Gram :math:`\eta_c J_cJ_c^\top + \eta_zJ_zJ_z^\top`
    of the network outputs on ``X``, by automatic differentiation.

    An independent computation of :func:`tangent_kernel`: it differentiates the forward pass
    (:func:`mfteach.three_layer.network_output`) with ``torch.func.jacrev`` and never uses the
    mean-field formula :eq:`tl-kernel`. It stores the Jacobian, :math:`n(m_1+1)m_2` numbers
    per network, so it is meant for checks at moderate sizes.

    Parameters
    ----------
    net : ThreeLayer
    X : Tensor, shape (n, d) or (B, n, d)

    Returns
    -------
    Tensor, shape (B, n, n)

    Examples
    --------
    >>> from mfteach.three_layer import init_three_layer, sphere_data
    >>> X, _ = sphere_data(4, 3, generator=0)
    >>> net = init_three_layer(3, 32, 16, n_networks=2, generator=1)
    >>> bool(torch.allclose(empirical_ntk(net, X), tangent_kernel(net, X)))
    True
    """
    fn = "mfteach.three_layer.empirical_ntk"
    _check_net(net, fn)
    Xb = _batched_inputs(net, X, fn)
    B, n = Xb.shape[:2]
    check_budget("X", fn, n, nbytes=3.0 * B * n * (net.m1 + 1) * net.m2
                 * Xb.dtype.itemsize)
    from ._model import network_output

    out = []
    for b in range(B):
        one = net.replace(theta=net.theta[b:b + 1], z=net.z[b:b + 1], c=net.c[b:b + 1])

        def f(c, z, one=one, x=Xb[b]):
            return network_output(one.replace(c=c.unsqueeze(0), z=z.unsqueeze(0)), x)[0]

        Jc, Jz = torch.func.jacrev(f, argnums=(0, 1))(net.c[b], net.z[b])
        Jz = Jz.reshape(n, -1)
        out.append(net.lr_c * Jc @ Jc.T + net.lr_z * Jz @ Jz.T)
    return torch.stack(out)
