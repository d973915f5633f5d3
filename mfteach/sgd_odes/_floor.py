r"""The noise floor of one-pass SGD at the teacher, in closed form and measured.

**Derivation** (:math:`p = k = K`, student started at the teacher, :math:`W = W^*`, label
noise :math:`\Delta`). Split each student into its teacher part and an orthogonal part,
:math:`\lambda_i = \lambda^*_i + \eta_i` with :math:`\eta \sim N(0, q)` independent of
:math:`\lambda^*`, :math:`q = Q - MP^{-1}M^\top`. Near the teacher the noiseless error is
:math:`\mathcal E_0 = -\frac1K\sum_l\sigma'(\lambda^*_l)\eta_l + O(\eta^2)`, so with
:math:`G_{ij} = \mathbb E[\sigma'(\lambda^*_i)\sigma'(\lambda^*_j)]` the high-d ODE
(:func:`mfteach.sgd_odes.ode_rhs`) gives, to first order in :math:`q` and in
:math:`\gamma\Delta`,

.. math::

    \dot q = -\frac1K(Gq + qG) + \frac{\gamma}{K}\Delta\,G,

the drift (order 1) vanishing at the teacher and the variance term leaving the constant
forcing :math:`\frac\gamma p\Delta G`; the parallel part :math:`M - I` is not forced at this
order. The Lyapunov equation has the unique solution :math:`q^\star = \frac{\gamma\Delta}2 I`
for any positive definite :math:`G`. The excess risk is *linear* in :math:`q` (its gradient in
the :math:`(Q, M)` coordinates is non-zero, and vanishes only along the weight manifold's
parallel directions): :math:`R - \frac\Delta2 = \frac1{2K^2}\operatorname{tr}(Gq) + O(q^2)`.
Hence the floor

.. math::

    R_\infty - \frac\Delta2 = \frac{\gamma\Delta}{4K^2}\operatorname{tr}G
    = \frac{\gamma\Delta}{2\pi\sqrt3\,K}\ (\text{erf, } P = I),\qquad
    \frac{\gamma\Delta}{K}\ (\text{square, } P = I),

using :math:`\mathbb E[g'(u)^2] = 2/(\pi\sqrt3)` for :math:`u\sim N(0,1)`,
:math:`g = \operatorname{erf}(\cdot/\sqrt2)`, and :math:`\mathbb E[(2u)^2] = 4`. The neglected
terms are :math:`O(\gamma^2/p)` and :math:`O(\gamma^2\Delta^2)` relative :math:`O(\gamma/p)`
and :math:`O(\gamma\Delta)`; SGD in dimension :math:`d` adds :math:`O(1/d)` (Thm 1 of
Arnaboldi et al. 2023, arXiv 2302.05882, and its App. "Effect of noise", where the floor is
seen to grow with :math:`\gamma\Delta/p`). :func:`linearised_floor` is the independent check:
the same first-order floor from an autograd Jacobian of the full ODE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_budget, check_float, check_int, check_tensor, fail
from ..device import as_generator, resolve_device, resolve_dtype, spawn_generators
from ..stats import MCEstimate
from ._linearised import drift_fn, excess, newton, pack, unpack
from ._overlaps import omega_raw
from ._plots import axes_row
from ._rhs import _check_activation, _risk
from ._simulate import simulate_sgd
from ._solve import solve_ode

EPS64 = torch.finfo(torch.float64).eps

__all__ = ["noise_floor_theory", "linearised_floor", "NoiseFloorGrid", "noise_floor_grid",
           "NoiseFloorSGD", "noise_floor_sgd", "plot_noise_floor_theory"]


def _floor(K: int, gamma: float, delta: float, activation: str) -> float:
    c = 1 / (2 * math.pi * math.sqrt(3)) if activation != "square" else 1.0
    return c * gamma * delta / K


def noise_floor_theory(K: int, gamma: float, delta: float, *,
                       activation: str = "erf_sqrt2") -> float:
    r"""Closed-form noise floor :math:`R_\infty - \Delta/2` at the teacher, first order in
    :math:`\gamma`.

    Parameters
    ----------
    K : int
        Student and teacher width :math:`p = k = K` (orthonormal teachers, :math:`P = I`).
    gamma : float
        Raw learning rate :math:`\gamma \ge 0`.
    delta : float
        Label-noise variance :math:`\Delta \ge 0`.
    activation : {"erf_sqrt2", "square"}, keyword-only, default "erf_sqrt2"

    Returns
    -------
    float
        :math:`\gamma\Delta/(2\pi\sqrt3 K)` (erf) or :math:`\gamma\Delta/K` (square).

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named).

    Notes
    -----
    Derived in the module docstring (stationary point of the high-d ODE linearised at the
    teacher; arXiv 2302.05882, Thm 1 ODE). Relative corrections :math:`O(\gamma/p)`,
    :math:`O(\gamma\Delta)`; the test-suite checks them against the ODE's measured floor.

    Examples
    --------
    >>> round(noise_floor_theory(2, 0.1, 0.01), 10)  # 1e-3 / (4 pi sqrt 3)
    4.59441e-05
    """
    fn = "mfteach.sgd_odes.noise_floor_theory"
    K = check_int(K, "K", fn, min=1)
    gamma = check_float(gamma, "gamma", fn, min=0.0)
    delta = check_float(delta, "delta", fn, min=0.0)
    activation = _check_activation(activation, fn)
    return _floor(K, gamma, delta, activation)


def linearised_floor(K: int, gamma: float, delta: float, *, activation: str = "erf_sqrt2",
                     P: Tensor | None = None) -> float:
    r"""First-order floor from the full ODE: :math:`\nabla R\cdot x^\star`,
    :math:`Jx^\star + b = 0`, by autograd (the independent check of
    :func:`noise_floor_theory`).

    :math:`J` is the Jacobian of the noiseless drift :math:`(\dot Q, \dot M)` at
    :math:`Q = M = P` (student = teacher), :math:`b` the variance term there
    (:math:`\frac\gamma p\Delta\,\mathbb E[\sigma'\sigma']` on :math:`\dot Q`), and
    :math:`\nabla R` the risk gradient in the :math:`(Q_{i\le j}, M)` coordinates.

    Parameters
    ----------
    K, gamma, delta, activation
        As :func:`noise_floor_theory`.
    P : Tensor, shape (K, K), keyword-only, optional
        Teacher overlap (default the identity, float64); symmetric positive definite.

    Returns
    -------
    float
        For general ``P`` it equals :math:`\frac{\gamma\Delta}{4K^2}\operatorname{tr}G`.

    Examples
    --------
    >>> round(linearised_floor(2, 0.1, 0.01) / noise_floor_theory(2, 0.1, 0.01), 8)
    1.0
    """
    fn = "mfteach.sgd_odes.linearised_floor"
    K = check_int(K, "K", fn, min=1, max=6)
    gamma = check_float(gamma, "gamma", fn, min=0.0)
    delta = check_float(delta, "delta", fn, min=0.0)
    activation = _check_activation(activation, fn)
    if P is None:
        P = torch.eye(K, dtype=torch.float64)
    P = check_tensor(P, "P", fn, shape=(K, K))
    P = P.detach().to(torch.float64).cpu()
    asym = float((P - P.mT).abs().max())
    if bool(torch.linalg.cholesky_ex(P)[1] != 0) or asym > 16 * EPS64 * float(P.abs().max()):
        fail("P", fn, "symmetric positive definite", P)

    def risk(x):
        Q, M = unpack(x, K)
        return _risk(omega_raw(Q, M, P), K, K, activation)

    x0 = pack(P, P)
    J = torch.func.jacrev(drift_fn(K, P, activation, 0.0, 0.0))(x0)
    b = drift_fn(K, P, activation, gamma, delta)(x0)
    grad = torch.func.jacrev(risk)(x0)
    # The square activation's rotations of the students are exact symmetries (zero modes of
    # J, along which the risk is constant): the minimum-norm solution is the physical one.
    return float(grad @ torch.linalg.lstsq(J, -b.unsqueeze(-1), rcond=None,
                                            driver="gelsd").solution.squeeze(-1))


@dataclass(frozen=True)
class NoiseFloorGrid:
    r"""The high-d ODE's noise floor (its stationary point near the teacher, solved without
    linearising) next to the closed form, on a grid.

    Attributes
    ----------
    gammas, deltas : Tensor, shapes (n_g,), (n_d,)
    Ks : tuple of int
    measured : Tensor, shape (n_K, n_g, n_d)
        :math:`R - \Delta/2` at the full ODE's stationary point.
    theory : Tensor, shape (n_K, n_g, n_d)
        :func:`noise_floor_theory`.
    relaxation_rate : Tensor, shape (n_K,)
        The slowest decay rate of the noiseless ODE at the teacher (smallest non-zero
        :math:`-\operatorname{Re}\lambda` of its Jacobian): an ODE run needs a time of several
        :math:`1/\text{rate}` to reach the floor (about 45 at :math:`K = 2`, 70 at
        :math:`K = 3`, erf), far longer than the :math:`1/0.12` of :math:`K = 1`.
    activation : str
    """

    gammas: Tensor
    deltas: Tensor
    Ks: tuple
    measured: Tensor
    theory: Tensor
    relaxation_rate: Tensor
    activation: str


def _check_seq(v, name: str, fn: str, conv) -> list:
    if isinstance(v, (str, bytes)) or not hasattr(v, "__len__") or len(v) == 0:
        fail(name, fn, "a non-empty sequence of distinct values", v, exc=TypeError)
    out = [conv(x) for x in v]
    if len(set(out)) != len(out):
        fail(name, fn, "a sequence of distinct values", v)
    return out


def _stationary(K: int, gamma: float, delta: float, activation: str, fn: str) -> float:
    """Excess risk at the full high-d ODE's stationary point reached from the teacher."""
    P = torch.eye(K, dtype=torch.float64)
    x = newton(drift_fn(K, P, activation, gamma, delta), pack(P, P))
    if x is None:
        fail("gammas", fn, f"small enough that a stationary point exists near the teacher "
             f"(Newton diverged at K = {K}, gamma = {gamma:g}, Delta = {delta:g})", gamma)
    return excess(x, K, P, activation)  # noiseless: R - Delta/2


def _relaxation_rate(K: int, activation: str) -> float:
    P = torch.eye(K, dtype=torch.float64)
    J = torch.func.jacrev(drift_fn(K, P, activation, 0.0, 0.0))(pack(P, P))
    rates = -torch.linalg.eigvals(J).real
    tol = 1e3 * torch.finfo(torch.float64).eps * float(rates.abs().max())
    return float(rates[rates > tol].min())


def noise_floor_grid(gammas: Sequence[float] = (0.05, 0.1, 0.2),
                     deltas: Sequence[float] = (0.01, 0.1), Ks: Sequence[int] = (2,), *,
                     activation: str = "erf_sqrt2") -> NoiseFloorGrid:
    r"""The high-d ODE's floor for every :math:`(K, \gamma, \Delta)` next to the closed form.

    The floor is the stationary point of the full (nonlinear) ODE, found by Newton's method
    from the teacher: the time it takes the ODE to get there (:attr:`NoiseFloorGrid` field
    ``relaxation_rate``) is long for :math:`K \ge 2`, so a finite run would under-report it
    (by 1.5 % at :math:`t = 30`, :math:`K = 2`). The closed form should agree up to a
    relative error linear in :math:`\gamma` and :math:`\Delta`.

    Parameters
    ----------
    gammas, deltas : sequence of float
        Learning rates :math:`\gamma > 0` and noise variances :math:`\Delta > 0`.
    Ks : sequence of int
        Widths :math:`p = k = K` (at most 4: the Jacobian costs :math:`O(K^6)`).
    activation : {"erf_sqrt2", "square"}, keyword-only, default "erf_sqrt2"

    Returns
    -------
    NoiseFloorGrid

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named), or no stationary point near the teacher (too large a
        :math:`\gamma\Delta`).

    Notes
    -----
    Book size (3 x 2 x 3) about a second on one CPU core. arXiv 2302.05882, App. "Effect
    of noise".

    Examples
    --------
    >>> g = noise_floor_grid([0.01], [0.01], [1])
    >>> abs(float(g.measured[0, 0, 0] / g.theory[0, 0, 0]) - 1) < 0.01
    True
    """
    fn = "mfteach.sgd_odes.noise_floor_grid"
    gammas = _check_seq(gammas, "gammas", fn,
                        lambda x: check_float(x, "gammas", fn, min=0.0, min_open=True))
    deltas = _check_seq(deltas, "deltas", fn,
                        lambda x: check_float(x, "deltas", fn, min=0.0, min_open=True))
    Ks = _check_seq(Ks, "Ks", fn, lambda x: check_int(x, "Ks", fn, min=1, max=4))
    activation = _check_activation(activation, fn)
    meas = torch.empty(len(Ks), len(gammas), len(deltas), dtype=torch.float64)
    theo = torch.empty_like(meas)
    for a, K in enumerate(Ks):
        for b, g in enumerate(gammas):
            for c, dl in enumerate(deltas):
                meas[a, b, c] = _stationary(K, g, dl, activation, fn)
                theo[a, b, c] = _floor(K, g, dl, activation)
    rates = torch.tensor([_relaxation_rate(K, activation) for K in Ks], dtype=torch.float64)
    return NoiseFloorGrid(gammas=torch.tensor(gammas, dtype=torch.float64),
                          deltas=torch.tensor(deltas, dtype=torch.float64), Ks=tuple(Ks),
                          measured=meas, theory=theo, relaxation_rate=rates,
                          activation=activation)


@dataclass(frozen=True)
class NoiseFloorSGD:
    r"""Time-averaged SGD excess risk started at the teacher, against the closed form.

    Attributes
    ----------
    estimate : MCEstimate
        Mean excess risk over runs and the late window; ``stderr`` from the ``n_runs *
        n_blocks`` block means (each block spans several relaxation times, so blocks are
        nearly independent).
    theory : float
        :func:`noise_floor_theory`.
    ode : float
        The high-d ODE from the same start, averaged over the same recorded times (what SGD
        should match up to :math:`O(1/d)`: the ODE has not reached its floor by then, see
        ``stationary``).
    stationary : float
        The ODE's floor (its stationary point, as :func:`noise_floor_grid`).
    K, d : int
    gamma, delta : float
    t : Tensor, shape (T,)
    excess : Tensor, shape (n_runs, T)
        :math:`R - \Delta/2` of every run at the recorded times.
    """

    estimate: MCEstimate
    theory: float
    ode: float
    stationary: float
    K: int
    d: int
    gamma: float
    delta: float
    t: Tensor
    excess: Tensor


def noise_floor_sgd(K: int = 2, d: int = 200, *, gamma: float = 0.2, delta: float = 0.5,
                    n_runs: int = 8, t_burn: float = 15.0, t_max: float = 35.0,
                    n_blocks: int = 4, generator: int | torch.Generator = 0,
                    device=None, dtype: torch.dtype | None = None) -> NoiseFloorSGD:
    r"""Batched one-pass SGD started at the teacher (:math:`W_0 = W^*`, orthonormal rows
    scaled to :math:`P = I`): the late-time floor and its Monte-Carlo error.

    Parameters
    ----------
    K : int, default 2
        :math:`p = k = K`.
    d : int, default 200
        Input dimension (``>= K``).
    gamma, delta : float, keyword-only
        Learning rate and label-noise variance (both > 0).
    n_runs : int, keyword-only, default 8
        Independent runs (one batched program).
    t_burn, t_max : float, keyword-only
        Average over :math:`t \in (t_{burn}, t_{\max}]`. The modes at the teacher with rates
        0.22 to 0.69 (erf, K = 2) have settled by :math:`t_{burn} = 15`, those at 0.022 and
        0.049 have not: hence ``ode``, the ODE over the same window, is what SGD is compared
        with (it lies about 3 % below the floor at the defaults).
    n_blocks : int, keyword-only, default 4
        Time blocks per run for the standard error (``>= 1``; ``n_runs * n_blocks >= 2``).
    generator, device, dtype : keyword-only
        Seed or ``torch.Generator`` (teacher, then the SGD stream), device and dtype
        (default CPU, float64).

    Returns
    -------
    NoiseFloorSGD

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named), budgets; :class:`mfteach.training.DivergenceError`.

    Notes
    -----
    Book size (defaults, 70 000 steps of 8 runs) about 7 s on one CPU core; on a GPU pass
    ``device="cuda"`` and a larger ``d``/``n_runs``. Expected: the closed form up to relative
    :math:`O(\gamma/p, \gamma\Delta)` (the ODE's, measured by :func:`noise_floor_grid`) and
    :math:`O(1/d)` (finite dimension, arXiv 2302.05882 Thm 1).

    Examples
    --------
    >>> r = noise_floor_sgd(2, 20, gamma=0.5, delta=0.5, n_runs=2, t_burn=1.0, t_max=2.0)
    >>> r.excess.shape[0], r.estimate.n_samples
    (2, 8)
    """
    fn = "mfteach.sgd_odes.noise_floor_sgd"
    K = check_int(K, "K", fn, min=1)
    check_budget("K", fn, K, nbytes=64 * K**4)  # the ODE's (K, K, K, K) blocks
    d = check_int(d, "d", fn, min=K)
    gamma = check_float(gamma, "gamma", fn, min=0.0, min_open=True)
    delta = check_float(delta, "delta", fn, min=0.0, min_open=True)
    n_runs = check_int(n_runs, "n_runs", fn, min=1)
    n_blocks = check_int(n_blocks, "n_blocks", fn, min=1)
    if n_runs * n_blocks < 2:
        fail("n_blocks", fn, "such that n_runs * n_blocks >= 2 (a standard error needs two "
             "samples)", n_blocks)
    dev = resolve_device(device, fn)
    dt_ = resolve_dtype(dtype, fn)
    itemsize = torch.finfo(dt_).bits // 8
    big = max((("d", d), ("K", K), ("n_runs", n_runs)), key=lambda kv: kv[1])
    check_budget(big[0], fn, big[1], nbytes=4 * n_runs * K * d * itemsize)
    t_burn = check_float(t_burn, "t_burn", fn, min=0.0)
    check_budget("t_burn", fn, t_burn, steps=t_burn * K * d / gamma)
    t_max = check_float(t_max, "t_max", fn, min=0.0, min_open=True)
    if t_max <= t_burn:
        fail("t_max", fn, f"> t_burn = {t_burn}", t_max)
    check_budget("t_max", fn, t_max, steps=n_runs * t_max * K * d / gamma)
    check_budget("n_blocks", fn, n_blocks, nbytes=(10 * n_blocks + 2) * n_runs * K * (K + K)
                 * itemsize)
    g = as_generator(generator, dev, fn)
    A = torch.randn(d, K, generator=g, device=dev, dtype=dt_)
    Ws = (torch.linalg.qr(A)[0].mT * math.sqrt(d))  # (K, d), W* W*^T / d = I
    W0 = Ws.expand(n_runs, K, d).clone()
    n_per = 10
    times = torch.cat([torch.zeros(1, dtype=torch.float64),
                       torch.linspace(t_burn, t_max, n_blocks * n_per + 1,
                                      dtype=torch.float64)])
    if t_burn == 0:
        times = times[1:]
    parent = g if isinstance(generator, torch.Generator) else generator
    sgd_g = spawn_generators(parent, 1, device=dev, fn=fn)[0]
    tr = simulate_sgd(W0, Ws, activation="erf_sqrt2", gamma=gamma, delta=delta, times=times,
                      generator=sgd_g)
    ex = (tr.risk - delta / 2).to(torch.float64).cpu()  # (n_runs, T)
    late = ex[:, -n_blocks * n_per:].reshape(n_runs * n_blocks, n_per).mean(-1)
    est = MCEstimate(mean=late.mean(), stderr=late.std() / math.sqrt(late.numel()),
                     n_samples=late.numel())
    eye = torch.eye(K, dtype=torch.float64)
    ode = solve_ode(eye, eye, eye, activation="erf_sqrt2", gamma=gamma, delta=delta, times=times,
                    dt=0.05)
    ode_late = float((ode.risk[-n_blocks * n_per:] - delta / 2).mean())
    return NoiseFloorSGD(estimate=est, theory=_floor(K, gamma, delta, "erf_sqrt2"), ode=ode_late,
                         stationary=_stationary(K, gamma, delta, "erf_sqrt2", fn), K=K, d=d,
                         gamma=gamma, delta=delta, t=tr.t, excess=ex)


def plot_noise_floor_theory(grid: NoiseFloorGrid, sgd: Sequence[NoiseFloorSGD] = (), *,
                            ax=None):
    r"""Left: measured noise floors (ODE stationary point: dots; SGD: squares with two
    standard errors) against the closed form (line), log-log over :math:`\gamma\Delta/p`.
    Right: the same divided by the closed form against :math:`\gamma`, where the next order
    shows (SGD next to the ODE averaged over SGD's window, open diamonds).

    Parameters
    ----------
    grid : NoiseFloorGrid
    sgd : sequence of NoiseFloorSGD, optional
    ax : pair of matplotlib Axes, optional

    Returns
    -------
    (Figure, tuple of two Axes)
    """
    fn = "mfteach.sgd_odes.plot_noise_floor_theory"
    if not isinstance(grid, NoiseFloorGrid):
        fail("grid", fn, "a NoiseFloorGrid (from noise_floor_grid)", grid, exc=TypeError)
    sgd = list(sgd)
    if not all(isinstance(s, NoiseFloorSGD) for s in sgd):
        fail("sgd", fn, "a sequence of NoiseFloorSGD (from noise_floor_sgd)", sgd,
             exc=TypeError)
    fig, axes = axes_row(ax, 2, fn, (10.0, 3.9))
    left, right = axes
    c = 1 / (2 * math.pi * math.sqrt(3)) if grid.activation != "square" else 1.0
    xs = []
    for a, K in enumerate(grid.Ks):
        for j, dl in enumerate(grid.deltas.tolist()):
            x = (grid.gammas * dl / K).numpy()
            xs.extend(x.tolist())
            line, = left.loglog(x, grid.measured[a, :, j].numpy(), "o", ms=5,
                                label=f"ODE floor, K = {K}, Δ = {dl:g}")
            right.plot(grid.gammas.numpy(), (grid.measured[a, :, j] / grid.theory[a, :, j])
                       .numpy(), "o-", ms=4, lw=0.8, color=line.get_color())
    for i, s in enumerate(sgd):
        x = s.gamma * s.delta / s.K
        xs.append(x)
        m, e = float(s.estimate.mean), 2 * float(s.estimate.stderr)
        left.errorbar([x], [m], yerr=[e], fmt="s", color="k", capsize=3,
                      label=f"SGD, d = {s.d}, K = {s.K} (2 s.e.)")
        xg = s.gamma * (1 - 0.03 * (i + 1))  # side by side, left of the ODE's diamond
        right.errorbar([xg], [m / s.theory], yerr=[e / s.theory], fmt="s", color="k",
                       capsize=3, alpha=0.7)
        right.annotate(f"d = {s.d}", (xg, m / s.theory), xytext=(-30, 0),
                       textcoords="offset points", fontsize=7, va="center")
        right.plot([s.gamma], [s.ode / s.theory], "D", mfc="none", color="k")
    if sgd:
        right.plot([], [], "D", mfc="none", color="k", label="ODE over SGD's window")
        right.plot([], [], "s", color="k", label="SGD (2 s.e.)")
    xx = torch.logspace(math.log10(min(xs)) - 0.2, math.log10(max(xs)) + 0.2, 50).numpy()
    lab = (r"$\gamma\Delta/(2\pi\sqrt{3}\,p)$" if grid.activation != "square"
           else r"$\gamma\Delta/p$")
    left.loglog(xx, c * xx, "-", color="0.3", lw=1, label="closed form " + lab)
    left.set_xlabel(r"$\gamma\Delta/p$ (dimensionless)")
    left.set_ylabel(r"floor $R_\infty - \Delta/2$")
    left.legend(fontsize=7)
    right.axhline(1.0, color="0.3", lw=1, label="closed form")
    right.set_xlabel(r"learning rate $\gamma$")
    right.set_ylabel("floor / closed form")
    right.set_title("the next order in γ", fontsize=9)
    right.legend(fontsize=7)
    return fig, axes
