"""The high-d ODE near a point, in packed coordinates: what the noise floor
(:mod:`._floor`) and the plateau (:mod:`._plateau`) both linearise and solve.

The state is :math:`x = (Q_{i\\le j}, M)` with :math:`P` fixed (``p = k = K``); the drift is the
full high-dimensional right-hand side (variance term included). Newton's method takes
minimum-norm steps, so exact symmetries (zero modes of the Jacobian, e.g. the square
activation's rotations of the students) do not stall it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._overlaps import omega_raw
from ._rhs import _rhs, _risk

EPS64 = torch.finfo(torch.float64).eps


def pack(Q: Tensor, M: Tensor) -> Tensor:
    """``(Q_{i<=j}, M)`` as one vector."""
    iu = torch.triu_indices(Q.shape[-1], Q.shape[-1])
    return torch.cat([Q[iu[0], iu[1]], M.reshape(-1)])


def unpack(x: Tensor, K: int) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`pack` for ``p = k = K``."""
    iu = torch.triu_indices(K, K)
    n = iu.shape[1]
    U = torch.zeros(K, K, dtype=x.dtype).index_put((iu[0], iu[1]), x[:n])
    return U + U.mT - torch.diag(torch.diagonal(U)), x[n:].reshape(K, K)


def drift_fn(K: int, P: Tensor, activation: str, gamma: float, delta: float):
    """The packed high-d drift ``x -> (dQ, dM)`` (unvalidated: autograd goes through it)."""
    def drift(x):
        Q, M = unpack(x, K)
        dQ, dM = _rhs(omega_raw(Q, M, P), K, K, activation, gamma, delta, "high_d")
        return pack(dQ, dM)
    return drift


def excess(x: Tensor, K: int, P: Tensor, activation: str) -> float:
    """Noiseless excess risk :math:`R - \\Delta/2` at the packed point ``x``."""
    Q, M = unpack(x, K)
    return float(_risk(omega_raw(Q, M, P), K, K, activation))


def newton(drift, x: Tensor, *, max_iter: int = 40) -> Tensor | None:
    """A stationary point of ``drift`` near ``x``, or ``None`` if Newton does not converge.

    The drift is a difference of O(1) terms, so its residual stalls at rounding, and an
    ill-conditioned Jacobian (the saddle's slow directions) turns that rounding into steps of
    order 1e-13 that do not shrink further. Stop when the step is at rounding of ``x``, or when
    a small step (below 1e-6) no longer halves: convergence is quadratic until rounding takes
    over, so a step that stops shrinking is rounding, whatever its size on this CPU.
    """
    prev = math.inf
    for _ in range(max_iter):
        J = torch.func.jacrev(drift)(x)
        step = torch.linalg.lstsq(J, -drift(x).unsqueeze(-1), rcond=None,
                                  driver="gelsd").solution.squeeze(-1)
        x = x + step
        if not bool(torch.isfinite(x).all()) or float(x.abs().max()) > 1e3:
            return None
        size = float(step.abs().max())
        if size <= 1e3 * EPS64 * max(1.0, float(x.abs().max())) or prev / 2 < size < 1e-6:
            return x
        prev = size
    return None
