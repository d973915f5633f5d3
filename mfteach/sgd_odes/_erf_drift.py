r"""The erf drift terms of the high-dimensional ODE, computed from their structure.

For :math:`g(u) = \operatorname{erf}(u/\sqrt2)` and :math:`\mathcal E_0 = \sum_a c_a g(z_a)`
over the :math:`n = p + k` preactivations :math:`z \sim N(0, \Omega)`, the ODE needs

.. math::

    A_{ib} = \sum_a c_a I_3(\lambda_i, z_b, z_a),\qquad
    V_{ij} = \sum_{ab} c_a c_b I_4(\lambda_i, \lambda_j, z_a, z_b),\qquad
    N_{ij} = \mathbb E[g'(\lambda_i) g'(\lambda_j)].

Generic code (:func:`mfteach.sgd_odes._rhs._erf_A`, ``_erf_var``) gathers a 3x3 or 4x4
covariance block per term and evaluates :func:`mfteach.gaussian.erf_I3`/``erf_I4`` on each:
:math:`p^2 n^2` blocks of 16 numbers. Here the closed forms are factored instead.

* :math:`I_3`: with :math:`D_{ia} = [(1 + \Omega_{ii})(1 + \Omega_{aa}) - \Omega_{ia}^2]^{1/2}`
  and :math:`R_{ia} = c_a / D_{ia}`,

  .. math:: A_{ib} = \tfrac2\pi\Big[(R\Omega)_{ib} - \frac{\Omega_{ib}}{1 + \Omega_{ii}}
            \sum_a R_{ia}\Omega_{ia}\Big],

  one :math:`p \times n` elementwise pass and one matrix product.
* :math:`I_4`: its determinant :math:`L_4` depends on :math:`(i, j)` only, :math:`L_1` and
  :math:`L_2` on :math:`(i, j, a)`, and only the arcsine's numerator :math:`L_0` on all four
  indices; :math:`I_4` is symmetric under :math:`i \leftrightarrow j` and
  :math:`a \leftrightarrow b`, so :math:`p(p+1)/2 \cdot n(n+1)/2` arcsines suffice (a quarter of
  the generic count).

Two implementations of the same formulas: a compiled loop (numba, CPU, used when no autograd is
asked for) and vectorised torch (any device, differentiable; memory bounded by chunking over
the pairs :math:`i \le j`). Both are tested against the generic code and against Monte-Carlo
integrals (``tests/test_sgd_odes_erf_drift.py``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

try:  # numba is a dependency; without it (an unsupported Python) the torch path serves
    import numba
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None

_PI = math.pi
_CHUNK_ELEMS = 2**22  # elements of one (pairs, n, n) temporary of the torch path

#: Work (batch x p^2 x n^2) above which the compiled kernel runs its batch and pairs in
#: parallel threads; below it the thread start-up costs more than it saves.
PARALLEL_WORK = 200_000


def _kernel_impl(Om, p, need_var, A, V, N):  # pragma: no cover - compiled by numba
    """Fill A (B, p, n), V and N (B, p, p) from Om (B, n, n); c_a = -1/p or 1/k."""
    B, n = Om.shape[0], Om.shape[1]
    k = n - p
    npair = p * (p + 1) // 2
    two_pi = 2.0 / _PI
    four_pi2 = 4.0 / (_PI * _PI)
    for t in numba.prange(B * (npair + 1)):
        b, job = t // (npair + 1), t % (npair + 1)
        O = Om[b]
        if job == npair:  # the I3 sums
            R = np.empty(n)
            for i in range(p):
                a1 = 1.0 + O[i, i]
                s = 0.0
                for a in range(n):
                    ca = -1.0 / p if a < p else 1.0 / k
                    R[a] = ca / math.sqrt(a1 * (1.0 + O[a, a]) - O[i, a] * O[i, a])
                    s += R[a] * O[i, a]
                s /= a1
                for col in range(n):
                    acc = 0.0
                    for a in range(n):
                        acc += R[a] * O[a, col]
                    A[b, i, col] = two_pi * (acc - O[i, col] * s)
            continue
        if not need_var:
            continue
        # pair index job -> (i, j) with i <= j, row by row
        i = 0
        rem = job
        while rem >= p - i:
            rem -= p - i
            i += 1
        j = i + rem
        ai, aj, qij = 1.0 + O[i, i], 1.0 + O[j, j], O[i, j]
        l4 = ai * aj - qij * qij
        r = np.empty(n)
        for a in range(n):
            oia, oja = O[i, a], O[j, a]
            l1 = l4 * (1.0 + O[a, a]) - oja * oja * ai - oia * oia * aj + 2.0 * qij * oia * oja
            r[a] = 1.0 / math.sqrt(l1)
        S = 0.0
        for a in range(n):
            oia, oja = O[i, a], O[j, a]
            ca = -1.0 / p if a < p else 1.0 / k
            row = 0.0
            for col in range(a, n):
                oib, ojb = O[i, col], O[j, col]
                l0 = (l4 * O[a, col] - ai * oja * ojb - aj * oia * oib
                      + qij * (oia * ojb + oib * oja))
                x = l0 * r[a] * r[col]
                x = min(1.0, max(-1.0, x))
                cb = -1.0 / p if col < p else 1.0 / k
                w = cb if col == a else 2.0 * cb
                row += w * math.asin(x)
            S += ca * row
        rs = 1.0 / math.sqrt(l4)
        V[b, i, j] = four_pi2 * rs * S
        V[b, j, i] = V[b, i, j]
        N[b, i, j] = two_pi * rs
        N[b, j, i] = N[b, i, j]


if numba is not None:
    _serial = numba.njit(cache=True, nogil=True)(_kernel_impl)
    _parallel = numba.njit(cache=True, nogil=True, parallel=True)(_kernel_impl)


def _functorch_wrapped(x: Tensor) -> bool:
    f = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return bool(f(x)) if f is not None else False


def use_compiled(Om: Tensor) -> bool:
    """Whether :func:`erf_drift` takes the compiled path for ``Om``: numba present, a CPU
    tensor, and no gradient asked for (autograd and ``torch.func`` need the torch path)."""
    return (numba is not None and Om.device.type == "cpu"
            and not (torch.is_grad_enabled() and Om.requires_grad)
            and not _functorch_wrapped(Om))


def _compiled_np(Om: Tensor, p: int, need_var: bool):
    """The compiled kernel on ``Om`` flattened to (B, n, n) float64: numpy (A, V, N)."""
    n = Om.shape[-1]
    O = np.ascontiguousarray(Om.detach().reshape(-1, n, n).numpy(), dtype=np.float64)
    B = O.shape[0]
    A = np.empty((B, p, n))
    m = p if need_var else 0
    V, N = np.zeros((B, m, m)), np.zeros((B, m, m))
    work = B * p * p * n * n if need_var else B * p * n * n
    if work >= PARALLEL_WORK and torch.get_num_threads() > 1:
        numba.set_num_threads(min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
        _parallel(O, p, need_var, A, V, N)
    else:
        _serial(O, p, need_var, A, V, N)
    return A, V, N


def _back(x: np.ndarray, like: Tensor) -> Tensor:
    """A kernel output as a tensor of ``like``'s dtype with its leading (batch) axes."""
    return torch.from_numpy(x).to(like.dtype).reshape(*like.shape[:-2], *x.shape[1:])


def _coefficients(p: int, n: int, like: Tensor) -> Tensor:
    c = torch.full((n,), 1.0 / (n - p), dtype=like.dtype, device=like.device)
    c[:p] = -1.0 / p
    return c


def _torch_A(Om: Tensor, p: int, c: Tensor) -> Tensor:
    dg = torch.diagonal(Om, dim1=-2, dim2=-1)
    a1 = 1 + dg[..., :p]  # (..., p)
    U = Om[..., :p, :]  # Omega_ia, (..., p, n)
    R = (a1[..., :, None] * (1 + dg[..., None, :]) - U * U).rsqrt() * c
    s = (R * U).sum(-1) / a1
    return (2 / _PI) * (R @ Om - U * s[..., :, None])


def erf_A_columns(Om: Tensor, p: int, c: Tensor, cols: Tensor) -> Tensor:
    r""":math:`A_{i, b} = \sum_a c_a I_3(z_i, z_b, z_a)` for the columns ``b = cols[i, :]``,
    the error :math:`\mathcal E_0` involving the first ``len(c)`` entries of :math:`z \sim
    N(0, \Omega)` only (``Om`` may be augmented, as for the mean-field ODE's
    :math:`\lambda^\perp`). Same numbers as the generic :func:`._rhs._erf_A`; shape
    ``(..., p, cols.shape[1])``."""
    n = c.shape[0]
    dg = torch.diagonal(Om, dim1=-2, dim2=-1)
    a1 = 1 + dg[..., :p]
    U = Om[..., :p, :n]
    R = (a1[..., :, None] * (1 + dg[..., None, :n]) - U * U).rsqrt() * c
    s = (R * U).sum(-1) / a1
    full = (2 / _PI) * (R @ Om[..., :n, :] - Om[..., :p, :] * s[..., :, None])
    return torch.gather(full, -1, cols.expand(*full.shape[:-2], *cols.shape))


def _outer(u: Tensor, v: Tensor) -> Tensor:
    return u[..., :, None] * v[..., None, :]


def _torch_var(Om: Tensor, p: int, c: Tensor) -> tuple[Tensor, Tensor]:
    n = Om.shape[-1]
    iu = torch.triu_indices(p, p, device=Om.device)
    dg = torch.diagonal(Om, dim1=-2, dim2=-1)
    a = 1 + dg[..., :p]
    Q = Om[..., :p, :p]
    l4 = a[..., :, None] * a[..., None, :] - Q * Q  # (..., p, p)
    step = max(1, _CHUNK_ELEMS // (n * n * max(1, Om[..., 0, 0].numel())))
    parts = []
    for s in range(0, iu.shape[1], step):
        ii, jj = iu[0, s:s + step], iu[1, s:s + step]
        Ui, Uj = Om[..., ii, :], Om[..., jj, :]  # (..., m, n)
        ai, aj = a[..., ii, None], a[..., jj, None]
        qij = Q[..., ii, jj][..., None]
        L4 = l4[..., ii, jj][..., None]
        r = (L4 * (1 + dg[..., None, :]) - Uj * Uj * ai - Ui * Ui * aj
             + 2 * qij * Ui * Uj).rsqrt()  # (..., m, n)
        X, Y = Uj * ai.sqrt(), Ui * aj.sqrt()
        L0 = (L4[..., None] * Om[..., None, :, :] - _outer(X, X) - _outer(Y, Y)
              + qij[..., None] * (_outer(Ui, Uj) + _outer(Uj, Ui)))
        arg = (L0 * _outer(r, r)).clamp(-1.0, 1.0)
        parts.append((torch.asin(arg) @ c) @ c)  # (..., m)
    S = torch.cat(parts, -1)
    rs = l4[..., iu[0], iu[1]].rsqrt()
    V = torch.zeros_like(Q)
    V[..., iu[0], iu[1]] = (4 / _PI**2) * rs * S
    V[..., iu[1], iu[0]] = (4 / _PI**2) * rs * S
    return V, (2 / _PI) * l4.rsqrt()


def erf_drift(Om: Tensor, p: int, need_var: bool, *, compiled: bool | None = None
              ) -> tuple[Tensor, Tensor | None, Tensor | None]:
    r"""``(A, V, N)`` of the module docstring from :math:`\Omega` of shape ``(..., n, n)``
    (students first); ``V, N`` are ``None`` unless ``need_var``.

    ``compiled=None`` picks the compiled loop where :func:`use_compiled` allows it; ``False``
    forces the torch path (tests and benchmarks compare the two). Unvalidated: the callers
    check :math:`\Omega`.
    """
    if compiled is None:
        compiled = use_compiled(Om)
    if compiled:
        A, V, N = _compiled_np(Om, p, need_var)
        return (_back(A, Om), *((_back(V, Om), _back(N, Om)) if need_var else (None, None)))
    c = _coefficients(p, Om.shape[-1], Om)
    A = _torch_A(Om, p, c)
    if not need_var:
        return A, None, None
    V, N = _torch_var(Om, p, c)
    return A, V, N


def erf_rhs(Om: Tensor, p: int, gamma: float, delta: float, regime: str,
            *, compiled: bool | None = None) -> tuple[Tensor, Tensor]:
    r"""``(dQ, dM)`` of the erf ODE (see :func:`mfteach.sgd_odes.ode_rhs`): :math:`\dot M =
    A_{:, p:}`, :math:`\dot Q = A_{:, :p} + A_{:, :p}^\top` plus :math:`\frac\gamma p(V +
    \Delta N)` (``"high_d"``), :math:`\frac\gamma p\Delta N` (``"gf_noise"``) or nothing
    (``"gf"``). The compiled path combines the terms in numpy (a few microseconds at small
    ``p``, where each torch operation costs as much as the kernel)."""
    if compiled is None:
        compiled = use_compiled(Om)
    high_d = regime == "high_d"
    noise = regime == "gf_noise" and delta > 0
    g = gamma / p
    if not compiled:
        A, V, N = erf_drift(Om, p, high_d or noise, compiled=False)
        dQ = A[..., :, :p] + A[..., :, :p].mT
        if high_d:
            dQ = dQ + g * (V + delta * N)
        elif noise:
            dQ = dQ + (g * delta) * N
        return dQ, A[..., :, p:]
    A, V, N = _compiled_np(Om, p, high_d)
    dQ = A[:, :, :p] + A[:, :, :p].transpose(0, 2, 1)
    if high_d:
        dQ += g * (V + delta * N)
    elif noise:
        dq = np.diagonal(Om.detach().reshape(-1, *Om.shape[-2:]).numpy()[:, :p, :p],
                         axis1=1, axis2=2).astype(np.float64)
        Q = Om.detach().reshape(-1, *Om.shape[-2:]).numpy()[:, :p, :p].astype(np.float64)
        l4 = (1 + dq[:, :, None]) * (1 + dq[:, None, :]) - Q * Q
        dQ += (g * delta * 2 / _PI) / np.sqrt(l4)
    return _back(dQ, Om), _back(np.ascontiguousarray(A[:, :, p:]), Om)


def i4_count(p: int, k: int, *, structured: bool = True) -> int:
    """The :math:`I_4` (arcsine) evaluations of one erf right-hand side: ``p(p+1)/2 *
    n(n+1)/2`` here, ``p^2 n^2`` for the generic per-block code."""
    n = p + k
    return p * (p + 1) // 2 * n * (n + 1) // 2 if structured else p * p * n * n
