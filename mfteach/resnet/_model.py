r"""The ResNet as a discretised neural ODE.

The residual network of depth :math:`L` is the discretised neural ODE on
:math:`s \in [0, 1]` (Barboni, Peyré & Vialard 2022, "On global convergence of ResNets: from
finite to infinite width using linear parameterization", NeurIPS, arXiv:2112.05531),

.. math::

    x_0 = A\,x, \qquad x_{l+1} = x_l + \tfrac1L\,U_l\,\phi(x_l) \ (\text{Euler}), \qquad
    f(x) = B\,x_L,

with the residual *linear* in the trained :math:`U_l \in \mathbb{R}^{q\times M}` and
nonlinear in :math:`x` through the fixed features; :math:`U = 0` at initialisation, so the
network starts as the identity. The midpoint scheme replaces the step by
:math:`x_{l+1} = x_l + \frac1L U_l\phi(x_l + \frac1{2L}U_l\phi(x_l))` (the authors' default,
``torchdiffeq`` "midpoint"). Lifting and projection follow the authors' synthetic experiment
(``rbarboni/FlowResNets``, commit 5293efa, ``synthetic.py``): :math:`A` stacks copies of
:math:`I_d` into :math:`\mathbb{R}^q`, :math:`B = [I_d, 0]`, so :math:`BA = I_d`.

Two models (``MODELS``). ``"rkhs"``, the paper's: the features :math:`\phi` are drawn once and
shared by all blocks, only :math:`U` is trained, so each residual
:math:`v_l = U_l\phi` lies in the span of :math:`M` fixed functions (an RKHS ball as
:math:`M \to \infty`). ``"shl"``, the authors' baseline: a single-hidden-layer residual
:math:`v_l(x) = U_l\,\sigma(W_l x + b_l)` with both layers trained, one hidden layer per
block. Here :math:`\sigma(W_l x + b_l)` is the feature map of the same family with
block-wise frequencies :math:`\omega^{(l)}` (rows of :math:`W_l`) and phases
:math:`b^{(l)}`, initialised as copies of the RKHS draw: at :math:`U = 0` the two models are
the same function (the identity), and since :math:`\partial v_l/\partial\omega^{(l)}
\propto U_l`, the features receive no gradient until :math:`U` has moved.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from .._checks import (
    check_budget,
    check_choice,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from ..device import resolve_dtype
from ._features import RandomFeatures, _batched, _check_feats, _phi, draw_features

__all__ = ["SCHEMES", "ORDER", "MODELS", "ResNet", "init_resnet", "lift", "project",
           "trajectories", "resnet_output"]

SCHEMES: tuple[str, ...] = ("euler", "midpoint")
"""The depth discretisations, of orders 1 and 2."""
ORDER = {"euler": 1, "midpoint": 2}
"""Declared order of each scheme in the depth step :math:`h = 1/L`."""
MODELS: tuple[str, ...] = ("rkhs", "shl")
"""The residual models: fixed shared features (``"rkhs"``) or trained block-wise features
(``"shl"``, single hidden layer per block)."""


# ------------------------------------------------------------------------------------------
# The ResNet
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResNet:
    r"""An ensemble of :math:`B` ResNets with linearly parameterised (``"rkhs"``) or
    single-hidden-layer (``"shl"``) residuals.

    Attributes
    ----------
    feats : RandomFeatures
        The features on the state space :math:`\mathbb{R}^q`, shared by the blocks
        (``"rkhs"``). For ``"shl"`` networks: the draw at initialisation, and the family,
        bandwidth and :math:`\nu`; the blocks use ``layer_omega`` and ``layer_phase``.
    U : Tensor, shape (B, L, q, M)
        The trained residual weights :math:`U_l`.
    d : int
        Input and output dimension (lifting :math:`A`: copies of :math:`I_d`;
        projection :math:`B = [I_d, 0]`).
    scheme : str
        ``"euler"`` or ``"midpoint"``.
    layer_omega : Tensor, shape (B, L, M, q), optional
        ``"shl"`` only: the trained frequencies :math:`\omega^{(l)}` of each block.
    layer_phase : Tensor, shape (B, L, M), optional
        ``"shl"`` only: the phases :math:`b^{(l)}` (trained for the Fourier families; the
        ``"relu"`` features have none, as in the authors' bias-free SHL).

    Notes
    -----
    ``net.replace(layer_omega=None, layer_phase=None)`` is the ``"rkhs"`` network with the
    same :math:`U` and the initial features. Construction checks every field (the ``"shl"``
    fields for their shapes only); the training loops rebuild their iterates unchecked and
    report a blow-up as a :class:`mfteach.training.DivergenceError`.
    """

    feats: RandomFeatures
    U: Tensor
    d: int
    scheme: str
    layer_omega: Tensor | None = None
    layer_phase: Tensor | None = None

    def __post_init__(self):
        fn = "mfteach.resnet.ResNet"
        f = _check_feats(self.feats, fn)
        check_tensor(self.U, "U", fn, ndim=4)
        B, L, q, M = self.U.shape
        if (f.n_networks, f.n_features, f.dim) != (B, M, q):
            fail("U", fn, f"a tensor of shape ({f.n_networks}, L, {f.dim}, {f.n_features}) "
                 f"matching feats ({f.n_networks} networks, {f.n_features} features on "
                 f"R^{f.dim})", self.U)
        check_same_device_dtype(fn, feats=f.omega, U=self.U)
        check_int(self.d, "d", fn, min=1, max=q)
        check_choice(self.scheme, "scheme", fn, SCHEMES)
        om, ph = self.layer_omega, self.layer_phase
        if om is None and ph is None:
            return
        if om is None or ph is None:
            fail("layer_phase" if ph is None else "layer_omega", fn,
                 "given together with the other per-block field (an SHL network) or both "
                 "None (an RKHS network)", ph if ph is None else om)
        # shapes only: training rebuilds the network every step, and a blow-up is reported
        # by train's DivergenceError, not here
        check_tensor(om, "layer_omega", fn, shape=(B, L, M, q), finite=False)
        check_tensor(ph, "layer_phase", fn, shape=(B, L, M), finite=False)
        check_same_device_dtype(fn, U=self.U, layer_omega=om, layer_phase=ph)

    @property
    def model(self) -> str:
        """``"shl"`` when the blocks carry their own features, else ``"rkhs"``."""
        return "rkhs" if self.layer_omega is None else "shl"

    @property
    def n_networks(self) -> int:
        return self.U.shape[0]

    @property
    def depth(self) -> int:
        return self.U.shape[1]

    @property
    def q(self) -> int:
        return self.U.shape[2]

    @property
    def n_features(self) -> int:
        return self.U.shape[3]

    @property
    def n_trainable(self) -> int:
        r"""Trainable parameters per network: :math:`LqM` (``"rkhs"``); :math:`2LqM`, plus
        :math:`LM` trained phases for the Fourier families (``"shl"``)."""
        L, q, M = self.depth, self.q, self.n_features
        if self.model == "rkhs":
            return L * q * M
        return 2 * L * q * M + (0 if self.feats.family == "relu" else L * M)

    def block_feats(self, layer: int) -> RandomFeatures:
        """The features of block ``layer`` (``feats`` itself for ``"rkhs"``)."""
        check_int(layer, "layer", "mfteach.resnet.ResNet.block_feats", min=0,
                  max=self.depth - 1)
        if self.layer_omega is None:
            return self.feats
        f = self.feats
        return RandomFeatures(f.family, self.layer_omega[:, layer], self.layer_phase[:, layer],
                              f.bandwidth, f.nu)

    def replace(self, **changes) -> ResNet:
        """A copy with some fields changed (``dataclasses.replace``)."""
        from dataclasses import replace

        return replace(self, **changes)


def init_resnet(d: int, q: int, n_features: int, depth: int, *, family: str = "gaussian",
                bandwidth: float = 1.0, nu: float = 3.0, scheme: str = "midpoint",
                model: str = "rkhs", n_networks: int = 1, generator: int | torch.Generator,
                device: torch.device | str | None = None,
                dtype: torch.dtype | None = None) -> ResNet:
    r"""An ensemble of ResNets at initialisation: random features, :math:`U = 0` (the identity
    map, since :math:`BA = I_d`).

    Parameters
    ----------
    d : int
        Input/output dimension.
    q : int
        State dimension, ``q >= d``.
    n_features : int
        :math:`M`.
    depth : int
        :math:`L`, the number of residual blocks (step :math:`1/L`).
    family, bandwidth, nu
        See :func:`draw_features`.
    scheme : {"euler", "midpoint"}
    model : {"rkhs", "shl"}
        ``"rkhs"``: one draw of features shared by the blocks. ``"shl"``: each block gets its
        own copy of the same draw (``layer_omega``, ``layer_phase``), trained by
        :func:`mfteach.resnet.train`; the same generator gives the same features, so the two
        models start as the same network.

    Other Parameters
    ----------------
    n_networks, generator, device, dtype
        See :func:`draw_features`.

    Returns
    -------
    ResNet

    Examples
    --------
    >>> net = init_resnet(2, 4, 32, 8, n_networks=3, generator=0)
    >>> tuple(net.U.shape), bool((net.U == 0).all()), net.model, net.n_trainable
    ((3, 8, 4, 32), True, 'rkhs', 1024)
    >>> shl = init_resnet(2, 4, 32, 8, n_networks=3, model="shl", generator=0)
    >>> tuple(shl.layer_omega.shape), shl.n_trainable  # 2 L q M + L M phases
    ((3, 8, 32, 4), 2304)
    >>> bool((shl.layer_omega == net.feats.omega.unsqueeze(1)).all())
    True
    """
    fn = "mfteach.resnet.init_resnet"
    d = check_int(d, "d", fn, min=1)
    q = check_int(q, "q", fn, min=1)
    if q < d:
        fail("q", fn, f"an int >= 'd' = {d} (the state must hold the lifted input)", q)
    M = check_int(n_features, "n_features", fn, min=1)
    L = check_int(depth, "depth", fn, min=1)
    check_choice(scheme, "scheme", fn, SCHEMES)
    check_choice(model, "model", fn, MODELS)
    B = check_int(n_networks, "n_networks", fn, min=1)
    dt = resolve_dtype(dtype, fn)
    sizes = {"n_features": M, "depth": L, "q": q, "n_networks": B}
    big = max(sizes, key=lambda k: sizes[k])
    per = (4.0 if model == "rkhs" else 8.0) * B * L * q * M
    check_budget(big, fn, sizes[big], nbytes=per * dt.itemsize)
    feats = draw_features(q, M, family=family, bandwidth=bandwidth, nu=nu, n_networks=B,
                          generator=generator, device=device, dtype=dtype)
    U = torch.zeros(B, L, q, M, dtype=dt, device=feats.omega.device)
    if model == "rkhs":
        return ResNet(feats, U, d, scheme)
    om = feats.omega.unsqueeze(1).expand(B, L, M, q).clone()
    ph = feats.phase.unsqueeze(1).expand(B, L, M).clone()
    return ResNet(feats, U, d, scheme, om, ph)


def _check_net(net, fn: str, models: tuple[str, ...] = ("rkhs",)) -> ResNet:
    """Check that ``net`` is a ResNet of one of ``models``. The default admits RKHS networks
    only: a routine that reads ``net.feats`` as the features of every block must not be
    handed an SHL network (whose blocks have moved away from ``feats``)."""
    if not isinstance(net, ResNet):
        fail("net", fn, "an mfteach.resnet.ResNet (from init_resnet)", net, exc=TypeError)
    if net.model not in models:
        fail("net", fn, f"a ResNet with model in {set(models)} (this routine uses the shared "
             f"features net.feats of the RKHS model)", f"a model={net.model!r} ResNet")
    return net


def lift(X: Tensor, q: int) -> Tensor:
    r"""The lifting :math:`A x`: copies of :math:`x` stacked into :math:`\mathbb{R}^q`
    (truncated at :math:`q`).

    Parameters
    ----------
    X : Tensor, shape (..., d)
    q : int, ``q >= d``

    Examples
    --------
    >>> lift(torch.tensor([[1.0, 2.0]]), 5)
    tensor([[1., 2., 1., 2., 1.]])
    """
    fn = "mfteach.resnet.lift"
    check_tensor(X, "X", fn)
    if X.ndim < 1:
        fail("X", fn, "a tensor with at least one dimension", X)
    d = X.shape[-1]
    q = check_int(q, "q", fn, min=max(d, 1))
    check_budget("q", fn, q, nbytes=2.0 * X.numel() / max(d, 1) * q * X.dtype.itemsize)
    reps = -(-q // d)
    return X.repeat(*([1] * (X.ndim - 1)), reps)[..., :q]


def project(x: Tensor, d: int) -> Tensor:
    r"""The projection :math:`B x = [I_d, 0]\,x`: the first :math:`d` coordinates.

    Examples
    --------
    >>> project(torch.tensor([[1.0, 2.0, 3.0]]), 2)
    tensor([[1., 2.]])
    """
    fn = "mfteach.resnet.project"
    check_tensor(x, "x", fn)
    if x.ndim < 1:
        fail("x", fn, "a tensor with at least one dimension", x)
    d = check_int(d, "d", fn, min=1, max=x.shape[-1])
    return x[..., :d]


def _step(feats: RandomFeatures, U_l: Tensor, x: Tensor, h: float, scheme: str) -> Tensor:
    """One residual block: x (B, n, q), U_l (B, q, M)."""
    Ut = U_l.transpose(-1, -2)  # (B, M, q)
    k1 = _phi(feats, x) @ Ut
    if scheme == "euler":
        return x + h * k1
    return x + h * (_phi(feats, x + (0.5 * h) * k1) @ Ut)


def _flow(net: ResNet, x0: Tensor, keep_path: bool = False) -> Tensor:
    """Integrate x0 (B, n, q) through the L blocks: x_L (B, n, q), or (B, L+1, n, q)."""
    L = net.depth
    h = 1.0 / L
    x = x0
    path = [x0] if keep_path else None
    for layer in range(L):
        x = _step(net.block_feats(layer), net.U[:, layer], x, h, net.scheme)
        if keep_path:
            path.append(x)
    return torch.stack(path, 1) if keep_path else x


def _params(net: ResNet) -> list[Tensor]:
    """The trained tensors: [U], or [U, layer_omega(, layer_phase)] for SHL networks (the
    ``"relu"`` features have no phase)."""
    if net.layer_omega is None:
        return [net.U]
    if net.feats.family == "relu":
        return [net.U, net.layer_omega]
    return [net.U, net.layer_omega, net.layer_phase]


def _rebuilt(net: ResNet, **changes) -> ResNet:
    """``net.replace(**changes)`` without the checks of ``ResNet.__post_init__``: the training
    loops rebuild the network from its own iterates every step, and report a blow-up (a
    non-finite U) as a DivergenceError, not as a bad argument."""
    new = object.__new__(ResNet)
    for f in fields(ResNet):
        object.__setattr__(new, f.name, changes.get(f.name, getattr(net, f.name)))
    return new


def _with_params(net: ResNet, params: list[Tensor]) -> ResNet:
    """``net`` with the trained tensors replaced (the inverse of :func:`_params`)."""
    if net.layer_omega is None:
        return _rebuilt(net, U=params[0])
    phase = params[2] if len(params) > 2 else net.layer_phase
    return _rebuilt(net, U=params[0], layer_omega=params[1], layer_phase=phase)


def _phi_blocks(net: ResNet, xs: Tensor) -> Tensor:
    """Features of the states xs (B, L, n, q), block l's features at layer l: (B, L, n, M)."""
    if net.layer_omega is None:
        return _phi(net.feats, xs)
    B, L, n, q = xs.shape
    f = net.feats
    flat = RandomFeatures(f.family, net.layer_omega.reshape(B * L, -1, q),
                          net.layer_phase.reshape(B * L, -1), f.bandwidth, f.nu)
    return _phi(flat, xs.reshape(B * L, n, q)).reshape(B, L, n, -1)


def _inputs(net: ResNet, X, fn: str) -> Tensor:
    Xb = _batched(X, net.n_networks, net.d, "X", fn)
    check_same_device_dtype(fn, net=net.U, X=Xb)
    return lift(Xb, net.q)


def trajectories(net: ResNet, X: Tensor) -> Tensor:
    r"""The states :math:`x_l(x_n)`, :math:`l = 0, \dots, L`, of every input through depth.

    Parameters
    ----------
    net : ResNet
    X : Tensor, shape (n, d) or (B, n, d)

    Returns
    -------
    Tensor, shape (B, L + 1, n, q)
        Layer :math:`l` sits at depth :math:`s = l/L`.

    Examples
    --------
    >>> net = init_resnet(2, 2, 16, 4, generator=0)
    >>> trajectories(net, torch.zeros(5, 2, dtype=torch.float64)).shape
    torch.Size([1, 5, 5, 2])
    """
    fn = "mfteach.resnet.trajectories"
    _check_net(net, fn, MODELS)
    return _flow(net, _inputs(net, X, fn), keep_path=True)


def resnet_output(net: ResNet, X: Tensor) -> Tensor:
    r"""The network outputs :math:`f(x_n) = B\,x_L(x_n)`.

    Parameters
    ----------
    net : ResNet
    X : Tensor, shape (n, d) or (B, n, d)

    Returns
    -------
    Tensor, shape (B, n, d)

    Examples
    --------
    >>> net = init_resnet(2, 4, 16, 4, n_networks=2, generator=0)
    >>> X = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> bool((resnet_output(net, X) == X).all())  # U = 0: the identity
    True
    """
    fn = "mfteach.resnet.resnet_output"
    _check_net(net, fn, MODELS)
    return project(_flow(net, _inputs(net, X, fn)), net.d)
