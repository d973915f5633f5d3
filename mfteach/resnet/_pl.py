r"""The local Polyak-Łojasiewicz inequality at finite width and depth, and its lazy limit.

Bound along training (Euler blocks). Write :math:`G_l \in \mathbb{R}^{N\times q}` for the
gradients :math:`\partial\mathcal{L}/\partial x_{n,l}` of the loss
:math:`\mathcal{L} = \frac1{2N}\sum_n\|Bx_{n,L} - y_n\|^2` with respect to the states, and
:math:`\Phi_l = \Phi(x_l)`. Since :math:`x_{l+1} = x_l + hU_l\phi(x_l)`,
:math:`\nabla_{U_l}\mathcal{L} = h\,G_{l+1}^\top\Phi_l`, so
:math:`\|\nabla_{U_l}\mathcal{L}\|_F^2 = h^2\operatorname{tr}(G_{l+1}^\top K_M(x_l)G_{l+1})
\ge h^2\lambda_{\min}(K_M(x_l))\|G_{l+1}\|_F^2`. With :math:`g_{n,l} = \frac1N
J_{n,l}^\top B^\top r_n` (:math:`J_{n,l} = \partial x_{n,L}/\partial x_{n,l}`, the flow's
Jacobian from layer :math:`l` to the output) and :math:`s_l = \min_n\sigma_{\min}(BJ_{n,l})`,

.. math::

    \frac{\|\nabla\mathcal{L}\|^2}{\mathcal{L}} \;\ge\; \frac{2}{L^2N}\sum_{l=0}^{L-1}
    \lambda_{\min}\big(K_M(x_l)\big)\,s_{l+1}^2 ,

which is :math:`2\lambda_{\min}(K_M)/(LN)` at initialisation (all :math:`x_l = Ax`,
:math:`J = I`). It is the discrete form of the paper's local PL inequality (Barboni, Peyré &
Vialard 2022): the constant degrades only through the Gram at the moving states and the
conditioning of the flow map, both continuous in :math:`U`, so it stays positive near
:math:`U = 0` exactly when :math:`\lambda_{\min}(K_M(Ax)) > 0`, which needs :math:`M \ge N`.

Lazy limit. Linearising the network at :math:`U = 0`, one gradient step changes the residuals
:math:`R` (:math:`N\times d`) by :math:`-\frac{\eta}{LN}K_M R` (both schemes; :math:`BB^\top =
I_d`), so

.. math::

    \mathcal{L}_k = \frac1{2N}\sum_i\Big(1 - \frac{\eta\lambda_i}{LN}\Big)^{2k}
    \|v_i^\top R_0\|^2 , \qquad
    \rho = -2\log\Big(1 - \frac{\eta\lambda_{\min}}{LN}\Big),
    \qquad \mathcal{L}_\infty = \frac1{2N}\|P_{\ker K_M}R_0\|_F^2 ,

with :math:`(\lambda_i, v_i)` the eigenpairs of :math:`K_M(Ax)`: a straight log-loss line of
slope :math:`\rho` when :math:`K_M` is positive definite, and a plateau at
:math:`\mathcal{L}_\infty > 0` when :math:`M < N` (the residual's component in the kernel of
:math:`K_M` cannot move at first order). The network follows this curve when the target is
close to the identity (the local regime of the theorem).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import (
    check_budget,
    check_float,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from ._features import _batched, _phi
from ._model import ResNet, _check_net, lift, project

__all__ = ["PLBound", "pl_lower_bound", "PLTrace", "pl_trace", "LazyPrediction",
           "lazy_prediction"]


@dataclass(frozen=True)
class PLBound:
    r"""The two sides of :eq:`rn-pl-bound` for each network.

    Attributes
    ----------
    pl_ratio : Tensor, shape (B,)
        :math:`\|\nabla_U\mathcal{L}\|^2/\mathcal{L}` (autograd).
    bound : Tensor, shape (B,)
        The right-hand side of :eq:`rn-pl-bound`.
    gram_min : Tensor, shape (B, L)
        :math:`\lambda_{\min}(K_M(x_l))`, :math:`l = 0, \dots, L - 1`.
    sigma_min : Tensor, shape (B, L)
        :math:`s_{l+1} = \min_n\sigma_{\min}(BJ_{n,l+1})`.
    """

    pl_ratio: Tensor
    bound: Tensor
    gram_min: Tensor
    sigma_min: Tensor


def pl_lower_bound(net: ResNet, X: Tensor, Y: Tensor) -> PLBound:
    r"""The PL ratio of ``net`` on ``(X, Y)`` and its lower bound :eq:`rn-pl-bound`.

    Parameters
    ----------
    net : ResNet
        Euler blocks (the bound is derived for them).
    X, Y : Tensor, shape (N, d) or (B, N, d)

    Returns
    -------
    PLBound

    Examples
    --------
    >>> from mfteach.resnet import init_resnet, toy_data
    >>> X, Y = toy_data(6, generator=0)
    >>> net = init_resnet(2, 2, 32, 4, bandwidth=0.5, scheme="euler", generator=1)
    >>> b = pl_lower_bound(net, X, Y)
    >>> bool((b.pl_ratio >= b.bound).all())
    True
    """
    fn = "mfteach.resnet.pl_lower_bound"
    _check_net(net, fn)
    if net.scheme != "euler":
        fail("net", fn, "a ResNet with Euler blocks (the bound rn-pl-bound is derived for "
             "them)", f"scheme {net.scheme!r}")
    B, L, d = net.n_networks, net.depth, net.d
    Xb = _batched(X, B, d, "X", fn)
    check_tensor(Y, "Y", fn, ndim=(2, 3))
    if Y.shape[-2:] != Xb.shape[-2:] or (Y.ndim == 3 and Y.shape[0] != B):
        fail("Y", fn, f"a tensor of shape {tuple(Xb.shape[-2:])} or "
             f"({B}, {Xb.shape[1]}, {d}) matching X", Y)
    check_same_device_dtype(fn, net=net.U, X=Xb)
    check_same_device_dtype(fn, X=Xb, Y=Y)
    Yb = Y.expand_as(Xb)
    N, h = Xb.shape[1], 1.0 / L
    U = net.U.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        x = lift(Xb, net.q).detach().requires_grad_(True)
        states = [x]
        for layer in range(L):
            x = x + h * (_phi(net.feats, x) @ U[:, layer].transpose(-1, -2))
            states.append(x)
        out = project(x, d)
        loss = 0.5 * (out - Yb).square().sum(-1).mean(-1)  # (B,)
        (grad,) = torch.autograd.grad(loss.sum(), U, retain_graph=True)
        # Rows i of B J_{n,l} for l = 1..L: one backward pass per output coordinate.
        rows = [torch.autograd.grad(out[..., i].sum(), states[1:], retain_graph=i < d - 1)
                for i in range(d)]
    BJ = torch.stack([torch.stack(r, 1) for r in rows], -2)  # (B, L, N, d, q)
    sig = torch.linalg.svdvals(BJ.detach())[..., -1].amin(-1)  # (B, L): min over n
    with torch.no_grad():
        path = torch.stack(states[:-1], 1).detach()  # (B, L, N, q)
        Phi = _phi(net.feats, path)
        lam = torch.linalg.eigvalsh(Phi @ Phi.transpose(-1, -2))[..., 0]  # (B, L)
    loss = loss.detach()
    ratio = grad.square().sum((1, 2, 3)) / loss
    bound = 2.0 / (L * L * N) * (lam.clamp_min(0) * sig.square()).sum(-1)
    return PLBound(pl_ratio=ratio, bound=bound, gram_min=lam, sigma_min=sig)


@dataclass(frozen=True)
class LazyPrediction:
    r"""The linearised (lazy) training curve :eq:`rn-lazy` of each network.

    Attributes
    ----------
    step : Tensor, shape (T,)
    loss : Tensor, shape (T, B)
    rate : Tensor, shape (B,)
        :math:`\rho = -2\log(1 - \eta\lambda_{\min}/(LN))` (0 when :math:`K_M` is singular).
    plateau : Tensor, shape (B,)
        :math:`\mathcal{L}_\infty`, the residual's part in the (numerical) kernel of
        :math:`K_M`.
    gram_min, gram_max : Tensor, shape (B,)
        Extreme eigenvalues of :math:`K_M(Ax)`.
    """

    step: Tensor
    loss: Tensor
    rate: Tensor
    plateau: Tensor
    gram_min: Tensor
    gram_max: Tensor


def lazy_prediction(net: ResNet, X: Tensor, Y: Tensor, *, lr: float, step: Tensor | None = None,
                    steps: int = 500, record_every: int = 10) -> LazyPrediction:
    r"""The training curve of the network linearised at :math:`U = 0`, :eq:`rn-lazy`.

    Parameters
    ----------
    net : ResNet
        At initialisation (only its features and depth are used).
    X, Y : Tensor, shape (N, d) or (B, N, d)
    lr : float
        :math:`\eta`, as in :func:`mfteach.resnet.train`.
    step : Tensor, optional
        Steps at which to evaluate (e.g. ``History.step``); otherwise ``0, record_every, ...,
        steps``.

    Returns
    -------
    LazyPrediction

    Examples
    --------
    >>> from mfteach.resnet import init_resnet, toy_data
    >>> X, Y = toy_data(6, generator=0)
    >>> net = init_resnet(2, 2, 3, 4, bandwidth=0.5, generator=1)  # M = 3 < N = 6
    >>> p = lazy_prediction(net, X, Y, lr=5.0, steps=100)
    >>> bool(p.plateau[0] > 0), float(p.rate[0])
    (True, 0.0)
    """
    fn = "mfteach.resnet.lazy_prediction"
    _check_net(net, fn)
    B, L, d = net.n_networks, net.depth, net.d
    Xb = _batched(X, B, d, "X", fn)
    check_tensor(Y, "Y", fn, ndim=(2, 3))
    if Y.shape[-2:] != Xb.shape[-2:] or (Y.ndim == 3 and Y.shape[0] != B):
        fail("Y", fn, f"a tensor of shape {tuple(Xb.shape[-2:])} matching X", Y)
    check_same_device_dtype(fn, net=net.U, X=Xb)
    check_same_device_dtype(fn, X=Xb, Y=Y)
    lr = check_float(lr, "lr", fn, min=0.0, min_open=True)
    if step is None:
        steps = check_int(steps, "steps", fn, min=0)
        record_every = check_int(record_every, "record_every", fn, min=1)
        T = steps // record_every + 2  # recorded steps, the last one included
        check_budget("steps", fn, steps,
                     nbytes=3.0 * T * B * (Xb.shape[1] + 1) * Xb.dtype.itemsize)
        ks = list(range(0, steps + 1, record_every))
        if ks[-1] != steps:
            ks.append(steps)
        step = torch.tensor(ks, dtype=torch.int64)
    else:
        check_tensor(step, "step", fn, ndim=1, floating=False)
    N = Xb.shape[1]
    R = Xb - Y.expand_as(Xb)  # residuals of the identity map
    Phi = _phi(net.feats, lift(Xb, net.q))
    ev, V = torch.linalg.eigh(Phi @ Phi.transpose(-1, -2))  # (B, N), (B, N, N)
    c = (V.transpose(-1, -2) @ R).square().sum(-1)  # (B, N): |v_i^T R|^2
    tiny = N * torch.finfo(ev.dtype).eps * ev[:, -1:]
    null = ev <= tiny
    factor = 1 - lr * ev.clamp_min(0) / (L * N)  # (B, N)
    k = step.to(device=ev.device, dtype=ev.dtype)
    loss = (factor.abs().unsqueeze(0) ** (2 * k[:, None, None]) * c).sum(-1) / (2 * N)
    loss = torch.where(k[:, None] == 0, c.sum(-1) / (2 * N), loss)
    lam_min = torch.where(null.any(-1), torch.zeros_like(ev[:, 0]), ev[:, 0])
    slow = (1 - lr * lam_min / (L * N)).clamp_min(torch.finfo(ev.dtype).tiny)
    rate = -2 * torch.log(slow)
    rate = torch.where(lam_min > 0, rate, torch.zeros_like(rate))
    plateau = (c * null).sum(-1) / (2 * N)
    # |factor| = 1 is a mode that does not move (the kernel of K_M): a growing mode is beyond
    # rounding, 1e-12 in float64 and a few eps in float32 (where 1 + 1e-12 rounds to 1)
    grows = factor.abs() >= 1 + max(1e-12, 8 * torch.finfo(ev.dtype).eps)
    if not bool(torch.isfinite(loss).all()) or bool(grows.any()):
        fail("lr", fn, f"a step below the lazy stability limit 2 L N / lambda_max = "
             f"{2 * L * N / float(ev[:, -1].max()):.4g}", lr)
    return LazyPrediction(step=step, loss=loss, rate=rate, plateau=plateau,
                          gram_min=ev[:, 0], gram_max=ev[:, -1])


@dataclass(frozen=True)
class PLTrace:
    r"""The two sides of :eq:`rn-pl-bound` along a training run.

    Attributes
    ----------
    step : Tensor, shape (T,)
    loss, pl_ratio, bound : Tensor, shape (T, B)
    final : ResNet
        The network after the last step.
    """

    step: Tensor
    loss: Tensor
    pl_ratio: Tensor
    bound: Tensor
    final: ResNet


def pl_trace(net: ResNet, X: Tensor, Y: Tensor, *, lr: float = 10.0, steps: int = 200,
             every: int = 20) -> PLTrace:
    r"""Train ``net`` (Euler blocks) by gradient descent and evaluate :func:`pl_lower_bound`
    every ``every`` steps.

    Examples
    --------
    >>> from mfteach.resnet import init_resnet, toy_data
    >>> X, Y = toy_data(6, amplitude=0.2, generator=0)
    >>> net = init_resnet(2, 2, 32, 4, bandwidth=0.5, scheme="euler", generator=1)
    >>> tr = pl_trace(net, X, Y, lr=5.0, steps=40, every=20)
    >>> tr.step.tolist(), bool((tr.pl_ratio >= tr.bound).all())
    ([0, 20, 40], True)
    """
    from ._train import train

    fn = "mfteach.resnet.pl_trace"
    _check_net(net, fn)
    steps = check_int(steps, "steps", fn, min=1)
    every = check_int(every, "every", fn, min=1, max=steps)
    lr = check_float(lr, "lr", fn, min=0.0, min_open=True)
    check_budget("steps", fn, steps, steps=steps * net.depth)
    ks, loss, ratio, bound = [], [], [], []
    k = 0
    while True:
        b = pl_lower_bound(net, X, Y)
        h = train(net, X, Y, lr=lr, steps=0)
        ks.append(k)
        loss.append(h.loss[0])
        ratio.append(b.pl_ratio)
        bound.append(b.bound)
        if k >= steps:
            break
        n = min(every, steps - k)
        net = train(net, X, Y, lr=lr, steps=n, record_every=n).final
        k += n
    return PLTrace(step=torch.tensor(ks, dtype=torch.int64), loss=torch.stack(loss),
                   pl_ratio=torch.stack(ratio), bound=torch.stack(bound), final=net)
