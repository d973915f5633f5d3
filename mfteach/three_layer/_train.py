r"""Gradient-flow training of the three-layer ensemble, with the quantities the theorems track.

The flow :math:`\dot c = -\eta_c\nabla_c L`, :math:`\dot z = -\eta_z\nabla_z L` (learning
rates of the scaling, :mod:`mfteach.three_layer`) is integrated by explicit Euler with step
``dt`` in the theory's time, :math:`t = k\,\texttt{dt}`. At every step the tangent kernel
:math:`K_t` on the training set (:func:`mfteach.three_layer.tangent_kernel`) and its extreme
eigenvalues are computed, so that :math:`\underline\lambda(t) = \inf_{s \le t}
\lambda_{\min}(K_s)` is a running infimum over *every* step, not only the recorded ones.

Loss bound and the Euler step. In continuous time :math:`\dot L = -\frac1{N^2} r^\top K_t r
\le -\frac{2\lambda_{\min}(K_t)}{N} L`, hence

.. math::

    L(t) \le L(0)\exp\big(-2\underline\lambda(t)\,t/N\big).

For the Euler step, linearise the outputs: :math:`r_{k+1} = (I - \frac{dt}{N}K_k)r_k +
O(dt^2)`. When :math:`dt\,\lambda_{\max}(K_k)/N \le 1` the matrix :math:`I - \frac{dt}{N}K_k`
has norm :math:`1 - dt\,\lambda_{\min}(K_k)/N \le e^{-dt\lambda_{\min}(K_k)/N}`, so the
discrete loss obeys the same bound :eq:`tl-loss-bound` up to the second-order remainder (the
curvature of :math:`f` in parameter space). :attr:`History.euler_number` records
:math:`\max_k dt\,\lambda_{\max}(K_k)/N`; keep it below 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import (
    check_bool,
    check_budget,
    check_float,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from ..training import DivergenceError
from ._kernels import _parts
from ._model import ThreeLayer, _batched_inputs, _check_net, _neurons, _output, features

__all__ = ["History", "train", "LIPSCHITZ"]

LIPSCHITZ = {"tanh": 1.0, "relu": 1.0, "linear": 1.0, "erf": 2 / math.sqrt(math.pi),
             "erf_sqrt2": math.sqrt(2 / math.pi)}
r"""Lipschitz constants :math:`\sup|\sigma_2'|` of the neuron activations with one."""


@dataclass(frozen=True)
class History:
    r"""What :func:`train` records, at steps ``step`` (times :attr:`t`).

    Attributes
    ----------
    scaling : str
    m1, m2, n_train : int
    dt : float
        Euler step in the theory's time.
    step : Tensor, shape (T,), int64
    loss : Tensor, shape (T, B)
        :math:`L = \frac1{2N}\sum_n (f(x_n) - y_n)^2`.
    test_loss : Tensor, shape (T, B) or None
        The same on the held-out points.
    lambda_min, lambda_max : Tensor, shape (T, B)
        Extreme eigenvalues of :math:`K_t` on the training set.
    lambda_inf : Tensor, shape (T, B)
        :math:`\underline\lambda(t)`, the infimum of :math:`\lambda_{\min}(K_s)` over every
        step :math:`s \le t`.
    lambda_max_sup : Tensor, shape (B,)
        The supremum of :math:`\lambda_{\max}(K_s)` over every step.
    schur : Tensor, shape (T, B)
        Schur bound :math:`\lambda_{\min}(\hat k_1)\min_n A_t(x_n, x_n)`.
    movement : Tensor, shape (T, B)
        :math:`\big(\frac1{m_2 P}\sum_{i,p}(h_i^t(x_p) - h_i^0(x_p))^2\big)^{1/2}` over the
        probe points (the test inputs, or the training inputs without them).
    z_norm : Tensor, shape (T, B)
        [REC] RMS over neurons of :math:`\|z_i(t) - z_i(0)\|_{L^2(\pi)}`, with
        :math:`\|u\|^2_{L^2(\pi)} = \frac1{m_1}\sum_j (m_1^{1-\alpha}u_j)^2` (the neuron's
        displacement as a function of :math:`\theta`; it bounds the RKHS norm of
        :math:`h_i(t) - h_i(0)` in the RKHS of :math:`\hat k_1`).
    rademacher : Tensor, shape (T, B) or None
        [REC] Template :math:`2\,\mathrm{Lip}(\sigma_2)\,\overline{|c|}\,\max_i\|z_i(t) -
        z_i(0)\|_{L^2(\pi)}\sqrt{\max_n \hat k_1(x_n, x_n)}/\sqrt N` (contraction plus the
        Rademacher complexity of an RKHS ball). A reconstruction of the *kind* of norm in
        the paper's result 3, not its theorem; ``None`` for a non-Lipschitz ``sigma2``.
    slice_s : Tensor, shape (S,) or None
        Coordinates of the 1-D slice of input space.
    slice_h0, slice_hT : Tensor, shape (B, n_show, S) or None
        The first ``n_show`` neurons on the slice at :math:`t = 0` and at the end.
    slice_f0, slice_fT : Tensor, shape (B, S) or None
        The network output on the slice at the start and the end.
    final : ThreeLayer
        The trained networks.
    """

    scaling: str
    m1: int
    m2: int
    n_train: int
    dt: float
    step: Tensor
    loss: Tensor
    test_loss: Tensor | None
    lambda_min: Tensor
    lambda_max: Tensor
    lambda_inf: Tensor
    lambda_max_sup: Tensor
    schur: Tensor
    movement: Tensor
    z_norm: Tensor
    rademacher: Tensor | None
    slice_s: Tensor | None
    slice_h0: Tensor | None
    slice_hT: Tensor | None
    slice_f0: Tensor | None
    slice_fT: Tensor | None
    final: ThreeLayer

    @property
    def t(self) -> Tensor:
        """Recorded times :math:`t = \\text{step}\\times dt` (float64), shape (T,)."""
        return self.step.to(torch.float64) * self.dt

    @property
    def loss_bound(self) -> Tensor:
        r""":math:`L(0)\exp(-2\underline\lambda(t)t/N)`, eq. :eq:`tl-loss-bound`, shape (T, B)."""
        t = self.t.to(self.loss.device, self.loss.dtype).unsqueeze(-1)
        return self.loss[0] * torch.exp(-2 * self.lambda_inf * t / self.n_train)

    @property
    def euler_number(self) -> Tensor:
        r""":math:`dt\,\sup_k\lambda_{\max}(K_k)/N`, shape (B,); the bound needs it
        :math:`\le 1`."""
        return self.dt * self.lambda_max_sup / self.n_train


def _check_targets(y, B: int, n: int, name: str, fn: str) -> Tensor:
    check_tensor(y, name, fn, ndim=(1, 2))
    if tuple(y.shape) not in {(n,), (B, n)}:
        fail(name, fn, f"a tensor of shape ({n},) or ({B}, {n}) matching the inputs", y)
    return y.expand(B, n)


def train(net: ThreeLayer, X: Tensor, y: Tensor, *, dt: float = 0.2, steps: int = 400,
          X_test: Tensor | None = None, y_test: Tensor | None = None,
          X_slice: Tensor | None = None, slice_s: Tensor | None = None, n_show: int = 4,
          record_every: int = 10, divergence_factor: float = 1e3,
          progress: bool = False) -> History:
    r"""Train the ensemble by explicit Euler on the gradient flow and record the theory's
    quantities.

    Parameters
    ----------
    net : ThreeLayer
        The initial networks (not modified: training works on copies).
    X : Tensor, shape (N, d) or (B, N, d)
        Training inputs, shared or one set per network.
    y : Tensor, shape (N,) or (B, N)
    dt : float
        Euler step in the theory's time (raw steps ``dt * lr_c`` and ``dt * lr_z``).
    steps : int
        Number of Euler steps; the training time is ``steps * dt``.

    Other Parameters
    ----------------
    X_test, y_test : Tensor, shape (P, d) or (B, P, d) and (P,) or (B, P), optional
        Held-out points for the test loss; also the probe set of the neuron movement.
    X_slice : Tensor, shape (S, d), optional
        A 1-D slice of input space (e.g. :func:`mfteach.three_layer.great_circle`), with its
        coordinates ``slice_s`` (S,), for snapshots of ``n_show`` neurons and of the output.
    record_every : int
        Record every ``record_every`` steps (and the last). Eigenvalues are computed at every
        step regardless, for ``History.lambda_inf``.
    divergence_factor : float
        Stop with :class:`mfteach.training.DivergenceError` when a loss is NaN/inf or exceeds
        ``divergence_factor`` times its initial value.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    History

    Raises
    ------
    DivergenceError
        When the loss blows up; the message suggests ``dt <= N / lambda_max(K_0)``.
    TypeError, ValueError
        For bad arguments (one line naming the argument).

    Examples
    --------
    >>> from mfteach.three_layer import init_three_layer, sphere_data
    >>> X, y = sphere_data(6, 5, generator=0)
    >>> net = init_three_layer(5, 64, 32, n_networks=2, generator=1)
    >>> h = train(net, X, y, dt=0.2, steps=50, record_every=25)
    >>> h.step.tolist(), bool((h.loss[-1] < h.loss[0]).all())
    ([0, 25, 50], True)
    """
    fn = "mfteach.three_layer.train"
    _check_net(net, fn)
    B, m1, m2 = net.n_networks, net.m1, net.m2
    Xb = _batched_inputs(net, X, fn)
    N = Xb.shape[1]
    if N < 1:
        fail("X", fn, "a tensor with at least one training point", X)
    yb = _check_targets(y, B, N, "y", fn)
    check_same_device_dtype(fn, X=Xb, y=yb)
    dt = check_float(dt, "dt", fn, min=0.0, min_open=True)
    steps = check_int(steps, "steps", fn, min=0)
    record_every = check_int(record_every, "record_every", fn, min=1)
    n_show = check_int(n_show, "n_show", fn, min=1, max=m2)
    divergence_factor = check_float(divergence_factor, "divergence_factor", fn, min=1.0,
                                    min_open=True)
    check_bool(progress, "progress", fn)
    if (X_test is None) != (y_test is None):
        fail("y_test", fn, "given together with X_test (both or neither)", y_test,
             exc=TypeError)
    Xt = yt = None
    if X_test is not None:
        Xt = _batched_inputs(net, X_test, fn, "X_test")
        yt = _check_targets(y_test, B, Xt.shape[1], "y_test", fn)
        check_same_device_dtype(fn, X=Xb, y_test=yt)
    if (X_slice is None) != (slice_s is None):
        fail("slice_s", fn, "given together with X_slice (both or neither)", slice_s,
             exc=TypeError)
    if X_slice is not None:
        check_tensor(X_slice, "X_slice", fn, shape=(None, net.d))
        check_tensor(slice_s, "slice_s", fn, shape=(X_slice.shape[0],))
        check_same_device_dtype(fn, X=Xb, X_slice=X_slice, slice_s=slice_s)
    P = N if Xt is None else Xt.shape[1]
    it = Xb.dtype.itemsize
    sizes = {"m1": m1, "m2": m2, "n_networks": B, "X": N}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big], nbytes=it * B * (
        4.0 * m1 * m2 + (N + P) * (m1 + 4 * m2) + 6.0 * N * N))
    check_budget("steps", fn, steps, steps=steps)

    alpha, beta = net.scaling.alpha, net.scaling.beta
    # raw steps on the gradients: dt * eta * dL/dparam, with the width factors combined
    step_c = dt * m2 ** (beta - 1) / N            # dt eta_c m2^-beta / N
    step_z = dt * m2 ** (beta - 1) * m1 ** (alpha - 1) / N  # dt eta_z m2^-beta m1^-alpha / N
    z, c = net.z.clone(), net.c.clone()
    cur = net.replace(z=z, c=c)
    Phi = features(Xb, net.theta, net.sigma1)  # (B, N, m1)
    k1 = Phi @ Phi.transpose(-1, -2) / m1  # (B, N, N)
    lam_k1 = torch.linalg.eigvalsh(k1)[..., 0]
    k1_diag_max = torch.diagonal(k1, dim1=-2, dim2=-1).amax(-1)
    Phi_p = Phi if Xt is None else features(Xt, net.theta, net.sigma1)  # (B, P, m1)
    Hp0 = _neurons(cur, Phi_p)
    z0 = net.z
    lip = LIPSCHITZ.get(net.sigma2.name)

    snap0 = None
    if X_slice is not None:
        Phi_s = features(X_slice.expand(B, *X_slice.shape), net.theta, net.sigma1)

        def snap(state: ThreeLayer) -> tuple[Tensor, Tensor]:
            Hs = _neurons(state, Phi_s)  # (B, S, m2)
            return Hs[..., :n_show].transpose(-1, -2).clone(), _output(state, Hs)

        snap0 = snap(cur)

    rec: dict[str, list[Tensor]] = {k: [] for k in (
        "loss", "test", "lmin", "lmax", "linf", "schur", "move", "znorm", "rad")}
    rec_steps: list[int] = []
    lam_inf = torch.full((B,), math.inf, dtype=Xb.dtype, device=Xb.device)
    lam_sup = torch.zeros_like(lam_inf)
    loss0 = lam_max0 = None

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"train ({net.scaling.name}, m1={m1}, m2={m2})")
    try:
        for k in range(steps + 1):
            H = _neurons(cur, Phi)  # (B, N, m2)
            S = net.sigma2(H)
            f = (S @ c.unsqueeze(-1)).squeeze(-1) * m2 ** (-beta)
            r = f - yb  # (B, N)
            loss = 0.5 * r.square().mean(-1)
            if loss0 is None:
                loss0 = loss
                limit = divergence_factor * loss0.clamp_min(torch.finfo(loss.dtype).tiny)
            # The loss is checked before the eigensolver, which fails on non-finite kernels.
            bad = ~torch.isfinite(loss) | (loss > limit)
            parts = ev = None
            if not bool(bad.any()):
                parts = _parts(cur, Phi, H, k1)
                if bool(torch.isfinite(parts.total).all()):
                    try:
                        ev = torch.linalg.eigvalsh(parts.total)
                    except torch.linalg.LinAlgError:
                        ev = None
                if ev is None:
                    bad = torch.ones_like(bad)
            if bool(bad.any()):
                b = int(torch.nonzero(bad)[0, 0])
                hint = ("" if lam_max0 is None else
                        f"; use dt <= N / lambda_max(K_0) = {N / float(lam_max0.max()):.4g}")
                raise DivergenceError(
                    f"Training diverged at step {k} (t = {k * dt:.4g}) for network {b} under "
                    f"scaling {net.scaling.name!r} (m1={m1}, m2={m2}): loss "
                    f"{float(loss[b]):.4g} from {float(loss0[b]):.4g}. The Euler step "
                    f"dt={dt:g} is too large{hint}.")
            if lam_max0 is None:
                lam_max0 = ev[..., -1]
            lam_inf = torch.minimum(lam_inf, ev[..., 0])
            lam_sup = torch.maximum(lam_sup, ev[..., -1])
            if k % record_every == 0 or k == steps:
                rec_steps.append(k)
                rec["loss"].append(loss)
                rec["lmin"].append(ev[..., 0])
                rec["lmax"].append(ev[..., -1])
                rec["linf"].append(lam_inf.clone())
                rec["schur"].append(
                    lam_k1 * torch.diagonal(parts.A, dim1=-2, dim2=-1).amin(-1))
                Hp = H if Xt is None else _neurons(cur, Phi_p)
                rec["move"].append((Hp - Hp0).square().mean((-1, -2)).sqrt())
                if Xt is not None:
                    ft = _output(cur, Hp)
                    rec["test"].append(0.5 * (ft - yt).square().mean(-1))
                dz2 = (z - z0).square().sum(-1) * m1 ** (1 - 2 * alpha)  # (B, m2)
                rec["znorm"].append(dz2.mean(-1).sqrt())
                if lip is not None:
                    rec["rad"].append(2 * lip * c.abs().mean(-1) * dz2.amax(-1).sqrt()
                                      * (k1_diag_max / N).sqrt())
            if k == steps:
                break
            gc = (S.transpose(-1, -2) @ r.unsqueeze(-1)).squeeze(-1)  # (B, m2)
            # c_i sigma2'(h_i(x_n)) r_n, (B, N, m2); grad_z = cDr^T Phi, applied in place
            cDr = net.sigma2.deriv(H) * r.unsqueeze(-1) * c.unsqueeze(-2)
            z.baddbmm_(cDr.transpose(-1, -2), Phi, alpha=-step_z)  # z -= step_z cDr^T Phi
            c = c - step_c * gc
            cur = net.replace(z=z, c=c)
            if bar is not None:
                bar.update(1)
                if k % record_every == 0:
                    bar.set_postfix(loss=f"{float(loss.mean()):.3g}")
    finally:
        if bar is not None:
            bar.close()

    h0 = hT = f0 = fT = None
    if snap0 is not None:
        (h0, f0), (hT, fT) = snap0, snap(cur)

    def stack(key: str) -> Tensor | None:
        return torch.stack(rec[key]) if rec[key] else None

    return History(
        scaling=net.scaling.name, m1=m1, m2=m2, n_train=N, dt=dt,
        step=torch.tensor(rec_steps, dtype=torch.long, device=Xb.device),
        loss=stack("loss"), test_loss=stack("test"), lambda_min=stack("lmin"),
        lambda_max=stack("lmax"), lambda_inf=stack("linf"), lambda_max_sup=lam_sup,
        schur=stack("schur"), movement=stack("move"), z_norm=stack("znorm"),
        rademacher=stack("rad"), slice_s=slice_s, slice_h0=h0, slice_hT=hT, slice_f0=f0,
        slice_fT=fT, final=cur)
