r"""Overlaps (sufficient statistics) of the teacher-student committee, and initialisations.

The student has first-layer weights :math:`W \in \mathbb R^{p\times d}`, the teacher
:math:`W^* \in \mathbb R^{k\times d}`. With inputs :math:`x \sim N(0, I_d/d)` the
preactivations :math:`(\lambda, \lambda^*) = (Wx, W^*x)` are Gaussian with covariance

.. math::

    \Omega = \begin{pmatrix} Q & M \\ M^\top & P\end{pmatrix},\qquad
    Q = \frac{WW^\top}{d},\quad M = \frac{W W^{*\top}}{d},\quad P = \frac{W^*W^{*\top}}{d},

so the population risk and the SGD drift depend on the weights only through :math:`\Omega`
(Arnaboldi et al. 2023, arXiv 2302.05882, Sec. 2 "Setting").
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
from ..device import as_generator, resolve_device, resolve_dtype

__all__ = [
    "Overlaps",
    "overlaps",
    "omega",
    "init_weights",
    "weights_from_overlaps",
    "teacher_cosines",
    "plateau_overlaps",
    "plateau_risk",
]


@dataclass(frozen=True)
class Overlaps:
    r"""The overlaps :math:`(Q, M, P)` of a student and a teacher.

    Attributes
    ----------
    Q : Tensor, shape (..., p, p)
        Student-student overlap :math:`WW^\top/d`.
    M : Tensor, shape (..., p, k)
        Student-teacher overlap :math:`WW^{*\top}/d`.
    P : Tensor, shape (..., k, k)
        Teacher-teacher overlap :math:`W^*W^{*\top}/d`.
    """

    Q: Tensor
    M: Tensor
    P: Tensor


#: Rounding slack of the overlap checks, in units of ``n * eps * max|Omega|`` (n = p + k):
#: covers the rounding of Gram matrices ``W W^T / d`` (dot products of length up to ~256**2
#: accumulate about ``sqrt(d) eps`` relative error) and of an eigenvalue solver.
PSD_SLACK = 256


def psd_tol(Om: Tensor) -> Tensor:
    """Absolute tolerance per matrix, shape (...): ``PSD_SLACK * n * eps * max|Omega|``."""
    eps = torch.finfo(Om.dtype).eps
    return PSD_SLACK * Om.shape[-1] * eps * Om.abs().amax(dim=(-2, -1))


def min_eig_excess(Om: Tensor, tol: Tensor) -> Tensor:
    """How far below ``-tol`` the smallest eigenvalue of each (symmetric) matrix lies, (...)."""
    return -torch.linalg.eigvalsh(Om)[..., 0] - tol


def check_psd(Q: Tensor, M: Tensor, P: Tensor, fn: str,
              names: tuple[str, str, str] = ("Q", "M", "P")) -> None:
    r"""Refuse overlaps that no weights have: :math:`Q`, :math:`P` symmetric and
    :math:`\Omega = [[Q, M], [M^\top, P]]` positive semi-definite, within ``psd_tol``.

    Blames ``Q`` (resp. ``P``) when it is asymmetric or not PSD by itself, else ``M``.
    """
    if Q.device.type == "meta" or Q.numel() == 0:
        return
    with torch.no_grad():
        Om = omega_raw(Q, M, P)
        tol = psd_tol(Om)
        for X, name in ((Q, names[0]), (P, names[2])):
            asym = (X - X.mT).abs().amax(dim=(-2, -1))
            if bool((asym > tol).any()):
                fail(name, fn, "a symmetric matrix (an overlap matrix W W^T / d)", X,
                     hint=f"Largest |{name} - {name}.mT| = {float(asym.max()):.3g} "
                          f"(tolerance {float(tol.max()):.3g}).")
        excess = min_eig_excess(Om, tol)
        if not bool((excess > 0).any()):
            return
        for X, name in ((Q, names[0]), (P, names[2])):
            ev = torch.linalg.eigvalsh(X)[..., 0]
            if bool((ev < -tol).any()):
                fail(name, fn, "positive semi-definite (an overlap matrix W W^T / d)", X,
                     hint=f"Its smallest eigenvalue is {float(ev.min()):.3g} (tolerance "
                          f"{float(tol.max()):.3g}).")
        ev = torch.linalg.eigvalsh(Om)[..., 0]
        fail(names[1], fn, f"such that Omega = [[{names[0]}, {names[1]}], [{names[1]}^T, "
             f"{names[2]}]] is positive semi-definite (overlaps of real weights: "
             f"|M_ir| <= sqrt(Q_ii P_rr) and more)", M,
             hint=f"Smallest eigenvalue of Omega: {float(ev.min()):.3g} (tolerance "
                  f"{float(tol.max()):.3g}).")


def check_overlaps(Q, M, P, fn: str, names: tuple[str, str, str] = ("Q", "M", "P"),
                   psd: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """Check types, shapes, dtypes and devices of (Q, M, P) (and, with ``psd``, that they are
    overlaps of real weights, :func:`check_psd`); broadcast their leading axes.

    ``names`` are the caller's parameter names (e.g. ``("Q0", "M0", "P")``).
    """
    nq, nm, npp = names
    check_tensor(Q, nq, fn)
    check_tensor(M, nm, fn)
    check_tensor(P, npp, fn)
    check_same_device_dtype(fn, **{nq: Q, nm: M, npp: P})
    if Q.ndim < 2 or Q.shape[-1] != Q.shape[-2]:
        fail(nq, fn, "a tensor of shape (..., p, p)", Q)
    p = Q.shape[-1]
    if M.ndim < 2 or M.shape[-2] != p:
        fail(nm, fn, f"a tensor of shape (..., p, k) with p = {p} (the size of {nq!r})", M)
    k = M.shape[-1]
    if P.ndim < 2 or P.shape[-2:] != (k, k):
        fail(npp, fn, f"a tensor of shape (..., k, k) with k = {k} (the columns of {nm!r})",
             P)
    try:
        lead = torch.broadcast_shapes(Q.shape[:-2], M.shape[:-2], P.shape[:-2])
    except RuntimeError:
        fail(nm, fn, f"a tensor whose leading (batch) axes broadcast with those of {nq!r} and "
             f"{npp!r}", M)
    out = (Q.expand(*lead, p, p), M.expand(*lead, p, k), P.expand(*lead, k, k))
    if psd:
        check_psd(*out, fn, names)
    return out


def overlaps(W: Tensor, W_star: Tensor) -> Overlaps:
    r"""Overlaps :math:`Q = WW^\top/d`, :math:`M = WW^{*\top}/d`, :math:`P = W^*W^{*\top}/d`.

    Parameters
    ----------
    W : Tensor, shape (..., p, d)
        Student first-layer weights (one row per hidden unit).
    W_star : Tensor, shape (..., k, d)
        Teacher weights; leading axes broadcast with those of ``W``.

    Returns
    -------
    Overlaps
        With ``Q (..., p, p)``, ``M (..., p, k)``, ``P (..., k, k)``.

    Raises
    ------
    ValueError
        If the shapes do not match, an entry is NaN or inf, or the tensors live on different
        devices.
    TypeError
        If a tensor is not floating point (float32 or float64) or the dtypes differ.

    Notes
    -----
    Arnaboldi et al. (2023), arXiv 2302.05882, Sec. 2, the sufficient statistics
    :math:`\Omega`. Used in the book in chapter 04 (one-pass SGD and its ODEs).

    Examples
    --------
    >>> import torch
    >>> W = torch.eye(2, 4, dtype=torch.float64) * 2
    >>> overlaps(W, W[:1]).M
    tensor([[1.],
            [0.]], dtype=torch.float64)
    """
    fn = "mfteach.sgd_odes.overlaps"
    check_tensor(W, "W", fn)
    check_tensor(W_star, "W_star", fn)
    check_same_device_dtype(fn, W=W, W_star=W_star)
    if W.ndim < 2:
        fail("W", fn, "a tensor of shape (..., p, d)", W)
    if W_star.ndim < 2:
        fail("W_star", fn, "a tensor of shape (..., k, d)", W_star)
    if W.shape[-1] != W_star.shape[-1]:
        fail("W_star", fn, f"a tensor of shape (..., k, d) with the d = {W.shape[-1]} of 'W' "
             f"(the input dimension of 'W' and 'W_star' must agree)", W_star)
    try:
        torch.broadcast_shapes(W.shape[:-2], W_star.shape[:-2])
    except RuntimeError:
        fail("W_star", fn, "a tensor whose leading (batch) axes broadcast with those of 'W'",
             W_star)
    d = W.shape[-1]
    Q = W @ W.mT / d
    M = W @ W_star.mT / d
    P = W_star @ W_star.mT / d
    return Overlaps(Q=Q, M=M, P=P)


def omega(Q: Tensor, M: Tensor, P: Tensor) -> Tensor:
    r"""The covariance :math:`\Omega = [[Q, M], [M^\top, P]]` of :math:`(\lambda, \lambda^*)`.

    Parameters
    ----------
    Q, M, P : Tensor, shapes (..., p, p), (..., p, k), (..., k, k)

    Returns
    -------
    Tensor, shape (..., p + k, p + k)

    Raises
    ------
    ValueError
        Inconsistent shapes, non-finite entries, or overlaps that no weights have: ``Q`` or
        ``P`` asymmetric, or :math:`\Omega` not positive semi-definite, beyond a rounding
        tolerance of ``256 (p + k) eps max|Omega|`` (the argument to blame is named).
    TypeError
        Not a float32/float64 tensor, or dtypes that differ.

    Examples
    --------
    >>> import torch
    >>> omega(torch.eye(2), torch.zeros(2, 1), torch.ones(1, 1)).shape
    torch.Size([3, 3])
    """
    Q, M, P = check_overlaps(Q, M, P, "mfteach.sgd_odes.omega")
    return omega_raw(Q, M, P)


def omega_raw(Q: Tensor, M: Tensor, P: Tensor) -> Tensor:
    """:func:`omega` without validation (inner loops)."""
    top = torch.cat([Q, M], dim=-1)
    bottom = torch.cat([M.mT, P], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def _random_orthonormal(n_runs: int, d: int, r: int, g: torch.Generator, device, dtype):
    """(n_runs, r, d) with orthonormal rows (QR of a Gaussian matrix, signs fixed)."""
    G = torch.randn(n_runs, d, r, generator=g, device=device, dtype=dtype)
    O, R = torch.linalg.qr(G)  # (B, d, r)
    s = torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))
    s = torch.where(s == 0, torch.ones_like(s), s)
    return (O * s.unsqueeze(-2)).mT


def init_weights(p: int, k: int, d: int, *, n_runs: int = 1, orthogonal_teacher: bool = True,
                 generator: torch.Generator | int, device=None,
                 dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    r"""Random initialisation of ``n_runs`` independent student/teacher pairs.

    Student entries are i.i.d. :math:`N(0, 1)`, so :math:`Q_{ii} \approx 1` and
    :math:`M_{ir} = O(d^{-1/2})`. The teacher has orthonormal rows scaled by :math:`\sqrt d`,
    so :math:`P = I_k` exactly (``orthogonal_teacher=True``, needs :math:`k \le d`), or i.i.d.
    :math:`N(0, 1)` entries.

    Parameters
    ----------
    p, k, d : int
        Student width, teacher width, input dimension.
    n_runs : int, keyword-only, default 1
        Number of independent pairs (leading axis of the outputs).
    orthogonal_teacher : bool, keyword-only, default True
    generator : torch.Generator or int, keyword-only
    device, dtype : keyword-only
        Default CPU, float64.

    Returns
    -------
    W : Tensor, shape (n_runs, p, d)
    W_star : Tensor, shape (n_runs, k, d)

    Raises
    ------
    ValueError
        If a size is < 1, ``k > d`` with an orthogonal teacher, or the weights would not fit
        the memory limit (``MFTEACH_MAX_BYTES``, 32 GiB by default; the argument that makes
        them large is named).
    TypeError
        If a size is not an int, or ``generator`` not an int seed or a ``torch.Generator``.

    Notes
    -----
    As in the authors' code ``RandomNormalInitialConditions(orth_teacher=True)`` (IdePHICS/
    DimensionlessDynamicsSGD), described in arXiv 2302.05882, Sec. 4. Used in chapter 04.

    Examples
    --------
    >>> W, Ws = init_weights(3, 2, 50, n_runs=4, generator=0)
    >>> W.shape, Ws.shape
    (torch.Size([4, 3, 50]), torch.Size([4, 2, 50]))
    >>> bool(torch.allclose(overlaps(W, Ws).P, torch.eye(2, dtype=torch.float64)))
    True
    """
    fn = "mfteach.sgd_odes.init_weights"
    p, k, d, n_runs = check_sizes(p, k, d, n_runs, fn)
    check_bool(orthogonal_teacher, "orthogonal_teacher", fn)
    if orthogonal_teacher and k > d:
        fail("k", fn, f"<= d = {d} when orthogonal_teacher=True", k)
    dt = resolve_dtype(dtype, fn)
    check_init_budget(p, k, d, n_runs, torch.finfo(dt).bits // 8, fn)
    dev = resolve_device(device, fn)
    g = as_generator(generator, dev, fn)
    W = torch.randn(n_runs, p, d, generator=g, device=dev, dtype=dt)
    if orthogonal_teacher:
        W_star = _random_orthonormal(n_runs, d, k, g, dev, dt) * math.sqrt(d)
    else:
        W_star = torch.randn(n_runs, k, d, generator=g, device=dev, dtype=dt)
    return W, W_star


def check_sizes(p, k, d, n_runs, fn: str) -> tuple[int, int, int, int]:
    """Validate the student/teacher widths, the dimension and the number of runs (ints >= 1)."""
    return (check_int(p, "p", fn, min=1), check_int(k, "k", fn, min=1),
            check_int(d, "d", fn, min=1), check_int(n_runs, "n_runs", fn, min=1))


def check_init_budget(p: int, k: int, d: int, n_runs: int, itemsize: int, fn: str,
                      d_name: str = "d") -> None:
    """Refuse initialisations (and the runs that follow them) beyond the memory limit.

    The weights take ``n_runs (p + k) d`` numbers; the QR of the teacher and one SGD block
    (``simulate_sgd``) a few times more: ``4 n_runs (p + k) d`` numbers in all. Each size is
    checked alone first (so that the message names the one that is absurd), then together.
    """
    per = 4 * itemsize
    sizes = {d_name: d, "p": p, "k": k, "n_runs": n_runs}
    for name, value in sizes.items():
        check_budget(name, fn, value, nbytes=per * value)
    # together: blame the largest factor of n_runs (p + k) d
    name = max((d_name, "p", "n_runs"), key=lambda n: sizes[n] + (k if n == "p" else 0))
    check_budget(name, fn, sizes[name], nbytes=per * n_runs * (p + k) * d)


def weights_from_overlaps(Q: Tensor, M: Tensor, P: Tensor, d: int, *,
                          generator: torch.Generator | int) -> tuple[Tensor, Tensor]:
    r"""Weights :math:`(W, W^*)` in dimension ``d`` whose overlaps are exactly ``(Q, M, P)``.

    With :math:`\Omega = LL^\top` (Cholesky) and :math:`O \in \mathbb R^{(p+k)\times d}` with
    random orthonormal rows, :math:`[W; W^*] = \sqrt d\, L O` has :math:`\Omega` as overlaps.
    The dimension-independence experiments start SGD in several ``d`` from *the same*
    overlaps this way.

    Parameters
    ----------
    Q, M, P : Tensor, shapes (..., p, p), (..., p, k), (..., k, k)
        A positive-definite :math:`\Omega`.
    d : int
        Input dimension, at least ``p + k``.
    generator : torch.Generator or int, keyword-only
        Draws the random rotation (on the device of ``Q``).

    Returns
    -------
    W : Tensor, shape (..., p, d)
    W_star : Tensor, shape (..., k, d)

    Raises
    ------
    ValueError
        If ``d < p + k``, :math:`\Omega` is not symmetric positive definite (the argument to
        blame is named; see :func:`omega` for the rounding tolerance), or the weights would not
        fit the memory limit (``MFTEACH_MAX_BYTES``).
    TypeError
        Not float32/float64 tensors, or ``generator`` not an int seed or a ``torch.Generator``.

    Notes
    -----
    Used in chapter 04 (Fig. 2 right of arXiv 2302.05882: dimension independence).

    Examples
    --------
    >>> import torch
    >>> Q, M, P = torch.eye(2, dtype=torch.float64), torch.zeros(2, 1, dtype=torch.float64), \
    ...     torch.eye(1, dtype=torch.float64)
    >>> W, Ws = weights_from_overlaps(Q, M, P, 10, generator=0)
    >>> bool(torch.allclose(overlaps(W, Ws).Q, Q))
    True
    """
    fn = "mfteach.sgd_odes.weights_from_overlaps"
    Q, M, P = check_overlaps(Q, M, P, fn)
    p, k = M.shape[-2], M.shape[-1]
    d = check_int(d, "d", fn, min=p + k)
    lead = Q.shape[:-2]
    n = int(math.prod(lead)) if lead else 1
    check_budget("d", fn, d, nbytes=4 * n * (p + k) * d * Q.element_size())
    g = as_generator(generator, Q.device, fn)
    Om = omega_raw(Q, M, P)
    L, info = torch.linalg.cholesky_ex(Om)
    if bool((info != 0).any()):
        fail("Q", fn, "part of a positive-definite overlap matrix Omega = [[Q, M], [M^T, P]]",
             Q, hint="It is only semi-definite (some students or teachers are linearly "
                     "dependent); perturb the overlaps (e.g. add 1e-6 * I to Q).")
    O = _random_orthonormal(n, d, p + k, g, Q.device, Q.dtype).reshape(*lead, p + k, d)
    V = math.sqrt(d) * L @ O
    return V[..., :p, :], V[..., p:, :]


def teacher_cosines(Q: Tensor, M: Tensor, P: Tensor) -> Tensor:
    r"""Cosines :math:`M_{ir}/\sqrt{Q_{ii}P_{rr}}` between student and teacher vectors.

    The coordinates of each normalised student vector along the teacher directions: the
    paper's Fig. 2 (left) plots them in the plane of two orthogonal teachers.

    Parameters
    ----------
    Q, M, P : Tensor, shapes (..., p, p), (..., p, k), (..., k, k)

    Returns
    -------
    Tensor, shape (..., p, k)

    Raises
    ------
    ValueError
        As :func:`omega` (invalid overlaps), or a zero student or teacher vector
        (:math:`Q_{ii} = 0` or :math:`P_{rr} = 0`: it has no direction).

    Examples
    --------
    >>> import torch
    >>> teacher_cosines(4 * torch.eye(1), torch.full((1, 1), 2.0), torch.eye(1))
    tensor([[1.]])
    """
    fn = "mfteach.sgd_odes.teacher_cosines"
    Q, M, P = check_overlaps(Q, M, P, fn)
    qd = torch.diagonal(Q, dim1=-2, dim2=-1)
    pd = torch.diagonal(P, dim1=-2, dim2=-1)
    if Q.device.type != "meta":
        tol = psd_tol(omega_raw(Q, M, P))
        for X, name, who in ((qd, "Q", "student"), (pd, "P", "teacher")):
            if X.numel() and bool((X <= tol.unsqueeze(-1)).any()):
                fail(name, fn, f"a matrix with a positive diagonal (a zero {who} vector has no "
                     f"direction, so its cosines are undefined)", X,
                     hint=f"Smallest diagonal entry: {float(X.min()):.3g}.")
    return M / (qd.clamp_min(0).sqrt().unsqueeze(-1) * pd.clamp_min(0).sqrt().unsqueeze(-2))


def plateau_overlaps(K: int, *, dtype: torch.dtype | None = None,
                     device=None) -> Overlaps:
    r"""The Saad-Solla symmetric fixed point for erf, :math:`p = k = K`, :math:`P = I`.

    Every student has :math:`M_{ir} = R = S = 1/\sqrt{K(2K-1)}` and
    :math:`Q_{ij} = Q = C = 1/(2K-1)`: all students coincide,
    :math:`w_i = \frac{1}{\sqrt{K(2K-1)}}\sum_r w^*_r`, and the network cannot tell the
    teachers apart. Gradient flow lingers here (the plateau) before it specialises.

    Parameters
    ----------
    K : int
        Student and teacher width, ``K >= 1``.

    Returns
    -------
    Overlaps

    Raises
    ------
    ValueError
        ``K < 1``, or ``K`` so large that the three ``K x K`` matrices exceed the memory limit.

    Notes
    -----
    Saad & Solla (1995), Phys. Rev. E 52, 4225, the symmetric subspace. Its population risk
    is :func:`plateau_risk`; the test-suite checks that the gradient-flow ODE vanishes there.
    Used in chapter 04.

    Examples
    --------
    >>> round(float(plateau_overlaps(2).Q[0, 1]), 6)
    0.333333
    """
    fn = "mfteach.sgd_odes.plateau_overlaps"
    K = check_int(K, "K", fn, min=1)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    check_budget("K", fn, K, nbytes=3 * K * K * torch.finfo(dt).bits // 8)
    q = 1.0 / (2 * K - 1)
    r = 1.0 / math.sqrt(K * (2 * K - 1))
    return Overlaps(Q=torch.full((K, K), q, dtype=dt, device=dev),
                    M=torch.full((K, K), r, dtype=dt, device=dev),
                    P=torch.eye(K, dtype=dt, device=dev))


def plateau_risk(K: int) -> float:
    r"""Excess risk on the Saad-Solla plateau: :math:`\frac12[\frac{1}{3K} -
    \frac2\pi\arcsin\frac{1}{2K}]`.

    Examples
    --------
    >>> round(plateau_risk(2), 7)
    0.0029027
    """
    K = check_int(K, "K", "mfteach.sgd_odes.plateau_risk", min=1)
    return 0.5 * (1 / (3 * K) - (2 / math.pi) * math.asin(1 / (2 * K)))


def _check_gamma_delta(gamma, delta, fn: str) -> tuple[float, float]:
    gamma = check_float(gamma, "gamma", fn, min=0.0)
    delta = check_float(delta, "delta", fn, min=0.0)
    return gamma, delta
