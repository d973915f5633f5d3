r"""The law of the trained ensemble: distances to the Gaussian process, and its cumulants
along training against the initial finite-width field pushed through the linear flow.

Model and training as in :mod:`mfteach.finite_width._ntk` (one hidden layer, ``"ntk"``, full
batch GD with learning rate :math:`\eta` on :math:`n` points). At infinite width the outputs
move linearly, :math:`f_k(x_*) = v_k\cdot f_0 + B_k y` with :math:`f_0 = (f_0(x_*), f_0(X))`
and :math:`v_k = (e_*, -B_k)`,

.. math::

    B_k = \frac{\eta}{n}\,\Theta(x_*, X)\sum_{j<k}\big(I - \tfrac{\eta}{n}\Theta\big)^j,
    \qquad \Theta = \Theta(X, X).

Pushing the *finite-width* initial field through this map (Carvalho et al. 2023,
arXiv 2304.03385, contribution (3), which allows non-Gaussian initial laws) keeps the
structure of a sum of :math:`N` i.i.d. neurons:
:math:`v\cdot f_0 = N^{-1/2}\sum_i a_i\,g_v(w_i)`, :math:`g_v(w) = \sum_j v_j\phi(w\cdot
x_j/\sqrt d)`, so its cumulants are exactly

.. math::
    :label: pushed-cumulants

    \kappa_2 = \mathbb{E}g_v^2,\qquad \kappa_3 = N^{-1/2}\,\mathbb{E}a^3\,\mathbb{E}g_v^3,
    \qquad \kappa_4 = N^{-1}\big(\mathbb{E}a^4\,\mathbb{E}g_v^4 - 3(\mathbb{E}g_v^2)^2\big),

the contractions of the NNGP covariance and of the third- and fourth-cumulant tensors
(:func:`fourth_cumulant_tensor`) with :math:`v` (:func:`pushed_cumulants`). The prediction
neglects the randomness and the movement of the finite-width tangent kernel: the empirical
:math:`\hat\Theta` fluctuates by :math:`O(N^{-1/2})` at initialisation and drifts in
training, which changes the mean and can change :math:`N\kappa_4` at the same order
(:func:`training_cumulants` measures it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_budget, check_choice, check_int, fail
from ..activations import ACTIVATIONS, Activation, resolve_activation
from ..device import resolve_device, resolve_dtype
from ..kernels import nngp, ntk
from ..models import _draw_generator
from ..training import _check_lr
from ._cumulants import _k_statistics
from ._ntk import (
    _check_record_steps,
    _check_train_sizes,
    _check_train_test,
    _sphere_data,
    _trained_ensemble,
)
from ._sampling import READOUTS, _check_widths, readout_law

__all__ = ["PushedCumulants", "pushed_cumulants", "TrainingCumulants", "training_cumulants"]

_MAX_RANK = 6


# --------------------------------------------------------------------------------------------
# The pushed prediction (closed form)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PushedCumulants:
    r"""Cumulants of the initial finite-width field pushed through the linear flow.

    Attributes
    ----------
    step : Tensor, shape (T,)
    kappa : Tensor, shape (T, 4, m)
        :math:`(\kappa_1, \dots, \kappa_4)` of :math:`f_k(x_*)` at width ``width``, per step
        and test point (eq. pushed-cumulants); :math:`\kappa_1 = B_k y`.
    kappa_stderr : Tensor, shape (T, 4, m)
        Integration error of ``kappa`` (0 for the exact mean and variance; the spread of
        the randomized quasi-Monte Carlo estimates for :math:`\kappa_3, \kappa_4`).
    kappa3_coef, kappa4_coef : Tensor, shape (T, m)
        :math:`\sqrt N\,\kappa_3` and :math:`N\kappa_4` (width-independent).
    width : int
    readout, activation : str
    n_points : int
        Quasi-Monte Carlo points used for :math:`\mathbb{E}g_v^3, \mathbb{E}g_v^4`.
    """

    step: Tensor
    kappa: Tensor
    kappa_stderr: Tensor
    kappa3_coef: Tensor
    kappa4_coef: Tensor
    width: int
    readout: str
    activation: str
    n_points: int


def _check_steps(steps, fn: str, max_steps: int = 10**5) -> tuple[int, ...]:
    if isinstance(steps, (int,)) and not isinstance(steps, bool):
        return (check_int(steps, "steps", fn, min=0, max=max_steps),)
    if isinstance(steps, Tensor) and steps.ndim == 1 and not steps.dtype.is_floating_point:
        steps = steps.tolist()
    rule = f"an int or a non-empty, strictly increasing sequence of ints in [0, {max_steps}]"
    if isinstance(steps, (str, bytes, bool)) or not isinstance(steps, Sequence):
        fail("steps", fn, rule, steps, exc=TypeError)
    out = tuple(check_int(k, "steps", fn, min=0, max=max_steps) for k in steps)
    if not out or any(b <= a for a, b in zip(out, out[1:])):
        fail("steps", fn, rule, steps)
    return out


def _flow_matrices(X: Tensor, x_test: Tensor, act: Activation, lr: float,
                   steps: tuple[int, ...], fn: str) -> Tensor:
    r"""B_k (T, m, n) by iterating the GD recursion of the linear model (float64):
    :math:`S_{k+1} = S_k + \frac{\eta}{n}P_k`, :math:`P_{k+1} = (I - \frac{\eta}{n}\Theta)P_k`,
    :math:`B_k = \Theta(x_*, X)S_k` (an independent route from :func:`gp_prediction`'s
    eigen-decomposition)."""
    N = X.shape[0]
    Xa = torch.cat([X, x_test]).to(torch.float64)
    T = ntk(Xa, activation=act, depth=1)
    Txx, Tsx = T[:N, :N], T[N:, :N]
    lam_max = float(torch.linalg.eigvalsh(Txx).max())
    if lr * lam_max / N >= 2:
        fail("lr", fn, f"below 2n/lambda_max = {2 * N / lam_max:.4g} (gradient descent on "
             "the linear model diverges beyond it)", lr)
    A = torch.eye(N, dtype=torch.float64, device=X.device) - (lr / N) * Txx
    P = torch.eye(N, dtype=torch.float64, device=X.device)
    S = torch.zeros_like(P)
    out, k = [], 0
    for target in steps:
        while k < target:
            S = S + (lr / N) * P
            P = A @ P
            k += 1
        out.append(Tsx @ S)
    return torch.stack(out)  # (T, m, N)


def _rank_factor(x: Tensor, fn: str) -> Tensor:
    """L (k, r) with L L^T = x x^T / d, lower-trapezoidal (Householder QR of x^T/sqrt d), so
    that u_1 = L_11 z_1 depends on the first direction only."""
    Q, R = torch.linalg.qr(x.T / math.sqrt(x.shape[1]))  # (d, r), (r, k)
    keep = R.diagonal().abs() > R.abs().max() * x.shape[0] * torch.finfo(x.dtype).eps * 10
    L = R.T[:, keep] if bool(keep.any()) else R.T[:, :1]
    if L.shape[1] > _MAX_RANK:
        fail("X", fn, f"inputs spanning at most {_MAX_RANK} directions (the "
             "quadrature runs in the span of the inputs): use d <= 6", x)
    return L


def _pushed_moments(x: Tensor, V: Tensor, act: Activation, log2_points: int,
                    n_scrambles: int = 8) -> tuple[Tensor, Tensor]:
    r""":math:`\mathbb{E}[(V\phi(u))^r]`, r = 3, 4, for :math:`u \sim \mathcal N(0, xx^\top/d)`, by
    randomized quasi-Monte Carlo: ``n_scrambles`` independently scrambled Sobol sets
    (fixed seeds 0, 1, ...) of :math:`2^{\text{log2\_points}}/(2n_{\text{scrambles}})`
    points in the span of x, moved to the midpoints of their :math:`2^{-30}` cells (so that
    the grid is symmetric under :math:`u \to 1 - u`), mapped by :math:`\Phi^{-1}` and used
    with their antithetic partners :math:`-z` (exact for odd integrands). Returns
    (mean, stderr), each (2, ...): the spread over the scrambles gives the integration error
    (Owen 1997)."""
    L = _rank_factor(x, "")
    r = L.shape[1]
    flatV = V.reshape(-1, V.shape[-1])  # (J, k)
    per = max(1, 2 ** log2_points // (2 * n_scrambles))
    est = torch.zeros(n_scrambles, 2, flatV.shape[0], dtype=torch.float64, device=x.device)
    chunk = 1 << 15
    for s in range(n_scrambles):
        eng = torch.quasirandom.SobolEngine(r, scramble=True, seed=s)
        done = 0
        while done < per:
            b = min(chunk, per - done)
            u = eng.draw(b, dtype=torch.float64).to(x.device) + 2.0**-31  # cell midpoints
            z = torch.special.ndtri(u) @ L.T
            for sign in (1.0, -1.0):  # antithetic pairs
                gv = act.fn(sign * z) @ flatV.T  # (b, J)
                g3 = gv * gv * gv
                est[s, 0] += g3.sum(0)
                est[s, 1] += (g3 * gv).sum(0)
            done += b
    est = est / (2 * per)
    mean = est.mean(0)
    se = est.std(0) / math.sqrt(n_scrambles)
    return mean.reshape(2, *V.shape[:-1]), se.reshape(2, *V.shape[:-1])


def pushed_cumulants(X: Tensor, y: Tensor, x_test: Tensor, *, activation: str | Activation,
                     readout: str, width: int, lr: float, steps: int | Sequence[int],
                     log2_points: int = 20) -> PushedCumulants:
    r"""Cumulants of :math:`f_k(x_*)` predicted by pushing the finite-width :math:`f_0`
    through the infinite-width linear flow (eq. pushed-cumulants of this module).

    Deterministic: :math:`B_k` by iterating the linear GD recursion; the variance exactly,
    :math:`v^\top Kv` with the NNGP :math:`K` (:func:`mfteach.kernels.nngp`); the moments
    :math:`\mathbb{E}g_v^3, \mathbb{E}g_v^4` (a :math:`(n+m)`-point contraction, with no
    closed form for ReLU) by randomized quasi-Monte Carlo in the span of
    :math:`\{x_*\}\cup X` (rank at most 6, i.e. ``d <= 6`` or few points), 8 scrambled
    Sobol sets with fixed seeds, whose spread is reported as ``kappa_stderr``.
    At ``steps = 0`` it reduces to :func:`output_cumulants` at :math:`q = |x_*|^2/d`; for
    :math:`k \to \infty` its variance is :func:`gp_prediction`'s. The neglected effects (the
    finite-width kernel's fluctuation and drift) are discussed in the module docstring.

    Parameters
    ----------
    X : Tensor, shape (n, d)
    y : Tensor, shape (n,)
    x_test : Tensor, shape (m, d)
    activation : str or Activation
    readout : {"gaussian", "rademacher", "exponential"}
    width : int
        :math:`N` (the cumulants scale as :math:`N^{1 - r/2}`).
    lr : float
        :math:`\eta`, below the linear model's stability bound :math:`2n/\lambda_{\max}`.
    steps : int or sequence of int
        Strictly increasing steps in :math:`[0, 10^5]`.
    log2_points : int
        :math:`\log_2` of the number of quasi-Monte Carlo points (default :math:`2^{20}`,
        about a second on one core for 21 points and 11 steps; relative error about
        :math:`10^{-4}`), between 6 and 26.

    Returns
    -------
    PushedCumulants

    Examples
    --------
    >>> from mfteach.finite_width import sphere_data
    >>> X, y = sphere_data(6, 3, generator=0, dtype=torch.float64)
    >>> p = pushed_cumulants(X, y, X[:1], activation="erf_sqrt2", readout="gaussian",
    ...                      width=10, lr=0.5, steps=[0, 50])
    >>> c4, e4 = float(p.kappa4_coef[0, 0]), float(p.kappa_stderr[0, 3, 0]) * 10
    >>> abs(c4 - (3 / 5 - 3 / 9)) < 5 * e4  # 3 E phi^4 - 3 (E phi^2)^2, phi uniform on (-1, 1)
    True
    """
    fn = "mfteach.finite_width.pushed_cumulants"
    act = resolve_activation(activation, fn)
    check_choice(readout, "readout", fn, READOUTS)
    X, y, x_test = _check_train_test(X, y, x_test, fn)
    width = check_int(width, "width", fn, min=1)
    lr = _check_lr(lr, fn, torch.float64)
    steps_t = _check_steps(steps, fn)
    log2_points = check_int(log2_points, "log2_points", fn, min=6, max=26)
    return _pushed_cumulants(X, y, x_test, act, readout, width, lr, steps_t, log2_points,
                             fn)


def _pushed_cumulants(X, y, x_test, act, readout, width, lr, steps, log2_points, fn
                      ) -> PushedCumulants:
    N, m = X.shape[0], x_test.shape[0]
    check_budget("X", fn, X, nbytes=8.0 * (6 * (N + m) ** 2 + len(steps) * m * (N + m)))
    if float(torch.cat([X, x_test]).abs().max()) > 1e100:
        fail("X", fn, "inputs with entries of magnitude at most 1e100", X)
    check_budget("steps", fn, max(steps), steps=float(max(steps)))
    xa = torch.cat([x_test, X]).to(torch.float64)  # test points first
    _rank_factor(xa, fn)
    check_budget("log2_points", fn, log2_points, steps=2.0**log2_points * (N + m)
                 * len(steps) * m / 1e4)
    B = _flow_matrices(X, x_test, act, lr, steps, fn)  # (T, m, N)
    eye = torch.eye(m, dtype=torch.float64, device=X.device).expand(len(steps), m, m)
    V = torch.cat([eye, -B], dim=2)  # (T, m, m + N)
    K = nngp(xa, activation=act, depth=1)
    g2 = torch.einsum("tmi,ij,tmj->tm", V, K, V)  # E g_v^2, exact
    mom, mse = _pushed_moments(xa, V, act, log2_points)  # (2, T, m)
    a = readout_law(readout).moments
    k2 = a[1] * g2
    c3, c3_se = a[2] * mom[0], abs(a[2]) * mse[0]
    c4, c4_se = a[3] * mom[1] - 3 * k2**2, a[3] * mse[1]
    mean = B @ y.to(torch.float64)  # (T, m)
    kappa = torch.stack([mean, k2, c3 / math.sqrt(width), c4 / width], dim=1)
    zero = torch.zeros_like(mean)
    kse = torch.stack([zero, zero, c3_se / math.sqrt(width), c4_se / width], dim=1)
    if not bool(torch.isfinite(kappa).all()):
        fail("X", fn, "inputs whose pushed cumulants are finite in float64", X)
    return PushedCumulants(torch.tensor(steps, device=X.device), kappa, kse, c3, c4, width,
                           readout, act.name, 2**log2_points)


# --------------------------------------------------------------------------------------------
# Shared argument checks
# --------------------------------------------------------------------------------------------

def _common(fn, activation, widths, readout, n_networks, lr, steps, n_train, d, dtype,
            device, min_networks=8, min_steps=1):
    check_choice(activation, "activation", fn, ACTIVATIONS)
    widths = _check_widths(widths, fn)
    check_choice(readout, "readout", fn, READOUTS)
    n_networks = check_int(n_networks, "n_networks", fn, min=min_networks)
    n_train = check_int(n_train, "n_train", fn, min=1)
    d = check_int(d, "d", fn, min=1, max=6)
    steps = check_int(steps, "steps", fn, min=min_steps, max=10**5)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn, default=torch.float64)
    lr = _check_lr(lr, fn, dt)
    return widths, n_networks, n_train, d, steps, dev, dt, lr


# --------------------------------------------------------------------------------------------
# Cumulants along training
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingCumulants:
    r"""Measured and pushed cumulants of :math:`f_k(x_*)` along training, per width.

    Attributes
    ----------
    widths : tuple of int
    step : Tensor, shape (T,)
    kappa, stderr : Tensor, shape (W, T, 4)
        k-statistics :math:`k_1..k_4` of the ``n_networks`` trained outputs and their
        standard errors (:func:`k_statistics`).
    predicted : Tensor, shape (W, T, 4)
        :func:`pushed_cumulants` at each width.
    gp_var : Tensor, shape (T,)
        Variance of the infinite-width GP (:func:`gp_prediction`).
    readout, activation : str
    lr : float
    n_networks : int
    """

    widths: tuple[int, ...]
    step: Tensor
    kappa: Tensor
    stderr: Tensor
    predicted: Tensor
    gp_var: Tensor
    readout: str
    activation: str
    lr: float
    n_networks: int


def training_cumulants(activation: str, widths: Sequence[int], *, readout: str = "gaussian",
                       n_networks: int = 4000, lr: float = 0.5, steps: int = 100,
                       record_steps: Sequence[int] | None = None, n_train: int = 20,
                       d: int = 5, generator: int | torch.Generator,
                       dtype: torch.dtype | None = None,
                       device: torch.device | str | None = None) -> TrainingCumulants:
    r"""Cumulants of the trained ensemble along training against the pushed prediction.

    One data set (:func:`sphere_data`: ``n_train`` points and a test point :math:`x_*`); per
    width, ``n_networks`` networks (:func:`trained_ensemble` with ``readout``) recorded at
    ``record_steps`` (default :math:`k = \text{steps}\,(i/10)^2`, i = 0..10: dense early),
    their k-statistics, and
    :func:`pushed_cumulants`. Compare ``N * kappa[..., 3]`` (and ``sqrt(N) * kappa[..., 2]``)
    with the prediction: the difference contains the finite-width kernel's fluctuation and
    drift, neglected by the prediction.

    Notes
    -----
    Measured (20 points in d = 5, lr 0.5, 4000 networks): with erf and a Gaussian readout
    the measured :math:`N\kappa_4(t)` agrees with the prediction within Monte-Carlo error at
    N = 16, 32; with ReLU the measured :math:`N\kappa_4` after training falls below the
    prediction by about the same amount at every width 8-64 (an :math:`O(1/N)` term of the
    kernel's fluctuation, of the same order as :math:`\kappa_4` itself: the prediction is
    not the complete :math:`1/N` coefficient once :math:`t > 0`). With the skewed readout
    the skewness decays faster than predicted (the neurons with large :math:`a_i` carry
    both the skew and the largest kernel terms :math:`a_i^2\phi'\phi'`); the relative gap
    closes slowly with the width (measured/predicted :math:`\sqrt N\kappa_3` after 5
    steps about 0.1-0.5 at N = 8, 0.5-1 at N = 256). The variance gap falls like
    :math:`1/N` (Gaussian readout).

    Examples
    --------
    >>> r = training_cumulants("erf", [8, 16], n_networks=200, steps=10, n_train=4, d=3,
    ...                        generator=0)
    >>> r.step.tolist(), r.kappa.shape == r.predicted.shape == (2, 8, 4)
    ([0, 1, 2, 4, 5, 6, 8, 10], True)
    """
    fn = "mfteach.finite_width.training_cumulants"
    widths, M, n_train, d, steps, dev, dt, lr = _common(
        fn, activation, widths, readout, n_networks, lr, steps, n_train, d, dtype, device)
    if record_steps is None:  # dense early, where the cumulants move fastest
        record_steps = sorted({round(steps * (i / 10) ** 2) for i in range(11)})
    record_steps = _check_record_steps(record_steps, steps, fn)
    _check_train_sizes(fn, width=max(widths), n_networks=M, n_train=n_train, d=d,
                       steps=steps, n_widths=len(widths), dt=dt)
    check_budget("record_steps", fn, record_steps, nbytes=4.0 * len(record_steps) * M * 8)
    g = _draw_generator(generator, dev, fn)
    act = resolve_activation(activation, fn)
    Xa, ya = _sphere_data(n_train + 1, d, g, dt, dev, fn, "n_train")
    X, y, xs = Xa[:n_train], ya[:n_train], Xa[n_train:]
    X64, y64, xs64 = X.to(torch.float64), y.to(torch.float64), xs.to(torch.float64)
    base = _pushed_cumulants(X64, y64, xs64, act, readout, 1, lr, record_steps, 20, fn)
    kap, se, pred = [], [], []
    for n in widths:
        F = _trained_ensemble(X, y, xs, activation, n, M, lr, steps, g, False, readout,
                              record_steps)[:, :, 0]  # (T, M)
        c = _k_statistics(F, 1, fn, "n_networks")
        kap.append(c.kappa.T)
        se.append(c.stderr.T)
        scale = torch.tensor([1.0, 1.0, n**-0.5, 1.0 / n], dtype=torch.float64, device=dev)
        pred.append(base.kappa[:, :, 0] * scale)
    gp_var = base.kappa[:, 1, 0]
    return TrainingCumulants(widths, base.step, torch.stack(kap), torch.stack(se),
                             torch.stack(pred), gp_var, readout, act.name, lr, M)
