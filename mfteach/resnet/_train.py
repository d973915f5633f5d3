r"""Full-batch gradient descent on the residual weights, with the local PL diagnostics.

The loss of network :math:`b` is :math:`\mathcal{L}(U) = \frac1{2N}\sum_{n}\|f(x_n) - y_n\|^2`
and one step is :math:`U \leftarrow U - \eta\nabla_U\mathcal{L}` (gradients by autograd through
the Euler or midpoint blocks; the ensemble trains as one batched program). Along training
:func:`train` records the loss, the **PL ratio** :math:`\|\nabla\mathcal{L}\|^2/\mathcal{L}`
and the smallest eigenvalue of the feature Gram :math:`K_M(x_l) = \Phi(x_l)\Phi(x_l)^\top`
at the data, at the input layer and (minimised over the blocks) along the trajectories.

PL at initialisation. With :math:`U = 0` every state is :math:`x_l = Ax`, the Jacobians
through depth are the identity and :math:`\nabla_{U_l}\mathcal{L} = \frac1{LN}B^\top R^\top
\Phi` (:math:`R` the :math:`N\times d` residuals, :math:`\Phi = \Phi(Ax)`), for both schemes.
Summing over the :math:`L` blocks,

.. math::

    \frac{\|\nabla\mathcal{L}\|^2}{\mathcal{L}} = \frac{2}{LN}\,
    \frac{\operatorname{tr}(R^\top K_M R)}{\|R\|_F^2} \;\ge\; \frac{2\lambda_{\min}(K_M)}{LN},

the finite-width, finite-depth form of the local PL inequality of Barboni, Peyré & Vialard
(2022, arXiv:2112.05531; the constant is our derivation, the paper's is not available to us).
Away from initialisation the Jacobians through depth deviate from the identity by a Grönwall
factor controlled by the Lipschitz norm of the velocity, and the Gram is taken at the moving
states :math:`x_l`: :attr:`History.pl_floor` records :math:`2\min_l\lambda_{\min}(K_M(x_l))/(LN)`
for comparison with the measured ratio. Gradient descent then contracts the loss by about
:math:`1 - \eta\mu` per step: a straight log-loss line (:func:`fit_log_rate`).
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
from ..device import resolve_device, resolve_dtype
from ..training import DivergenceError
from ._features import _batched, _draw_generator, _phi
from ._model import (
    MODELS,
    ResNet,
    _check_net,
    _flow,
    _params,
    _phi_blocks,
    _with_params,
    lift,
)

__all__ = ["TARGETS", "toy_data", "History", "train", "RateFit", "fit_log_rate"]

TARGETS: tuple[str, ...] = ("negate", "sine")
r"""Toy targets: ``"negate"``, :math:`y = -x` with :math:`x \sim N(0, I_d)` (the authors'
synthetic experiment); ``"sine"``, :math:`y = x + a\sin(3x_{\mathrm{rev}})` with
:math:`x \sim U[-1, 1]^d` (coordinates reversed; papers.md, Paper 5 reproductions, with
:math:`a = 1/2`). A small amplitude :math:`a` keeps the target near the identity, where the
local PL inequality of the paper applies."""


def _spread_points(n: int, d: int, min_distance: float, g: torch.Generator,
                   dt: torch.dtype, fn: str) -> Tensor:
    """Uniform points in [-1, 1]^d, each candidate kept when it lies at least min_distance
    from the points kept before it (sequential dart throwing on the generator's stream)."""
    kept: list[Tensor] = []
    tries = 0
    while len(kept) < n:
        cand = 2 * torch.rand(64, d, generator=g, device=g.device, dtype=dt) - 1
        for c in cand:
            tries += 1
            if not kept or bool((torch.stack(kept) - c).norm(dim=-1).min() >= min_distance):
                kept.append(c)
                if len(kept) == n:
                    break
        if tries > 2000 * n:
            fail("min_distance", fn, f"a separation that {n} points in [-1, 1]^{d} can keep "
                 f"(placed {len(kept)} after {tries} draws)", min_distance)
    return torch.stack(kept)


def toy_data(n: int, d: int = 2, *, target: str = "sine", amplitude: float = 0.5,
             min_distance: float = 0.0, generator: int | torch.Generator,
             device: torch.device | str | None = None,
             dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    r"""Draw a toy regression set ``(X, Y)``, both of shape (n, d) (see ``TARGETS``).

    Parameters
    ----------
    n, d : int
        Number of points and dimension.
    target : {"sine", "negate"}
    amplitude : float
        :math:`a` of the ``"sine"`` target (ignored by ``"negate"``).
    min_distance : float
        ``"sine"`` only: keep the uniform points at least this far apart (sequential dart
        throwing), so that the kernel Gram at the data is well conditioned. 0 draws plain
        i.i.d. uniform points.

    Other Parameters
    ----------------
    generator, device, dtype
        An int seed draws on the CPU; float64 by default.

    Examples
    --------
    >>> X, Y = toy_data(20, generator=0)
    >>> tuple(X.shape), tuple(Y.shape), bool((X.abs() <= 1).all())
    ((20, 2), (20, 2), True)
    >>> X, _ = toy_data(10, min_distance=0.4, generator=0)
    >>> bool((torch.pdist(X) >= 0.4).all())
    True
    """
    fn = "mfteach.resnet.toy_data"
    n = check_int(n, "n", fn, min=1)
    d = check_int(d, "d", fn, min=1)
    check_choice(target, "target", fn, TARGETS)
    amplitude = check_float(amplitude, "amplitude", fn)
    min_distance = check_float(min_distance, "min_distance", fn, min=0.0)
    if target == "negate" and min_distance > 0:
        fail("min_distance", fn, "0 for the 'negate' target (Gaussian inputs)", min_distance)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    big = "n" if n >= d else "d"
    check_budget(big, fn, max(n, d), nbytes=4.0 * n * d * dt.itemsize)
    g = _draw_generator(generator, dev, fn)
    if target == "negate":
        X = torch.randn(n, d, generator=g, device=g.device, dtype=dt)
        Y = -X
    else:
        if min_distance > 0:
            X = _spread_points(n, d, min_distance, g, dt, fn)
        else:
            X = 2 * torch.rand(n, d, generator=g, device=g.device, dtype=dt) - 1
        Y = X + amplitude * torch.sin(3 * X.flip(-1))
    return X.to(dev), Y.to(dev)


@dataclass(frozen=True)
class History:
    r"""What :func:`train` records, at steps ``step``.

    Attributes
    ----------
    lr : float
        Step size :math:`\eta`.
    n_train : int
    step : Tensor, shape (T,), int64
    loss : Tensor, shape (T, B)
        :math:`\mathcal{L}` before that step's update.
    grad_sq : Tensor, shape (T, B)
        :math:`\|\nabla_U\mathcal{L}\|^2`.
    gram_min : Tensor, shape (T, B)
        :math:`\min_{l < L}\lambda_{\min}(K_M(x_l))`, the Gram at the states of the data.
    gram_min_input : Tensor, shape (B,)
        :math:`\lambda_{\min}(K_M(Ax))` at the input layer (fixed during training).
    pl_floor0 : Tensor, shape (B,)
        :math:`2\lambda_{\min}(K_M(Ax))/(LN)`, the bound :eq:`rn-pl0` at initialisation.
    pl_floor : Tensor, shape (T, B)
        :math:`2\,\texttt{gram\_min}/(LN)`.
    final : ResNet
        The trained networks.
    lr_features : float
        Step size of the features of an SHL network (0 for RKHS networks: fixed features).
    grad_sq_features : Tensor, shape (T, B)
        The features' part of ``grad_sq``,
        :math:`\|\nabla_{\omega}\mathcal{L}\|^2 + \|\nabla_{b}\mathcal{L}\|^2` (zeros
        for RKHS networks), so that ``grad_sq - grad_sq_features`` is the part in :math:`U`.

    Notes
    -----
    For an SHL network ``grad_sq`` is the squared gradient over all its trained parameters
    (:math:`U`, the frequencies, and the phases of the Fourier families), and ``gram_min``
    uses each block's current features at its states. The PL floor ``pl_floor`` bounds the
    :math:`U` part alone, hence still bounds ``pl_ratio`` from below near initialisation.
    """

    lr: float
    n_train: int
    step: Tensor
    loss: Tensor
    grad_sq: Tensor
    gram_min: Tensor
    gram_min_input: Tensor
    pl_floor0: Tensor
    pl_floor: Tensor
    final: ResNet
    lr_features: float = 0.0
    grad_sq_features: Tensor | None = None

    @property
    def pl_ratio(self) -> Tensor:
        r""":math:`\|\nabla\mathcal{L}\|^2/\mathcal{L}`, shape (T, B)."""
        return self.grad_sq / self.loss


def _gram_min(net: ResNet, path: Tensor) -> Tensor:
    """min over the blocks l < L of lambda_min(Phi_l(x_l) Phi_l(x_l)^T): path (B, L+1, n, q),
    Phi_l the features of block l (the shared ones for RKHS networks)."""
    Phi = _phi_blocks(net, path[:, :-1])  # (B, L, n, M)
    ev = torch.linalg.eigvalsh(Phi @ Phi.transpose(-1, -2))  # (B, L, n)
    return ev[..., 0].amin(-1)


def train(net: ResNet, X: Tensor, Y: Tensor, *, lr: float = 10.0, steps: int = 500,
          record_every: int = 10, divergence_factor: float = 1e3,
          lr_features: float | None = None, progress: bool = False) -> History:
    r"""Full-batch gradient descent on :math:`U` (and, for an SHL network, on its block-wise
    features), recording the loss, the PL ratio and the feature Gram's smallest eigenvalue
    along training.

    Parameters
    ----------
    net : ResNet
        The initial networks (not modified), of either model.
    X, Y : Tensor, shape (N, d) or (B, N, d)
        Inputs and targets, shared by the ensemble or one set per network.
    lr : float
        :math:`\eta`. Gradient descent on the linearised model is stable for
        :math:`\eta < 2LN/\lambda_{\max}(K_M)`.
    steps : int

    Other Parameters
    ----------------
    record_every : int
        Record every ``record_every`` steps (and the last).
    divergence_factor : float
        Raise :class:`mfteach.training.DivergenceError` when a loss is NaN/inf or exceeds
        ``divergence_factor`` times its initial value.
    lr_features : float, optional
        SHL networks only: the features take steps ``lr * lr_features`` (default 1: one step
        size for all parameters, as the authors' single optimiser). ``0`` freezes them, which
        reproduces the RKHS run.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    History

    Raises
    ------
    DivergenceError
        When the loss blows up; the message suggests a stable ``lr``.
    TypeError, ValueError
        For bad arguments (one line naming the argument), including ``lr_features`` for an
        RKHS network (its features are fixed by definition).

    Examples
    --------
    >>> from mfteach.resnet import init_resnet, toy_data
    >>> X, Y = toy_data(10, generator=0)
    >>> net = init_resnet(2, 2, 64, 4, bandwidth=0.5, n_networks=2, generator=1)
    >>> h = train(net, X, Y, lr=5.0, steps=20, record_every=10)
    >>> h.step.tolist(), bool((h.loss[-1] < h.loss[0]).all())
    ([0, 10, 20], True)
    >>> shl = init_resnet(2, 2, 64, 4, bandwidth=0.5, n_networks=2, model="shl", generator=1)
    >>> hs = train(shl, X, Y, lr=5.0, steps=20, record_every=10)
    >>> bool((hs.grad_sq_features[0] == 0).all()), bool((hs.grad_sq_features[1:] > 0).all())
    (True, True)
    """
    fn = "mfteach.resnet.train"
    _check_net(net, fn, MODELS)
    B, L, q, M = net.n_networks, net.depth, net.q, net.n_features
    Xb = _batched(X, B, net.d, "X", fn)
    N = Xb.shape[1]
    if N < 1:
        fail("X", fn, "a tensor with at least one training point", X)
    check_tensor(Y, "Y", fn, ndim=(2, 3))
    if Y.shape[-2:] != Xb.shape[-2:] or (Y.ndim == 3 and Y.shape[0] != B):
        fail("Y", fn, f"a tensor of shape ({N}, {net.d}) or ({B}, {N}, {net.d}) matching X",
             Y)
    Yb = Y.expand(B, N, net.d)
    check_same_device_dtype(fn, net=net.U, X=Xb)
    check_same_device_dtype(fn, X=Xb, Y=Yb)
    lr = check_float(lr, "lr", fn, min=0.0, min_open=True)
    steps = check_int(steps, "steps", fn, min=0)
    record_every = check_int(record_every, "record_every", fn, min=1)
    divergence_factor = check_float(divergence_factor, "divergence_factor", fn, min=1.0,
                                    min_open=True)
    shl = net.model == "shl"
    if lr_features is not None and not shl:
        fail("lr_features", fn, "None for an RKHS network (its features are fixed; use "
             "init_resnet(..., model='shl') to train them)", lr_features)
    lr_f = 1.0 if lr_features is None else check_float(lr_features, "lr_features", fn,
                                                         min=0.0)
    if not shl:
        lr_f = 0.0
    check_bool(progress, "progress", fn)
    it = Xb.dtype.itemsize
    sizes = {"n_features": M, "depth": L, "n_networks": B, "X": N}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big],
                 nbytes=it * B * ((12.0 if shl else 6.0) * L * q * M
                                  + 4.0 * L * N * (M + q) + 2.0 * L * N * N))
    check_budget("steps", fn, steps, steps=steps * L)

    x0 = lift(Xb, q)  # (B, N, q)
    params = [p.detach().clone() for p in _params(net)]
    rates = [lr] + [lr * lr_f] * (len(params) - 1)
    with torch.no_grad():
        Phi0 = _phi(net.block_feats(0), x0)
        ev0 = torch.linalg.eigvalsh(Phi0 @ Phi0.transpose(-1, -2))  # (B, N)
    lam0, lam0_max = ev0[:, 0], ev0[:, -1]
    stable = 2 * L * N / float(lam0_max.max().clamp_min(torch.finfo(x0.dtype).tiny))

    rec: dict[str, list[Tensor]] = {k: [] for k in ("loss", "grad", "gradf", "gram")}
    rec_steps: list[int] = []
    loss0 = limit = None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"train ResNet ({net.model}, L={L}, M={M}, "
                                     f"{net.scheme})")
    try:
        for k in range(steps + 1):
            cur = _with_params(net, [p.requires_grad_(True) for p in params])
            with torch.enable_grad():
                path = _flow(cur, x0, keep_path=True)  # (B, L+1, N, q)
                # the projection B = [I_d, 0] by slicing: project() would refuse a blow-up
                # as a bad argument before the DivergenceError below
                r = path[:, -1, :, :net.d] - Yb  # (B, N, d)
                loss = 0.5 * r.square().sum(-1).mean(-1)  # (B,)
                grads = torch.autograd.grad(loss.sum(), params)
            params = [p.detach() for p in params]
            loss = loss.detach()
            if loss0 is None:
                loss0 = loss
                limit = divergence_factor * loss0.clamp_min(torch.finfo(loss.dtype).tiny)
            bad = ~torch.isfinite(loss) | (loss > limit)
            for g in grads:
                bad = bad | ~torch.isfinite(g).reshape(B, -1).all(-1)
            if bool(bad.any()):
                b = int(torch.nonzero(bad)[0, 0])
                raise DivergenceError(
                    f"Training diverged at step {k} for network {b} ({net.model}, L={L}, "
                    f"M={M}, {net.scheme}): loss {float(loss[b]):.4g} from "
                    f"{float(loss0[b]):.4g}. The step lr={lr:g} is too large; use "
                    f"lr < 2 L N / lambda_max(K_M) = {stable:.4g}.")
            if k % record_every == 0 or k == steps:
                rec_steps.append(k)
                rec["loss"].append(loss)
                g_u = grads[0].square().sum((1, 2, 3))
                if shl:
                    g_f = sum(g.square().reshape(B, -1).sum(-1) for g in grads[1:])
                    rec["grad"].append(g_u + g_f)
                    rec["gradf"].append(g_f)
                else:
                    rec["grad"].append(g_u)
                    rec["gradf"].append(torch.zeros_like(g_u))
                with torch.no_grad():
                    rec["gram"].append(_gram_min(_with_params(net, params), path.detach()))
            if k == steps:
                break
            params = [p - a * g for p, a, g in zip(params, rates, grads)]
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    gram = torch.stack(rec["gram"])
    return History(lr=lr, n_train=N,
                   step=torch.tensor(rec_steps, dtype=torch.int64),
                   loss=torch.stack(rec["loss"]), grad_sq=torch.stack(rec["grad"]),
                   gram_min=gram, gram_min_input=lam0, pl_floor0=2 * lam0 / (L * N),
                   pl_floor=2 * gram / (L * N), final=_with_params(net, params),
                   lr_features=lr_f, grad_sq_features=torch.stack(rec["gradf"]))


@dataclass(frozen=True)
class RateFit:
    r"""Least-squares fit of :math:`\log\mathcal{L}_k = a - \rho k` on a late window of
    steps, per network.

    Attributes
    ----------
    rate : Tensor, shape (B,)
        :math:`\rho` per step (positive for a decaying loss).
    r2 : Tensor, shape (B,)
        :math:`R^2` of each linear fit.
    r2_algebraic : float
        :math:`R^2` of :math:`\log k` against :math:`k` on the window: what any power law
        :math:`\mathcal{L} \propto k^{-p}` would reach.
    step_start, step_end : int
    """

    rate: Tensor
    r2: Tensor
    r2_algebraic: float
    step_start: int
    step_end: int

    @property
    def mean(self) -> float:
        return float(self.rate.mean())

    @property
    def std(self) -> float:
        """Spread (sample standard deviation) of the rate over the ensemble."""
        return float(self.rate.std()) if self.rate.numel() > 1 else 0.0


def _r2(x: Tensor, Y: Tensor) -> Tensor:
    """R^2 of the least-squares line of each column of Y (W, B) against x (W,)."""
    xc = (x - x.mean()).unsqueeze(-1)
    yc = Y - Y.mean(0)
    slope = (xc * yc).sum(0) / xc.square().sum()
    ss_res = (yc - slope * xc).square().sum(0)
    ss_tot = yc.square().sum(0)
    return torch.where(ss_tot > 0, 1 - ss_res / ss_tot.clamp_min(1e-300),
                       torch.zeros_like(ss_tot))


def fit_log_rate(history: History, *, start_fraction: float = 0.5,
                 floor: float = 1e-20) -> RateFit:
    r"""Fit the late log-loss :math:`\log\mathcal{L}_k \approx a - \rho k` for
    :math:`k \ge \texttt{start\_fraction}\times K`, per network.

    Parameters
    ----------
    history : History
    start_fraction : float
        The window starts at this fraction of the run.
    floor : float
        The window ends before the first recorded loss below ``floor`` times the initial loss
        of any network (rounding level in float64 is about ``1e-30``), so a run that has
        converged to rounding is fitted on its linear part only.

    Examples
    --------
    >>> from mfteach.resnet import init_resnet, toy_data
    >>> X, Y = toy_data(8, generator=0)
    >>> net = init_resnet(2, 2, 64, 4, bandwidth=0.5, generator=1)
    >>> fit = fit_log_rate(train(net, X, Y, lr=5.0, steps=40, record_every=5))
    >>> bool(fit.rate[0] > 0)
    True
    """
    fn = "mfteach.resnet.fit_log_rate"
    if not isinstance(history, History):
        fail("history", fn, "an mfteach.resnet.History (from train)", history, exc=TypeError)
    start_fraction = check_float(start_fraction, "start_fraction", fn, min=0.0, max=1.0,
                                 min_open=True, max_open=True)
    floor = check_float(floor, "floor", fn, min=0.0, max=1.0, max_open=True)
    k = history.step.to(torch.float64)
    loss = history.loss.detach().to("cpu", torch.float64)
    low = (loss < floor * loss[0]).any(-1)
    end = int(torch.nonzero(low)[0, 0]) if bool(low.any()) else k.numel()
    k = k[:end]
    keep = k >= max(start_fraction * float(k[-1]), 1.0) if end > 0 else k > 0
    if int(keep.sum()) < 3:
        fail("history", fn, "a History with at least 3 recorded steps in the fitted window "
             "(record more often)", history)
    kw = k[keep]
    Lw = loss[:end][keep]  # (W, B)
    if not bool((Lw > 0).all()):
        fail("history", fn, "a History whose losses in the window are positive", history)
    lL = Lw.log()
    kc = (kw - kw.mean()).unsqueeze(-1)
    slope = (kc * (lL - lL.mean(0))).sum(0) / kc.square().sum()
    lk = kw.log()
    kc1, lc = kw - kw.mean(), lk - lk.mean()
    r2_alg = float((kc1 @ lc) ** 2 / ((kc1 @ kc1) * (lc @ lc)))
    return RateFit(rate=-slope, r2=_r2(kw, lL), r2_algebraic=r2_alg,
                   step_start=int(kw[0]), step_end=int(kw[-1]))
