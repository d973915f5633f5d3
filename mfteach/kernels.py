r"""Infinite-width kernels of deep fully connected networks, and their finite-width twins.

A depth-:math:`L` fully connected network in the NTK parametrization,

.. math::

    h^1 = \sqrt{\sigma_w^2/d}\, W^1 x + \sigma_b b^1, \qquad
    h^{l+1} = \sqrt{\sigma_w^2/N_l}\, W^{l+1}\phi(h^l) + \sigma_b b^{l+1}, \qquad
    f(x) = h^{L+1},

with all :math:`W, b` entries i.i.d. :math:`N(0, 1)`, ``weight_var`` :math:`=\sigma_w^2`,
``bias_var`` :math:`=\sigma_b^2` and widths :math:`N_1 = \dots = N_L = N` (``width``), is a
Gaussian process at initialisation as :math:`N \to \infty` (the NNGP kernel :math:`K`) and
trains by kernel gradient descent with the neural tangent kernel :math:`\Theta`:

.. math::

    K^1(x, x') &= \sigma_w^2\, x\cdot x'/d + \sigma_b^2, \qquad
    K^{l+1} = \sigma_w^2\, \mathbb{E}[\phi(u)\phi(v)] + \sigma_b^2, \\
    \Theta^1 &= K^1, \qquad
    \Theta^{l+1} = K^{l+1} + \sigma_w^2\, \mathbb{E}[\phi'(u)\phi'(v)]\, \Theta^l,

with :math:`(u, v) \sim N\big(0, \begin{psmallmatrix} K^l(x,x) & K^l(x,x') \\ K^l(x,x') &
K^l(x',x') \end{psmallmatrix}\big)`; the network's kernels are :math:`K^{L+1}` and
:math:`\Theta^{L+1}`. This is the convention of neural-tangents' ``stax.Dense`` (NTK
parametrization) followed by ``stax.Relu`` / ``stax.Erf``.

* :func:`nngp`, :func:`ntk`, :func:`nngp_and_ntk`: the recursion, fused and blocked (closed
  forms for ReLU and erf, :func:`mfteach.activations.dual` otherwise).
* :func:`empirical_ntk`: the NTK of any torch model made functional (``torch.func``).
* :func:`sample_network_kernels`, :func:`monte_carlo_kernels`: the same kernels measured on
  random finite-width networks of the architecture above, batched over networks, with
  standard errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor

from ._checks import (
    check_budget,
    check_float,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from .activations import Activation, dual, dual_prime, resolve_activation
from .activations import get_activation as _get_activation
from .device import as_generator
from .gaussian import MAX_DEGREE
from .stats import MCEstimate

__all__ = [
    "nngp",
    "ntk",
    "nngp_and_ntk",
    "empirical_ntk",
    "sample_network_kernels",
    "monte_carlo_kernels",
]

_PI = math.pi
# Kernel entries per block of the fused recursion on the CPU: below ATen's parallel grain
# (32768), so each op runs single-threaded inside its worker; 256 KiB per float64 buffer (six
# for ReLU with the NTK), so the dozen elementwise passes per layer run from L2.
_BLOCK = 32767
# On a GPU, bandwidth is plentiful and each op is a kernel launch: large blocks.
_BLOCK_CUDA = 1 << 24
# Elements (weights plus activations) per batch of random networks in the Monte-Carlo routines.
_MC_BUDGET = 1 << 24


# --------------------------------------------------------------------------------------------
# Argument checks shared by the public functions
# --------------------------------------------------------------------------------------------

_check_activation = resolve_activation


def _check_inputs(x1, x2, fn: str) -> tuple[Tensor, Tensor | None]:
    check_tensor(x1, "x1", fn, ndim=2)
    if x1.shape[1] == 0:
        fail("x1", fn, "a tensor of shape (n, d) with d >= 1", x1)
    if x2 is not None:
        check_tensor(x2, "x2", fn, ndim=2)
        check_same_device_dtype(fn, x1=x1, x2=x2)
        if x2.shape[1] != x1.shape[1]:
            fail("x2", fn, f"a tensor of shape (n2, {x1.shape[1]}) (the input dimension of "
                 "'x1')", x2)
    return x1, x2


def _check_architecture(fn: str, activation, depth, weight_var, bias_var):
    act = _check_activation(activation, fn)
    depth = check_int(depth, "depth", fn, min=0)
    weight_var = check_float(weight_var, "weight_var", fn, min=0.0, min_open=True)
    bias_var = check_float(bias_var, "bias_var", fn, min=0.0)
    return act, depth, weight_var, bias_var


# --------------------------------------------------------------------------------------------
# The fused recursion
# --------------------------------------------------------------------------------------------

def _fused_name(act: Activation) -> str | None:
    """'relu' or 'erf' when ``act`` is the registered activation with a fused closed form."""
    if act.name in ("relu", "erf") and _get_activation(act.name) is act:
        return act.name
    return None


class _Overflow(ArithmeticError):
    """The variance recursion left the dtype's range (reported by the public functions)."""


def _diagonals(x: Tensor, act: Activation, depth: int, wv: float, bv: float, degree: int):
    r"""Variances :math:`q^l = K^l(x, x)` for l = 1..depth+1, and the NTK diagonal.

    Returns ``(qs, theta_diag)`` with ``qs[l-1]`` of shape (n,).
    """
    q = wv * (x * x).sum(1) / x.shape[1] + bv  # (n,)
    qs, theta = [q], q.clone()
    for _ in range(depth):
        if not bool(torch.isfinite(q).all()):
            raise _Overflow
        # The same rule as off the diagonal (for quadrature: the 2-D rule of the same degree,
        # which on a degenerate covariance is the 1-D rule), so that the errors match.
        e_prime = dual_prime(act, q, q, q, degree=degree)
        q = wv * dual(act, q, q, q, degree=degree) + bv
        theta = q + wv * e_prime * theta
        qs.append(q)
    return qs, theta


def _relu_features(x: Tensor, q: Tensor, wv: float, bv: float) -> Tensor:
    r"""Scaled unit feature vectors :math:`u(x) = \hat\varphi(x)/\sqrt2`,
    :math:`\hat\varphi(x) = \varphi(x)/|\varphi(x)|`, of the first layer,
    :math:`\varphi(x) = (\sqrt{\sigma_w^2/d}\,x, \sigma_b)`: then :math:`K^1(x, x') =
    |\varphi(x)||\varphi(x')|\,\hat\varphi(x)\cdot\hat\varphi(x')` and
    :math:`s \mp K^1 = s|u(x) \mp u(x')|^2`. Returned transposed, shape (features, n). A zero
    feature (``x = 0`` and no bias) stays the zero vector."""
    phi = x * math.sqrt(wv / x.shape[1])
    if bv:
        phi = torch.cat([phi, phi.new_full((x.shape[0], 1), math.sqrt(bv))], dim=1)
    norm = q.sqrt() * math.sqrt(2)
    return (phi / torch.where(norm > 0, norm, torch.ones_like(norm))[:, None]).T.contiguous()


# First-layer angles below this (cos > 3/4), or above pi minus it, are recomputed from the
# inputs: elsewhere s - K^1 and s + K^1 lose at most a factor 4 to cancellation.
_NEAR_ANGLE = math.acos(0.75)
# Up to this many first-layer features (d, plus 1 with a bias), every pair is computed from
# the inputs' differences: a few passes, and low-dimensional inputs have many near pairs.
_FEW_FEATURES = 4
# Returned by the first-layer helpers when they have scaled Theta^1 by (pi - theta) / pi.
_T_DONE = torch.empty(0, dtype=torch.long)


def _relu_near_pairs(K: Tensor, T: Tensor | None, W: Tensor, V: Tensor, X: Tensor, s: Tensor,
                     u1: Tensor, u2: Tensor, diag: int | None) -> Tensor | None:
    r"""First layer of :func:`_relu_block`: redo the nearly (anti)parallel pairs from the
    inputs.

    On entry ``W = s - K``, ``V = s\sin\vartheta``, ``X = \vartheta`` from the Gram matrix. Where
    the angle is below :data:`_NEAR_ANGLE` or above :math:`\pi` minus it, ``W`` and
    :math:`s + K` are recomputed as :math:`s|u(x) \mp u(x')|^2` (:func:`_relu_features`) and
    ``V``, ``X`` from them; if more than a quarter of the block's pairs are near, all of it by
    :func:`_relu_from_features`. The caller's diagonal (``x2=None``) is overwritten with the
    exact diagonal recursion, so it is skipped. Returns the flat indices of the pairs where
    the NTK needs :math:`\pi - \vartheta` computed directly (some pair antiparallel), or
    :data:`_T_DONE`, or ``None``.
    """
    if diag is not None:
        X[:, diag:diag + K.shape[0]].diagonal().fill_(_PI / 2)
    if not X.numel():
        return None
    small, large = float(X.amin()) < _NEAR_ANGLE, float(X.amax()) > _PI - _NEAR_ANGLE
    if not (small or large):
        return None
    flat = X.view(-1)
    if small and large:
        mask = (flat < _NEAR_ANGLE).logical_or_(flat > _PI - _NEAR_ANGLE)
    else:
        mask = flat < _NEAR_ANGLE if small else flat > _PI - _NEAR_ANGLE
    if int(mask.sum()) * 4 > mask.numel():
        return _relu_from_features(K, T, W, V, X, s, u1, u2, large)
    near = mask.nonzero().squeeze(1)  # flat indices in the block
    ui = u1.index_select(1, near // K.shape[1])  # (features, pairs)
    uj = u2.index_select(1, near % K.shape[1])
    s_near = s.take(near)
    diff = ui - uj
    w = diff.mul_(diff).sum(0).mul_(s_near)
    diff = torch.add(ui, uj, out=ui)
    v = diff.mul_(diff).sum(0).mul_(s_near)
    sin = (w * v).sqrt_()
    W.put_(near, w)
    V.put_(near, sin)
    X.put_(near, torch.atan2(sin, K.take(near)))
    if T is None or not large:
        return None  # no antiparallel pair: 1 - theta/pi is accurate as computed
    return near


def _relu_from_features(K: Tensor, T: Tensor | None, W: Tensor, V: Tensor, X: Tensor,
                        s: Tensor, u1: Tensor, u2: Tensor, antiparallel: bool) -> Tensor | None:
    r"""The first layer's ``W``, ``V`` = s sin(theta) and ``X`` = theta of every pair of a block
    from the differences (and, if some pairs may be antiparallel, the sums) of the features
    ``u1``, ``u2`` (:func:`_relu_features`), one feature at a time: for low-dimensional inputs
    (many nearly (anti)parallel pairs), or blocks where many pairs are near. With possibly
    antiparallel pairs and the NTK, also scales ``T`` (:math:`\Theta^1`) by
    :math:`(\pi - \vartheta)/\pi`, computed directly, and returns :data:`_T_DONE`; else
    ``None``."""

    def squared_norms(op):  # X := |u1_i op u2_j|^2, with V as scratch
        for k in range(u1.shape[0]):
            op(u1[k][:, None], u2[k][None, :], out=V)
            if k:
                X.addcmul_(V, V)
            else:
                torch.mul(V, V, out=X)

    squared_norms(torch.sub)
    torch.mul(X, s, out=W)                               # s |u - u'|^2 = s - K
    if antiparallel:
        squared_norms(torch.add)
        torch.mul(X, s, out=V)                           # s |u + u'|^2 = s + K
    else:
        torch.add(s, K, out=V)
    V.mul_(W).clamp_min_(0.0).sqrt_()                    # s sin(theta)
    torch.atan2(V, K, out=X)
    if T is None or not antiparallel:
        return None
    T.mul_(torch.atan2(V, K.neg())).mul_(1.0 / _PI)      # (pi - theta) / pi Theta^1
    return _T_DONE


def _relu_block(K: Tensor, T: Tensor | None, bufs: list[Tensor], a1: list[Tensor],
                a2: list[Tensor], u1: Tensor, u2: Tensor, wv: float, bv: float,
                diag: int | None) -> tuple[Tensor, Tensor | None]:
    r"""All ReLU layers on one block, in place: K^1 -> K^{L+1} and Theta^1 -> Theta^{L+1}.

    ``K`` holds :math:`K^1` on entry (and ``T`` a copy of it); ``a1[l]``, ``a2[l]`` are
    :math:`\sqrt{q^{l+1}}` of the block's rows and columns, ``u1``, ``u2`` their unit
    first-layer features (:func:`_relu_features`); ``bufs`` four scratch buffers of the
    block's shape; ``diag`` the column of the block's first diagonal entry when ``x2 is None``
    (the caller overwrites the diagonal). Returns the tensors (among ``K`` and ``bufs``) that
    hold the results.

    The old form :math:`s\sin\vartheta = \sqrt{q_aq_b - K^2}` loses half the digits when the
    angle is small (coincident or nearly coincident inputs) or close to pi: the difference of
    :math:`q_aq_b` and :math:`K^2`, computed by different reductions, is pure rounding there,
    and its square root moves the angle, hence the step kernel and the NTK, by
    :math:`\sqrt\epsilon`. Here, with :math:`s = \sqrt{q_aq_b}` and :math:`K = s\cos\vartheta`,
    the angle is carried by the *angular defect* :math:`W = s - K = s(1 - \cos\vartheta)`,
    which is computed without cancellation:

    * first layer: :math:`W = s - K^1`, :math:`V = s + K^1` where :math:`|K^1| \le 3s/4`
      (cancellation by at most 4); elsewhere from the inputs, :math:`W = \frac
      s2|\hat\varphi(x) - \hat\varphi(x')|^2` and :math:`V = \frac s2|\hat\varphi(x) +
      \hat\varphi(x')|^2`, so that :math:`W = 0` exactly for coincident inputs (pair by pair
      in :func:`_relu_near_pairs`; for all pairs of a block in :func:`_relu_from_features`
      when the inputs have at most :data:`_FEW_FEATURES` features or most pairs are near);
    * per layer, :math:`s\sin\vartheta = \sqrt{WV}` (:math:`V = s + K`),
      :math:`\vartheta = \operatorname{atan2}(\sqrt{WV}, K)`, accurate to a few ulps relative
      near 0 (and near pi, where :math:`\pi - \vartheta = \operatorname{atan2}(\sqrt{WV}, -K)`
      is used for the NTK); :math:`H = s(\sin\vartheta - \vartheta\cos\vartheta) =
      s\sin\vartheta - \vartheta K`; and with :math:`\alpha = \sigma_w^2/2`,
      :math:`d = \sqrt{q_a} - \sqrt{q_b}`,

      .. math::

          K' = \alpha(K + H/\pi) + \sigma_b^2, \qquad
          \Theta' = K' + \alpha(1 - \vartheta/\pi)\,\Theta, \qquad
          W' = s' - K' = \alpha(W - H/\pi) + \frac{\alpha\sigma_b^2 d^2}{s' + \alpha s +
          \sigma_b^2},

      the last by :math:`s'^2 - (\alpha s + \sigma_b^2)^2 = \alpha\sigma_b^2 d^2`. Nothing
      cancels but :math:`H` at small angles, whose absolute error :math:`\epsilon s\vartheta`
      moves :math:`\vartheta'` by :math:`O(\epsilon)` only (:math:`W' \approx \alpha
      s\vartheta^2/2`). After the first layer :math:`K \ge 0` and :math:`\vartheta \le
      \pi/2`, so :math:`V = s + K` does not cancel.

    So the angle, and with it :math:`K` and :math:`\Theta`, is accurate to
    :math:`O((d + L)\epsilon)` for any inputs, and exactly 0 on coincident ones, as on the
    diagonal of the symmetric path.
    """
    alpha = wv / 2
    W, V, X, s = bufs
    torch.outer(a1[0], a2[0], out=s)
    near = None
    for layer in range(len(a1) - 1):
        if layer == 0 and u1.shape[0] <= _FEW_FEATURES:
            # Antiparallel pairs (s + K < s/4) possible unless min(s + K) >= max(s) / 4.
            torch.add(s, K, out=V)
            anti = bool(K.numel()) and 4 * float(V.amin()) < (float(a1[0].amax())
                                                               * float(a2[0].amax()))
            near = _relu_from_features(K, T, W, V, X, s, u1, u2, anti)
        else:
            if layer == 0:
                torch.sub(s, K, out=W)                       # W = s - K
            torch.add(s, K, out=V)                           # V = s + K (K >= 0 after)
            V.mul_(W).clamp_min_(0.0).sqrt_()                # V := s sin(theta)
            torch.atan2(V, K, out=X)                         # X := theta in [0, pi]
            if layer == 0:
                near = _relu_near_pairs(K, T, W, V, X, s, u1, u2, diag)
        if near is not None and near is not _T_DONE:  # pi - theta accurate near pi as well
            k_near = K.take(near)  # = Theta^1 there
            c_near = torch.atan2(V.take(near), -k_near)
        V.addcmul_(X, K, value=-1.0)                         # V := H = s sin - theta K
        if T is not None:
            if near is not _T_DONE:
                T.addcmul_(X, T, value=-1.0 / _PI)           # (1 - theta/pi) Theta
            if near is not None and near is not _T_DONE:
                T.put_(near, c_near.mul_(k_near).mul_(1.0 / _PI))
            near = None
        W.add_(V, alpha=-1.0 / _PI)                          # W - H/pi
        if alpha != 1.0:
            W.mul_(alpha)                                    # alpha (W - H/pi)
        if bv:
            torch.sub(a1[layer][:, None], a2[layer][None, :], out=X).square_()  # d^2
            torch.outer(a1[layer + 1], a2[layer + 1], out=K)                    # s'
            s.mul_(alpha).add_(K).add_(bv)                                     # s'+alpha s+bv
            W.addcdiv_(X, s, value=alpha * bv)
            s, K = K, s
        else:
            torch.outer(a1[layer + 1], a2[layer + 1], out=s)                    # s'
        torch.sub(s, W, out=K)                               # K' = s' - W'
        if T is not None:
            torch.add(K, T, alpha=alpha, out=T)              # K' + alpha (1 - theta/pi) Theta
    return K, T


def _erf_step(K: Tensor, T: Tensor | None, qa: Tensor, qb: Tensor, wv: float, bv: float,
              P: Tensor, C: Tensor) -> None:
    r"""One erf layer in place: :math:`K^{l+1} = \sigma_w^2\frac2\pi\arcsin\frac{2K}
    {\sqrt{(1+2q_a)(1+2q_b)} + \sigma_b^2`,
    :math:`\dot K = \frac4\pi\big((1+2q_a)(1+2q_b) - 4K^2\big)^{-1/2}`.

    Unlike ReLU's arccos this is well-conditioned at coincident inputs: since
    :math:`(1+2q_a)(1+2q_b) \ge (1 + 2\sqrt{q_aq_b})^2`, the arcsine's argument satisfies
    :math:`|r| \le 2s/(1 + 2s) < 1` (:math:`s = \sqrt{q_aq_b}`), where its derivative is at
    most :math:`(1 + 2s)/\sqrt{1 + 4s}`; a relative rounding :math:`\epsilon` of :math:`r`
    moves the arcsine by at most :math:`2s\epsilon/\sqrt{1 + 4s} \le \sqrt s\,\epsilon`.
    Likewise the determinant is at least :math:`1 + 4s`, so it loses at most a factor
    :math:`((1 + 2s)^2 + 4s^2)/(1 + 4s) \le 1 + 2s` to cancellation. Both stay
    :math:`O(\epsilon)` for bounded variances, so the erf step keeps its simple form."""
    a, b = 1 + 2 * qa, 1 + 2 * qb
    if T is not None:
        torch.outer(a, b, out=P)
        P.addcmul_(K, K, value=-4.0).rsqrt_()        # det(I + 2 C)^{-1/2}
        T.mul_(P)
    torch.outer(2 * a.rsqrt(), b.rsqrt(), out=C)
    C.mul_(K).clamp_(-1.0, 1.0).asin_()
    torch.mul(C, 2 * wv / _PI, out=K)
    if bv:
        K.add_(bv)
    if T is not None:
        torch.add(K, T, alpha=4 * wv / _PI, out=T)


def _generic_step(act: Activation, degree: int, K: Tensor, T: Tensor | None, qa: Tensor,
                  qb: Tensor, wv: float, bv: float, P: Tensor, C: Tensor) -> None:
    """One layer for any activation, through ``mfteach.activations.dual`` (quadrature or a
    closed form)."""
    c11, c22 = qa[:, None].expand_as(K), qb[None, :].expand_as(K)
    # Rounding can push |K| a hair above sqrt(q_a q_b); the dual's covariance check allows
    # sqrt(eps) relative slack, clamp anyway so that it never trips on our own numbers.
    bound = (c11 * c22).sqrt()
    c12 = torch.minimum(torch.maximum(K, -bound), bound)
    if T is not None:
        T.mul_(dual_prime(act, c11, c12, c22, degree=degree))
    torch.mul(dual(act, c11, c12, c22, degree=degree), wv, out=K)
    if bv:
        K.add_(bv)
    if T is not None:
        torch.add(K, T, alpha=wv, out=T)


def _recursion(x1: Tensor, x2: Tensor | None, act: Activation, depth: int, wv: float,
               bv: float, want_ntk: bool, degree: int) -> tuple[Tensor, Tensor | None]:
    """K^{depth+1}(x1, x2) and (optionally) Theta^{depth+1}, computed block by block.

    Every entry's recursion needs only its own K^l and the two diagonals q^l, so rows are
    processed in blocks through all layers (cache-friendly); with ``x2 is None`` only the
    blocks on and above the diagonal are computed and mirrored. On the CPU the closed-form
    blocks are small enough that each op runs single-threaded, and ``torch.get_num_threads()``
    Python threads share the blocks (torch releases the GIL): no barrier per op, so a busy
    core slows one worker instead of stalling every op.
    """
    sym = x2 is None
    xb = x1 if sym else x2
    n1, n2, d = x1.shape[0], xb.shape[0], x1.shape[1]
    opts = {"dtype": x1.dtype, "device": x1.device}
    q1, t1 = _diagonals(x1, act, depth, wv, bv, degree)
    q2 = q1 if sym else _diagonals(xb, act, depth, wv, bv, degree)[0]
    K_out = torch.matmul(x1, xb.T).mul_(wv / d)  # the Gram matrix, read block by block
    if bv:
        K_out.add_(bv)
    T_out = torch.empty(n1, n2, **opts) if want_ntk else None
    fused = _fused_name(act)
    if fused == "relu":
        # Square roots of the variances, and unit features for the near (anti)parallel pairs.
        a1 = [q.sqrt() for q in q1]
        a2 = a1 if sym else [q.sqrt() for q in q2]
        u1 = _relu_features(x1, q1[0], wv, bv)
        u2 = u1 if sym else _relu_features(xb, q2[0], wv, bv)
    elif fused == "erf":
        step = _erf_step
    else:
        def step(*args):
            _generic_step(act, degree, *args)
    cuda = x1.device.type == "cuda"
    block = _BLOCK_CUDA if cuda else _BLOCK
    rows = max(1, min(n1, block // max(n2, 1)))
    starts = list(range(0, n1, rows))
    workers = 1 if (cuda or fused is None) else max(1, min(torch.get_num_threads(),
                                                           len(starts)))

    def run_blocks(my_starts) -> None:
        n_buf = (6 if fused == "relu" else 4) - (0 if want_ntk else 1)
        buf = [torch.empty(rows * n2, **opts) for _ in range(n_buf)]
        for i0 in my_starts:
            i1 = min(n1, i0 + rows)
            j0 = i0 if sym else 0
            shape = (i1 - i0, n2 - j0)
            K, *scratch = (b[: shape[0] * shape[1]].view(shape) for b in buf)
            T = scratch.pop() if want_ntk else None
            K.copy_(K_out[i0:i1, j0:])
            if sym:  # the square part exactly symmetric; closed-form layers keep it so
                sq = K[:, : i1 - i0]
                sq.copy_(torch.triu(sq) + torch.triu(sq, 1).T)
            if T is not None:
                T.copy_(K)
            if fused == "relu":
                if depth:
                    K, T = _relu_block(K, T, scratch, [a[i0:i1] for a in a1],
                                       [b[j0:] for b in a2], u1[:, i0:i1], u2[:, j0:], wv, bv,
                                       0 if sym else None)
            else:
                for layer in range(depth):
                    step(K, T, q1[layer][i0:i1], q2[layer][j0:], wv, bv, *scratch)
            if sym:
                # Quadrature is not exactly symmetric in (u, v), and elementwise ops need not
                # round (i, j) and (j, i) alike (the scalar remainder of a vectorised loop,
                # the feature sums of the ReLU near pairs): keep the orientation (i <= j) of
                # the upper triangle everywhere, as in the mirrored blocks.
                for t in (K, T) if want_ntk else (K,):
                    sq = t[:, : i1 - i0]
                    sq.copy_(torch.triu(sq) + torch.triu(sq, 1).T)
            # Blocks write disjoint regions: rows [i0, i1) from column i0 (or 0) on, and
            # their mirror in columns [i0, i1) below row i1, which no later block reads.
            K_out[i0:i1, j0:] = K
            if want_ntk:
                T_out[i0:i1, j0:] = T
            if sym:
                K_out[i1:, i0:i1] = K[:, i1 - i0:].T
                if want_ntk:
                    T_out[i1:, i0:i1] = T[:, i1 - i0:].T

    if workers == 1:
        run_blocks(starts)
    else:
        # Interleave the blocks (the upper ones are the widest when sym) over the workers.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run_blocks, starts[w::workers]) for w in range(workers)]
            for f in futures:
                f.result()
    if sym and n1:  # exact diagonal (theta = 0), free of atan2/asin rounding near 1
        K_out.diagonal().copy_(q1[depth])
        if want_ntk:
            T_out.diagonal().copy_(t1)
    return K_out, T_out


_RECURSION_DOC = r"""
    Parameters
    ----------
    x1 : Tensor, shape (n1, d)
        Inputs (floating point). The kernel is computed on their device and in their dtype.
    x2 : Tensor, shape (n2, d), optional
        Second set of inputs; ``None`` (default) means ``x1`` and uses the symmetry
        (about half the work, and an exactly symmetric result).
    activation : str or Activation, keyword-only
        One of :data:`mfteach.activations.ACTIVATIONS` (``"relu"``, ``"erf"`` (plain erf),
        ``"tanh"``, ``"erf_sqrt2"``, ``"square"``, ``"linear"``) or an
        :class:`~mfteach.activations.Activation`.
    depth : int >= 0, keyword-only
        Number of hidden layers :math:`L`; ``depth=0`` is the linear readout of the input,
        :math:`K = \Theta = \sigma_w^2 x\cdot x'/d + \sigma_b^2`.
    weight_var : float > 0, keyword-only, default 1.0
        :math:`\sigma_w^2`.
    bias_var : float >= 0, keyword-only, default 0.0
        :math:`\sigma_b^2`.
    quadrature_degree : int in [1, 300], keyword-only, default 64
        Gauss-Hermite nodes per axis for activations without a closed form (``"tanh"`` and
        custom ones), on and off the diagonal: cost :math:`O(\text{degree}^2)` per entry and
        layer. Measured for tanh: error ~1e-9 at unit variances, ~1e-5 at variance 3 (the
        poles of tanh at :math:`\pm i\pi/2` slow the convergence as the variance grows);
        degree 128 gives ~1e-13 and ~1e-7. ReLU and erf use fused closed forms and ignore it.
"""

_RAISES_DOC = r"""
    Raises
    ------
    TypeError
        If ``x1``/``x2`` are not floating tensors, their dtypes differ, ``depth`` is not an int,
        ``weight_var``/``bias_var`` are not real numbers, or ``activation`` is neither a string
        nor an Activation.
    ValueError
        If ``x1``/``x2`` are not 2-D, their input dimensions differ, they live on different
        devices or hold NaN/inf, ``depth < 0``, ``weight_var <= 0``, ``bias_var < 0``,
        ``quadrature_degree`` outside [1, 300] or the activation name is unknown.
"""


def nngp_and_ntk(x1: Tensor, x2: Tensor | None = None, *, activation: str | Activation,
                 depth: int, weight_var: float = 1.0, bias_var: float = 0.0,
                 quadrature_degree: int = 64) -> tuple[Tensor, Tensor]:
    r"""NNGP kernel :math:`K^{L+1}` and NTK :math:`\Theta^{L+1}` of a deep fully connected
    network, computed together in one pass.

    .. math::

        K^1 = \sigma_w^2\frac{x\cdot x'}{d} + \sigma_b^2,\quad
        K^{l+1} = \sigma_w^2\,\mathbb{E}[\phi(u)\phi(v)] + \sigma_b^2,\quad
        \Theta^{l+1} = K^{l+1} + \sigma_w^2\,\mathbb{E}[\phi'(u)\phi'(v)]\,\Theta^l,

    :math:`\Theta^1 = K^1`, with :math:`(u, v)` Gaussian with the covariance :math:`K^l`
    restricted to the pair :math:`(x, x')`.
    {params}
    Returns
    -------
    nngp, ntk : Tensor, shape (n1, n2)
        :math:`K^{L+1}(x_1, x_2)` and :math:`\Theta^{L+1}(x_1, x_2)`.
    {raises}
    Notes
    -----
    Closed forms: ReLU (arc-cosine kernels of orders 1 and 0) and erf (Williams' arcsine
    kernel and :math:`\frac4\pi\det(I + 2C)^{-1/2}`), evaluated in place block by block
    through all layers; other activations go through :func:`mfteach.activations.dual` /
    :func:`~mfteach.activations.dual_prime` (closed form or 2-D Gauss-Hermite quadrature).
    For ReLU the angle between the two inputs' features is carried through the layers by its
    defect :math:`\sqrt{K_{xx}K_{x'x'}} - K_{xx'}`, computed from differences of the inputs
    where the angle is small (or close to pi), so that coincident and nearly coincident
    inputs (``x2`` sharing rows with ``x1``) get the NTK to a few ulps, not to
    :math:`\sqrt\epsilon`. The diagonal is computed separately, with :math:`\vartheta = 0`
    exactly. The in-place
    evaluation records no autograd graph (the result does not require grad); for gradients
    with respect to the inputs or the variances, write the recursion with
    :func:`mfteach.activations.dual` / :func:`~mfteach.activations.dual_prime`.
    A depth-3 ReLU NNGP+NTK on 2000 inputs (float64) takes a fraction of a second on two CPU
    threads (``benchmarks/bench_kernels.py``). Introduced in the book in chapter 01 (wide
    networks and their kernels).

    References
    ----------
    A. Jacot, F. Gabriel, C. Hongler (2018), "Neural Tangent Kernel", NeurIPS, arXiv
    1806.07572, Theorem 1 (the NTK recursion); J. Lee et al. (2018), "Deep Neural Networks as
    Gaussian Processes", ICLR, arXiv 1711.00165, Eq. (4) (the NNGP recursion); Y. Cho and
    L. K. Saul (2009), NeurIPS (arc-cosine kernels); C. K. I. Williams (1998), Neural
    Computation 10(5) (erf). R. Novak et al. (2020), "Neural Tangents", ICLR, arXiv
    1912.02803 (the same convention, ``stax.Dense`` in NTK parametrization).

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> K, Theta = nngp_and_ntk(x, activation="relu", depth=1)
    >>> K  # K^1 = I/2: diagonal 1/4, orthogonal inputs 1/(4 pi)
    tensor([[0.2500, 0.0796],
            [0.0796, 0.2500]], dtype=torch.float64)
    >>> Theta  # Theta = K^2 + E[step step] K^1: diagonal 1/4 + (1/2)(1/2)
    tensor([[0.5000, 0.0796],
            [0.0796, 0.5000]], dtype=torch.float64)
    """
    fn = "mfteach.kernels.nngp_and_ntk"
    return _public(fn, x1, x2, activation, depth, weight_var, bias_var, quadrature_degree,
                   True)


def _public(fn, x1, x2, activation, depth, weight_var, bias_var, quadrature_degree,
            want_ntk):
    x1, x2 = _check_inputs(x1, x2, fn)
    act, depth, wv, bv = _check_architecture(fn, activation, depth, weight_var, bias_var)
    degree = check_int(quadrature_degree, "quadrature_degree", fn, min=1, max=MAX_DEGREE)
    n1, n2 = x1.shape[0], (x1 if x2 is None else x2).shape[0]
    check_budget("x1" if x2 is None or n1 >= n2 else "x2", fn, (n1, n2),
                 nbytes=3 * n1 * n2 * x1.element_size())
    # One pass of a layer over blocks of about 2**20 entries is one step.
    check_budget("depth", fn, depth, steps=depth * -(-n1 * n2 // 2**20))
    with torch.no_grad():
        try:
            out = _recursion(x1, x2, act, depth, wv, bv, want_ntk, degree)
        except _Overflow:
            out = (torch.full((1,), math.inf),)
        _check_finite_kernels(fn, out, x1, wv, bv, depth)
        return out


def _check_finite_kernels(fn, out, x1, wv, bv, depth) -> None:
    """Refuse a kernel that overflowed the dtype (huge variances or depth), naming the
    variance that drives it, instead of returning inf or NaN."""
    if all(t is None or bool(torch.isfinite(t).all()) for t in out):
        return
    name, value = ("bias_var", bv) if bv >= wv else ("weight_var", wv)
    fail(name, fn, f"small enough for the kernel to fit in {x1.dtype}", value,
         hint=f"With weight_var={wv:.3g}, bias_var={bv:.3g} and depth={depth} the recursion "
              "overflows; rescale the inputs or the variances.")


def nngp(x1: Tensor, x2: Tensor | None = None, *, activation: str | Activation, depth: int,
         weight_var: float = 1.0, bias_var: float = 0.0, quadrature_degree: int = 64) -> Tensor:
    r"""NNGP kernel :math:`K^{L+1}(x, x')` of a deep fully connected network at infinite width.

    The covariance of the outputs at initialisation, :math:`\mathbb{E}[f(x)f(x')]` as
    :math:`N \to \infty`, with :math:`K^1 = \sigma_w^2 x\cdot x'/d + \sigma_b^2` and
    :math:`K^{l+1} = \sigma_w^2\,\mathbb{E}[\phi(u)\phi(v)] + \sigma_b^2`,
    :math:`(u, v) \sim N(0, K^l|_{x,x'})`. See :func:`nngp_and_ntk` for both kernels at once.
    {params}
    Returns
    -------
    Tensor, shape (n1, n2)
    {raises}
    Notes
    -----
    One hidden layer of ReLU on unit-variance inputs gives the arc-cosine kernel of order 1,
    :math:`\sigma_w^2\sqrt{q q'}(\sin\vartheta + (\pi-\vartheta)\cos\vartheta)/(2\pi)`.
    Introduced in the book in chapter 01 (wide networks and their kernels).

    References
    ----------
    R. M. Neal (1996), "Bayesian Learning for Neural Networks" (one hidden layer);
    J. Lee et al. (2018), ICLR, arXiv 1711.00165, Eq. (4); A. G. de G. Matthews et al.
    (2018), ICLR, arXiv 1804.11271.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    >>> K = nngp(x, activation="relu", depth=1, bias_var=0.5)  # (|x|^2/2 + 0.5)/2 + 0.5
    >>> K.shape, round(float(K), 12)
    (torch.Size([1, 1]), 7.0)
    """
    fn = "mfteach.kernels.nngp"
    return _public(fn, x1, x2, activation, depth, weight_var, bias_var, quadrature_degree,
                   False)[0]


def ntk(x1: Tensor, x2: Tensor | None = None, *, activation: str | Activation, depth: int,
        weight_var: float = 1.0, bias_var: float = 0.0, quadrature_degree: int = 64) -> Tensor:
    r"""Neural tangent kernel :math:`\Theta^{L+1}(x, x')` of a deep fully connected network
    at infinite width, NTK parametrization.

    :math:`\Theta^1 = K^1`, :math:`\Theta^{l+1} = K^{l+1} + \sigma_w^2\,
    \mathbb{E}[\phi'(u)\phi'(v)]\,\Theta^l`: the limit of the empirical NTK
    :math:`\sum_p \partial_p f(x)\,\partial_p f(x')` (:func:`empirical_ntk`) of the network at
    initialisation, which stays constant during training as :math:`N \to \infty`. See
    :func:`nngp_and_ntk` for both kernels at once (the NTK needs the NNGP anyway).
    {params}
    Returns
    -------
    Tensor, shape (n1, n2)
    {raises}
    Notes
    -----
    Introduced in the book in chapter 01 (wide networks and their kernels); the finite-width
    fluctuations around it (of order :math:`N^{-1/2}`) are the subject of chapter 02.

    References
    ----------
    A. Jacot, F. Gabriel, C. Hongler (2018), "Neural Tangent Kernel: Convergence and
    Generalization in Neural Networks", NeurIPS, arXiv 1806.07572, Theorem 1.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    >>> ntk(x, activation="relu", depth=2)  # q^l = 1, 1/2, 1/4; Theta^{l+1} = q^{l+1} + Theta^l/2
    tensor([[0.7500]], dtype=torch.float64)
    """
    fn = "mfteach.kernels.ntk"
    return _public(fn, x1, x2, activation, depth, weight_var, bias_var, quadrature_degree,
                   True)[1]


for _f in (nngp_and_ntk, nngp, ntk):
    _f.__doc__ = (_f.__doc__ or "").replace("{params}", _RECURSION_DOC).replace(
        "{raises}", _RAISES_DOC)
del _f


# --------------------------------------------------------------------------------------------
# Empirical NTK of any functional model
# --------------------------------------------------------------------------------------------

def empirical_ntk(fn: Callable[[Mapping[str, Tensor], Tensor], Tensor],
                  params: Mapping[str, Tensor], x1: Tensor, x2: Tensor | None = None) -> Tensor:
    r"""Empirical neural tangent kernel :math:`\hat\Theta(x, x') = \sum_p
    \partial_p f(x)\,\partial_p f(x')` of a model with parameters ``params``.

    Parameters
    ----------
    fn : callable ``(params, x) -> Tensor of shape (n,)``
        The model as a pure function of a dict of parameters and a batch of inputs, one
        scalar output per input. A ``torch.nn.Module`` becomes one with
        :func:`torch.func.functional_call`:
        ``fn = lambda p, x: torch.func.functional_call(model, p, (x,)).squeeze(-1)`` and
        ``params = dict(model.named_parameters())``.
    params : dict[str, Tensor]
        The parameters to differentiate (all of them count in the sum), floating point, on the
        device and in the dtype of ``x1``. They are detached: the result carries no graph.
    x1 : Tensor, shape (n1, ...)
        Inputs; leading axis = samples.
    x2 : Tensor, shape (n2, ...), optional
        Second set of inputs (same trailing shape); ``None`` means ``x1`` (one Jacobian).

    Returns
    -------
    Tensor, shape (n1, n2)
        :math:`J(x_1) J(x_2)^\top` with :math:`J` the Jacobian of the outputs with respect to
        all parameters, flattened.

    Raises
    ------
    TypeError
        If ``fn`` is not callable, ``params`` is not a dict of floating tensors, ``x1``/``x2``
        are not floating tensors, or dtypes disagree.
    ValueError
        If ``params`` is empty, tensors are on different devices, shapes do not match, or
        ``fn`` does not return shape ``(n,)``.

    Notes
    -----
    Reverse mode: one ``torch.func.vjp`` per input set and ``torch.func.vmap`` over the
    ``n`` output directions, so memory is :math:`O(n P)` for :math:`P` parameters; chunk the
    inputs for very large :math:`n P`. For the networks of this module it converges to
    :func:`ntk` as the width grows (book chapters 01 and 02).

    References
    ----------
    A. Jacot, F. Gabriel, C. Hongler (2018), NeurIPS, arXiv 1806.07572, Eq. (2) (definition);
    R. Novak et al. (2022), "Fast Finite Width Neural Tangent Kernel", ICML, arXiv 2206.08720
    (Jacobian contraction).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 1).double()
    >>> params = dict(model.named_parameters())
    >>> f = lambda p, x: torch.func.functional_call(model, p, (x,)).squeeze(-1)
    >>> x = torch.eye(3, dtype=torch.float64)
    >>> empirical_ntk(f, params, x)  # x.x' + 1 (weight and bias gradients)
    tensor([[2., 1., 1.],
            [1., 2., 1.],
            [1., 1., 2.]], dtype=torch.float64)
    """
    name = "mfteach.kernels.empirical_ntk"
    if not callable(fn):
        fail("fn", name, "a callable (params, x) -> Tensor of shape (n,)", fn, exc=TypeError)
    if not isinstance(params, Mapping):
        fail("params", name, "a dict mapping names to parameter tensors", params,
             exc=TypeError)
    if len(params) == 0:
        fail("params", name, "a non-empty dict of parameter tensors", params)
    check_tensor(x1, "x1", name)
    if x1.ndim == 0:
        fail("x1", name, "a tensor of shape (n, ...) with a leading sample axis", x1)
    if x2 is not None:
        check_tensor(x2, "x2", name)
        check_same_device_dtype(name, x1=x1, x2=x2)
        if x2.shape[1:] != x1.shape[1:]:
            fail("x2", name, f"a tensor of shape (n2, {', '.join(map(str, x1.shape[1:]))}) "
                 "(the trailing shape of 'x1')", x2)
    for k, v in params.items():
        if not isinstance(k, str) or not isinstance(v, Tensor) or not v.is_floating_point():
            fail("params", name, "a dict mapping str names to floating-point tensors",
                 {k: v}, exc=TypeError)
        if v.device != x1.device:
            fail("params", name, f"tensors on the device of 'x1' ({x1.device})", {k: v},
                 hint="Move the model or the inputs with .to(device).")
        if v.dtype != x1.dtype:
            fail("params", name, f"tensors of the dtype of 'x1' ({x1.dtype})", {k: v},
                 exc=TypeError, hint="Convert the model (e.g. model.double()) or the inputs.")
    p = {k: v.detach() for k, v in params.items()}

    def jacobian(x: Tensor, arg: str) -> Tensor:
        out, vjp_fn = torch.func.vjp(lambda q: fn(q, x), p)
        if not isinstance(out, Tensor) or out.shape != (x.shape[0],):
            fail("fn", name, f"a function returning one scalar per input, shape "
                 f"({x.shape[0]},) for {arg!r}", out)
        eye = torch.eye(x.shape[0], dtype=out.dtype, device=out.device)
        (jac,) = torch.func.vmap(vjp_fn)(eye)  # dict name -> (n, *shape)
        return torch.cat([j.reshape(x.shape[0], -1) for j in jac.values()], dim=1)  # (n, P)

    j1 = jacobian(x1, "x1")
    j2 = j1 if x2 is None else jacobian(x2, "x2")
    return j1 @ j2.T


# --------------------------------------------------------------------------------------------
# Random finite-width networks of the same architecture, batched
# --------------------------------------------------------------------------------------------

def _init_mlp(n_nets: int, d: int, width: int, depth: int, *, generator: torch.Generator,
              device, dtype) -> dict[str, Tensor]:
    """Standard-normal weights of ``n_nets`` networks: W{l} (S, fan_in, fan_out), b{l} (S,
    fan_out), l = 1..depth+1 (the last is the scalar readout)."""
    params, fan = {}, d
    for layer in range(1, depth + 2):
        out = width if layer <= depth else 1
        params[f"W{layer}"] = torch.randn(n_nets, fan, out, generator=generator, device=device,
                                          dtype=dtype)
        params[f"b{layer}"] = torch.randn(n_nets, out, generator=generator, device=device,
                                          dtype=dtype)
        fan = out
    return params


def _mlp_forward(params: Mapping[str, Tensor], x: Tensor, *, activation: Activation,
                 depth: int, weight_var: float, bias_var: float) -> Tensor:
    r"""Outputs of the NTK-parametrized network(s): (S, n) for batched params, (n,) for one.

    :math:`h^{l} = \sqrt{\sigma_w^2/\text{fan}\, \phi(h^{l-1}) W^{l} + \sigma_b b^{l}`, with
    :math:`\phi(h^0) = x`; works unbatched (``W{l}`` of shape (fan_in, fan_out)), so that
    :func:`empirical_ntk` can differentiate one network of a batch.
    """
    a, sb = x, math.sqrt(bias_var)
    for layer in range(1, depth + 2):
        W, b = params[f"W{layer}"], params[f"b{layer}"]
        h = (a @ W) * math.sqrt(weight_var / W.shape[-2]) + sb * b.unsqueeze(-2)
        a = activation.fn(h) if layer <= depth else h
    return a[..., 0]


def _mlp_kernels(params: Mapping[str, Tensor], x1: Tensor, x2: Tensor | None,
                 act: Activation, depth: int, wv: float, bv: float) -> dict[str, Tensor]:
    r"""Per-network kernels of a batch of networks, by explicit backpropagation.

    With :math:`a^0 = x`, :math:`a^l = \phi(h^l)` and :math:`\delta^l = \partial f/\partial
    h^l` (:math:`\delta^{L+1} = 1`),

    .. math::

        \hat\Theta(x, x') = \sum_{l=1}^{L+1} \Big(\frac{\sigma_w^2}{N_{l-1}
        a^{l-1}(x)\cdot a^{l-1}(x') + \sigma_b^2\Big)\, \delta^l(x)\cdot\delta^l(x'),

    :math:`\delta^l = \sqrt{\sigma_w^2/N_l}\,(W^{l+1}\delta^{l+1}) \odot \phi'(h^l)`.
    Returns (S, n1, n2) tensors: ``nngp`` (:math:`f(x)f(x')`), ``nngp_features``
    (the readout term, :math:`\mathbb{E}[f(x)f(x') \mid h^L]`) and ``ntk``.
    """
    n1 = x1.shape[0]
    X = x1 if x2 is None else torch.cat([x1, x2])  # (n, d)
    sb = math.sqrt(bv)

    def split_gram(a: Tensor) -> Tensor:  # (S, n, k) -> (S, n1, n2)
        return a[..., :n1, :] @ (a if x2 is None else a[..., n1:, :]).transpose(-1, -2)

    acts, derivs = [X], []
    for layer in range(1, depth + 1):
        W, b = params[f"W{layer}"], params[f"b{layer}"]
        h = (acts[-1] @ W) * math.sqrt(wv / W.shape[-2]) + sb * b.unsqueeze(-2)  # (S, n, N)
        acts.append(act.fn(h))
        derivs.append(act.deriv(h))
    W, b = params[f"W{depth + 1}"], params[f"b{depth + 1}"]
    scale = math.sqrt(wv / W.shape[-2])
    f = ((acts[-1] @ W) * scale + sb * b.unsqueeze(-2))[..., 0]  # (S, n)
    S = f.shape[0]
    fa, fb = f[:, :n1], (f if x2 is None else f[:, n1:])
    features = split_gram(acts[-1]).mul_(wv / acts[-1].shape[-1]).add_(bv)
    if features.ndim == 2:  # depth 0: the "features" are the inputs, shared by all networks
        features = features.expand(S, *features.shape)
    ntk = features.clone()
    if depth > 0:
        delta = W.transpose(-1, -2) * scale * derivs[-1]  # delta^L: (S, n, N)
        for layer in range(depth, 0, -1):
            a = acts[layer - 1]
            inner = split_gram(a).mul_(wv / a.shape[-1]).add_(bv)
            ntk += inner * split_gram(delta)
            if layer > 1:
                Wl = params[f"W{layer}"]
                delta = (delta @ Wl.transpose(-1, -2)) * math.sqrt(wv / Wl.shape[-2]) \
                    * derivs[layer - 2]
    return {"nngp": fa[:, :, None] * fb[:, None, :], "nngp_features": features, "ntk": ntk}


def _check_mc(fn, x1, x2, activation, depth, width, n_samples, weight_var, bias_var,
              generator, batch_size):
    x1, x2 = _check_inputs(x1, x2, fn)
    act, depth, wv, bv = _check_architecture(fn, activation, depth, weight_var, bias_var)
    width = check_int(width, "width", fn, min=1)
    n_samples = check_int(n_samples, "n_samples", fn, min=2)
    g = as_generator(generator, x1.device, fn)
    d = x1.shape[1]
    n = x1.shape[0] + (0 if x2 is None else x2.shape[0])
    # One network at least is held at once; the run evaluates n_samples * depth layers.
    one_net = d * width + max(depth - 1, 0) * width * width + 3 * n * width * max(depth, 1)
    big = "depth" if depth > width else "width"
    check_budget(big, fn, depth if big == "depth" else width,
                 nbytes=4 * one_net * x1.element_size())
    check_budget("n_samples" if n_samples >= depth else "depth", fn,
                 n_samples if n_samples >= depth else depth, steps=n_samples * max(depth, 1))
    if batch_size is None:
        per_net = d * width + max(depth - 1, 0) * width * width + 3 * n * width * depth
        batch_size = max(1, min(n_samples, _MC_BUDGET // max(per_net, 1)))
    else:
        batch_size = check_int(batch_size, "batch_size", fn, min=1)
    return x1, x2, act, depth, wv, bv, width, n_samples, g, batch_size


def _batches(x1, x2, act, depth, wv, bv, width, n_samples, g, batch_size):
    done = 0
    while done < n_samples:
        s = min(batch_size, n_samples - done)
        params = _init_mlp(s, x1.shape[1], width, depth, generator=g, device=x1.device,
                           dtype=x1.dtype)
        yield _mlp_kernels(params, x1, x2, act, depth, wv, bv)
        done += s


_MC_PARAMS = r"""
    Parameters
    ----------
    x1 : Tensor, shape (n1, d)
        Inputs; the networks are built and run on their device and in their dtype (float64
        for tight comparisons; float32 is fine for large widths on a GPU).
    x2 : Tensor, shape (n2, d), optional
        Second inputs; ``None`` means ``x1``.
    activation, depth, weight_var, bias_var : keyword-only
        The architecture, as in :func:`nngp_and_ntk`.
    width : int >= 1, keyword-only
        Hidden width :math:`N` (all hidden layers).
    n_samples : int >= 2, keyword-only
        Number of independent networks :math:`S`.
    generator : int or torch.Generator, keyword-only
        Seed or generator on the device of ``x1`` (randomness is never hidden).
    batch_size : int >= 1, keyword-only, optional
        Networks drawn and run together as one batched tensor program (weights of shape
        ``(batch, N, N)``); by default as many as fit in about :math:`2^{24}` elements. The
        random stream depends on it: same seed and same ``batch_size`` give the same numbers.
"""


def sample_network_kernels(x1: Tensor, x2: Tensor | None = None, *,
                           activation: str | Activation, depth: int, width: int,
                           n_samples: int, generator: int | torch.Generator,
                           weight_var: float = 1.0, bias_var: float = 0.0,
                           batch_size: int | None = None) -> dict[str, Tensor]:
    r"""Kernels of ``n_samples`` random finite-width networks, one sample per network.

    Each network is the NTK-parametrized MLP of this module with i.i.d. :math:`N(0, 1)`
    weights and biases, hidden width :math:`N`. Per network it returns

    * ``"nngp"``: :math:`f(x)f(x')`, whose mean is the finite-width output covariance
      (:math:`= K^{L+1}` exactly for ``depth <= 1``, :math:`K^{L+1} + O(1/N)` deeper);
    * ``"nngp_features"``: :math:`\frac{\sigma_w^2}{N}\phi(h^L(x))\cdot\phi(h^L(x')) +
      \sigma_b^2 = \mathbb{E}[f(x)f(x') \mid h^L]`, the same mean with a smaller variance
      (:math:`O(1/N)` instead of :math:`O(1)`);
    * ``"ntk"``: the empirical NTK :math:`\sum_p\partial_pf(x)\partial_pf(x')` (all weights and
      biases), mean :math:`\Theta^{L+1}` exactly for ``depth <= 1``, with fluctuations of
      order :math:`N^{-1/2}`.
    {params}
    Returns
    -------
    dict[str, Tensor]
        ``"nngp"``, ``"nngp_features"``, ``"ntk"``, each of shape (n_samples, n1, n2).

    Raises
    ------
    TypeError, ValueError
        As :func:`nngp_and_ntk`, plus ``width < 1``, ``n_samples < 2``, ``batch_size < 1``, or
        a generator that is not an int or a generator on the device of ``x1``.

    Notes
    -----
    The empirical NTK is computed by explicit backpropagation over the batch, and agrees
    with :func:`empirical_ntk` applied to each network. The samples are what
    :func:`mfteach.testing.assert_mc_close` needs; :func:`monte_carlo_kernels` returns means
    and standard errors without storing them. Used in the book in chapters 01 and 02.

    References
    ----------
    R. Novak et al. (2020), ICLR, arXiv 1912.02803 (``nt.monte_carlo_kernel_fn``, the same
    estimator); A. Jacot et al. (2018), arXiv 1806.07572.

    Examples
    --------
    >>> import torch
    >>> x = torch.eye(2, dtype=torch.float64)
    >>> s = sample_network_kernels(x, activation="relu", depth=1, width=8, n_samples=4,
    ...                            generator=0)
    >>> s["ntk"].shape
    torch.Size([4, 2, 2])
    """
    fn = "mfteach.kernels.sample_network_kernels"
    args = _check_mc(fn, x1, x2, activation, depth, width, n_samples, weight_var, bias_var,
                     generator, batch_size)
    parts: dict[str, list[Tensor]] = {}
    with torch.no_grad():
        for batch in _batches(*args):
            for k, v in batch.items():
                parts.setdefault(k, []).append(v)
    out = {k: torch.cat(v) for k, v in parts.items()}
    _check_finite_kernels(fn, tuple(out.values()), x1, args[4], args[5], args[3])
    return out


def monte_carlo_kernels(x1: Tensor, x2: Tensor | None = None, *, activation: str | Activation,
                        depth: int, width: int, n_samples: int,
                        generator: int | torch.Generator, weight_var: float = 1.0,
                        bias_var: float = 0.0,
                        batch_size: int | None = None) -> dict[str, MCEstimate]:
    r"""Monte-Carlo estimates of the NNGP and NTK from random finite-width networks.

    The means and standard errors (:math:`s/\sqrt{S}`) of the per-network kernels of
    :func:`sample_network_kernels`, accumulated batch by batch (memory independent of
    :math:`S`). As :math:`N \to \infty` the means tend to :func:`nngp` and :func:`ntk`; at
    finite width they differ by :math:`O(1/N)` for ``depth >= 2`` (exact for ``depth <= 1``).
    {params}
    Returns
    -------
    dict[str, MCEstimate]
        ``"nngp"``, ``"nngp_features"``, ``"ntk"``; each ``mean`` and ``stderr`` of shape
        (n1, n2), ``n_samples`` = S.

    Raises
    ------
    TypeError, ValueError
        As :func:`sample_network_kernels`.

    Notes
    -----
    Batches are merged with Chan et al.'s pairwise update of the mean and the sum of squared
    deviations (numerically stable). To reach a relative accuracy :math:`\varepsilon` the
    ``"nngp"`` estimate needs :math:`S \approx (s/(\varepsilon K))^2` networks, about
    :math:`10^6` for :math:`\varepsilon = 10^{-3}`: the analytic kernels are far cheaper
    (``benchmarks/bench_kernels.py``). Used in the book in chapters 01 and 02.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> est = monte_carlo_kernels(x, activation="relu", depth=1, width=64, n_samples=200,
    ...                           generator=0)
    >>> exact = nngp(x, activation="relu", depth=1)
    >>> bool((est["nngp_features"].mean - exact).abs() < 6 * est["nngp_features"].stderr)
    True
    """
    fn = "mfteach.kernels.monte_carlo_kernels"
    args = _check_mc(fn, x1, x2, activation, depth, width, n_samples, weight_var, bias_var,
                     generator, batch_size)
    count, mean, m2 = 0, {}, {}
    with torch.no_grad():
        for batch in _batches(*args):
            for k, v in batch.items():
                nb = v.shape[0]
                bm = v.mean(0)
                bm2 = ((v - bm) ** 2).sum(0)
                if count == 0:
                    mean[k], m2[k] = bm, bm2
                else:
                    delta = bm - mean[k]
                    tot = count + nb
                    mean[k] = mean[k] + delta * (nb / tot)
                    m2[k] = m2[k] + bm2 + delta * delta * (count * nb / tot)
            count += nb
    _check_finite_kernels(fn, tuple(mean.values()) + tuple(m2.values()), x1, args[4], args[5],
                          args[3])
    return {k: MCEstimate(mean=mean[k], stderr=(m2[k] / (count - 1)).sqrt() / math.sqrt(count),
                          n_samples=count) for k in mean}


for _f in (sample_network_kernels, monte_carlo_kernels):
    _f.__doc__ = (_f.__doc__ or "").replace("{params}", _MC_PARAMS)
del _f
