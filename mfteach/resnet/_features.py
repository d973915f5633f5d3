r"""Fixed random features and their kernels.

Features. :math:`M` fixed features of a state :math:`x \in \mathbb{R}^q`, each with a frequency
:math:`\omega_j` and (for the Fourier families) a phase :math:`b_j \sim U[0, 2\pi]`:

=============  ==========================================  =================================
``family``     :math:`\phi_j(x)`                           frequencies :math:`\omega_j`
=============  ==========================================  =================================
``"gaussian"`` :math:`\sqrt{2/M}\cos(\omega_j^\top x + b_j)` :math:`N(0, \sigma^{-2} I_q)`
``"matern"``   :math:`\sqrt{2/M}\cos(\omega_j^\top x + b_j)` multivariate Student-t, :math:`\nu`
                                                           degrees of freedom, scale
                                                           :math:`\sigma^{-1}`
``"relu"``     :math:`\sqrt{1/M}\,\mathrm{relu}(\omega_j^\top x)` :math:`N(0, \sigma^{-2} I_q)`
=============  ==========================================  =================================

so that the feature Gram :math:`K_M = \Phi\Phi^\top`, :math:`\Phi_{nj} = \phi_j(x_n)`, is an
unbiased estimate of the kernel :math:`k(x, x') = \mathbb{E}_\omega[\cdot]` (Rahimi & Recht
2007): the Gaussian kernel :math:`e^{-\|x - x'\|^2/(2\sigma^2)}`, the Matérn kernel of
smoothness :math:`\nu/2` (the characteristic function of the Student-t law),
:math:`k = \frac{2^{1-\nu/2}}{\Gamma(\nu/2)} z^{\nu/2}K_{\nu/2}(z)`,
:math:`z = \sqrt\nu\,\|x - x'\|/\sigma`, and the arc-cosine kernel of degree 1 (Cho & Saul
2009), :math:`\frac{\|x\|\|x'\|}{2\pi\sigma^2}(\sin\vartheta + (\pi - \vartheta)\cos\vartheta)`.
"""


from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._checks import (
    check_budget,
    check_choice,
    check_float,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from ..device import as_generator, resolve_device, resolve_dtype

__all__ = ["FAMILIES", "RandomFeatures", "draw_features", "feature_map", "feature_gram",
           "gaussian_kernel", "matern_kernel", "relu_kernel", "feature_kernel"]

FAMILIES: tuple[str, ...] = ("gaussian", "matern", "relu")
"""The feature families: Gaussian RFF, Matérn RFF (Student-t frequencies), fixed ReLU."""


@dataclass(frozen=True)
class RandomFeatures:
    r"""Fixed random features of an ensemble of :math:`B` networks (leading batch axis).

    Attributes
    ----------
    family : str
        One of ``FAMILIES``.
    omega : Tensor, shape (B, M, q)
        Frequencies :math:`\omega_j`.
    phase : Tensor, shape (B, M)
        Phases :math:`b_j` (zeros for ``"relu"``).
    bandwidth : float
        :math:`\sigma`.
    nu : float
        Degrees of freedom of the Student-t frequencies (used by ``"matern"`` only).
    """

    family: str
    omega: Tensor
    phase: Tensor
    bandwidth: float
    nu: float

    @property
    def n_networks(self) -> int:
        return self.omega.shape[0]

    @property
    def n_features(self) -> int:
        return self.omega.shape[1]

    @property
    def dim(self) -> int:
        return self.omega.shape[2]


def _draw_generator(generator, dev: torch.device, fn: str) -> torch.Generator:
    """An int seed draws on the CPU (same numbers on every device); a generator on the CPU or
    on ``dev`` draws where it lives."""
    if isinstance(generator, torch.Generator):
        if generator.device.type not in ("cpu", dev.type):
            fail("generator", fn, f"a generator on the cpu or on {dev.type}", generator,
                 hint=f"It lives on {generator.device}; pass an int seed instead.")
        return generator
    return as_generator(generator, "cpu", fn)


def draw_features(dim: int, n_features: int, *, family: str = "gaussian",
                  bandwidth: float = 1.0, nu: float = 3.0, n_networks: int = 1,
                  generator: int | torch.Generator, device: torch.device | str | None = None,
                  dtype: torch.dtype | None = None) -> RandomFeatures:
    r"""Draw :math:`M` fixed features on :math:`\mathbb{R}^q` for each of :math:`B` networks.

    Parameters
    ----------
    dim : int
        State dimension :math:`q`.
    n_features : int
        :math:`M`.
    family : {"gaussian", "matern", "relu"}
        See :mod:`mfteach.resnet` (table of families).
    bandwidth : float
        :math:`\sigma > 0`: the frequencies are :math:`\omega = g/\sigma`, :math:`g \sim
        N(0, I_q)`, or :math:`g/(\sigma\sqrt{u/\nu})`, :math:`u \sim \chi^2_\nu`, for
        ``"matern"``.
    nu : float
        Student-t degrees of freedom :math:`\nu > 0` (``"matern"``; kernel smoothness
        :math:`\nu/2`).

    Other Parameters
    ----------------
    n_networks : int
        Ensemble size :math:`B`.
    generator : int or torch.Generator
        Draws ``g``, then the phases, then ``u``. An int seed draws on the CPU.
    device, dtype
        CPU and ``float64`` by default.

    Returns
    -------
    RandomFeatures

    Raises
    ------
    TypeError, ValueError
        For bad arguments (one line naming the argument).

    Examples
    --------
    >>> f = draw_features(2, 16, n_networks=3, generator=0)
    >>> tuple(f.omega.shape), tuple(f.phase.shape), f.omega.dtype
    ((3, 16, 2), (3, 16), torch.float64)
    """
    fn = "mfteach.resnet.draw_features"
    dim = check_int(dim, "dim", fn, min=1)
    M = check_int(n_features, "n_features", fn, min=1)
    check_choice(family, "family", fn, FAMILIES)
    bandwidth = check_float(bandwidth, "bandwidth", fn, min=0.0, min_open=True)
    nu = check_float(nu, "nu", fn, min=0.0, min_open=True)
    B = check_int(n_networks, "n_networks", fn, min=1)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    sizes = {"n_features": M, "n_networks": B, "dim": dim}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big], nbytes=3.0 * B * M * (dim + 2) * dt.itemsize)
    g = _draw_generator(generator, dev, fn)
    gd = g.device
    omega = torch.randn(B, M, dim, generator=g, device=gd, dtype=dt) / bandwidth
    phase = 2 * math.pi * torch.rand(B, M, generator=g, device=gd, dtype=dt)
    if family == "matern":
        # u ~ chi^2_nu = 2 Gamma(nu/2); torch's Gamma sampler takes no generator, so draw it
        # by inverse CDF from uniforms of our stream (scipy, float64 on the CPU).
        from scipy.special import gammaincinv

        v = torch.rand(B, M, generator=g, device=gd, dtype=torch.float64).cpu().numpy()
        v = np.clip(v, np.finfo(np.float64).tiny, None)
        u = torch.as_tensor(2.0 * gammaincinv(nu / 2, v), dtype=dt, device=gd)
        omega = omega / (u / nu).sqrt().unsqueeze(-1)
    if family == "relu":
        phase = torch.zeros_like(phase)
    return RandomFeatures(family, omega.to(dev), phase.to(dev), bandwidth, nu)


def _check_feats(feats, fn: str, name: str = "feats") -> RandomFeatures:
    if not isinstance(feats, RandomFeatures):
        fail(name, fn, "an mfteach.resnet.RandomFeatures (from draw_features)", feats,
             exc=TypeError)
    return feats


def _phi(feats: RandomFeatures, x: Tensor) -> Tensor:
    """Features of states x (B, ..., n, q): (B, ..., n, M), unchecked."""
    M = feats.n_features
    om = feats.omega.transpose(-1, -2)  # (B, q, M)
    if x.ndim == 4:  # (B, P, n, q): broadcast the ensemble over P
        om = om.unsqueeze(1)
        ph = feats.phase[:, None, None, :]
    else:
        ph = feats.phase[:, None, :]
    z = x @ om
    if feats.family == "relu":
        return torch.relu(z) * math.sqrt(1.0 / M)
    return torch.cos(z + ph) * math.sqrt(2.0 / M)


def _batched(X, B: int, q: int, name: str, fn: str) -> Tensor:
    check_tensor(X, name, fn, ndim=(2, 3))
    if X.shape[-1] != q or (X.ndim == 3 and X.shape[0] != B):
        fail(name, fn, f"a tensor of shape (n, {q}) or ({B}, n, {q}) (points of dimension "
             f"{q}, shared by the {B} networks or one set per network)", X)
    return X.expand(B, *X.shape[-2:]) if X.ndim == 2 else X


def feature_map(feats: RandomFeatures, X: Tensor) -> Tensor:
    r"""The feature matrix :math:`\Phi_{nj} = \phi_j(x_n)` of each network.

    Parameters
    ----------
    feats : RandomFeatures
    X : Tensor, shape (n, q) or (B, n, q)

    Returns
    -------
    Tensor, shape (B, n, M)

    Examples
    --------
    >>> f = draw_features(2, 8, n_networks=2, generator=0)
    >>> feature_map(f, torch.zeros(5, 2, dtype=torch.float64)).shape
    torch.Size([2, 5, 8])
    """
    fn = "mfteach.resnet.feature_map"
    _check_feats(feats, fn)
    Xb = _batched(X, feats.n_networks, feats.dim, "X", fn)
    check_same_device_dtype(fn, feats=feats.omega, X=Xb)
    return _phi(feats, Xb)


def feature_gram(feats: RandomFeatures, X: Tensor) -> Tensor:
    r"""The feature Gram :math:`K_M = \Phi\Phi^\top` at the points ``X``: rank at most
    :math:`M`, an unbiased estimate of the kernel (:func:`feature_kernel`).

    Parameters
    ----------
    feats : RandomFeatures
    X : Tensor, shape (n, q) or (B, n, q)

    Returns
    -------
    Tensor, shape (B, n, n)

    Examples
    --------
    >>> f = draw_features(2, 8, generator=0)
    >>> K = feature_gram(f, torch.zeros(3, 2, dtype=torch.float64))
    >>> torch.allclose(K, torch.ones(1, 3, 3, dtype=torch.float64) * K[0, 0, 0])
    True
    """
    fn = "mfteach.resnet.feature_gram"
    _check_feats(feats, fn)
    Xb = _batched(X, feats.n_networks, feats.dim, "X", fn)
    check_same_device_dtype(fn, feats=feats.omega, X=Xb)
    Phi = _phi(feats, Xb)
    return Phi @ Phi.transpose(-1, -2)


def _pair(X, X2, fn: str) -> tuple[Tensor, Tensor]:
    check_tensor(X, "X", fn, ndim=2)
    if X2 is None:
        return X, X
    check_tensor(X2, "X2", fn, shape=(None, X.shape[1]))
    check_same_device_dtype(fn, X=X, X2=X2)
    return X, X2


def _sqdist(X: Tensor, X2: Tensor) -> Tensor:
    return (X.unsqueeze(1) - X2.unsqueeze(0)).square().sum(-1)


def gaussian_kernel(X: Tensor, X2: Tensor | None = None, *, bandwidth: float = 1.0) -> Tensor:
    r""":math:`k(x, x') = \exp(-\|x - x'\|^2/(2\sigma^2))`, the kernel of the ``"gaussian"``
    features (Rahimi & Recht 2007; papers.md "Shared closed forms").

    Parameters
    ----------
    X : Tensor, shape (n, q)
    X2 : Tensor, shape (m, q), optional (``X`` by default)
    bandwidth : float

    Returns
    -------
    Tensor, shape (n, m)

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    >>> round(float(gaussian_kernel(x, bandwidth=1.0)[0, 1]), 6)
    0.606531
    """
    fn = "mfteach.resnet.gaussian_kernel"
    X, X2 = _pair(X, X2, fn)
    s = check_float(bandwidth, "bandwidth", fn, min=0.0, min_open=True)
    return torch.exp(-_sqdist(X, X2) / (2 * s * s))


def matern_kernel(X: Tensor, X2: Tensor | None = None, *, bandwidth: float = 1.0,
                  nu: float = 3.0) -> Tensor:
    r"""The kernel of the ``"matern"`` features: the characteristic function of the Student-t
    law with :math:`\nu` degrees of freedom and scale :math:`\sigma^{-1}`,

    .. math::

        k(x, x') = \frac{2^{1 - \nu/2}}{\Gamma(\nu/2)}\,z^{\nu/2}K_{\nu/2}(z), \qquad
        z = \sqrt\nu\,\|x - x'\|/\sigma,

    a Matérn kernel of smoothness :math:`\nu/2` (:math:`\nu = 1`: :math:`e^{-z}`;
    :math:`\nu = 3`: :math:`(1 + z)e^{-z}`). Evaluated with ``scipy.special.kv`` in float64.

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    >>> z = 3 ** 0.5
    >>> abs(float(matern_kernel(x, nu=3.0)[0, 1]) - (1 + z) * math.exp(-z)) < 1e-12
    True
    """
    fn = "mfteach.resnet.matern_kernel"
    X, X2 = _pair(X, X2, fn)
    s = check_float(bandwidth, "bandwidth", fn, min=0.0, min_open=True)
    nu = check_float(nu, "nu", fn, min=0.0, min_open=True)
    from scipy.special import gammaln, kv

    z = (math.sqrt(nu) * _sqdist(X, X2).sqrt() / s).detach().to("cpu", torch.float64).numpy()
    a = nu / 2
    with np.errstate(invalid="ignore", over="ignore"):
        zs = np.where(z > 0, z, 1.0)
        k = np.exp((1 - a) * math.log(2) - gammaln(a) + a * np.log(zs)) * kv(a, zs)
    k = np.where(z > 0, np.nan_to_num(k, nan=0.0), 1.0)
    return torch.as_tensor(k, dtype=X.dtype, device=X.device)


def relu_kernel(X: Tensor, X2: Tensor | None = None, *, bandwidth: float = 1.0) -> Tensor:
    r"""The arc-cosine kernel of the ``"relu"`` features (Cho & Saul 2009),
    :math:`k(x, x') = \frac{\|x\|\|x'\|}{2\pi\sigma^2}(\sin\vartheta + (\pi -
    \vartheta)\cos\vartheta)`, :math:`\cos\vartheta = x^\top x'/(\|x\|\|x'\|)`.

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> round(float(relu_kernel(x)[0, 1]), 6), float(relu_kernel(x)[0, 0])
    (0.159155, 0.5)
    """
    fn = "mfteach.resnet.relu_kernel"
    X, X2 = _pair(X, X2, fn)
    s = check_float(bandwidth, "bandwidth", fn, min=0.0, min_open=True)
    n1, n2 = X.norm(dim=-1), X2.norm(dim=-1)
    nn = n1.unsqueeze(1) * n2.unsqueeze(0)
    cos = torch.where(nn > 0, (X @ X2.T) / nn.clamp_min(torch.finfo(X.dtype).tiny),
                      torch.zeros_like(nn)).clamp(-1.0, 1.0)
    th = torch.arccos(cos)
    return nn * (torch.sin(th) + (math.pi - th) * cos) / (2 * math.pi * s * s)


def feature_kernel(feats: RandomFeatures, X: Tensor, X2: Tensor | None = None) -> Tensor:
    r"""The closed-form kernel :math:`\mathbb{E}_\omega[K_M]` of the family of ``feats`` (the
    infinite-width limit :math:`M \to \infty`).

    Examples
    --------
    >>> f = draw_features(2, 4, generator=0)
    >>> feature_kernel(f, torch.zeros(3, 2, dtype=torch.float64)).shape
    torch.Size([3, 3])
    """
    fn = "mfteach.resnet.feature_kernel"
    _check_feats(feats, fn)
    if feats.family == "gaussian":
        return gaussian_kernel(X, X2, bandwidth=feats.bandwidth)
    if feats.family == "matern":
        return matern_kernel(X, X2, bandwidth=feats.bandwidth, nu=feats.nu)
    return relu_kernel(X, X2, bandwidth=feats.bandwidth)
