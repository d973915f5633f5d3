r"""The partially-trained three-layer network: scalings, initialisation and the forward pass.

A first layer of :math:`m_1` random features is drawn once and frozen,

.. math::

    \phi_j(x) = \sigma_1(\theta_j^\top x), \qquad \theta_j \sim N(0, I_d) \text{ i.i.d.},

(with inputs on the unit sphere :math:`S^{d-1}`, so that :math:`\theta_j^\top x \sim N(0, 1)`),
and the trained part is a two-layer network *over functions*:

.. math::

    h_i(x) = m_1^{-\alpha}\sum_{j=1}^{m_1} z_{ij}\,\phi_j(x), \qquad
    f(x) = m_2^{-\beta}\sum_{i=1}^{m_2} c_i\,\sigma_2(h_i(x)),

with :math:`c_i, z_{ij} \sim N(0, 1)` at initialisation. Gradient flow on the empirical loss
:math:`L = \frac1{2N}\sum_n (f(x_n) - y_n)^2` runs with per-layer learning rates,
:math:`\dot c_i = -\eta_c\,\partial L/\partial c_i`, :math:`\dot z_{ij} = -\eta_z\,\partial
L/\partial z_{ij}`. The three named scalings (``SCALINGS``) are

=============  ================  ===============  =================  ============================
``scaling``    :math:`\alpha`    :math:`\beta`    :math:`\eta_c`     :math:`\eta_z`
=============  ================  ===============  =================  ============================
``"mf_half"``  1/2               1                :math:`m_2`        :math:`m_2`
``"mf_one"``   1                 1                :math:`m_2`        :math:`m_2 m_1`
``"ntk"``      1/2               1/2              1                  1
=============  ================  ===============  =================  ============================

that is :math:`\eta_c = m_2^{2\beta - 1}` and :math:`\eta_z = m_2^{2\beta-1} m_1^{2\alpha-1}`:
the rates for which the tangent kernel of the flow (:func:`mfteach.three_layer.tangent_kernel`)
is :math:`O(1)` and the same formula in all three cases. Under both mean-field scalings
(:math:`\beta = 1`) every neuron function :math:`h_i` moves by :math:`O(1)` in time
:math:`O(1)` (feature learning); under ``"ntk"`` it moves by :math:`O(m_2^{-1/2})` (lazy).
At :math:`\alpha = 1/2` the initial :math:`h_i` is a Gaussian process with covariance
:math:`k_1`; at :math:`\alpha = 1` it is :math:`O(m_1^{-1/2})`, zero in the limit.

References
----------
Chen, Vanden-Eijnden & Bruna (2022/2026), "A Functional-Space Mean-Field Theory of
Partially-Trained Three-Layer Neural Networks", arXiv:2210.16286, JMLR 27(52). The model and
the two mean-field regimes are stated in its abstract; the exponents and learning rates above
are our reconstruction (the full text was not available to us), derived so that the limit is
well posed. Predecessor: Chen, Vanden-Eijnden & Bruna (2022), "On Feature Learning in Neural
Networks with Global Convergence Guarantees", ICLR, arXiv:2204.10782.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import (
    check_bool,
    check_budget,
    check_choice,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from ..activations import ACTIVATIONS, Activation, resolve_activation
from ..device import as_generator, resolve_device, resolve_dtype

__all__ = ["SCALINGS", "Scaling", "get_scaling", "ThreeLayer", "init_three_layer",
           "features", "neurons", "network_output"]


@dataclass(frozen=True)
class Scaling:
    r"""Width exponents of a three-layer scaling and the learning rates they call for.

    Attributes
    ----------
    name : str
    alpha : float
        :math:`h_i = m_1^{-\alpha}\sum_j z_{ij}\phi_j`.
    beta : float
        :math:`f = m_2^{-\beta}\sum_i c_i\sigma_2(h_i)`.
    """

    name: str
    alpha: float
    beta: float

    def lr_c(self, m1: int, m2: int) -> float:
        r""":math:`\eta_c = m_2^{2\beta - 1}`."""
        fn = "mfteach.three_layer.Scaling.lr_c"
        check_int(m1, "m1", fn, min=1)
        m2 = check_int(m2, "m2", fn, min=1)
        return float(m2) ** (2 * self.beta - 1)

    def lr_z(self, m1: int, m2: int) -> float:
        r""":math:`\eta_z = m_2^{2\beta - 1} m_1^{2\alpha - 1}`."""
        fn = "mfteach.three_layer.Scaling.lr_z"
        m1 = check_int(m1, "m1", fn, min=1)
        m2 = check_int(m2, "m2", fn, min=1)
        return float(m2) ** (2 * self.beta - 1) * float(m1) ** (2 * self.alpha - 1)


_SCALINGS = {
    "mf_half": Scaling("mf_half", 0.5, 1.0),
    "mf_one": Scaling("mf_one", 1.0, 1.0),
    "ntk": Scaling("ntk", 0.5, 0.5),
}
SCALINGS: tuple[str, ...] = tuple(_SCALINGS)
"""The named scalings: the two mean-field regimes and the NTK contrast."""


def get_scaling(scaling: str, fn: str = "mfteach.three_layer.get_scaling") -> Scaling:
    """The :class:`Scaling` called ``scaling`` (one of ``SCALINGS``).

    Examples
    --------
    >>> s = get_scaling("mf_one")
    >>> s.alpha, s.lr_c(100, 10), s.lr_z(100, 10)
    (1.0, 10.0, 1000.0)
    """
    if isinstance(scaling, Scaling):
        return scaling
    check_choice(scaling, "scaling", fn, SCALINGS)
    return _SCALINGS[scaling]


@dataclass(frozen=True)
class ThreeLayer:
    r"""An ensemble of :math:`B` partially-trained three-layer networks (leading batch axis).

    Attributes
    ----------
    theta : Tensor, shape (B, m1, d)
        Frozen first-layer weights :math:`\theta_j`.
    z : Tensor, shape (B, m2, m1)
        Trained second layer :math:`z_{ij}`.
    c : Tensor, shape (B, m2)
        Trained output weights :math:`c_i`.
    scaling : Scaling
    sigma1, sigma2 : Activation
        Feature and neuron activations.
    """

    theta: Tensor
    z: Tensor
    c: Tensor
    scaling: Scaling
    sigma1: Activation
    sigma2: Activation

    @property
    def n_networks(self) -> int:
        return self.theta.shape[0]

    @property
    def m1(self) -> int:
        return self.theta.shape[1]

    @property
    def m2(self) -> int:
        return self.z.shape[1]

    @property
    def d(self) -> int:
        return self.theta.shape[2]

    @property
    def lr_c(self) -> float:
        return self.scaling.lr_c(self.m1, self.m2)

    @property
    def lr_z(self) -> float:
        return self.scaling.lr_z(self.m1, self.m2)

    def replace(self, **changes) -> ThreeLayer:
        """A copy with some fields changed (``dataclasses.replace``)."""
        from dataclasses import replace

        return replace(self, **changes)


def init_three_layer(d: int, m1: int, m2: int, *, scaling: str = "mf_half",
                     n_networks: int = 1, sigma1: str = "relu", sigma2: str = "tanh",
                     antisymmetric: bool = False, generator: int | torch.Generator,
                     device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> ThreeLayer:
    r"""Draw an ensemble: :math:`\theta_j \sim N(0, I_d)`, :math:`z_{ij}, c_i \sim N(0, 1)`.

    Parameters
    ----------
    d, m1, m2 : int
        Input dimension and the widths of the random and of the trained hidden layer.
    scaling : {"mf_half", "mf_one", "ntk"}
        See :mod:`mfteach.three_layer` (table of exponents and learning rates).

    Other Parameters
    ----------------
    n_networks : int
        Ensemble size :math:`B` (independent networks, one batched program).
    sigma1, sigma2 : str
        Activation names (:data:`mfteach.activations.ACTIVATIONS`); ReLU features and tanh
        neurons by default.
    antisymmetric : bool
        Draw the first :math:`m_2/2` neurons and make the others their mirror images,
        :math:`z_{i + m_2/2} = z_i`, :math:`c_{i + m_2/2} = -c_i` (``m2`` even), so that
        :math:`f_0 = 0` (up to rounding) while every neuron keeps its usual initial law. Under
        ``"ntk"`` this removes the :math:`O(1)` random initial function, whose fit to the
        test points is not feature learning (the tangent kernel at :math:`t = 0` has the same
        law either way).
    generator : int or torch.Generator
        Draws ``theta``, then ``z``, then ``c``. An int seed draws on the CPU, so a seed gives
        the same network on every device.
    device, dtype
        Where the parameters live; CPU and ``float64`` by default.

    Returns
    -------
    ThreeLayer

    Examples
    --------
    >>> net = init_three_layer(3, 16, 8, n_networks=2, generator=0)
    >>> tuple(net.theta.shape), tuple(net.z.shape), tuple(net.c.shape), net.z.dtype
    ((2, 16, 3), (2, 8, 16), (2, 8), torch.float64)
    """
    fn = "mfteach.three_layer.init_three_layer"
    d = check_int(d, "d", fn, min=1)
    m1 = check_int(m1, "m1", fn, min=1)
    m2 = check_int(m2, "m2", fn, min=1)
    n_networks = check_int(n_networks, "n_networks", fn, min=1)
    sc = get_scaling(scaling, fn)
    check_bool(antisymmetric, "antisymmetric", fn)
    if antisymmetric and m2 % 2:
        fail("m2", fn, "an even int for antisymmetric=True (neurons come in mirror pairs)", m2)
    s1 = _activation(sigma1, "sigma1", fn)
    s2 = _activation(sigma2, "sigma2", fn)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    sizes = {"m1": m1, "m2": m2, "n_networks": n_networks, "d": d}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big],
                 nbytes=3.0 * n_networks * (m1 * (d + m2) + m2) * dt.itemsize)
    g = _draw_generator(generator, dev, fn)
    gdev = g.device
    theta = torch.randn(n_networks, m1, d, generator=g, device=gdev, dtype=dt)
    if antisymmetric:
        z = torch.randn(n_networks, m2 // 2, m1, generator=g, device=gdev, dtype=dt)
        c = torch.randn(n_networks, m2 // 2, generator=g, device=gdev, dtype=dt)
        z, c = torch.cat([z, z], 1), torch.cat([c, -c], 1)
    else:
        z = torch.randn(n_networks, m2, m1, generator=g, device=gdev, dtype=dt)
        c = torch.randn(n_networks, m2, generator=g, device=gdev, dtype=dt)
    return ThreeLayer(theta.to(dev), z.to(dev), c.to(dev), sc, s1, s2)


def _activation(value, name: str, fn: str) -> Activation:
    """``value`` as an :class:`Activation`, with errors naming the caller's argument ``name``
    (``resolve_activation`` would name its own ``'activation'``)."""
    if isinstance(value, Activation):
        return value
    check_choice(value, name, fn, ACTIVATIONS)
    return resolve_activation(value, fn)


def _draw_generator(generator, dev: torch.device, fn: str) -> torch.Generator:
    """An int seed draws on the CPU (same numbers on every device); a generator on the CPU
    or on ``dev`` draws where it lives."""
    if isinstance(generator, torch.Generator):
        if generator.device.type not in ("cpu", dev.type):
            fail("generator", fn, f"a generator on the cpu or on {dev.type}", generator,
                 hint=f"It lives on {generator.device}; pass an int seed instead.")
        return generator
    return as_generator(generator, "cpu", fn)


def _check_net(net, fn: str) -> ThreeLayer:
    if not isinstance(net, ThreeLayer):
        fail("net", fn, "an mfteach.three_layer.ThreeLayer (from init_three_layer)", net,
             exc=TypeError)
    return net


def _batched_inputs(net: ThreeLayer, X, fn: str, name: str = "X") -> Tensor:
    """``X`` of shape (n, d) (shared by the ensemble) or (B, n, d), as (B, n, d)."""
    check_tensor(X, name, fn, ndim=(2, 3))
    B, d = net.n_networks, net.d
    if X.shape[-1] != d or (X.ndim == 3 and X.shape[0] != B):
        fail(name, fn, f"a tensor of shape (n, {d}) or ({B}, n, {d}) (inputs of dimension "
             f"{d}, shared by the {B} networks or one set per network)", X)
    check_same_device_dtype(fn, net=net.z, **{name: X})
    return X.expand(B, *X.shape[-2:]) if X.ndim == 2 else X


def features(X: Tensor, theta: Tensor, sigma1: str | Activation = "relu") -> Tensor:
    r"""Random features :math:`\Phi_{nj} = \sigma_1(\theta_j^\top x_n)`.

    Parameters
    ----------
    X : Tensor, shape (B, n, d)
    theta : Tensor, shape (B, m1, d)
    sigma1 : str or Activation

    Returns
    -------
    Tensor, shape (B, n, m1)

    Examples
    --------
    >>> features(torch.ones(1, 2, 3), torch.ones(1, 4, 3)).shape
    torch.Size([1, 2, 4])
    """
    fn = "mfteach.three_layer.features"
    check_tensor(X, "X", fn, ndim=3)
    check_tensor(theta, "theta", fn, ndim=3)
    if theta.shape[0] != X.shape[0] or theta.shape[2] != X.shape[2]:
        fail("X", fn, f"a tensor of shape ({theta.shape[0]}, n, {theta.shape[2]}) matching "
             f"'theta' of shape {tuple(theta.shape)} (same networks B and input dimension d)",
             X)
    check_same_device_dtype(fn, X=X, theta=theta)
    return _activation(sigma1, "sigma1", fn)(X @ theta.transpose(-1, -2))


def _neurons(net: ThreeLayer, Phi: Tensor) -> Tensor:
    """H_{b n i} = m1^{-alpha} sum_j z_{b i j} Phi_{b n j}, shape (B, n, m2)."""
    return (Phi @ net.z.transpose(-1, -2)) * net.m1 ** (-net.scaling.alpha)


def _output(net: ThreeLayer, H: Tensor) -> Tensor:
    """f_{b n} = m2^{-beta} sum_i c_{b i} sigma2(H_{b n i}), shape (B, n)."""
    return (net.sigma2(H) @ net.c.unsqueeze(-1)).squeeze(-1) * net.m2 ** (-net.scaling.beta)


def neurons(net: ThreeLayer, X: Tensor) -> Tensor:
    r"""The neuron functions :math:`h_i(x_n) = m_1^{-\alpha}\sum_j z_{ij}\phi_j(x_n)`.

    Parameters
    ----------
    net : ThreeLayer
    X : Tensor, shape (n, d) or (B, n, d)

    Returns
    -------
    Tensor, shape (B, n, m2)
    """
    fn = "mfteach.three_layer.neurons"
    _check_net(net, fn)
    Xb = _batched_inputs(net, X, fn)
    return _neurons(net, features(Xb, net.theta, net.sigma1))


def network_output(net: ThreeLayer, X: Tensor) -> Tensor:
    r"""The outputs :math:`f(x_n) = m_2^{-\beta}\sum_i c_i\sigma_2(h_i(x_n))`.

    Parameters
    ----------
    net : ThreeLayer
    X : Tensor, shape (n, d) or (B, n, d)

    Returns
    -------
    Tensor, shape (B, n)

    Examples
    --------
    >>> net = init_three_layer(3, 16, 8, n_networks=2, generator=0)
    >>> network_output(net, torch.eye(3, dtype=torch.float64)).shape
    torch.Size([2, 3])
    """
    fn = "mfteach.three_layer.network_output"
    _check_net(net, fn)
    Xb = _batched_inputs(net, X, fn)
    return _output(net, _neurons(net, features(Xb, net.theta, net.sigma1)))
