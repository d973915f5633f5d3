r"""Batched one-pass SGD of the committee machine: many independent runs as one program.

One step of run :math:`b` (a fresh sample each step, raw learning rate :math:`\gamma`):

.. math::

    x \sim N(0, I_d/d),\quad \mathcal E = \frac1k\sum_r\sigma(w^*_r\cdot x) + \sqrt\Delta z
    - \frac1p\sum_j\sigma(w_j\cdot x),\quad
    w_i \leftarrow w_i + \frac{\gamma}{p}\,\mathcal E\,\sigma'(w_i\cdot x)\,x,

the SGD step on :math:`\frac12(f(x) - y)^2` with the second layer fixed at 1 (arXiv 2302.05882,
Sec. 2). Time is :math:`t = \nu\gamma/(pd)`.

**The block method.** Within a block of :math:`T` steps with inputs :math:`X = (x_1..x_T)`,
:math:`W_t = W_0 + \sum_{s<t}u_s x_s^\top` with :math:`u_s = \frac\gamma p\mathcal E_s
\sigma'(\lambda_s)`, hence

.. math::

    \lambda_t = W_0x_t + \sum_{s<t}(x_s\cdot x_t)\,u_s .

Three batched matmuls per block (:math:`W_0X^\top`, :math:`W^*X^\top`, the Gram matrix
:math:`XX^\top`) and one at its end (:math:`W \mathrel{+}= U^\top X`) replace the per-step
:math:`O(pd)` reads and writes of :math:`W`; the sequential part works on :math:`p`-vectors.
Both methods draw the same random numbers, so they agree to rounding (tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .._checks import (
    DEFAULT_MAX_STEPS,
    check_bool,
    check_budget,
    check_choice,
    check_float,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from ..device import as_generator
from ..training import DivergenceError
from ._rhs import _check_activation, _risk
from ._solve import Trajectory, time_grid

__all__ = ["simulate_sgd", "SIM_METHODS"]

#: ``"block"`` (fast, default) or ``"naive"`` (one rank-one update of W per step).
SIM_METHODS = ("block", "naive")

_INV_SQRT2 = 1 / math.sqrt(2)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _block_steps(W: Tensor, Ws: Tensor, X: Tensor, z: Tensor | None, activation: str,
                 gamma: float, delta: float) -> Tensor:
    """T steps by the Gram-matrix trick. W (B,p,d), Ws (B|1,k,d), X (B,T,d) -> new W."""
    B, p, _ = W.shape
    T = X.shape[1]
    L = X @ W.mT  # (B, T, p)
    Ls = X @ Ws.mT  # (B, T, k)
    G = X @ X.mT  # (B, T, T)
    lr = gamma / p
    U = torch.zeros(B, T, p, dtype=W.dtype, device=W.device)
    if activation != "square":
        # work with mu = lambda / sqrt 2: sigma = erf(mu), sigma' = sqrt(2/pi) exp(-mu^2)
        fstar = torch.erf(Ls * _INV_SQRT2).mean(-1)  # (B, T)
        L = L * _INV_SQRT2
        scale = lr * _SQRT_2_OVER_PI * _INV_SQRT2  # u/sqrt2 stored in U
    else:
        fstar = (Ls * Ls).mean(-1)
        scale = 2 * lr
    if z is not None:
        fstar = fstar + math.sqrt(delta) * z
    for t in range(T):
        mu = L[:, t]
        if t:
            # (B, t) x (B, t, p) -> (B, p); elementwise + sum: tiny BLAS calls would spawn
            # threads and stall on a busy CPU
            mu = mu + (G[:, t, :t, None] * U[:, :t]).sum(1)
        if activation != "square":
            err = fstar[:, t] - torch.erf(mu).mean(-1)
            torch.mul(torch.exp(-mu * mu), (scale * err).unsqueeze(-1), out=U[:, t])
        else:
            err = fstar[:, t] - (mu * mu).mean(-1)
            torch.mul(mu, (scale * err).unsqueeze(-1), out=U[:, t])
    if activation != "square":
        U = U * math.sqrt(2)
    return W + U.mT @ X


def _naive_steps(W: Tensor, Ws: Tensor, X: Tensor, z: Tensor | None, activation: str,
                 gamma: float, delta: float) -> Tensor:
    """T plain SGD steps, one rank-one update of W per step (the reference)."""
    lr = gamma / p if (p := W.shape[1]) else 0.0
    W = W.clone()
    sd = math.sqrt(delta)
    for t in range(X.shape[1]):
        x = X[:, t]  # (B, d)
        lam = torch.bmm(W, x.unsqueeze(-1)).squeeze(-1)  # (B, p)
        lam_s = torch.bmm(Ws.expand(W.shape[0], -1, -1), x.unsqueeze(-1)).squeeze(-1)
        if activation != "square":
            err = torch.erf(lam_s * _INV_SQRT2).mean(-1) - torch.erf(lam * _INV_SQRT2).mean(-1)
            dact = _SQRT_2_OVER_PI * torch.exp(-0.5 * lam * lam)
        else:
            err = (lam_s * lam_s).mean(-1) - (lam * lam).mean(-1)
            dact = 2 * lam
        if z is not None:
            err = err + sd * z[:, t]
        u = lr * err.unsqueeze(-1) * dact  # (B, p)
        W.baddbmm_(u.unsqueeze(-1), x.unsqueeze(-2))
    return W


def sgd_steps(t_req: Tensor, gamma: float, p: int, d: int, fn: str, time_name: str,
              time_value) -> Tensor:
    """Whole SGD steps of the requested times: ``floor(t p d / gamma + 1/2)`` (nearest, ties
    up). Refuses a first time that is not 0, a positive time that is less than half a step
    (it would be recorded at t = 0), and more steps than MFTEACH_MAX_STEPS."""
    if float(t_req[0]) > 0:
        fail(time_name, fn, "starting at 0 (SGD starts from W0)", time_value)
    x = t_req * (p * d / gamma)  # float64; inf if it overflows
    last = float(x[-1])
    # blame the time range, or gamma when the same range at gamma = 1 would be fine
    name, value = (("gamma", gamma)
                   if gamma < 1 and float(t_req[-1]) * p * d <= DEFAULT_MAX_STEPS
                   else (time_name, time_value))
    check_budget(name, fn, value, steps=last)
    steps = torch.floor(x + 0.5)
    pos = t_req > 0
    if bool((pos & (steps < 1)).any()):
        t_bad = float(t_req[pos & (steps < 1)][0])
        fail(time_name, fn, f"at least half an SGD step for every positive time (one step "
             f"advances t by gamma/(p d) = {gamma / (p * d):.3g})", time_value,
             hint=f"t = {t_bad:.3g} would be recorded at t = 0; ask for later times or "
                  f"reduce 'gamma'.")
    return steps.to(torch.int64)


def simulate_sgd(W0: Tensor, W_star: Tensor, *, activation: str, gamma: float,
                 delta: float = 0.0, t_max: float | None = None,
                 times: Sequence[float] | Tensor | None = None, n_save: int = 101,
                 generator: torch.Generator | int, method: str = "block",
                 block_size: int = 64, progress: bool = False) -> Trajectory:
    r"""Run one-pass SGD for many independent student/teacher pairs at once.

    Parameters
    ----------
    W0 : Tensor, shape (..., p, d)
        Initial student weights; every leading index is an independent run.
    W_star : Tensor, shape (..., k, d)
        Teacher weights, broadcast against the runs (one shared teacher: shape (k, d)).
    activation : {"erf_sqrt2", "square"}, keyword-only
        :math:`\operatorname{erf}(u/\sqrt2)` or :math:`u^2`, for student and teacher.
    gamma : float, keyword-only
        Raw learning rate :math:`\gamma > 0`; one step advances time by :math:`\gamma/(pd)`.
    delta : float, keyword-only, default 0
        Label-noise variance :math:`\Delta`.
    t_max : float, keyword-only
        Final time (the nearest whole number of steps, ``floor(t_max p d / gamma + 1/2)``);
        records ``n_save`` equispaced times.
    times : sequence of float, keyword-only, optional
        Recording times instead, starting at 0 (each rounded to the nearest whole step;
        ``Trajectory.t`` has the exact times of the records). Every positive time must be at
        least half a step, :math:`\gamma/(2pd)`.
    n_save : int, keyword-only, default 101
    generator : torch.Generator or int, keyword-only
        On the device of ``W0``: draws the inputs and the label noise.
    method : {"block", "naive"}, keyword-only, default "block"
        Same random numbers, same result up to rounding; "block" is faster (module docstring).
    block_size : int, keyword-only, default 64
        Steps per block (memory :math:`O(B\,T\,(d + T))`).
    progress : bool, keyword-only, default False

    Returns
    -------
    Trajectory
        ``Q (..., T, p, p)``, ``M (..., T, p, k)``, ``P``, and the *population* risk of every
        run at the recorded times (computed in closed form from its overlaps).

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named in the message), among them: a positive save time shorter than
        half a step (it would be recorded at t = 0, e.g. a huge ``gamma``); more steps than
        ``MFTEACH_MAX_STEPS`` (1e9 by default: a huge ``t_max`` or a tiny ``gamma``); more
        memory than ``MFTEACH_MAX_BYTES``.
    mfteach.training.DivergenceError
        If a run's weights become non-finite or some :math:`Q_{ii}` exceeds :math:`10^8`
        (too large a :math:`\gamma`; the square activation is the sensitive one).

    Notes
    -----
    Computes on the device and in the dtype of ``W0`` (float32 on a GPU is fine for these
    statistics). Used in chapter 04 to check the ODEs of arXiv 2302.05882 (Thm 1: the overlaps
    stay within :math:`e^{Ct}\sqrt{\gamma/(pd)}` of the ODE).

    Examples
    --------
    >>> from mfteach.sgd_odes import init_weights
    >>> W, Ws = init_weights(2, 1, 20, n_runs=3, generator=0)
    >>> tr = simulate_sgd(W, Ws, activation="erf_sqrt2", gamma=0.5, t_max=1.0, n_save=3,
    ...                   generator=1)
    >>> tr.risk.shape, tr.t.tolist()
    (torch.Size([3, 3]), [0.0, 0.5, 1.0])
    """
    fn = "mfteach.sgd_odes.simulate_sgd"
    activation = _check_activation(activation, fn)
    gamma = check_float(gamma, "gamma", fn, min=0.0, min_open=True)
    delta = check_float(delta, "delta", fn, min=0.0)
    method = check_choice(method, "method", fn, SIM_METHODS)
    block_size = check_int(block_size, "block_size", fn, min=1)
    check_bool(progress, "progress", fn)
    check_tensor(W0, "W0", fn)
    check_tensor(W_star, "W_star", fn)
    check_same_device_dtype(fn, W0=W0, W_star=W_star)
    if W0.ndim < 2 or W_star.ndim < 2 or W_star.shape[-1] != W0.shape[-1]:
        fail("W_star", fn, f"a tensor of shape (..., k, d) with d = {W0.shape[-1]} (as W0)",
             W_star)
    p, d = W0.shape[-2:]
    k = W_star.shape[-2]
    try:
        lead = torch.broadcast_shapes(W0.shape[:-2], W_star.shape[:-2])
    except RuntimeError:
        fail("W_star", fn, "a tensor whose leading axes broadcast with those of W0", W_star)
    n_runs = int(math.prod(lead)) if lead else 1
    W = W0.expand(*lead, p, d).reshape(n_runs, p, d).clone()
    Ws = W_star.expand(*lead, k, d).reshape(n_runs, k, d)
    g = as_generator(generator, W0.device, fn)
    item = W0.element_size()
    t_req = time_grid(t_max, times, n_save, fn,
                      record_bytes=2 * n_runs * (p + k) ** 2 * item)
    time_name = "t_max" if times is None else "times"
    steps = sgd_steps(t_req, gamma, p, d, fn, time_name, t_max if times is None else times)
    total = int(steps[-1])
    T_max = max(1, min(block_size, total))
    # W, W0's copy, one block of inputs X (T d), its Gram matrix (T^2) and projections
    check_budget("block_size" if T_max > 4096 else "W0", fn,
                 block_size if T_max > 4096 else W0,
                 nbytes=item * n_runs * (2 * p * d + T_max * (d + T_max + 2 * (p + k))))
    step_fn = _block_steps if method == "block" else _naive_steps
    Xscale = 1 / math.sqrt(d)

    records = []

    def record():
        Q = W @ W.mT / d
        M = W @ Ws.mT / d
        P = Ws @ Ws.mT / d
        records.append((Q, M, P))
        return Q, M, P

    def diverged(step, how):
        why = ("the square activation's gradient grows with the weights, so one-pass SGD is "
               "unstable when gamma/p is too large" if activation == "square" else
               "too large a learning rate makes the weights grow without bound")
        raise DivergenceError(
            f"SGD diverged ({how}) at t = {step * gamma / (p * d):.4g} (step {step}) with "
            f"gamma = {gamma:.3g} (gamma/p = {gamma / p:.3g}, activation {activation!r}): "
            f"{why}. Reduce gamma.")

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, desc="SGD", leave=False, unit="step")
    done = 0
    try:
        for target in steps.tolist():
            while done < target:
                T = min(block_size, target - done)
                X = torch.randn(n_runs, T, d, generator=g, device=W.device,
                                dtype=W.dtype) * Xscale
                z = None
                if delta > 0:
                    z = torch.randn(n_runs, T, generator=g, device=W.device, dtype=W.dtype)
                W = step_fn(W, Ws, X, z, activation, gamma, delta)
                done += T
                if not bool(torch.isfinite(W).all()):
                    diverged(done, "the weights became NaN or inf")
                if bar is not None:
                    bar.update(T)
            Q, M, P = record()
            qmax = float(torch.diagonal(Q, dim1=-2, dim2=-1).max())
            if qmax > 1e8:
                diverged(target, f"exploding weights, max Q_ii = {qmax:.3g}")
    finally:
        if bar is not None:
            bar.close()
    Q = torch.stack([r[0] for r in records], dim=1).reshape(*lead, -1, p, p)
    M = torch.stack([r[1] for r in records], dim=1).reshape(*lead, -1, p, k)
    P = torch.stack([r[2] for r in records], dim=1).reshape(*lead, -1, k, k)
    risk = _risk(torch.cat([torch.cat([Q, M], -1), torch.cat([M.mT, P], -1)], -2), p, k,
                 activation) + delta / 2
    t = steps.to(torch.float64) * (gamma / (p * d))
    return Trajectory(t=t.to(W.device), Q=Q, M=M, P=P, risk=risk)
