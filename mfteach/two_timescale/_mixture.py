r"""Convexity of the two-timescale objective along mixtures of particle measures.

For two particle measures :math:`\mu_1 = \frac1{N_1}\sum_i\delta_{w_i}` and
:math:`\mu_2 = \frac1{N_2}\sum_j\delta_{w'_j}`, the mixture :math:`\mu_s = (1 - s)\mu_1 +
s\mu_2` is the union of both particle sets with weights :math:`(1 - s)/N_1` and :math:`s/N_2`
(the weighted particles of :func:`mfteach.two_timescale.regularized_risk`). Takakura & Suzuki
(2024, Thm 3.1) show that :math:`G(\mu) = U(\mu) + \frac{\bar\lambda_w}{2}\mathbb{E}_\mu\|w\|^2`
is convex along such segments although the network output is not linear in :math:`\mu`:

* :math:`\mu \mapsto \hat\Sigma_\mu = \mathbb{E}_\mu[h(X; w)h(X; w)^\top]` is linear, so
  :math:`\hat\Sigma_{\mu_s} = (1 - s)\hat\Sigma_{\mu_1} + s\hat\Sigma_{\mu_2}`;
* :math:`K \mapsto Y^\top(K + cI)^{-1}Y` is operator convex on positive semidefinite matrices
  (:math:`x \mapsto 1/(x + c)` is operator convex on :math:`[0, \infty)`), so
  :math:`U(\mu_s) = \frac{\bar\lambda_a}{2}Y^\top(\hat\Sigma_{\mu_s} + n\bar\lambda_aI)^{-1}Y`
  is convex in :math:`s`;
* the weight decay :math:`\mathbb{E}_{\mu_s}\|w\|^2` is linear in :math:`s`.

The degrees of freedom :math:`d_{\bar\lambda_a}(\mu) = \mathrm{tr}[\hat\Sigma_\mu(\hat\Sigma_\mu
+ n\bar\lambda_a I)^{-1}]` are, by the same argument (:math:`x \mapsto x/(x + c)` is operator
*concave*), concave along mixtures: the label-noise objective :math:`G +
\frac{\tilde\sigma^2}{6n}d_{\bar\lambda_a}` is not covered by Thm 3.1's convexity.
"""

from __future__ import annotations

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
from ._model import _check_vec, _features, _ridge

__all__ = ["MixtureCheck", "convexity_along_mixture"]


@dataclass(frozen=True)
class MixtureCheck:
    r""":math:`G` along the segment :math:`\mu_s = (1 - s)\mu_1 + s\mu_2`, its chord and its
    second differences.

    Attributes
    ----------
    s : Tensor, shape (S,)
        The grid :math:`s_k = k/(S - 1)` (float64, CPU).
    G : Tensor, shape (S, B)
        :math:`G(\mu_{s_k})` per batch member.
    chord : Tensor, shape (S, B)
        :math:`(1 - s)G(\mu_1) + sG(\mu_2)`; convexity means ``G <= chord``.
    midpoint_gap : Tensor, shape (B,)
        :math:`G(\mu_{1/2}) - \frac12(G(\mu_1) + G(\mu_2))` (negative or zero when convex).
    second_difference : Tensor, shape (S - 2, B)
        :math:`G(\mu_{s_{k+1}}) - 2G(\mu_{s_k}) + G(\mu_{s_{k-1}})`.
    tol : Tensor, shape (B,)
        What float64 (or float32) rounding of three values of :math:`G` can put in a second
        difference: :math:`4\,\epsilon\,(m\kappa + N)\max_s|G|`, with :math:`m` the order of
        the factored Gram, :math:`\kappa = (\max_s\mathrm{tr}\hat\Sigma_{\mu_s} + \beta)/\beta`
        a bound on its condition number (:math:`\beta = n\bar\lambda_a`) and :math:`N = N_1 +
        N_2` terms in the weight decay.
    convex : bool
        Every second difference (and the midpoint gap) is at least ``-tol``.
    """

    s: Tensor
    G: Tensor
    chord: Tensor
    midpoint_gap: Tensor
    second_difference: Tensor
    tol: Tensor
    convex: bool


def _objective(X: Tensor, y: Tensor, W: Tensor, p: Tensor, lam: float, lambda_a: float,
               lambda_w: float, bias: bool) -> Tensor:
    """G of the weighted particle measures: X (B, n, d), y (B, n), W (B, N, d'), p (B, N)."""
    r = _ridge(_features(X, W, bias), y.unsqueeze(-1), lam * lambda_a, p)
    return r.U[:, 0] + 0.5 * lam * lambda_w * (p * W.square().sum(-1)).sum(-1)


def _particles(W: Tensor, name: str, fn: str) -> Tensor:
    check_tensor(W, name, fn, ndim=(2, 3))
    if W.shape[-2] < 1:
        fail(name, fn, "a non-empty particle set", W)
    return W if W.ndim == 3 else W.unsqueeze(0)


def convexity_along_mixture(X: Tensor, y: Tensor, W1: Tensor, W2: Tensor, *,
                            n_points: int = 11, lam: float = 0.004, lambda_a: float = 0.25,
                            lambda_w: float = 0.25, bias: bool = True) -> MixtureCheck:
    r"""Evaluate :math:`G((1 - s)\mu_1 + s\mu_2)` on a grid of :math:`s \in [0, 1]` and test
    its convexity (Takakura & Suzuki 2024, Thm 3.1).

    The mixture of the particle measures ``W1`` and ``W2`` is their union with weights
    :math:`(1 - s)/N_1` and :math:`s/N_2`. :math:`G` is convex along it because :math:`\mu
    \mapsto \hat\Sigma_\mu` is linear and :math:`K \mapsto Y^\top(K + cI)^{-1}Y` is operator
    convex on positive semidefinite matrices (module docstring); the check compares the
    second differences on the grid with the rounding of :math:`G` (:class:`MixtureCheck`).
    Used in chapter 5 to show that the objective is convex in :math:`\mu`, although the
    network is not linear in it.

    Parameters
    ----------
    X : Tensor, shape (n, d) or (B, n, d)
    y : Tensor, shape (n,) or (B, n)
    W1, W2 : Tensor, shapes (N1, d + bias) or (B, N1, d + bias), and likewise for N2
        The two particle sets (any sizes).
    n_points : int
        Grid points, at least 3 (odd, so that :math:`s = 1/2` is on the grid).
    lam, lambda_a, lambda_w : float
        As in :func:`mfteach.two_timescale.regularized_risk`.
    bias : bool

    Returns
    -------
    MixtureCheck

    Raises
    ------
    TypeError, ValueError
        For bad arguments (one line naming the argument).
    torch.linalg.LinAlgError
        When a regularised Gram is not numerically positive definite.

    Examples
    --------
    >>> from mfteach.two_timescale import make_data, init_particles
    >>> data = make_data(30, 3, generator=0)
    >>> chk = convexity_along_mixture(data.X, data.y, init_particles(3, 10, generator=1),
    ...                               0.3 * init_particles(3, 14, generator=2), lam=0.02)
    >>> chk.convex, bool((chk.G <= chk.chord + chk.tol).all())
    (True, True)
    """
    fn = "mfteach.two_timescale.convexity_along_mixture"
    check_bool(bias, "bias", fn)
    check_tensor(X, "X", fn, ndim=(2, 3))
    W1b, W2b = _particles(W1, "W1", fn), _particles(W2, "W2", fn)
    check_same_device_dtype(fn, X=X, W1=W1, W2=W2)
    dprime = W1b.shape[-1]
    if W2b.shape[-1] != dprime:
        fail("W2", fn, f"a tensor with {dprime} coordinates per particle, as 'W1'", W2)
    if X.shape[-1] + int(bias) != dprime:
        fail("X", fn, f"a tensor with {dprime - int(bias)} input coordinates, to match the "
             f"{dprime} coordinates of the particles{' (with a bias)' if bias else ''}", X)
    Xb = X if X.ndim == 3 else X.unsqueeze(0)
    B = Xb.shape[0]
    for name, Wk, W_ in (("W1", W1b, W1), ("W2", W2b, W2)):
        if Wk.shape[0] != B and 1 not in (Wk.shape[0], B):
            fail(name, fn, f"a batch of {B} particle sets (or one) to match the other "
                 f"inputs", W_)
        B = max(B, Wk.shape[0])
    n = Xb.shape[-2]
    if n < 1:
        fail("X", fn, "non-empty", X)
    n_points = check_int(n_points, "n_points", fn, min=3, max=10**4)
    if n_points % 2 == 0:
        fail("n_points", fn, "odd (so that s = 1/2 is on the grid)", n_points)
    lam = check_float(lam, "lam", fn, min=0.0, min_open=True)
    lambda_a = check_float(lambda_a, "lambda_a", fn, min=0.0, min_open=True)
    lambda_w = check_float(lambda_w, "lambda_w", fn, min=0.0, min_open=True)
    N1, N2 = W1b.shape[-2], W2b.shape[-2]
    N = N1 + N2
    m = min(n, N)
    check_budget("n_points", fn, n_points, nbytes=X.dtype.itemsize * float(B) * n_points * (
        3.0 * n * N + 3.0 * m * m + N * dprime))
    yb = _check_vec(y, "y", B, n, W1b, fn)
    Xb, yb = Xb.expand(B, *Xb.shape[1:]), yb.expand(B, n)
    W = torch.cat([W1b.expand(B, N1, dprime), W2b.expand(B, N2, dprime)], -2)  # (B, N, d')
    S = n_points
    s = torch.linspace(0.0, 1.0, S, dtype=torch.float64)
    sd = s.to(W.device, W.dtype)
    p = torch.cat([((1 - sd) / N1).unsqueeze(-1).expand(S, N1),
                   (sd / N2).unsqueeze(-1).expand(S, N2)], -1)  # (S, N)
    p = p.unsqueeze(1).expand(S, B, N).reshape(S * B, N)

    def rep(t: Tensor) -> Tensor:
        return t.unsqueeze(0).expand(S, *t.shape).reshape(S * B, *t.shape[1:])

    G = _objective(rep(Xb), rep(yb), rep(W), p, lam, lambda_a, lambda_w,
                   bias).reshape(S, B)
    chord = (1 - sd).unsqueeze(-1) * G[0] + sd.unsqueeze(-1) * G[-1]
    second = G[2:] - 2 * G[1:-1] + G[:-2]
    mid = G[S // 2] - 0.5 * (G[0] + G[-1])
    # rounding of G: Cholesky of an m x m Gram (backward error ~ m eps) amplified by its
    # condition number, bounded through the trace of Sigma (linear in s: max at an end).
    beta = n * lam * lambda_a
    H = _features(Xb, W, bias).square().sum(-2)  # (B, N): sum_j h(x_j; w_i)^2
    trace = torch.stack([H[:, :N1].mean(-1), H[:, N1:].mean(-1)]).amax(0)  # (B,)
    kappa = (trace + beta) / beta
    eps = torch.finfo(W.dtype).eps
    tol = 4 * eps * (m * kappa + N) * G.abs().amax(0)
    convex = bool((second >= -tol).all()) and bool((mid <= tol).all())
    return MixtureCheck(s=s, G=G, chord=chord, midpoint_gap=mid, second_difference=second,
                        tol=tol, convex=convex)
