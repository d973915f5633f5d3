r"""The infinite-width (RKHS) limit of a trained ResNet, and the width-limit experiment.

Gradient descent on :math:`U` is a kernel method in function space (Barboni, Peyré & Vialard
2022, arXiv:2112.05531). Let :math:`v_l(x) = U_l\phi(x)` and :math:`z_c` the states where the
forward pass evaluated :math:`v_l` (the :math:`N` states :math:`x_{n,l}`, plus the :math:`N`
midpoint states :math:`x_{n,l} + \frac h2 v_l(x_{n,l})` for the midpoint scheme). Then
:math:`\nabla_{U_l}\mathcal{L} = \sum_c D_{l,c}\,\phi(z_c)^\top`, where
:math:`D_{l,c} = \partial\mathcal{L}/\partial\delta_{l,c}` for an additive perturbation
:math:`\delta_{l,c}` of :math:`v_l`'s value at that evaluation, so one step of size
:math:`\eta` is

.. math::

    v_l \leftarrow v_l - \eta \sum_c D_{l,c}\, k_M(z_c, \cdot), \qquad
    k_M(z, x) = \phi(z)\cdot\phi(x),

so from :math:`U = 0` every :math:`v_l = \sum_c a_c\, k_M(z_c, \cdot)` is a sum over all past
centres with coefficients :math:`a_c \in \mathbb{R}^q`. Replacing :math:`k_M` by the kernel
:math:`k` gives the infinite-width network trained by gradient descent, the limit that
finite-:math:`M` training approaches at the Monte Carlo rate :math:`M^{-1/2}`
(:func:`width_limit` measures it). Introduced in the book in ``book/06_resnet.ipynb``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import (
    check_bool,
    check_budget,
    check_choice,
    check_float,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from ..training import DivergenceError
from ._features import RandomFeatures, _batched, _check_feats, _phi
from ._model import SCHEMES, lift, project

__all__ = ["KernelResNet", "kernel_velocity", "kernel_trajectories", "kernel_resnet_output",
           "KernelHistory", "train_kernel_limit"]


@dataclass(frozen=True)
class KernelResNet:
    r"""An ensemble of :math:`B` ResNets whose residuals are kernel expansions,
    :math:`v_l(x) = \sum_{c < C} a_{l,c}\, k(z_{l,c}, x)`.

    Attributes
    ----------
    centres, coefficients : Tensor, shape (B, L, C, q)
        :math:`z_{l,c}` and :math:`a_{l,c}`.
    d : int
        Input/output dimension (lifting and projection as in :class:`ResNet`).
    scheme : {"euler", "midpoint"}
    bandwidth : float
        :math:`\sigma` of the Gaussian kernel :math:`k = e^{-\|z - x\|^2/(2\sigma^2)}`.
    features : RandomFeatures or None
        When given, :math:`k = k_M` is the Gram of these features (``bandwidth`` is theirs).
    """

    centres: Tensor
    coefficients: Tensor
    d: int
    scheme: str
    bandwidth: float
    features: RandomFeatures | None = None

    def __post_init__(self):
        fn = "mfteach.resnet.KernelResNet"
        check_tensor(self.centres, "centres", fn, ndim=4)
        check_tensor(self.coefficients, "coefficients", fn, ndim=4)
        if self.coefficients.shape != self.centres.shape:
            fail("coefficients", fn, f"a tensor of the same shape as centres, "
                 f"{tuple(self.centres.shape)}", self.coefficients)
        check_same_device_dtype(fn, centres=self.centres, coefficients=self.coefficients)
        check_int(self.d, "d", fn, min=1, max=self.q)
        check_choice(self.scheme, "scheme", fn, SCHEMES)
        check_float(self.bandwidth, "bandwidth", fn, min=0.0, min_open=True)
        if self.features is not None:
            f = _check_feats(self.features, fn, "features")
            if (f.n_networks, f.dim) != (self.n_networks, self.q):
                fail("features", fn, f"features of {self.n_networks} networks on R^{self.q}",
                     f)

    @property
    def n_networks(self) -> int:
        return self.centres.shape[0]

    @property
    def depth(self) -> int:
        return self.centres.shape[1]

    @property
    def n_centres(self) -> int:
        return self.centres.shape[2]

    @property
    def q(self) -> int:
        return self.centres.shape[3]


def _gram(feats: RandomFeatures | None, s: float, x: Tensor, Z: Tensor) -> Tensor:
    """k(x_n, z_c) for x (B, n, q), Z (B, C, q): (B, n, C), differentiable in x."""
    if feats is None:
        diff = x.unsqueeze(-2) - Z.unsqueeze(-3)  # (B, n, C, q)
        return torch.exp(diff.square().sum(-1) / (-2 * s * s))
    return _phi(feats, x) @ _phi(feats, Z).transpose(-1, -2)


def _forward(feats, s: float, Z: Tensor, A: Tensor, x0: Tensor, scheme: str,
             delta: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
    """Flow x0 (B, n, q) through the blocks of Z, A (B, L, C, q), adding delta (B, L, E, n, q)
    to each evaluation of v_l. Returns the path (B, L+1, n, q) and, per layer, the states at
    which v_l was evaluated (B, E n, q), in the order of delta's axis E."""
    L = Z.shape[1]
    h = 1.0 / L
    x = x0
    path, evals = [x0], []
    for layer in range(L):
        v = _gram(feats, s, x, Z[:, layer]) @ A[:, layer]  # v_l(x) = sum_c a_c k(z_c, x)
        if delta is not None:
            v = v + delta[:, layer, 0]
        if scheme == "euler":
            evals.append(x)
            x = x + h * v
        else:
            mid = x + (0.5 * h) * v
            v2 = _gram(feats, s, mid, Z[:, layer]) @ A[:, layer]
            if delta is not None:
                v2 = v2 + delta[:, layer, 1]
            evals.append(torch.cat([x, mid], 1))
            x = x + h * v2
        path.append(x)
    return torch.stack(path, 1), evals


def _states(knet: KernelResNet, X, name: str, fn: str) -> Tensor:
    """Check knet and the inputs X (name "X", dimension d) or states (name "x", q)."""
    if not isinstance(knet, KernelResNet):
        fail("knet", fn, "an mfteach.resnet.KernelResNet (from train_kernel_limit)", knet,
             exc=TypeError)
    Xb = _batched(X, knet.n_networks, knet.d if name == "X" else knet.q, name, fn)
    check_same_device_dtype(fn, knet=knet.centres, **{name: Xb})
    E = 1 if knet.scheme == "euler" else 2
    check_budget(name, fn, Xb.shape[1],
                 nbytes=Xb.dtype.itemsize * knet.n_networks * E * Xb.shape[1]
                 * knet.n_centres * (knet.q + 2))
    return Xb


def kernel_velocity(knet: KernelResNet, x: Tensor) -> Tensor:
    r"""The residual velocities :math:`v_l(x) = \sum_c a_{l,c}\, k(z_{l,c}, x)` of every
    block at the states ``x``.

    Parameters
    ----------
    knet : KernelResNet
    x : Tensor, shape (n, q) or (B, n, q)
        States (not inputs: no lifting).

    Returns
    -------
    Tensor, shape (B, L, n, q)

    Examples
    --------
    >>> from mfteach.resnet import toy_data
    >>> X, Y = toy_data(6, generator=0)
    >>> knet = train_kernel_limit(X, Y, depth=3, steps=2).final
    >>> kernel_velocity(knet, torch.zeros(5, 2, dtype=torch.float64)).shape
    torch.Size([1, 3, 5, 2])
    """
    xb = _states(knet, x, "x", "mfteach.resnet.kernel_velocity")
    return torch.stack([_gram(knet.features, knet.bandwidth, xb, knet.centres[:, layer])
                        @ knet.coefficients[:, layer] for layer in range(knet.depth)], 1)


def kernel_trajectories(knet: KernelResNet, X: Tensor) -> Tensor:
    r"""The states :math:`x_l(x_n)`, :math:`l = 0, \dots, L`, of every input (the layout of
    :func:`trajectories`).

    Parameters
    ----------
    knet : KernelResNet
    X : Tensor, shape (n, d) or (B, n, d)

    Returns
    -------
    Tensor, shape (B, L + 1, n, q)
        Layer :math:`l` sits at depth :math:`s = l/L`.
    """
    Xb = _states(knet, X, "X", "mfteach.resnet.kernel_trajectories")
    x0 = lift(Xb, knet.q)
    return _forward(knet.features, knet.bandwidth, knet.centres, knet.coefficients, x0,
                    knet.scheme)[0]


def kernel_resnet_output(knet: KernelResNet, X: Tensor) -> Tensor:
    r"""The network outputs :math:`f(x_n) = B\,x_L(x_n)`.

    Parameters
    ----------
    knet : KernelResNet
    X : Tensor, shape (n, d) or (B, n, d)

    Returns
    -------
    Tensor, shape (B, n, d)

    Examples
    --------
    >>> from mfteach.resnet import toy_data
    >>> X, Y = toy_data(6, generator=0)
    >>> h = train_kernel_limit(X, Y, depth=3, steps=40, record_every=20)
    >>> err = lambda f: float((f - Y).square().sum(-1).mean() / 2)
    >>> abs(err(kernel_resnet_output(h.final, X)) - float(h.loss[-1, 0])) < 1e-12
    True
    """
    return project(kernel_trajectories(knet, X)[:, -1], knet.d)


@dataclass(frozen=True)
class KernelHistory:
    r"""What :func:`train_kernel_limit` records, at steps ``step``.

    Attributes
    ----------
    lr : float
    n_train : int
    step : Tensor, shape (T,), int64
    loss : Tensor, shape (T, B)
        :math:`\mathcal{L}` before that step's update.
    final : KernelResNet
        The trained networks: ``steps * N`` centres per block (``2 * steps * N`` for the
        midpoint scheme).
    """

    lr: float
    n_train: int
    step: Tensor
    loss: Tensor
    final: KernelResNet


def train_kernel_limit(X: Tensor, Y: Tensor, *, depth: int, q: int | None = None,
                       bandwidth: float = 1.0, scheme: str = "midpoint", lr: float = 10.0,
                       steps: int = 500, record_every: int = 10,
                       features: RandomFeatures | None = None,
                       progress: bool = False) -> KernelHistory:
    r"""Full-batch gradient descent of the infinite-width ResNet, in function space: each
    step adds the evaluation states as centres with coefficients :math:`-\eta D_{l,c}`
    (module docstring).

    Parameters
    ----------
    X, Y : Tensor, shape (N, d) or (B, N, d)
        Inputs and targets, shared by the ensemble or one set per network.
    depth : int
        :math:`L`.
    q : int, optional
        State dimension, ``q >= d``: ``d`` by default (the features' dimension with
        ``features``).
    bandwidth : float
        :math:`\sigma` of the Gaussian kernel, the limit of the ``"gaussian"`` features of
        :func:`init_resnet` with this bandwidth. Ignored with ``features``.
    scheme : {"euler", "midpoint"}
    lr : float
        :math:`\eta`, in the units of :func:`train`.
    steps : int

    Other Parameters
    ----------------
    record_every : int
        Record every ``record_every`` steps (and the last).
    features : RandomFeatures, optional
        Use :math:`k_M(z, x) = \phi(z)\cdot\phi(x)` of these features (of any family): the run
        then equals :func:`train` of a :class:`ResNet` with these features to rounding.
        ``B`` is their number of networks.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    KernelHistory

    Raises
    ------
    DivergenceError
        When a loss is NaN/inf or exceeds 1e3 times its initial value (the message suggests
        a stable ``lr``).
    TypeError, ValueError
        For bad arguments (one line naming the argument).

    Notes
    -----
    Only the Gaussian kernel is provided as an exact limit (smooth, differentiable in torch):
    the Matérn kernel of :func:`matern_kernel` is evaluated with scipy (no autograd), and the
    arc-cosine kernel's :math:`\arccos` has an infinite derivative at coincident points,
    which the training states are (the first block always sees the lifted data). Cost: each
    block holds :math:`C = kEN` centres at step :math:`k` (:math:`E = 2` for the midpoint
    scheme, 1 for Euler): about :math:`L E^2 N^2 \texttt{steps}^2/2` kernel entries, refused
    above ``MFTEACH_MAX_STEPS`` (``mfteach._checks.check_budget``).

    Examples
    --------
    >>> from mfteach.resnet import toy_data
    >>> X, Y = toy_data(8, generator=0)
    >>> h = train_kernel_limit(X, Y, depth=4, bandwidth=0.5, lr=5.0, steps=20)
    >>> h.step.tolist(), tuple(h.final.centres.shape), bool(h.loss[-1, 0] < h.loss[0, 0])
    ([0, 10, 20], (1, 4, 320, 2), True)
    """
    fn = "mfteach.resnet.train_kernel_limit"
    L = check_int(depth, "depth", fn, min=1)
    check_choice(scheme, "scheme", fn, SCHEMES)
    bandwidth = check_float(bandwidth, "bandwidth", fn, min=0.0, min_open=True)
    lr = check_float(lr, "lr", fn, min=0.0, min_open=True)
    steps = check_int(steps, "steps", fn, min=0)
    record_every = check_int(record_every, "record_every", fn, min=1)
    check_bool(progress, "progress", fn)
    check_tensor(X, "X", fn, ndim=(2, 3))
    d = X.shape[-1]
    if features is not None:
        feats = _check_feats(features, fn, "features")
        B, bandwidth = feats.n_networks, feats.bandwidth
        q = feats.dim if q is None else check_int(q, "q", fn, min=1)
        if q != feats.dim:
            fail("q", fn, f"the features' dimension {feats.dim} (or None)", q)
    else:
        feats = None
        B = X.shape[0] if X.ndim == 3 else 1
        q = d if q is None else check_int(q, "q", fn, min=1)
    if q < d:
        fail("q", fn, f"an int >= d = {d} (the state must hold the lifted input)", q)
    Xb = _batched(X, B, d, "X", fn)
    N = Xb.shape[1]
    if N < 1:
        fail("X", fn, "a tensor with at least one training point", X)
    check_tensor(Y, "Y", fn, ndim=(2, 3))
    if Y.shape[-2:] != Xb.shape[-2:] or (Y.ndim == 3 and Y.shape[0] != B):
        fail("Y", fn, f"a tensor of shape ({N}, {d}) or ({B}, {N}, {d}) matching 'X'", Y)
    Yb = Y.expand(B, N, d)
    check_same_device_dtype(fn, X=Xb, Y=Yb)
    if feats is not None:
        check_same_device_dtype(fn, features=feats.omega, X=Xb)
    E = 1 if scheme == "euler" else 2
    C = steps * E * N  # centres per block at the end
    per = E * N * (q + 2) + (2 * feats.n_features if feats is not None else 0)
    sizes = {"steps": steps, "depth": L, "q": q, "X": N}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big], nbytes=Xb.dtype.itemsize * B * L * C * (2 * q + per),
                 steps=L * (E * N) ** 2 * steps * (steps + 1) / 2 + steps * L)

    x0 = lift(Xb, q)  # (B, N, q)
    Z = x0.new_zeros(B, L, C, q)  # centres, filled E N per step
    A = x0.new_zeros(B, L, C, q)  # coefficients
    with torch.no_grad():
        lam_max = torch.linalg.eigvalsh(_gram(feats, bandwidth, x0, x0))[:, -1]
    stable = 2 * L * N / float(lam_max.max().clamp_min(torch.finfo(x0.dtype).tiny))
    losses: list[Tensor] = []
    rec_steps: list[int] = []
    loss0 = limit = None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"train kernel-limit ResNet (L={L}, {scheme})")
    try:
        for k in range(steps + 1):
            c = k * E * N
            delta = x0.new_zeros(B, L, E, N, q).requires_grad_(True)
            with torch.enable_grad():
                path, evals = _forward(feats, bandwidth, Z[:, :, :c], A[:, :, :c], x0,
                                       scheme, delta)
                # B = [I_d, 0] by slicing: project() would refuse a blow-up as a bad
                # argument before the DivergenceError below
                r = path[:, -1, :, :d] - Yb  # (B, N, d)
                loss = 0.5 * r.square().sum(-1).mean(-1)  # (B,)
                (D,) = torch.autograd.grad(loss.sum(), delta)  # (B, L, E, N, q)
            loss = loss.detach()
            if loss0 is None:
                loss0 = loss
                limit = 1e3 * loss0.clamp_min(torch.finfo(loss.dtype).tiny)
            bad = ~torch.isfinite(loss) | (loss > limit) | ~torch.isfinite(D).flatten(1).all(1)
            if bool(bad.any()):
                b = int(torch.nonzero(bad)[0, 0])
                raise DivergenceError(
                    f"Kernel-limit training diverged at step {k} for network {b} (L={L}, "
                    f"{scheme}): loss {float(loss[b]):.4g} from {float(loss0[b]):.4g}. The "
                    f"step lr={lr:g} is too large; use lr < 2 L N / lambda_max(K) = "
                    f"{stable:.4g}.")
            if k % record_every == 0 or k == steps:
                rec_steps.append(k)
                losses.append(loss)
            if k == steps:
                break
            Z[:, :, c:c + E * N] = torch.stack([e.detach() for e in evals], 1)
            A[:, :, c:c + E * N] = -lr * D.reshape(B, L, E * N, q)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return KernelHistory(lr=lr, n_train=N, step=torch.tensor(rec_steps, dtype=torch.int64),
                         loss=torch.stack(losses),
                         final=KernelResNet(Z, A, d, scheme, bandwidth, feats))
