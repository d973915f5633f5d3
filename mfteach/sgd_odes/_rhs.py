r"""Population risk and the drift terms of the SGD ODEs, for "erf_sqrt2" and "square".

With the error :math:`\mathcal E = \frac1k\sum_r\sigma(\lambda^*_r) - \frac1p\sum_j
\sigma(\lambda_j) + \sqrt\Delta\, z` and :math:`(\lambda, \lambda^*) \sim N(0, \Omega)`, the
expectations that drive the overlaps (arXiv 2302.05882, Sec. 3, the ODE of Thm 1) are

.. math::

    \Psi^{(M)}_{ir} = \mathbb E[\sigma'(\lambda_i)\lambda^*_r\mathcal E],\quad
    \Psi^{(GF)}_{ij} = \mathbb E[(\sigma'(\lambda_i)\lambda_j + \sigma'(\lambda_j)\lambda_i)
    \mathcal E],\quad
    \Psi^{(Var)}_{ij} = \mathbb E[\sigma'(\lambda_i)\sigma'(\lambda_j)\mathcal E^2].

Writing the noiseless error as :math:`\mathcal E_0 = \sum_a c_a\sigma(\lambda_a)` over the
:math:`p + k` preactivations, :math:`c_a = -1/p` (student) or :math:`1/k` (teacher), every term is
a sum of Gaussian integrals: for :math:`g(u) = \operatorname{erf}(u/\sqrt2)` the closed forms
:func:`mfteach.gaussian.erf_I2`, ``erf_I3``, ``erf_I4`` evaluated on index tensors of
covariance blocks; for :math:`\sigma(u) = u^2` Isserlis' theorem with :math:`S = \Omega A`,
:math:`A = \operatorname{diag}(c)`:

.. math::

    \mathbb E[zz^\top\mathcal E_0] = \Omega\operatorname{tr}S + 2\Omega A\Omega,\qquad
    \mathbb E[zz^\top\mathcal E_0^2] = \Omega[(\operatorname{tr}S)^2 + 2\operatorname{tr}S^2]
    + 4\operatorname{tr}S\,\Omega A\Omega + 8\,\Omega A\Omega A\Omega,

which reproduce the paper's eq. (squared_ODE) and the :math:`\gamma/p` terms of the authors'
``SquaredActivationODE``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._checks import (
    check_budget,
    check_choice,
    check_float,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from ..device import as_generator, resolve_device, resolve_dtype
from ..gaussian import erf_I2, erf_I2_noise, erf_I3, erf_I4
from ._erf_drift import erf_A_columns, erf_drift, erf_rhs
from ._overlaps import PSD_SLACK, check_overlaps, omega, omega_raw

__all__ = [
    "ACTIVATIONS",
    "REGIMES",
    "Psi",
    "population_risk",
    "psi_terms",
    "psi_samples",
    "ode_rhs",
    "xi_quadrature",
    "mf_omega",
    "mf_rhs",
    "mf_risk",
]

#: Activations with closed-form ODEs: ``"erf_sqrt2"`` is :math:`\operatorname{erf}(u/\sqrt2)`
#: (the registry's name, :mod:`mfteach.activations`), ``"square"`` is :math:`u^2`.
ACTIVATIONS = ("erf_sqrt2", "square")

#: The paper's (and this package's former) name of ``"erf_sqrt2"``, still accepted here so that
#: older code keeps working; documented as legacy, since elsewhere ``"erf"`` is plain erf.
LEGACY_ERF = "erf"

#: Which :math:`\gamma/p` term the ODE for :math:`Q` keeps: ``"high_d"`` the full variance
#: term, ``"gf"`` none (classical gradient flow), ``"gf_noise"`` only the label-noise part.
REGIMES = ("high_d", "gf", "gf_noise")

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_MAX_BLOCK = 2**21  # covariance blocks per erf_I3/erf_I4 call (bounds memory)


def act(name: str, u: Tensor) -> Tensor:
    """sigma(u) for the chapter's activations."""
    return u * u if name == "square" else torch.erf(u * (1 / math.sqrt(2)))


def act_prime(name: str, u: Tensor) -> Tensor:
    """sigma'(u) for the chapter's activations."""
    return 2 * u if name == "square" else _SQRT_2_OVER_PI * torch.exp(-0.5 * u * u)


def coefficients(p: int, k: int, like: Tensor) -> Tensor:
    """c_a = -1/p (students) and 1/k (teachers): E_0 = sum_a c_a sigma(lambda_a)."""
    return torch.cat([torch.full((p,), -1.0 / p, dtype=like.dtype, device=like.device),
                      torch.full((k,), 1.0 / k, dtype=like.dtype, device=like.device)])


@dataclass(frozen=True)
class Psi:
    r"""The drift terms of the high-dimensional ODE at one :math:`\Omega`.

    Attributes
    ----------
    M : Tensor, shape (..., p, k)
        :math:`\Psi^{(M)} = \mathbb E[\sigma'(\lambda_i)\lambda^*_r\mathcal E]`.
    GF : Tensor, shape (..., p, p)
        :math:`\Psi^{(GF)}`, the gradient-flow drift of :math:`Q`.
    var : Tensor, shape (..., p, p)
        :math:`\Psi^{(Var)} = \mathbb E[\sigma'_i\sigma'_j\mathcal E^2]`, label noise included.
    noise : Tensor, shape (..., p, p)
        Its label-noise part :math:`\Delta\,\mathbb E[\sigma'(\lambda_i)\sigma'(\lambda_j)]`.
    """

    M: Tensor
    GF: Tensor
    var: Tensor
    noise: Tensor


def _check_activation(activation, fn: str) -> str:
    """The canonical name (``"erf_sqrt2"`` or ``"square"``); the legacy ``"erf"`` maps to
    ``"erf_sqrt2"``."""
    if isinstance(activation, str) and activation == LEGACY_ERF:
        return "erf_sqrt2"
    return check_choice(activation, "activation", fn, ACTIVATIONS)


def _chunked(fn, X: Tensor, per_item: int) -> Tensor:
    """Apply fn over the flattened leading axis of X in chunks bounding the block count."""
    lead = X.shape[:-2]
    Xf = X.reshape(-1, *X.shape[-2:])
    step = max(1, _MAX_BLOCK // max(per_item, 1))
    out = [fn(Xf[s:s + step]) for s in range(0, Xf.shape[0], step)]
    res = torch.cat(out, 0)
    return res.reshape(*lead, *res.shape[1:])


def _gather_blocks(Om: Tensor, idx: Tensor) -> Tensor:
    """Om (B, n, n), idx (..., m) -> covariance blocks (B, ..., m, m) (one index_select)."""
    n = Om.shape[-1]
    flat = (idx.unsqueeze(-1) * n + idx.unsqueeze(-2))  # (..., m, m)
    out = torch.index_select(Om.reshape(Om.shape[0], n * n), 1, flat.reshape(-1))
    return out.reshape(Om.shape[0], *flat.shape)


def _erf_A(Om: Tensor, bidx: Tensor, c: Tensor) -> Tensor:
    r"""A[i, j] = E[g'(z_i) z_{bidx[i, j]} E_0] = sum_a c_a I3(z_i, z_b, z_a), batched.

    Om : (..., N, N) covariance of the (possibly augmented) vector z; the error involves only
    its first len(c) entries. bidx : (p, nb) long. Returns (..., p, nb).
    """
    p, nb = bidx.shape
    n = c.shape[0]
    i = torch.arange(p, device=Om.device).view(p, 1, 1).expand(p, nb, n)
    b = bidx.view(p, nb, 1).expand(p, nb, n)
    a = torch.arange(n, device=Om.device).view(1, 1, n).expand(p, nb, n)
    idx = torch.stack([i, b, a], dim=-1)  # (p, nb, n, 3)

    def one(O):
        I3 = erf_I3(_gather_blocks(O, idx), validate=False)  # (B, p, nb, n)
        return I3 @ c

    return _chunked(one, Om, p * nb * n)


def _erf_var(Om: Tensor, p: int, c: Tensor) -> Tensor:
    """sum_{a,b} c_a c_b I4(z_i, z_j, z_a, z_b): (..., p, p)."""
    n = c.shape[0]
    ar_p = torch.arange(p, device=Om.device)
    ar_n = torch.arange(n, device=Om.device)
    shape = (p, p, n, n)
    idx = torch.stack([ar_p.view(p, 1, 1, 1).expand(shape), ar_p.view(1, p, 1, 1).expand(shape),
                       ar_n.view(1, 1, n, 1).expand(shape), ar_n.view(1, 1, 1, n).expand(shape)],
                      dim=-1)  # (p, p, n, n, 4)
    cc = c.view(n, 1) * c.view(1, n)

    def one(O):
        I4 = erf_I4(_gather_blocks(O, idx), validate=False)  # (B, p, p, n, n)
        return (I4 * cc).sum(dim=(-2, -1))

    return _chunked(one, Om, p * p * n * n)


def _square_moments(Om: Tensor, c: Tensor, second: bool):
    """E[z z^T E_0] and (if second) E[z z^T E_0^2], E[E_0^2] for sigma = u^2 (Isserlis)."""
    OA = Om * c  # Omega A (scales columns)
    trS = torch.diagonal(OA, dim1=-2, dim2=-1).sum(-1)[..., None, None]
    OAO = OA @ Om
    E1 = Om * trS + 2 * OAO
    if not second:
        return E1, None, None
    trS2 = (OA * OA.mT).sum(dim=(-2, -1))[..., None, None]  # tr(S S)
    E0sq = trS * trS + 2 * trS2
    E2 = Om * E0sq + 4 * trS * OAO + 8 * (OAO * c) @ Om
    return E1, E2, E0sq[..., 0, 0]


def population_risk(Q: Tensor, M: Tensor, P: Tensor, *, activation: str,
                    delta: float = 0.0) -> Tensor:
    r"""Population risk :math:`R(\Omega) = \frac12\mathbb E(f(x) - y)^2`, label noise included.

    * erf: :math:`R = \frac12[\frac1{k^2}\sum_{rs}I_2(P) - \frac2{pk}\sum_{jr}I_2(Q,M,P) +
      \frac1{p^2}\sum_{ij}I_2(Q)] + \frac\Delta2`, with the true expectation
      :math:`I_2` (:func:`mfteach.gaussian.erf_I2`);
    * square: :math:`R = \frac{(\operatorname{Tr}P)^2 + 2\operatorname{Tr}P^2}{2k^2} -
      \frac{\operatorname{Tr}P\operatorname{Tr}Q + 2\operatorname{Tr}MM^\top}{pk} +
      \frac{(\operatorname{Tr}Q)^2 + 2\operatorname{Tr}Q^2}{2p^2} + \frac\Delta2`.

    Parameters
    ----------
    Q, M, P : Tensor, shapes (..., p, p), (..., p, k), (..., k, k)
        Overlaps; leading axes broadcast.
    activation : {"erf_sqrt2", "square"}, keyword-only
    delta : float, keyword-only, default 0
        Label-noise variance :math:`\Delta`.

    Returns
    -------
    Tensor, shape (...)

    Raises
    ------
    ValueError
        Unknown activation, negative ``delta``, inconsistent shapes, or overlaps that no
        weights have (``Q``/``P`` asymmetric or :math:`\Omega` not positive semi-definite
        beyond rounding; see :func:`mfteach.sgd_odes.omega`): the risk would be meaningless
        (even negative).

    Notes
    -----
    arXiv 2302.05882, Sec. 2 (population risk) and eq. (risk_quadratic). At :math:`M = 0`,
    :math:`Q = I_p`, :math:`P = I_k` the erf excess risk is :math:`\frac16(\frac1k+\frac1p)`.
    Used in chapter 04.

    Examples
    --------
    >>> import torch
    >>> I = lambda n: torch.eye(n, dtype=torch.float64)
    >>> r = population_risk(I(3), torch.zeros(3, 2, dtype=torch.float64), I(2),
    ...                     activation="erf_sqrt2")
    >>> round(float(r), 6), round((1 / 2 + 1 / 3) / 6, 6)
    (0.138889, 0.138889)
    """
    fn = "mfteach.sgd_odes.population_risk"
    activation = _check_activation(activation, fn)
    delta = check_float(delta, "delta", fn, min=0.0)
    Q, M, P = check_overlaps(Q, M, P, fn)
    return _risk(omega(Q, M, P), Q.shape[-1], M.shape[-1], activation) + delta / 2


def _risk(Om: Tensor, p: int, k: int, activation: str) -> Tensor:
    """Excess risk 0.5 E[E_0^2] from Omega (..., n, n)."""
    c = coefficients(p, k, Om)
    if activation == "square":
        OA = Om * c
        trS = torch.diagonal(OA, dim1=-2, dim2=-1).sum(-1)
        return 0.5 * (trS * trS + 2 * (OA * OA.mT).sum(dim=(-2, -1)))
    dg = torch.diagonal(Om, dim1=-2, dim2=-1)
    I2 = erf_I2(dg.unsqueeze(-1), Om, dg.unsqueeze(-2), validate=False)
    return 0.5 * ((I2 @ c) * c).sum(-1)


def _psi(Om: Tensor, p: int, k: int, activation: str, delta: float, need_var: bool,
         reference: bool = False) -> Psi:
    """The drift terms; ``reference=True`` takes the generic per-block erf code (one
    :func:`mfteach.gaussian.erf_I4` per block, the baseline of ``benchmarks/bench_erf_rhs.py``
    and the tests' independent computation) instead of :mod:`._erf_drift`."""
    if activation != "square" and not reference:
        A, V, N = erf_drift(Om, p, need_var)
        GF = A[..., :, :p] + A[..., :, :p].mT
        if need_var:
            return Psi(M=A[..., :, p:], GF=GF, var=V + delta * N, noise=delta * N)
        return Psi(M=A[..., :, p:], GF=GF, var=torch.zeros_like(GF), noise=torch.zeros_like(GF))
    c = coefficients(p, k, Om)
    Q = Om[..., :p, :p]
    var = noise = None
    if activation == "square":
        E1, E2, _ = _square_moments(Om, c, need_var)
        psi_M = 2 * E1[..., :p, p:]
        GF = 4 * E1[..., :p, :p]
        if need_var:
            noise = 4 * delta * Q
            var = 4 * E2[..., :p, :p] + noise
    else:
        n = p + k
        bidx = torch.arange(n, device=Om.device).expand(p, n)
        A = _erf_A(Om, bidx, c)  # (..., p, n) = E[g'(l_i) z_b E_0]
        psi_M = A[..., :, p:]
        GF = A[..., :, :p] + A[..., :, :p].mT
        if need_var:
            dq = torch.diagonal(Q, dim1=-2, dim2=-1)
            noise = delta * erf_I2_noise(dq.unsqueeze(-1), Q, dq.unsqueeze(-2), validate=False)
            var = _erf_var(Om, p, c) + noise
    if not need_var:
        var = noise = torch.zeros_like(GF)
    return Psi(M=psi_M, GF=GF, var=var, noise=noise)


def psi_terms(Q: Tensor, M: Tensor, P: Tensor, *, activation: str,
              delta: float = 0.0) -> Psi:
    r"""The drift terms :math:`\Psi^{(M)}, \Psi^{(GF)}, \Psi^{(Var)}` and the noise part.

    Parameters
    ----------
    Q, M, P : Tensor, shapes (..., p, p), (..., p, k), (..., k, k)
    activation : {"erf_sqrt2", "square"}, keyword-only
    delta : float, keyword-only, default 0

    Returns
    -------
    Psi

    Raises
    ------
    ValueError
        As :func:`population_risk` (invalid overlaps included).

    Notes
    -----
    erf: :math:`\Psi^{(M)}_{ir} = \sum_a c_a I_3(\lambda_i, \lambda^*_r, z_a)`,
    :math:`\Psi^{(GF)}_{ij} = \sum_a c_a[I_3(\lambda_i,\lambda_j,z_a) + I_3(\lambda_j,
    \lambda_i, z_a)]`, :math:`\Psi^{(Var)}_{ij} = \sum_{ab}c_ac_bI_4(\lambda_i,\lambda_j,
    z_a,z_b) + \Delta\,\mathbb E[g'g']`, computed from the closed forms' structure
    (``mfteach/sgd_odes/_erf_drift.py``: the :math:`I_3` sums as one matrix product,
    :math:`p(p+1)/2\cdot n(n+1)/2` arcsines for :math:`\Psi^{(Var)}`, :math:`n = p + k`;
    compiled on the CPU, vectorised torch on CUDA and under autograd). square: the Isserlis
    forms of the module docstring.
    The Monte-Carlo twin is :func:`psi_samples`. arXiv 2302.05882, Sec. 3 (the
    high-dimensional ODE); used in chapter 04.

    Examples
    --------
    >>> import torch
    >>> I = lambda n: torch.eye(n, dtype=torch.float64)
    >>> psi = psi_terms(I(2), torch.zeros(2, 1, dtype=torch.float64), I(1), activation="square")
    >>> psi.M  # 2 (TrP/k - TrQ/p) M + 4 (MP/k - QM/p) = 0 at M = 0
    tensor([[0.],
            [0.]], dtype=torch.float64)
    """
    fn = "mfteach.sgd_odes.psi_terms"
    activation = _check_activation(activation, fn)
    delta = check_float(delta, "delta", fn, min=0.0)
    Q, M, P = check_overlaps(Q, M, P, fn)
    return _psi(omega(Q, M, P), Q.shape[-1], M.shape[-1], activation, delta, True)


def psi_samples(Q: Tensor, M: Tensor, P: Tensor, *, activation: str, delta: float = 0.0,
                n_samples: int, generator: torch.Generator | int) -> Psi:
    r"""Monte-Carlo samples of the integrands of :func:`psi_terms` (its numerical twin).

    Draws :math:`(\lambda, \lambda^*) \sim N(0, \Omega)` and :math:`z \sim N(0, 1)` and returns
    the per-sample values :math:`\sigma'(\lambda_i)\lambda^*_r\mathcal E`, etc.; their means
    estimate :class:`Psi` with standard error :math:`s/\sqrt n`.

    Parameters
    ----------
    Q, M, P : Tensor, shapes (p, p), (p, k), (k, k)
        One (unbatched), positive semi-definite :math:`\Omega` (checked as in :func:`omega`).
    activation : {"erf_sqrt2", "square"}, keyword-only
    delta : float, keyword-only, default 0
    n_samples : int, keyword-only
    generator : torch.Generator or int, keyword-only
        On the device of ``Q``.

    Returns
    -------
    Psi
        Each field has a leading axis of length ``n_samples``.

    Raises
    ------
    ValueError
        Invalid overlaps (as :func:`omega`), ``n_samples < 2``, or more samples than fit the
        memory limit (``MFTEACH_MAX_BYTES``).

    Examples
    --------
    >>> import torch
    >>> I = lambda n: torch.eye(n, dtype=torch.float64)
    >>> s = psi_samples(I(2), torch.zeros(2, 1, dtype=torch.float64), I(1), activation="erf_sqrt2",
    ...                 n_samples=10, generator=0)
    >>> s.var.shape
    torch.Size([10, 2, 2])
    """
    fn = "mfteach.sgd_odes.psi_samples"
    activation = _check_activation(activation, fn)
    delta = check_float(delta, "delta", fn, min=0.0)
    n_samples = check_int(n_samples, "n_samples", fn, min=2)
    Q, M, P = check_overlaps(Q, M, P, fn)
    if Q.ndim != 2:
        fail("Q", fn, "an unbatched (p, p) tensor", Q)
    p, k = M.shape
    # per sample: z (p + k), and ~8 fields of p (p + k) numbers with their temporaries
    check_budget("n_samples", fn, n_samples,
                 nbytes=n_samples * (p + k) * (1 + 8 * p) * Q.element_size())
    g = as_generator(generator, Q.device, fn)
    Om = omega_raw(Q, M, P)
    ev, V = torch.linalg.eigh(Om)
    L = V * ev.clamp_min(0).sqrt()  # PSD checked above: clamps only rounding
    z = torch.randn(n_samples, p + k, generator=g, device=Q.device, dtype=Q.dtype) @ L.mT
    xi = torch.randn(n_samples, generator=g, device=Q.device, dtype=Q.dtype)
    lam, lam_s = z[:, :p], z[:, p:]
    err = act(activation, lam_s).mean(-1) - act(activation, lam).mean(-1) + math.sqrt(
        delta) * xi  # (n,)
    dg = act_prime(activation, lam)  # (n, p)
    e = err[:, None, None]
    psi_M = dg[:, :, None] * lam_s[:, None, :] * e
    half = dg[:, :, None] * lam[:, None, :] * e
    GF = half + half.mT
    outer = dg[:, :, None] * dg[:, None, :]
    var = outer * e * e
    noise = delta * outer
    return Psi(M=psi_M, GF=GF, var=var, noise=noise)


def ode_rhs(Q: Tensor, M: Tensor, P: Tensor, *, activation: str, gamma: float,
            delta: float = 0.0, regime: str = "high_d") -> tuple[Tensor, Tensor]:
    r"""Right-hand side of the overlap ODE: :math:`(\dot Q, \dot M)` at time
    :math:`t = \nu\gamma/(pd)`.

    .. math::

        \dot M = \Psi^{(M)},\qquad
        \dot Q = \Psi^{(GF)} + \frac{\gamma}{p}\,\Psi^{(Var)}\ (\text{"high\_d"}),\quad
        \Psi^{(GF)}\ (\text{"gf"}),\quad
        \Psi^{(GF)} + \frac{\gamma}{p}\Delta\,\mathbb E[\sigma'\sigma']\ (\text{"gf\_noise"}).

    Parameters
    ----------
    Q, M, P : Tensor, shapes (..., p, p), (..., p, k), (..., k, k)
    activation : {"erf_sqrt2", "square"}, keyword-only
    gamma : float, keyword-only
        Raw SGD learning rate :math:`\gamma \ge 0` (enters only through :math:`\gamma/p`).
    delta : float, keyword-only, default 0
        Label-noise variance.
    regime : {"high_d", "gf", "gf_noise"}, keyword-only, default "high_d"

    Returns
    -------
    dQ : Tensor, shape (..., p, p)
    dM : Tensor, shape (..., p, k)

    Raises
    ------
    ValueError
        As :func:`population_risk` (invalid overlaps included), negative ``gamma``, unknown
        ``regime``.

    Notes
    -----
    arXiv 2302.05882: Sec. 3 (Thm 1, Veiga et al. 2022: the high-dimensional ODE),
    Sec. 4 (classical gradient-flow limit) and App. "Effect of noise" (GF-ODE-NOISE).
    :math:`P` is constant (the teacher does not move). Used in chapter 04.

    Examples
    --------
    >>> import torch
    >>> from mfteach.sgd_odes import plateau_overlaps
    >>> o = plateau_overlaps(2)  # a fixed point of gradient flow
    >>> dQ, dM = ode_rhs(o.Q, o.M, o.P, activation="erf_sqrt2", gamma=0.0, regime="gf")
    >>> float(dQ.abs().max()) < 1e-12 and float(dM.abs().max()) < 1e-12
    True
    """
    fn = "mfteach.sgd_odes.ode_rhs"
    activation = _check_activation(activation, fn)
    gamma = check_float(gamma, "gamma", fn, min=0.0)
    delta = check_float(delta, "delta", fn, min=0.0)
    regime = check_choice(regime, "regime", fn, REGIMES)
    Q, M, P = check_overlaps(Q, M, P, fn)
    return _rhs(omega(Q, M, P), Q.shape[-1], M.shape[-1], activation, gamma, delta, regime)


def _rhs(Om, p, k, activation, gamma, delta, regime, reference=False):
    if activation != "square" and not reference:
        return erf_rhs(Om, p, gamma, delta, regime)
    psi = _psi(Om, p, k, activation, delta, regime == "high_d", reference)
    dQ = psi.GF
    if regime == "high_d":
        dQ = dQ + (gamma / p) * psi.var
    elif regime == "gf_noise" and delta > 0:
        Q = Om[..., :p, :p]
        if activation == "square":
            noise = 4 * delta * Q
        else:
            dq = torch.diagonal(Q, dim1=-2, dim2=-1)
            noise = delta * erf_I2_noise(dq.unsqueeze(-1), Q, dq.unsqueeze(-2), validate=False)
        dQ = dQ + (gamma / p) * noise
    return dQ, psi.M


# --------------------------------------------------------------------------------------------
# Mean-field reduction: (M, q) with Q = M P^{-1} M^T + D_sqrt(q) Xi D_sqrt(q)
# --------------------------------------------------------------------------------------------

def xi_quadrature(d: int | None, k: int, *, n_nodes: int | None = None, dtype=torch.float64,
                  device=None) -> tuple[Tensor, Tensor]:
    r"""Nodes and weights for :math:`\mathbb E_\Xi`: :math:`\xi = \langle g, g'\rangle`, with
    :math:`g, g'` independent and uniform on :math:`S^{d-k-1}`.

    The density of :math:`\xi` is :math:`\propto (1-\xi^2)^{(d-k-3)/2}` on :math:`[-1, 1]`
    (mean 0, variance :math:`1/(d-k)`). With :math:`\xi = \cos\theta` it becomes
    :math:`\propto\sin^{d-k-2}\theta`, smooth in :math:`\theta`; the rule is Gauss-Legendre in
    :math:`\theta` on the window where the density is not negligible. ``d=None`` returns the
    single node :math:`\xi = 0` (the high-dimensional limit :math:`\Xi = I`).

    Parameters
    ----------
    d : int or None
        Input dimension, ``d - k >= 2``.
    k : int
        Teacher width.
    n_nodes : int, keyword-only, optional
        Default 24 when the window is all of :math:`[0, \pi]` (:math:`d - k \lesssim 28`),
        else 48 on :math:`\pi/2 \pm 8/\sqrt{d-k-2}`; moments are then exact to ~1e-12.

    dtype, device : keyword-only
        float32 or float64 (default float64); CPU by default.

    Returns
    -------
    nodes, weights : Tensor, shape (n,)
        Weights sum to 1.

    Raises
    ------
    ValueError
        ``d < 3``, ``k > d - 2``, ``n_nodes`` outside ``[1, 500]``, or an unknown device.
    TypeError
        Non-int sizes, or a dtype other than float32/float64.

    Examples
    --------
    >>> x, w = xi_quadrature(7, 2)  # E xi^2 = 1/(d - k)
    >>> round(float((w * x**2).sum()), 10)
    0.2
    """
    fn = "mfteach.sgd_odes.xi_quadrature"
    k = check_int(k, "k", fn, min=1)
    dtype = resolve_dtype(dtype, fn)
    device = resolve_device(device, fn)
    if d is not None:
        d = check_int(d, "d", fn, min=3)
        if d < k + 2:
            fail("k", fn, f"<= d - 2 = {d - 2} (xi lives on the sphere S^(d-k-1))", k)
    if n_nodes is not None:
        n_nodes = check_int(n_nodes, "n_nodes", fn, min=1, max=500)
    return _xi_rule(d, k, n_nodes, dtype, device)


def _xi_rule(d: int | None, k: int, n_nodes: int | None, dtype, device):
    """:func:`xi_quadrature` without validation."""
    if d is None:
        return (torch.zeros(1, dtype=dtype, device=device),
                torch.ones(1, dtype=dtype, device=device))
    m = d - k
    half = min(math.pi / 2, 8.0 / math.sqrt(max(m - 2, 1)))  # +-8 sd of theta
    if n_nodes is None:
        n_nodes = 24 if half == math.pi / 2 else 48
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    theta = math.pi / 2 + half * x
    logw = np.log(w) + (m - 2) * np.log(np.sin(theta))
    w = np.exp(logw - logw.max())
    w = w / w.sum()
    nodes = torch.as_tensor(np.cos(theta), dtype=dtype, device=device)
    return nodes, torch.as_tensor(w, dtype=dtype, device=device)


def mf_omega(M: Tensor, q: Tensor, P: Tensor, xi: Tensor | float = 0.0) -> Tensor:
    r""":math:`\tilde\Omega` with :math:`\tilde Q = MP^{-1}M^\top + D_{\sqrt q}\,\Xi\,
    D_{\sqrt q}`, all off-diagonal :math:`\Xi_{ij}` equal to ``xi``.

    Every term of the mean-field drift and risk involves at most one off-diagonal
    :math:`\Xi_{ij}`, so averaging over ``xi`` with :func:`xi_quadrature` gives
    :math:`\mathbb E_\Xi` exactly (up to quadrature error).

    Parameters
    ----------
    M : Tensor, shape (..., p, k)
    q : Tensor, shape (..., p)
        :math:`q_i = Q^\perp_{ii} \ge 0`.
    P : Tensor, shape (..., k, k)
    xi : Tensor of shape (N,) or float
        Off-diagonal value(s); a tensor adds an axis before the matrix axes.

    Returns
    -------
    Tensor, shape (..., [N,] p + k, p + k)

    Raises
    ------
    ValueError, TypeError
        As :func:`mf_rhs` (shapes, dtypes, devices, ``q >= 0``, ``P`` symmetric positive
        definite), and ``xi`` outside :math:`[-1, 1]` (it is a cosine).
    """
    fn = "mfteach.sgd_odes.mf_omega"
    M, q, P = check_mf(M, q, P, fn)
    if isinstance(xi, Tensor):
        check_tensor(xi, "xi", fn, ndim=(0, 1))
        check_same_device_dtype(fn, M=M, xi=xi)
        lo, hi = (float(xi.min()), float(xi.max())) if xi.numel() else (0.0, 0.0)
        if xi.numel() == 0 or lo < -1 or hi > 1:
            fail("xi", fn, "a non-empty tensor of values in [-1, 1] (cosines)", xi)
        xi = xi.reshape(-1)
    else:
        xi = check_float(xi, "xi", fn, min=-1.0, max=1.0)
    return _mf_omega(M, q, P, xi)


def _mf_omega(M: Tensor, q: Tensor, P: Tensor, xi: Tensor | float = 0.0) -> Tensor:
    """:func:`mf_omega` without validation."""
    p = M.shape[-2]
    MPinv = torch.linalg.solve(P, M.mT).mT  # M P^{-1}
    Qpar = MPinv @ M.mT
    s = q.clamp_min(0).sqrt()
    eye = torch.eye(p, dtype=M.dtype, device=M.device)
    if isinstance(xi, Tensor):
        Xi = xi.view(-1, 1, 1) * (1 - eye) + eye  # (N, p, p)
        Qt = Qpar.unsqueeze(-3) + s[..., None, :, None] * Xi * s[..., None, None, :]
        Mx = M.unsqueeze(-3).expand(*Qt.shape[:-2], *M.shape[-2:])
        Px = P.unsqueeze(-3).expand(*Qt.shape[:-2], *P.shape[-2:])
        return omega_raw(Qt, Mx, Px)
    Qt = Qpar + s[..., :, None] * (xi * (1 - eye) + eye) * s[..., None, :]
    return omega_raw(Qt, M, P.expand(*Qt.shape[:-2], *P.shape[-2:]))


def check_mf(M, q, P, fn: str, names: tuple[str, str, str] = ("M", "q", "P")):
    r"""Check the mean-field state ``(M, q, P)`` at the boundary of ``fn``; return it with
    ``q`` clamped at 0 where it is negative by rounding only.

    ``P`` must be symmetric positive definite (it is inverted), and
    :math:`q_i = (Q - MP^{-1}M^\top)_{ii} \ge 0` within ``PSD_SLACK * eps * scale``, the scale
    being :math:`Q_{ii} = (MP^{-1}M^\top)_{ii} + |q_i|`.
    """
    nm, nq, npp = names
    check_tensor(M, nm, fn)
    check_tensor(q, nq, fn)
    check_tensor(P, npp, fn)
    check_same_device_dtype(fn, **{nm: M, nq: q, npp: P})
    if M.ndim < 2:
        fail(nm, fn, "a tensor of shape (..., p, k)", M)
    p, k = M.shape[-2:]
    if q.ndim < 1 or q.shape[-1] != p:
        fail(nq, fn, f"a tensor of shape (..., p) with p = {p} (the rows of {nm!r})", q)
    if P.ndim < 2 or P.shape[-2:] != (k, k):
        fail(npp, fn, f"a tensor of shape (..., k, k) with k = {k} (the columns of {nm!r})",
             P)
    try:
        torch.broadcast_shapes(M.shape[:-2], q.shape[:-1], P.shape[:-2])
    except RuntimeError:
        fail(nq, fn, f"a tensor whose leading (batch) axes broadcast with those of {nm!r} and "
             f"{npp!r}", q)
    if M.device.type == "meta" or M.numel() == 0:
        return M, q, P
    with torch.no_grad():
        eps = torch.finfo(M.dtype).eps
        scaleP = P.abs().amax(dim=(-2, -1))
        tolP = PSD_SLACK * k * eps * scaleP
        asym = (P - P.mT).abs().amax(dim=(-2, -1))
        if bool((asym > tolP).any()):
            fail(npp, fn, "a symmetric matrix (the teacher overlap W* W*^T / d)", P,
                 hint=f"Largest |P - P.mT| = {float(asym.max()):.3g}.")
        _, info = torch.linalg.cholesky_ex(P)
        if bool((info != 0).any()):
            fail(npp, fn, "positive definite (linearly independent teachers: the mean-field "
                 "reduction inverts P)", P)
        Apar = (torch.linalg.solve(P, M.mT).mT * M).sum(-1)  # diag of M P^-1 M^T, (..., p)
        tol = PSD_SLACK * p * eps * (Apar.abs() + q.abs())
        if bool((q < -tol).any()):
            fail(nq, fn, "a tensor of values >= 0 (q_i is the squared norm of the part of "
                 "student i orthogonal to the teachers)", q,
                 hint=f"Smallest entry: {float(q.min()):.3g}.")
    return M, q.clamp_min(0), P


def _square_mf(M, q, P, d):
    """Closed-form square-activation mean-field drift and excess risk, O(p k^2).

    Qbar = M P^{-1} M^T + diag(q); corrections for E_Xi at finite d (arXiv 2302.05882, App.).
    """
    p, k = M.shape[-2], M.shape[-1]
    MPinv = torch.linalg.solve(P, M.mT).mT  # (..., p, k)
    Apar = (MPinv * M).sum(-1)  # diag of M P^{-1} M^T, (..., p)
    trP = torch.diagonal(P, dim1=-2, dim2=-1).sum(-1)
    trQ = Apar.sum(-1) + q.sum(-1)
    trS = trP / k - trQ / p  # (...)
    G = M.mT @ M  # (..., k, k)
    QM = MPinv @ G + q.unsqueeze(-1) * M
    dM = 2 * trS[..., None, None] * M + 4 * (M @ P / k - QM / p)
    Qii = Apar + q
    dq = 4 * trS[..., None] * q - (8 / p) * Qii * q
    PinvG = torch.linalg.solve(P, G)
    trQ2 = (PinvG * PinvG.mT).sum(dim=(-2, -1)) + 2 * (q * Apar).sum(-1) + (q * q).sum(-1)
    trP2 = (P * P.mT).sum(dim=(-2, -1))
    trMM = (M * M).sum(dim=(-2, -1))
    risk = ((trP**2 + 2 * trP2) / (2 * k * k) - (trP * trQ + 2 * trMM) / (p * k)
            + (trQ**2 + 2 * trQ2) / (2 * p * p))
    if d is not None:
        off = q.sum(-1, keepdim=True) - q  # sum_{j != i} q_j
        dq = dq - (8 / p) * q * off / (d - k)
        risk = risk + (q * off).sum(-1) / (p * p * (d - k))
    return dM, dq, risk


def _mf_drift(M, q, P, activation, d, generic=False):
    """(dM, dq) averaged over the xi quadrature. Shapes (..., p, k), (..., p). ``generic``
    takes the per-block integrals (Isserlis for the square, one ``erf_I3`` per block for erf)
    instead of the closed form / the structured sums."""
    if activation == "square" and not generic:
        dM, dq, _ = _square_mf(M, q, P, d)
        return dM, dq
    p, k = M.shape[-2], M.shape[-1]
    n = p + k
    nodes, weights = _xi_rule(d, k, None, M.dtype, M.device)
    MPinv = torch.linalg.solve(P, M.mT).mT  # (..., p, k)
    L = torch.cat([torch.eye(p, dtype=M.dtype, device=M.device).expand(*M.shape[:-2], p, p),
                   -MPinv], dim=-1)  # (..., p, n): lambda_perp = L z
    c = coefficients(p, k, M)
    N = nodes.shape[0]
    Om = _mf_omega(M, q, P, nodes)  # (..., N, n, n): the nodes form a batch axis
    Lx = L.unsqueeze(-3)  # (..., 1, p, n)
    if activation == "square":
        E1, _, _ = _square_moments(Om, c, False)
        dMn = 2 * E1[..., :p, p:]
        dqn = 4 * (E1[..., :p, :] * Lx).sum(-1)  # (E1 L^T)_ii = E[l_i l_perp_i E_0]
    else:
        eye = torch.eye(n, dtype=M.dtype, device=M.device)
        T = torch.cat([eye.expand(*Lx.shape[:-2], n, n), Lx], dim=-2)  # (..., 1, n + p, n)
        Oaug = T @ Om @ T.mT
        ar = torch.arange(p, device=M.device)
        bidx = torch.cat([(n + ar).view(p, 1),
                          torch.arange(p, n, device=M.device).expand(p, k)], dim=1)
        # (..., N, p, 1 + k); generic: one erf_I3 per gathered block (the tests' reference)
        A = _erf_A(Oaug, bidx, c) if generic else erf_A_columns(Oaug, p, c, bidx)
        dMn, dqn = A[..., 1:], 2 * A[..., 0]
    w = weights.view(N, 1, 1)
    dM = (dMn * w).sum(-3)
    dq = (dqn * w[..., 0]).sum(-2)
    return dM, dq


def mf_rhs(M: Tensor, q: Tensor, P: Tensor, *, activation: str,
           d: int | None = None) -> tuple[Tensor, Tensor]:
    r"""Mean-field reduced ODE: :math:`\dot M = \mathbb E_\Xi\Psi^{(M)}(\tilde\Omega)`,
    :math:`\dot q_i = \mathbb E_\Xi\Psi^\perp_{ii}(\tilde\Omega)`.

    Here :math:`\Psi^\perp_{ij} = \mathbb E[(\sigma'(\lambda_i)\lambda^\perp_j +
    \sigma'(\lambda_j)\lambda^\perp_i)\mathcal E]`, :math:`\lambda^\perp = \lambda -
    MP^{-1}\lambda^*`, and :math:`\tilde\Omega` as in :func:`mf_omega`.

    Parameters
    ----------
    M : Tensor, shape (..., p, k)
    q : Tensor, shape (..., p)
        Orthogonal norms :math:`q_i = (Q - MP^{-1}M^\top)_{ii}`.
    P : Tensor, shape (..., k, k)
        Invertible.
    activation : {"erf_sqrt2", "square"}, keyword-only
    d : int or None, keyword-only, default None
        ``None``: the high-dimensional simplification :math:`\Xi = I` (Lemma/Thm 3).
        An int: the exact average over :math:`\Xi` in dimension ``d`` (needs ``d >= k + 2``).

    Returns
    -------
    dM : Tensor, shape (..., p, k)
    dq : Tensor, shape (..., p)

    Raises
    ------
    ValueError
        Inconsistent shapes or devices, non-finite entries, ``P`` not symmetric positive
        definite, a negative ``q_i`` beyond rounding (a squared norm), ``d < k + 2``.
    TypeError
        Not float32/float64 tensors, or dtypes that differ.

    Notes
    -----
    arXiv 2302.05882, Sec. 5 (mean-field limit, Thm 2) and the high-d simplification (Thm 3).
    For the square activation this equals the closed form
    :math:`\mathbb E_\Xi\Psi^\perp_{ii} = \Psi^\perp_{ii}(\bar\Omega) - \frac8p\sum_{j\ne i}
    \frac{q_iq_j}{d-k}` (tested). No :math:`\gamma/p` term: the regime is
    :math:`\gamma/p \to 0`. Used in chapter 04.

    Examples
    --------
    >>> import torch
    >>> M = torch.zeros(3, 1, dtype=torch.float64); q = torch.ones(3, dtype=torch.float64)
    >>> dM, dq = mf_rhs(M, q, torch.eye(1, dtype=torch.float64), activation="square", d=5)
    >>> dq  # 4 (1 - 3/3) - 8/3 - (8/3) * 2/4
    tensor([-4., -4., -4.], dtype=torch.float64)
    """
    fn = "mfteach.sgd_odes.mf_rhs"
    activation = _check_activation(activation, fn)
    M, q, P = check_mf(M, q, P, fn)
    if d is not None:
        d = check_int(d, "d", fn, min=M.shape[-1] + 2)
    return _mf_drift(M, q, P, activation, d)


def mf_risk(M: Tensor, q: Tensor, P: Tensor, *, activation: str, d: int | None = None,
            delta: float = 0.0) -> Tensor:
    r"""Population risk of the mean-field description, :math:`\mathbb E_\Xi R(\tilde\Omega)`.

    Parameters
    ----------
    M, q, P, activation, d
        As in :func:`mf_rhs`.
    delta : float, keyword-only, default 0

    Returns
    -------
    Tensor, shape (...)

    Raises
    ------
    ValueError, TypeError
        As :func:`mf_rhs`, and a negative ``delta``.

    Notes
    -----
    For the square activation :math:`\mathbb E_\Xi R = R(\bar\Omega) + \frac1{p^2}
    \sum_{i\ne j}\frac{q_iq_j}{d-k}` (arXiv 2302.05882, App. on the low-d mean-field ODE).
    """
    fn = "mfteach.sgd_odes.mf_risk"
    activation = _check_activation(activation, fn)
    delta = check_float(delta, "delta", fn, min=0.0)
    M, q, P = check_mf(M, q, P, fn)
    p, k = M.shape[-2], M.shape[-1]
    if d is not None:
        d = check_int(d, "d", fn, min=k + 2)
    if activation == "square":
        return _square_mf(M, q, P, d)[2] + delta / 2
    nodes, weights = _xi_rule(d, k, None, M.dtype, M.device)
    r = (_risk(_mf_omega(M, q, P, nodes), p, k, activation) * weights).sum(-1)
    return r + delta / 2
