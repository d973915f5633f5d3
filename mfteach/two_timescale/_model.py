r"""The two-timescale model: particles, features, the closed-form second layer and the kernel
view of the objective.

A measure :math:`\mu` over first-layer parameters :math:`w = (u, b) \in \mathbb{R}^{d+1}`
(or :math:`w = u` without bias) is represented by :math:`N` particles :math:`w_i` with
weights :math:`p_i` (uniform :math:`1/N` unless given; weights express mixtures of particle
sets). With :math:`h(x; w) = \tanh(u^\top x + b)` and one output (:math:`T = 1`),

.. math::

    f(x; a, \mu) = \int a(w)\,h(x; w)\,d\mu(w), \qquad
    \hat\Sigma_\mu = \mathbb{E}_\mu[h(X; w)h(X; w)^\top] \;(n \times n), \qquad
    k_\mu(x, x') = \mathbb{E}_\mu[h(x; w)h(x'; w)].

The second layer is solved exactly (the fast timescale): with
:math:`\bar\lambda_a = \lambda\lambda_a` and :math:`R_\mu = (\hat\Sigma_\mu +
n\bar\lambda_a I)^{-1}`,

.. math::

    a_\mu(w) = h(X; w)^\top R_\mu Y, \qquad
    U(\mu) = \min_a \tfrac1{2n}\textstyle\sum_j (f(x_j; a, \mu) - y_j)^2
    + \tfrac{\bar\lambda_a}{2}\|a\|^2_{L^2(\mu)} = \tfrac{\bar\lambda_a}{2} Y^\top R_\mu Y,

(Takakura & Suzuki 2024, Lemma A.2 and §5.1). The first layer sees :math:`G(\mu) = U(\mu) +
\frac{\bar\lambda_w}{2}\mathbb{E}_\mu\|w\|^2`, with the first variation (their Eq. 3/5)

.. math::

    \frac{\delta G}{\delta\mu}(w) = -\frac{\bar\lambda_a}{2}a_\mu(w)^2
    + \frac{\bar\lambda_w}{2}\|w\|^2.

Linear algebra. :math:`\hat\Sigma_\mu = H_p H_p^\top` with :math:`H_p = H\,\mathrm{diag}(\sqrt
p)` (:math:`n \times N`). Every quantity is computed from a Cholesky factor of the *smaller*
of :math:`H_pH_p^\top + \beta I` (:math:`n \times n`) and :math:`H_p^\top H_p + \beta I`
(:math:`N \times N`), :math:`\beta = n\bar\lambda_a`, the latter through Woodbury's identity
:math:`(H_pH_p^\top + \beta I)^{-1} = \beta^{-1}(I - H_p(H_p^\top H_p + \beta I)^{-1}H_p^\top)`.
The degrees of freedom :math:`d_\lambda(\mu) = \mathrm{tr}[\hat\Sigma_\mu R_\mu] = m - \beta\,
\mathrm{tr}(M^{-1})` for the factored :math:`m \times m` matrix :math:`M` (both Grams share
their nonzero eigenvalues).

References
----------
Takakura & Suzuki (2024), "Mean-field Analysis on Two-layer Neural Networks from a Kernel
Perspective", ICML 2024, arXiv:2403.14917, §2 (model, Lemmas A.2-A.3), §5 (alignment,
degrees of freedom).
"""

from __future__ import annotations

import math
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
from ..device import as_generator, resolve_device, resolve_dtype

__all__ = ["TARGETS", "METHODS", "target_function", "relevant_directions", "Data",
           "make_data", "init_particles", "features", "intrinsic_kernel", "Ridge", "ridge",
           "regularized_risk", "first_variation", "kernel_alignment", "parameter_alignment"]

TARGETS = ("x1x2", "single_index")
r"""Targets :math:`f^\circ`: ``"x1x2"`` is :math:`x_1x_2` (the paper's §6 experiment);
``"single_index"`` is :math:`\tanh(2x_1)`, a single-index target :math:`\tilde f(u^{\circ\top}x)`
with :math:`u^\circ = e_1` (odd, with a linear component, as in the setting of Thm 5.4)."""

METHODS = ("auto", "samples", "particles")
r"""Which Gram is factored: ``"samples"`` the :math:`n \times n` one, ``"particles"`` the
:math:`N \times N` one (Woodbury), ``"auto"`` the smaller."""


def target_function(X: Tensor, target: str = "x1x2") -> Tensor:
    r"""The target :math:`f^\circ(x)` on inputs ``X``.

    Parameters
    ----------
    X : Tensor, shape (..., n, d)
        Inputs, ``d >= 2`` for ``"x1x2"``.
    target : {"x1x2", "single_index"}
        :math:`x_1x_2` or :math:`\tanh(2x_1)` (``TARGETS``).

    Returns
    -------
    Tensor, shape (..., n)

    Raises
    ------
    TypeError, ValueError
        For a non-tensor, a tensor of rank below 2, or ``d < 2`` with ``"x1x2"``.

    Examples
    --------
    >>> X = torch.tensor([[1.0, 2.0, 5.0]], dtype=torch.float64)
    >>> target_function(X, "x1x2").tolist()
    [2.0]
    """
    fn = "mfteach.two_timescale.target_function"
    check_tensor(X, "X", fn)
    check_choice(target, "target", fn, TARGETS)
    if X.ndim < 2:
        fail("X", fn, "a tensor of shape (..., n, d)", X)
    if target == "x1x2":
        if X.shape[-1] < 2:
            fail("X", fn, "a tensor with d >= 2 input coordinates for target 'x1x2'", X)
        return X[..., 0] * X[..., 1]
    return torch.tanh(2 * X[..., 0])


def relevant_directions(d: int, target: str = "x1x2", *, device=None,
                        dtype: torch.dtype | None = None) -> Tensor:
    r"""Orthonormal basis of the target's relevant subspace, rows of shape (k, d).

    ``"x1x2"``: :math:`e_1, e_2` (k = 2); ``"single_index"``: :math:`u^\circ = e_1` (k = 1).

    Examples
    --------
    >>> relevant_directions(4, "x1x2").tolist()
    [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]
    """
    fn = "mfteach.two_timescale.relevant_directions"
    check_choice(target, "target", fn, TARGETS)
    d = check_int(d, "d", fn, min=2, max=10**6)
    dev, dt = resolve_device(device, fn), resolve_dtype(dtype, fn)
    k = 2 if target == "x1x2" else 1
    return torch.eye(k, d, device=dev, dtype=dt)


@dataclass(frozen=True)
class Data:
    r"""A draw of ``B`` data sets: :math:`x \sim N(0, I_d)`, :math:`y = f^\circ(x) +
    \varepsilon`, :math:`\varepsilon \sim \mathrm{Unif}[-\sigma, \sigma]` (the paper's §6).

    Attributes
    ----------
    X : Tensor, shape (B, n, d)
    y : Tensor, shape (B, n)
        Observed labels (with the intrinsic noise).
    f : Tensor, shape (B, n)
        Clean target values :math:`f^\circ(X)`.
    target : str
    sigma : float
    """

    X: Tensor
    y: Tensor
    f: Tensor
    target: str
    sigma: float


def make_data(n: int, d: int, *, target: str = "x1x2", sigma: float = 0.0, n_sets: int = 1,
              generator: int | torch.Generator, device: torch.device | str | None = None,
              dtype: torch.dtype | None = None) -> Data:
    r"""Draw ``n_sets`` independent data sets of ``n`` Gaussian inputs and noisy labels.

    Parameters
    ----------
    n, d : int
        Samples per set and input dimension.
    target : {"x1x2", "single_index"}
    sigma : float
        Half-width of the uniform label noise (``sigma**2 / 3`` is its variance).
    n_sets : int
        Leading batch axis ``B``.
    generator, device, dtype
        Randomness, placement (CPU by default) and precision (float64 by default).

    Returns
    -------
    Data

    Examples
    --------
    >>> data = make_data(8, 3, n_sets=2, generator=0)
    >>> tuple(data.X.shape), tuple(data.y.shape), bool(torch.equal(data.y, data.f))
    ((2, 8, 3), (2, 8), True)
    """
    fn = "mfteach.two_timescale.make_data"
    n = check_int(n, "n", fn, min=1)
    d = check_int(d, "d", fn, min=2)
    check_choice(target, "target", fn, TARGETS)
    sigma = check_float(sigma, "sigma", fn, min=0.0)
    n_sets = check_int(n_sets, "n_sets", fn, min=1)
    dev, dt = resolve_device(device, fn), resolve_dtype(dtype, fn)
    sizes = {"n": n, "d": d, "n_sets": n_sets}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big], nbytes=dt.itemsize * n_sets * n * (d + 3.0))
    g = as_generator(generator, dev, fn)
    X = torch.randn(n_sets, n, d, generator=g, device=dev, dtype=dt)
    f = target_function(X, target)
    eps = (2 * torch.rand(n_sets, n, generator=g, device=dev, dtype=dt) - 1) * sigma
    return Data(X=X, y=f + eps, f=f, target=target, sigma=sigma)


def init_particles(d: int, n_particles: int, *, lambda_w: float = 0.25, bias: bool = True,
                   n_runs: int = 1, generator: int | torch.Generator,
                   device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> Tensor:
    r"""Draw particles from the prior :math:`\nu = N(0, I/\lambda_w)` (the paper's
    :math:`\mu_0`).

    Parameters
    ----------
    d : int
        Input dimension; a particle has ``d + 1`` coordinates (``u`` then ``b``) with
        ``bias=True``, ``d`` without.
    n_particles : int
        :math:`N`.
    lambda_w : float
        Prior precision (0.25 in the paper: :math:`\mu_0 = N(0, 4I)`).
    bias : bool
    n_runs : int
        Leading batch axis ``B`` of independent particle sets.
    generator, device, dtype

    Returns
    -------
    Tensor, shape (B, N, d + bias)

    Examples
    --------
    >>> init_particles(3, 5, n_runs=2, generator=0).shape
    torch.Size([2, 5, 4])
    """
    fn = "mfteach.two_timescale.init_particles"
    d = check_int(d, "d", fn, min=1)
    n_particles = check_int(n_particles, "n_particles", fn, min=1)
    lambda_w = check_float(lambda_w, "lambda_w", fn, min=0.0, min_open=True)
    check_bool(bias, "bias", fn)
    n_runs = check_int(n_runs, "n_runs", fn, min=1)
    dev, dt = resolve_device(device, fn), resolve_dtype(dtype, fn)
    sizes = {"d": d, "n_particles": n_particles, "n_runs": n_runs}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big], nbytes=dt.itemsize * n_runs * n_particles * (d + 1.0))
    g = as_generator(generator, dev, fn)
    W = torch.randn(n_runs, n_particles, d + int(bias), generator=g, device=dev, dtype=dt)
    return W / math.sqrt(lambda_w)


# ---------------------------------------------------------------------------------------------
# Validation shared by the public functions of this chapter
# ---------------------------------------------------------------------------------------------

def _check_XW(X, W, bias, fn: str, xname: str = "X") -> tuple[Tensor, Tensor]:
    """Check ``X`` (n, d) or (B, n, d) and ``W`` (N, d') or (B, N, d'); return batched views."""
    check_bool(bias, "bias", fn)
    check_tensor(X, xname, fn, ndim=(2, 3))
    check_tensor(W, "W", fn, ndim=(2, 3))
    check_same_device_dtype(fn, **{xname: X}, W=W)
    d = X.shape[-1]
    if W.shape[-1] != d + int(bias):
        fail("W", fn, f"a tensor with {d + int(bias)} coordinates per particle, to match the "
             f"d = {d} input coordinates of {xname!r}{' plus a bias' if bias else ''}", W)
    Xb = X if X.ndim == 3 else X.unsqueeze(0)
    Wb = W if W.ndim == 3 else W.unsqueeze(0)
    if Xb.shape[0] != Wb.shape[0] and 1 not in (Xb.shape[0], Wb.shape[0]):
        fail("W", fn, f"a batch of {Xb.shape[0]} particle sets (or one) to match {xname}", W)
    B = max(Xb.shape[0], Wb.shape[0])
    if Xb.shape[-2] < 1 or Wb.shape[-2] < 1:
        fail("W" if Wb.shape[-2] < 1 else xname, fn, "non-empty", W if Wb.shape[-2] < 1 else X)
    return Xb.expand(B, *Xb.shape[1:]), Wb.expand(B, *Wb.shape[1:])


def _check_vec(v, name: str, B: int, n: int, ref: Tensor, fn: str) -> Tensor:
    check_tensor(v, name, fn, ndim=(1, 2))
    check_same_device_dtype(fn, W=ref, **{name: v})
    if tuple(v.shape) not in {(n,), (B, n)}:
        fail(name, fn, f"a tensor of shape ({n},) or ({B}, {n})", v)
    return v.expand(B, n)


def _check_weights(weights, B: int, N: int, ref: Tensor, fn: str) -> Tensor | None:
    if weights is None:
        return None
    p = _check_vec(weights, "weights", B, N, ref, fn)
    if bool((p < 0).any()) or not bool(
            ((p.sum(-1) - 1).abs() <= 1e3 * torch.finfo(p.dtype).eps * N).all()):
        fail("weights", fn, "nonnegative and summing to 1 over the particles", weights)
    return p


def _batch_out(t: Tensor, batched: bool) -> Tensor:
    return t if batched else t.squeeze(0)


# ---------------------------------------------------------------------------------------------
# Features and kernels
# ---------------------------------------------------------------------------------------------

def _features(X: Tensor, W: Tensor, bias: bool) -> Tensor:
    """tanh(X u^T + b): (B, n, d) x (B, N, d') -> (B, n, N)."""
    if bias:
        return torch.tanh(torch.baddbmm(W[..., -1].unsqueeze(-2), X, W[..., :-1].mT))
    return torch.tanh(X @ W.mT)


def features(X: Tensor, W: Tensor, *, bias: bool = True) -> Tensor:
    r"""Feature matrix :math:`H_{ji} = h(x_j; w_i) = \tanh(u_i^\top x_j + b_i)`.

    Parameters
    ----------
    X : Tensor, shape (n, d) or (B, n, d)
    W : Tensor, shape (N, d + bias) or (B, N, d + bias)
        Particles (``u`` first, the bias last).
    bias : bool

    Returns
    -------
    Tensor, shape (n, N) or (B, n, N)
        Batched when either input is.

    Examples
    --------
    >>> X = torch.zeros(2, 3, dtype=torch.float64)
    >>> W = torch.tensor([[1.0, 2.0, 3.0, 0.5]], dtype=torch.float64)
    >>> torch.allclose(features(X, W), torch.full((2, 1), math.tanh(0.5), dtype=X.dtype))
    True
    """
    fn = "mfteach.two_timescale.features"
    Xb, Wb = _check_XW(X, W, bias, fn)
    return _batch_out(_features(Xb, Wb, bias), X.ndim == 3 or W.ndim == 3)


def intrinsic_kernel(X1: Tensor, W: Tensor, X2: Tensor | None = None, *, bias: bool = True,
                     weights: Tensor | None = None) -> Tensor:
    r"""The intrinsic kernel :math:`k_\mu(x, x') = \mathbb{E}_\mu[h(x; w)h(x'; w)] =
    \sum_i p_i h(x; w_i) h(x'; w_i)` (Takakura & Suzuki 2024, §2.2).

    Parameters
    ----------
    X1 : Tensor, shape (n1, d) or (B, n1, d)
    W : Tensor, shape (N, d + bias) or (B, N, d + bias)
    X2 : Tensor, shape (n2, d) or (B, n2, d), optional
        Defaults to ``X1`` (then the result is :math:`\hat\Sigma_\mu`).
    bias : bool
    weights : Tensor, shape (N,) or (B, N), optional
        Particle weights :math:`p_i` (uniform by default).

    Returns
    -------
    Tensor, shape (n1, n2) or (B, n1, n2)

    Examples
    --------
    >>> X = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> W = init_particles(3, 50, generator=1)
    >>> K = intrinsic_kernel(X, W)
    >>> K.shape, bool(torch.allclose(K, K.mT))
    (torch.Size([1, 4, 4]), True)
    """
    fn = "mfteach.two_timescale.intrinsic_kernel"
    X1b, Wb = _check_XW(X1, W, bias, fn, "X1")
    B, N = Wb.shape[0], Wb.shape[1]
    p = _check_weights(weights, B, N, Wb, fn)
    if X2 is None:
        X2b = X1b
    else:
        X2b, _ = _check_XW(X2, W, bias, fn, "X2")
    H1 = _features(X1b, Wb, bias)
    H2 = H1 if X2 is None else _features(X2b, Wb, bias)
    w = torch.full((B, N), 1.0 / N, dtype=Wb.dtype, device=Wb.device) if p is None else p
    K = (H1 * w.unsqueeze(-2)) @ H2.mT
    batched = X1.ndim == 3 or W.ndim == 3 or (X2 is not None and X2.ndim == 3)
    return _batch_out(K, batched)


# ---------------------------------------------------------------------------------------------
# The closed-form second layer
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ridge:
    r"""The exact second layer and the kernel-view quantities, per batch member.

    Attributes
    ----------
    coef : Tensor, shape (B, n, K)
        :math:`R_\mu Y` for each of the ``K`` label columns (``K = 1`` unless several were
        solved at once).
    a : Tensor, shape (B, N, K)
        :math:`a_\mu(w_i) = h(X; w_i)^\top R_\mu Y`.
    U : Tensor, shape (B, K)
        :math:`\frac{\bar\lambda_a}{2}Y^\top R_\mu Y`.
    dof : Tensor, shape (B,)
        :math:`d_{\bar\lambda_a}(\mu) = \mathrm{tr}[\hat\Sigma_\mu R_\mu]`.
    fitted : Tensor, shape (B, n, K)
        :math:`f(X; a_\mu, \mu) = \hat\Sigma_\mu R_\mu Y`.
    method : str
        ``"samples"`` or ``"particles"``: the Gram that was factored.
    """

    coef: Tensor
    a: Tensor
    U: Tensor
    dof: Tensor
    fitted: Tensor
    method: str


class _Solver:
    """A Cholesky factor of the smaller regularised Gram, and products with R = (Sigma +
    beta I)^{-1} (Woodbury when the N x N Gram is factored)."""

    def __init__(self, H: Tensor, lambda_a_bar: float, p: Tensor | None, method: str):
        B, n, N = H.shape
        self.beta = n * lambda_a_bar
        self.Hp = H * (1.0 / math.sqrt(N)) if p is None else H * p.sqrt().unsqueeze(-2)
        if method == "auto":
            method = "samples" if n <= N else "particles"
        self.method = method
        m = n if method == "samples" else N
        eye = torch.eye(m, dtype=H.dtype, device=H.device)
        if method == "samples":
            M = self.Hp @ self.Hp.mT + self.beta * eye  # (B, n, n)
        else:
            M = self.Hp.mT @ self.Hp + self.beta * eye  # (B, N, N)
        self.L, info = torch.linalg.cholesky_ex(M)
        _raise_if_singular(info)
        self.m, self.eye = m, eye

    def apply(self, V: Tensor) -> Tensor:
        """R V for V of shape (B, n, K)."""
        if self.method == "samples":
            return torch.cholesky_solve(V, self.L)
        Hp = self.Hp
        return (V - Hp @ torch.cholesky_solve(Hp.mT @ V, self.L)) / self.beta

    def dof(self) -> Tensor:
        """tr[Sigma R] = m - beta tr(M^-1), shape (B,)."""
        Linv = torch.linalg.solve_triangular(self.L, self.eye.expand_as(self.L), upper=False)
        return self.m - self.beta * Linv.square().sum((-1, -2))


def _ridge(H: Tensor, Y: Tensor, lambda_a_bar: float, p: Tensor | None,
           method: str = "auto", solver: _Solver | None = None) -> Ridge:
    """H (B, n, N), Y (B, n, K). The core solve, no validation."""
    s = _Solver(H, lambda_a_bar, p, method) if solver is None else solver
    coef = s.apply(Y)  # R Y, (B, n, K)
    a = H.mT @ coef  # (B, N, K)
    fitted = s.Hp @ (s.Hp.mT @ coef)  # Sigma R Y
    U = 0.5 * lambda_a_bar * (Y * coef).sum(-2)
    return Ridge(coef=coef, a=a, U=U, dof=s.dof(), fitted=fitted, method=s.method)


def _raise_if_singular(info: Tensor) -> None:
    if bool((info != 0).any()):
        raise torch.linalg.LinAlgError(
            "The regularised Gram matrix is not numerically positive definite: increase "
            "lambda_a_bar or use float64.")


def ridge(X: Tensor, y: Tensor, W: Tensor, *, lambda_a_bar: float = 1e-3, bias: bool = True,
          weights: Tensor | None = None, method: str = "auto") -> Ridge:
    r"""Solve the second layer exactly and return :math:`a_\mu`, :math:`U(\mu)`,
    :math:`d_{\bar\lambda_a}(\mu)` and the fit.

    :math:`a_\mu(w) = h(X; w)^\top(\hat\Sigma_\mu + n\bar\lambda_a I)^{-1}Y` minimises
    :math:`\frac1{2n}\sum_j(f(x_j) - y_j)^2 + \frac{\bar\lambda_a}{2}\|a\|^2_{L^2(\mu)}`, with
    minimum :math:`U(\mu) = \frac{\bar\lambda_a}{2}Y^\top(\hat\Sigma_\mu + n\bar\lambda_a
    I)^{-1}Y` (Takakura & Suzuki 2024, Lemma A.2 and §5.1).

    Parameters
    ----------
    X : Tensor, shape (n, d) or (B, n, d)
    y : Tensor, shape (n,) or (B, n)
    W : Tensor, shape (N, d + bias) or (B, N, d + bias)
    lambda_a_bar : float
        :math:`\bar\lambda_a = \lambda\lambda_a > 0`.
    bias : bool
    weights : Tensor, shape (N,) or (B, N), optional
        Particle weights (uniform by default).
    method : {"auto", "samples", "particles"}
        Which Gram to factor (``METHODS``); ``"auto"`` takes the smaller.

    Returns
    -------
    Ridge
        Always batched (leading axis ``B``, 1 for unbatched inputs), ``K = 1``.

    Raises
    ------
    TypeError, ValueError
        For bad arguments.
    torch.linalg.LinAlgError
        When the regularised Gram is not numerically positive definite.

    Examples
    --------
    >>> data = make_data(20, 3, generator=0)
    >>> W = init_particles(3, 10, generator=1)
    >>> r1 = ridge(data.X, data.y, W, method="samples")
    >>> r2 = ridge(data.X, data.y, W, method="particles")
    >>> bool(torch.allclose(r1.U, r2.U)), bool(torch.allclose(r1.dof, r2.dof))
    (True, True)
    """
    fn = "mfteach.two_timescale.ridge"
    Xb, Wb = _check_XW(X, W, bias, fn)
    B, n, N = Xb.shape[0], Xb.shape[1], Wb.shape[1]
    yb = _check_vec(y, "y", B, n, Wb, fn)
    lambda_a_bar = check_float(lambda_a_bar, "lambda_a_bar", fn, min=0.0, min_open=True)
    check_choice(method, "method", fn, METHODS)
    p = _check_weights(weights, B, N, Wb, fn)
    m = min(n, N) if method == "auto" else (n if method == "samples" else N)
    check_budget("W" if N >= n else "X", fn, W if N >= n else X,
                 nbytes=Xb.dtype.itemsize * B * (3.0 * n * N + 3.0 * m * m))
    return _ridge(_features(Xb, Wb, bias), yb.unsqueeze(-1), lambda_a_bar, p, method)


def regularized_risk(X: Tensor, y: Tensor, W: Tensor, *, lam: float = 0.004,
                     lambda_a: float = 0.25, lambda_w: float = 0.25, bias: bool = True,
                     weights: Tensor | None = None) -> Tensor:
    r""":math:`G(\mu) = U(\mu) + \frac{\bar\lambda_w}{2}\mathbb{E}_\mu\|w\|^2` with
    :math:`\bar\lambda_a = \lambda\lambda_a`, :math:`\bar\lambda_w = \lambda\lambda_w`
    (Takakura & Suzuki 2024, §2.1: :math:`G(\mu) = F(a_\mu, \mu)`).

    :math:`G` is convex along mixtures :math:`(1 - t)\mu_0 + t\mu_1` (their Thm 3.1): the Gram
    is linear in :math:`\mu` and :math:`K \mapsto Y^\top(K + cI)^{-1}Y` is operator convex on
    positive semidefinite matrices; the weight decay term is linear in :math:`\mu`. The free
    energy that Langevin dynamics minimises is :math:`G + \lambda\,\mathrm{Ent}`; the entropy
    of a particle measure is not computed.

    Parameters
    ----------
    X, y, W, bias, weights
        As in :func:`ridge`.
    lam, lambda_a, lambda_w : float
        :math:`\lambda` (regulariser multiplier and temperature), :math:`\lambda_a`,
        :math:`\lambda_w`; all positive.

    Returns
    -------
    Tensor, shape (B,)

    Examples
    --------
    >>> data = make_data(20, 3, generator=0)
    >>> W = init_particles(3, 10, generator=1)
    >>> G = regularized_risk(data.X, data.y, W)
    >>> U = ridge(data.X, data.y, W, lambda_a_bar=0.004 * 0.25).U[:, 0]
    >>> bool(torch.allclose(G - U, 0.5 * 0.004 * 0.25 * W.square().sum(-1).mean(-1)))
    True
    """
    fn = "mfteach.two_timescale.regularized_risk"
    Xb, Wb = _check_XW(X, W, bias, fn)
    B, n, N = Xb.shape[0], Xb.shape[1], Wb.shape[1]
    yb = _check_vec(y, "y", B, n, Wb, fn)
    lam = check_float(lam, "lam", fn, min=0.0, min_open=True)
    lambda_a = check_float(lambda_a, "lambda_a", fn, min=0.0, min_open=True)
    lambda_w = check_float(lambda_w, "lambda_w", fn, min=0.0, min_open=True)
    p = _check_weights(weights, B, N, Wb, fn)
    m = min(n, N)
    check_budget("W" if N >= n else "X", fn, W if N >= n else X,
                 nbytes=Xb.dtype.itemsize * B * (3.0 * n * N + 3.0 * m * m))
    r = _ridge(_features(Xb, Wb, bias), yb.unsqueeze(-1), lam * lambda_a, p)
    w2 = Wb.square().sum(-1)
    ew2 = w2.mean(-1) if p is None else (p * w2).sum(-1)
    return r.U[:, 0] + 0.5 * lam * lambda_w * ew2


def first_variation(X: Tensor, y: Tensor, W: Tensor, W_eval: Tensor | None = None, *,
                    lam: float = 0.004, lambda_a: float = 0.25, lambda_w: float = 0.25,
                    bias: bool = True, weights: Tensor | None = None) -> Tensor:
    r"""The first variation :math:`\frac{\delta G}{\delta\mu}(\mu)(w) = -\frac{\bar\lambda_a}{2}
    a_\mu(w)^2 + \frac{\bar\lambda_w}{2}\|w\|^2` (Takakura & Suzuki 2024, Eq. 3/5, ``T = 1``).

    Parameters
    ----------
    X, y, W, bias, weights
        The measure :math:`\mu` (particles ``W`` with ``weights``) and the data, as in
        :func:`ridge`.
    W_eval : Tensor, shape (M, d + bias) or (B, M, d + bias), optional
        Where to evaluate; the particles themselves by default.
    lam, lambda_a, lambda_w : float

    Returns
    -------
    Tensor, shape (B, M)

    Notes
    -----
    Used in chapter 5: :math:`G((1-\epsilon)\mu + \epsilon\mu') - G(\mu) = \epsilon\int
    \frac{\delta G}{\delta\mu}\,d(\mu' - \mu) + O(\epsilon^2)`, and the particle gradient is
    :math:`\partial G(\mu_W)/\partial w_i = p_i\nabla_w\frac{\delta G}{\delta\mu}(w_i)`.

    Examples
    --------
    >>> data = make_data(20, 3, generator=0)
    >>> W = init_particles(3, 10, generator=1)
    >>> first_variation(data.X, data.y, W).shape
    torch.Size([1, 10])
    """
    fn = "mfteach.two_timescale.first_variation"
    Xb, Wb = _check_XW(X, W, bias, fn)
    B, n, N = Xb.shape[0], Xb.shape[1], Wb.shape[1]
    yb = _check_vec(y, "y", B, n, Wb, fn)
    lam = check_float(lam, "lam", fn, min=0.0, min_open=True)
    lambda_a = check_float(lambda_a, "lambda_a", fn, min=0.0, min_open=True)
    lambda_w = check_float(lambda_w, "lambda_w", fn, min=0.0, min_open=True)
    p = _check_weights(weights, B, N, Wb, fn)
    if W_eval is None:
        We = Wb
    else:
        check_tensor(W_eval, "W_eval", fn, ndim=(2, 3))
        check_same_device_dtype(fn, W=W, W_eval=W_eval)
        if W_eval.shape[-1] != Wb.shape[-1]:
            fail("W_eval", fn, f"a tensor with {Wb.shape[-1]} coordinates per particle",
                 W_eval)
        We = W_eval if W_eval.ndim == 3 else W_eval.unsqueeze(0)
        if We.shape[0] not in (1, B):
            fail("W_eval", fn, f"a batch of {B} (or 1) sets of points", W_eval)
        We = We.expand(B, *We.shape[1:])
    m = min(n, N)
    check_budget("W" if N >= n else "X", fn, W if N >= n else X,
                 nbytes=Xb.dtype.itemsize * B * (3.0 * n * (N + We.shape[1]) + 3.0 * m * m))
    r = _ridge(_features(Xb, Wb, bias), yb.unsqueeze(-1), lam * lambda_a, p)
    a = (_features(Xb, We, bias).mT @ r.coef)[..., 0]  # (B, M)
    return -0.5 * lam * lambda_a * a.square() + 0.5 * lam * lambda_w * We.square().sum(-1)


# ---------------------------------------------------------------------------------------------
# Alignment
# ---------------------------------------------------------------------------------------------

def _kernel_alignment(H: Tensor, f: Tensor, p: Tensor | None) -> Tensor:
    """H (B, n, N), f (B, n) -> (B,); from the N x N or n x n Gram, whichever is smaller."""
    N = H.shape[-1]
    Hp = H * (1.0 / math.sqrt(N)) if p is None else H * p.sqrt().unsqueeze(-2)
    num = (Hp.mT @ f.unsqueeze(-1)).square().sum((-1, -2))  # f^T Sigma f
    small = Hp.mT @ Hp if N <= H.shape[-2] else Hp @ Hp.mT
    fro = torch.linalg.matrix_norm(small)  # ||Sigma||_F, equal for both Grams
    return num / (f.square().sum(-1) * fro)


def kernel_alignment(X: Tensor, f: Tensor, W: Tensor, *, bias: bool = True,
                     weights: Tensor | None = None) -> Tensor:
    r"""Kernel alignment :math:`\hat A(\mu) = \frac{f^\circ(X)^\top\hat\Sigma_\mu f^\circ(X)}
    {\|f^\circ(X)\|^2\,\|\hat\Sigma_\mu\|_F} \in [0, 1]` (Takakura & Suzuki 2024, §5.1).

    Parameters
    ----------
    X : Tensor, shape (n, d) or (B, n, d)
    f : Tensor, shape (n,) or (B, n)
        Target values :math:`f^\circ(X)` (not all zero).
    W, bias, weights
        As in :func:`ridge`.

    Returns
    -------
    Tensor, shape (B,)

    Examples
    --------
    >>> data = make_data(30, 3, generator=0)
    >>> A = kernel_alignment(data.X, data.f, init_particles(3, 20, generator=1))
    >>> bool(0 <= float(A) <= 1)
    True
    """
    fn = "mfteach.two_timescale.kernel_alignment"
    Xb, Wb = _check_XW(X, W, bias, fn)
    B, n, N = Xb.shape[0], Xb.shape[1], Wb.shape[1]
    fb = _check_vec(f, "f", B, n, Wb, fn)
    if not bool((fb.square().sum(-1) > 0).all()):
        fail("f", fn, "not identically zero", f)
    p = _check_weights(weights, B, N, Wb, fn)
    m = min(n, N)
    check_budget("W" if N >= n else "X", fn, W if N >= n else X,
                 nbytes=Xb.dtype.itemsize * B * (2.0 * n * N + m * m))
    return _kernel_alignment(_features(Xb, Wb, bias), fb, p)


def _parameter_alignment(W: Tensor, V: Tensor, bias: bool, p: Tensor | None) -> Tensor:
    U = W[..., :-1] if bias else W
    proj = (U @ V.mT).square().sum(-1)  # ||Pi u||^2, (B, N)
    ratio = proj / U.square().sum(-1).clamp_min(torch.finfo(W.dtype).tiny)
    return ratio.mean(-1) if p is None else (p * ratio).sum(-1)


def parameter_alignment(W: Tensor, directions: Tensor, *, bias: bool = True,
                        weights: Tensor | None = None) -> Tensor:
    r"""Parameter alignment :math:`P(\mu) = \mathbb{E}_{(u, b)\sim\mu}\big[\|\Pi u\|^2 /
    \|u\|^2\big]`, :math:`\Pi` the projection on the target's relevant directions.

    For a single-index target (``directions`` = :math:`u^{\circ\top}`, one row) this is the
    paper's :math:`\mathbb{E}_\mu[(u^\top u^\circ)^2/\|u\|^2]` (Takakura & Suzuki 2024,
    §5.1). Under the isotropic prior it equals :math:`k/d` exactly for ``k`` directions.

    Parameters
    ----------
    W : Tensor, shape (N, d + bias) or (B, N, d + bias)
    directions : Tensor, shape (k, d)
        Orthonormal rows (:func:`relevant_directions`).
    bias : bool
    weights : Tensor, shape (N,) or (B, N), optional

    Returns
    -------
    Tensor, shape (B,)

    Examples
    --------
    >>> W = init_particles(4, 20000, generator=0)
    >>> round(float(parameter_alignment(W, relevant_directions(4, "x1x2"))), 1)
    0.5
    """
    fn = "mfteach.two_timescale.parameter_alignment"
    check_bool(bias, "bias", fn)
    check_tensor(W, "W", fn, ndim=(2, 3))
    check_tensor(directions, "directions", fn, ndim=2)
    check_same_device_dtype(fn, W=W, directions=directions)
    d = W.shape[-1] - int(bias)
    if directions.shape[-1] != d or directions.shape[0] < 1 or d < 1:
        fail("directions", fn, f"a tensor of shape (k, {d}) with k >= 1, to match the {d} "
             f"input coordinates of 'W'", directions)
    gram = directions @ directions.mT
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    if not bool(((gram - eye).abs() <= 1e3 * torch.finfo(gram.dtype).eps * d).all()):
        fail("directions", fn, "a tensor with orthonormal rows", directions)
    Wb = W if W.ndim == 3 else W.unsqueeze(0)
    p = _check_weights(weights, Wb.shape[0], Wb.shape[1], Wb, fn)
    return _parameter_alignment(Wb, directions, bias, p)
