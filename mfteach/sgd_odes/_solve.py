r"""Fixed-step integration of the overlap ODEs, in the paper's time :math:`t = \nu\gamma/(pd)`.

Solvers follow the torchdiffeq/diffrax pattern: a small object that declares its ``order`` and
takes one ``step``; ``SOLVERS`` maps names to them. States are tuples of tensors, batched
over any leading axes (many initial conditions integrate as one program).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import (
    DEFAULT_MAX_STEPS,
    check_bool,
    check_budget,
    check_choice,
    check_float,
    check_int,
    check_tensor,
    fail,
)
from ..training import DivergenceError
from ._overlaps import check_overlaps, omega_raw
from ._rhs import REGIMES, _check_activation, _mf_drift, _rhs, _risk, check_mf, mf_risk

__all__ = ["Solver", "SOLVERS", "Trajectory", "MFTrajectory", "solve_ode", "solve_mf_ode",
           "time_grid"]

State = tuple[Tensor, ...]


@dataclass(frozen=True)
class Solver:
    """An explicit Runge-Kutta method with its declared (global) order of accuracy."""

    name: str
    order: int
    stepper: Callable

    def step(self, f: Callable[[State], State], y: State, h: float) -> State:
        """One step of size ``h > 0`` for the autonomous ODE ``y' = f(y)``.

        ``y`` is a tuple of floating tensors and ``f`` maps such a tuple to one of the same
        shapes. Raises ``TypeError``/``ValueError`` for bad arguments, and
        :class:`mfteach.training.DivergenceError` when the step produces NaN or inf (``h``
        too large for this ``f``).
        """
        fn = f"mfteach.sgd_odes.Solver.step ({self.name})"
        if not callable(f):
            fail("f", fn, "a callable y -> y' (a tuple of tensors)", f, exc=TypeError)
        if not isinstance(y, tuple) or not y or not all(isinstance(t, Tensor) for t in y):
            fail("y", fn, "a non-empty tuple of tensors", y, exc=TypeError)
        for t in y:
            check_tensor(t, "y", fn)
        h = check_float(h, "h", fn, min=0.0, min_open=True)
        out = self.stepper(f, y, h)
        if not all(bool(torch.isfinite(t).all()) for t in out):
            raise DivergenceError(f"{fn}: the step h = {h:.3g} produced NaN or inf; take a "
                                  f"smaller step (e.g. h = {h / 10:.3g}).")
        return out


def _axpy(y: State, h: float, k: State) -> State:
    return tuple(a + h * b for a, b in zip(y, k))


def _euler(f, y, h):
    return _axpy(y, h, f(y))


def _heun(f, y, h):
    k1 = f(y)
    k2 = f(_axpy(y, h, k1))
    return tuple(a + 0.5 * h * (b + c) for a, b, c in zip(y, k1, k2))


def _rk4(f, y, h):
    k1 = f(y)
    k2 = f(_axpy(y, 0.5 * h, k1))
    k3 = f(_axpy(y, 0.5 * h, k2))
    k4 = f(_axpy(y, h, k3))
    return tuple(a + (h / 6) * (b1 + 2 * b2 + 2 * b3 + b4)
                 for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4))


#: Registry of fixed-step solvers: ``"euler"`` (order 1), ``"rk2"`` (Heun, order 2),
#: ``"rk4"`` (classical Runge-Kutta, order 4).
SOLVERS: dict[str, Solver] = {
    "euler": Solver("euler", 1, _euler),
    "rk2": Solver("rk2", 2, _heun),
    "rk4": Solver("rk4", 4, _rk4),
}


@dataclass(frozen=True)
class Trajectory:
    r"""Overlaps and risk along a trajectory (ODE solution or SGD run).

    Attributes
    ----------
    t : Tensor, shape (T,)
        Times :math:`t = \nu\gamma/(pd)`.
    Q : Tensor, shape (..., T, p, p)
    M : Tensor, shape (..., T, p, k)
    P : Tensor, shape (..., T, k, k)
    risk : Tensor, shape (..., T)
        Population risk :math:`R(\Omega(t))`, label noise :math:`\Delta/2` included.
    """

    t: Tensor
    Q: Tensor
    M: Tensor
    P: Tensor
    risk: Tensor


@dataclass(frozen=True)
class MFTrajectory:
    r"""The mean-field reduced trajectory :math:`(M(t), q(t))`.

    Attributes
    ----------
    t : Tensor, shape (T,)
    M : Tensor, shape (..., T, p, k)
    q : Tensor, shape (..., T, p)
    P : Tensor, shape (..., k, k)
    risk : Tensor, shape (..., T)
    """

    t: Tensor
    M: Tensor
    q: Tensor
    P: Tensor
    risk: Tensor


def time_grid(t_max: float | None, times, n_save: int, fn: str, dtype=torch.float64,
              record_bytes: int = 0) -> Tensor:
    """Recording times: ``times`` if given (sorted, >= 0), else linspace(0, t_max, n_save).

    ``record_bytes`` (the memory one recorded time takes) bounds ``n_save`` / ``len(times)``
    by the memory limit.
    """
    if times is None:
        if t_max is None:
            fail("t_max", fn, "given (or pass `times`)", t_max, exc=TypeError)
        t_max = check_float(t_max, "t_max", fn, min=0.0, min_open=True)
        n_save = check_int(n_save, "n_save", fn, min=2)
        check_budget("n_save", fn, n_save, nbytes=n_save * (8 + record_bytes))
        return torch.linspace(0.0, t_max, n_save, dtype=dtype)
    if not isinstance(times, Tensor):
        try:
            times = torch.as_tensor(times, dtype=dtype)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            fail("times", fn, "a 1-D sequence of times", times, exc=TypeError)
    if times.dtype == torch.bool or times.dtype.is_complex:
        fail("times", fn, "a 1-D sequence of real times", times, exc=TypeError)
    times = check_tensor(times.detach().cpu().to(dtype), "times", fn, ndim=1)
    if times.numel() < 1 or bool((times < 0).any()) or bool((times.diff() < 0).any()):
        fail("times", fn, "a non-empty, non-decreasing 1-D sequence of times >= 0", times)
    check_budget("times", fn, times, nbytes=times.numel() * (8 + record_bytes))
    return times


class _Invalid(Exception):
    """Raised by a guarded right-hand side: the state left the valid set (a reason string)."""


def _n_steps(times: Tensor, dt: float) -> int:
    return sum(max(1, math.ceil(float(b - a) / dt - 1e-9)) for a, b in
               zip(times[:-1].tolist(), times[1:].tolist()) if b > a)


def _check_ode_steps(times: Tensor, dt: float, fn: str, time_name: str, time_value) -> None:
    """Refuse integrations of more than MFTEACH_MAX_STEPS steps, blaming the time range or,
    when the range would be fine at the default step 1e-2, ``dt``."""
    span = float(times[-1] - times[0])
    n = span / dt + times.numel()  # an upper bound of _n_steps, without overflow
    if span / 1e-2 + times.numel() <= DEFAULT_MAX_STEPS:
        check_budget("dt", fn, dt, steps=n)
    else:
        check_budget(time_name, fn, time_value, steps=n)


def _integrate(f, y0: State, times: Tensor, dt: float, solver: Solver, progress: bool,
               post: Callable[[State], tuple[State, str | None]], desc: str,
               diverged: Callable[[str, float, float], None]) -> list[State]:
    """Integrate y' = f(y) from times[0] and return the states at every time.

    ``f`` may raise :class:`_Invalid` (a stage left the valid set); ``post(y)`` returns the
    state after a step, projected back onto the valid set, and a reason when it left it by
    more than a projection may fix; either calls ``diverged(reason, t, h)``, which raises.
    """
    out = [y0]
    y = y0
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=_n_steps(times, dt), desc=desc, leave=False)
    try:
        for a, b in zip(times[:-1].tolist(), times[1:].tolist()):
            if b > a:
                n = max(1, math.ceil((b - a) / dt - 1e-9))
                h = (b - a) / n
                for i in range(n):
                    try:
                        y = solver.stepper(f, y, h)
                    except _Invalid as exc:
                        diverged(str(exc), a + i * h, h)
                    y, reason = post(y)
                    if reason:
                        diverged(reason, a + (i + 1) * h, h)
                if bar is not None:
                    bar.update(n)
            out.append(y)
    finally:
        if bar is not None:
            bar.close()
    return out


#: Overlaps beyond this magnitude count as exploding.
_MAX_OVERLAP = 1e8
#: A state that leaves the valid set by more than this fraction of its scale (Omega's smallest
#: eigenvalue below ``-TRAJECTORY_TOL * max|Omega|``, or a negative ``q_i`` below
#: ``-TRAJECTORY_TOL * Q_ii``) comes from an unstable step: a DivergenceError. A stable step
#: near a singular Omega (a plateau, a converged student) leaves it by its truncation error
#: only, at most about 1e-4 at the chapter's coarsest steps (measured), and is projected back.
TRAJECTORY_TOL = 1e-2


def _stage_invalid(Om: Tensor) -> str | None:
    """Cheap check of a stage's overlaps (one synchronisation): finite and below 1e8."""
    if bool((Om.abs() <= _MAX_OVERLAP).all()):
        return None
    if not bool(torch.isfinite(Om).all()):
        return "the overlaps became NaN or inf"
    return f"the overlaps exploded (max |Omega| = {float(Om.abs().max()):.3g})"


def _violation(what: str, value: float) -> str:
    return f"{what} ({value:.3g}), which no weights can have"


def _project_step(Q: Tensor, M: Tensor, P: Tensor, P_pd: bool) -> tuple[Tensor, str | None]:
    r"""Check the overlaps after a step and project them back onto those of real weights.

    With :math:`P` positive definite, :math:`\Omega` is PSD iff the Schur complement
    :math:`S = Q - MP^{-1}M^\top` is: a negative eigenvalue of S below
    ``-TRAJECTORY_TOL * max|Omega|`` is divergence; a smaller one (truncation error near a
    singular Omega) is removed from Q, leaving M and P untouched. Matrices whose S is PSD are
    returned unchanged.
    """
    Qs = 0.5 * (Q + Q.mT)
    Om = omega_raw(Qs, M, P)
    reason = _stage_invalid(Om)
    if reason:
        return Q, reason
    tol = TRAJECTORY_TOL * Om.abs().amax(dim=(-2, -1))
    dq = torch.diagonal(Qs, dim1=-2, dim2=-1).amin(-1)
    if bool((dq < -tol).any()):
        return Q, _violation("a squared norm Q_ii became negative", float(dq.min()))
    if not P_pd:
        ev = torch.linalg.eigvalsh(Om)[..., 0]
        if bool((ev < -tol).any()):
            return Q, _violation("Omega = [[Q, M], [M^T, P]] stopped being positive "
                                 "semi-definite, smallest eigenvalue", float(ev.min()))
        return Q, None
    Qpar = M @ torch.linalg.solve(P, M.mT)
    w, V = torch.linalg.eigh(Qs - Qpar)
    wmin = w[..., 0]
    if bool((wmin < -tol).any()):
        return Q, _violation("Omega = [[Q, M], [M^T, P]] stopped being positive semi-definite, "
                             "Q - M P^-1 M^T has eigenvalue", float(wmin.min()))
    neg = wmin < 0
    if not bool(neg.any()):
        return Q, None
    Qp = Qpar + (V * w.clamp_min(0).unsqueeze(-2)) @ V.mT
    return torch.where(neg[..., None, None], 0.5 * (Qp + Qp.mT), Q), None


def solve_ode(Q0: Tensor, M0: Tensor, P: Tensor, *, activation: str, gamma: float = 0.0,
              delta: float = 0.0, regime: str = "high_d", t_max: float | None = None,
              times: Sequence[float] | Tensor | None = None, n_save: int = 101,
              dt: float = 1e-2, solver: str = "rk4", progress: bool = False) -> Trajectory:
    r"""Integrate the overlap ODE (high-dimensional, gradient-flow or GF + noise).

    .. math::

        \dot M = \Psi^{(M)}(\Omega),\qquad \dot Q = \Psi^{(GF)}(\Omega)
        + \frac\gamma p\Psi^{(Var)}(\Omega)\quad(\text{regime "high\_d"}),

    with :math:`P` fixed, in time :math:`t = \nu\gamma/(pd)` (see :func:`ode_rhs`).

    Parameters
    ----------
    Q0, M0, P : Tensor, shapes (..., p, p), (..., p, k), (..., k, k)
        Initial overlaps; leading axes are independent initial conditions.
    activation : {"erf_sqrt2", "square"}, keyword-only
    gamma : float, keyword-only, default 0
        Raw SGD learning rate (only :math:`\gamma/p` enters).
    delta : float, keyword-only, default 0
        Label-noise variance :math:`\Delta`.
    regime : {"high_d", "gf", "gf_noise"}, keyword-only, default "high_d"
    t_max : float, keyword-only
        Final time; the trajectory is recorded at ``n_save`` equispaced times.

    Other Parameters
    ----------------
    times : sequence of float, keyword-only, optional
        Recording times instead of ``t_max``/``n_save`` (e.g. log-spaced); starts the
        integration at ``times[0]``.
    n_save : int, default 101
    dt : float, default 1e-2
        Largest step; each interval between recording times is split evenly.
    solver : {"euler", "rk2", "rk4"}, default "rk4"
        See ``SOLVERS`` (declared orders 1, 2, 4; the test-suite measures them).
    progress : bool, default False
        Show a tqdm bar.

    Returns
    -------
    Trajectory
        ``Q (..., T, p, p)``, ``M (..., T, p, k)``, ``P (..., T, k, k)``, ``risk (..., T)``.

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named in the message): invalid initial overlaps (as
        :func:`mfteach.sgd_odes.omega`), more than ``MFTEACH_MAX_STEPS`` steps (a huge
        ``t_max`` or a tiny ``dt``), more records than fit ``MFTEACH_MAX_BYTES``.
    mfteach.training.DivergenceError
        If the overlaps become non-finite, exceed :math:`10^8`, or leave those of real weights
        (a negative :math:`Q_{ii}`, :math:`\Omega` no longer positive semi-definite by more than
        ``TRAJECTORY_TOL = 1e-2`` of its scale): step too large, or a learning rate beyond the
        stability limit (the square activation). The message names the step and ``gamma``.
        A stable step that leaves the PSD cone by its truncation error only (near a singular
        :math:`\Omega`: a plateau, a converged student) is projected back onto it (the
        negative part of :math:`Q - MP^{-1}M^\top` removed), so every recorded state is the
        overlap of real weights.

    Notes
    -----
    arXiv 2302.05882, Sec. 3 (Thm 1) and Sec. 4 (classical limit: the trajectory does not
    depend on :math:`d` given the initial overlaps). Used in chapter 04.

    Examples
    --------
    >>> import torch
    >>> I = lambda n: torch.eye(n, dtype=torch.float64)
    >>> tr = solve_ode(I(2), 0.1 * torch.ones(2, 1, dtype=torch.float64), I(1),
    ...                activation="erf_sqrt2", gamma=0.5, t_max=1.0, n_save=3)
    >>> tr.Q.shape, bool(tr.risk[-1] < tr.risk[0])
    (torch.Size([3, 2, 2]), True)
    """
    fn = "mfteach.sgd_odes.solve_ode"
    activation = _check_activation(activation, fn)
    gamma = check_float(gamma, "gamma", fn, min=0.0)
    delta = check_float(delta, "delta", fn, min=0.0)
    regime = check_choice(regime, "regime", fn, REGIMES)
    dt = check_float(dt, "dt", fn, min=0.0, min_open=True)
    slv = SOLVERS[check_choice(solver, "solver", fn, SOLVERS)]
    check_bool(progress, "progress", fn)
    Q0, M0, P = check_overlaps(Q0, M0, P, fn, names=("Q0", "M0", "P"))
    p, k = M0.shape[-2], M0.shape[-1]
    per_time = 2 * Q0.numel() // (p * p) * (p + k) ** 2 * Q0.element_size()
    t = time_grid(t_max, times, n_save, fn, record_bytes=per_time)
    _check_ode_steps(t, dt, fn, "t_max" if times is None else "times",
                     t_max if times is None else times)

    def f(y):
        Q, M = y
        Q = 0.5 * (Q + Q.mT)
        Om = omega_raw(Q, M, P)
        reason = _stage_invalid(Om)
        if reason:
            raise _Invalid(reason)
        dQ, dM = _rhs(Om, p, k, activation, gamma, delta, regime)
        if not bool(torch.isfinite(dQ).all() & torch.isfinite(dM).all()):
            raise _Invalid("the drift became NaN or inf")
        return dQ, dM

    P_pd = bool((torch.linalg.cholesky_ex(P)[1] == 0).all())

    def post(y):
        Q, reason = _project_step(y[0], y[1], P, P_pd)
        return (Q, y[1]), reason

    def diverged(reason, tb, h):
        sq = (", and the square activation is unstable when it is large"
              if activation == "square" else "")
        lr = (f" or gamma (the learning rate; gamma/p = {gamma / p:.3g} enters the variance "
              f"term{sq})" if regime != "gf" and gamma > 0 else "")
        raise DivergenceError(
            f"The overlap ODE diverged near t = {tb:.4g} ({slv.name} step h = {h:.3g}, "
            f"gamma = {gamma:.3g}, regime {regime!r}): {reason}. Reduce dt (e.g. to "
            f"{h / 4:.3g}){lr}.")

    states = _integrate(f, (Q0, M0), t, dt, slv, progress, post, "ODE", diverged)
    Q = torch.stack([s[0] for s in states], dim=-3)
    M = torch.stack([s[1] for s in states], dim=-3)
    Pt = P.unsqueeze(-3).expand(*Q.shape[:-2], k, k)
    risk = _risk(omega_raw(Q, M, Pt), p, k, activation) + delta / 2
    return Trajectory(t=t.to(Q.device), Q=Q, M=M, P=Pt, risk=risk)


def solve_mf_ode(M0: Tensor, q0: Tensor, P: Tensor, *, activation: str, d: int | None = None,
                 delta: float = 0.0, t_max: float | None = None,
                 times: Sequence[float] | Tensor | None = None, n_save: int = 101,
                 dt: float = 1e-2, solver: str = "rk4",
                 progress: bool = False) -> MFTrajectory:
    r"""Integrate the mean-field reduced ODE on :math:`(M, q)` (see :func:`mf_rhs`).

    Parameters
    ----------
    M0 : Tensor, shape (..., p, k)
    q0 : Tensor, shape (..., p)
        :math:`q_i = (Q - MP^{-1}M^\top)_{ii}` at :math:`t = 0`.
    P : Tensor, shape (..., k, k)
    activation : {"erf_sqrt2", "square"}, keyword-only
    d : int or None, keyword-only
        ``None``: high-d simplification (:math:`\Xi = I`); an int: the :math:`\mathbb E_\Xi`
        correction in dimension ``d``.
    delta, t_max, times, n_save, dt, solver, progress
        As in :func:`solve_ode`.

    Returns
    -------
    MFTrajectory

    Raises
    ------
    ValueError, TypeError
        As :func:`mf_rhs` for ``(M0, q0, P)``; step and record limits as :func:`solve_ode`.
    mfteach.training.DivergenceError
        The state became non-finite, exceeded :math:`10^8`, or some :math:`q_i` fell below
        ``-TRAJECTORY_TOL`` of its scale (an unstable step); slightly negative :math:`q_i`
        (truncation error) are clamped at 0.

    Notes
    -----
    arXiv 2302.05882, Sec. 5 (Thm 2: error :math:`\propto p^{-1/2}`; Thm 3: the :math:`\Xi = I`
    simplification costs :math:`O(d^{-1/2})`). Used in chapter 04.

    Examples
    --------
    >>> import torch
    >>> M = torch.zeros(50, 1, dtype=torch.float64) + 0.1; q = torch.ones(50, dtype=torch.float64)
    >>> tr = solve_mf_ode(M, q, torch.eye(1, dtype=torch.float64), activation="square", d=4,
    ...                   t_max=0.5, n_save=3)
    >>> tr.q.shape
    torch.Size([3, 50])
    """
    fn = "mfteach.sgd_odes.solve_mf_ode"
    activation = _check_activation(activation, fn)
    delta = check_float(delta, "delta", fn, min=0.0)
    dt = check_float(dt, "dt", fn, min=0.0, min_open=True)
    slv = SOLVERS[check_choice(solver, "solver", fn, SOLVERS)]
    check_bool(progress, "progress", fn)
    M0, q0, P = check_mf(M0, q0, P, fn, names=("M0", "q0", "P"))
    lead = torch.broadcast_shapes(M0.shape[:-2], q0.shape[:-1], P.shape[:-2])
    p, k = M0.shape[-2], M0.shape[-1]
    M0, q0 = M0.expand(*lead, p, k), q0.expand(*lead, p)
    P = P.expand(*lead, k, k)
    if d is not None:
        d = check_int(d, "d", fn, min=k + 2)
    per_time = 2 * max(1, math.prod(lead)) * p * (k + 1) * M0.element_size()
    t = time_grid(t_max, times, n_save, fn, record_bytes=per_time)
    _check_ode_steps(t, dt, fn, "t_max" if times is None else "times",
                     t_max if times is None else times)
    def state_invalid(M, q):
        if not (bool(torch.isfinite(M).all()) and bool(torch.isfinite(q).all())):
            return "the state (M, q) became NaN or inf"
        big = max(float(M.abs().max()), float(q.abs().max()))
        if big > _MAX_OVERLAP:
            return f"the overlaps exploded (max |M|, |q| = {big:.3g})"
        # q_i is a squared norm: far below 0 it is no truncation error (TRAJECTORY_TOL)
        scale = q.abs() + (M * M).sum(-1)
        if bool((q < -TRAJECTORY_TOL * scale).any()):
            return (f"a squared orthogonal norm q_i became negative ({float(q.min()):.3g}), "
                    f"which no weights can have")
        return None

    def f(y):
        M, q = y
        reason = state_invalid(M, q)
        if reason:
            raise _Invalid(reason)
        dM, dq = _mf_drift(M, q.clamp_min(0), P, activation, d)
        if not (bool(torch.isfinite(dM).all()) and bool(torch.isfinite(dq).all())):
            raise _Invalid("the drift became NaN or inf")
        return dM, dq

    def post(y):
        M, q = y
        reason = state_invalid(M, q)
        return (M, q if reason else q.clamp_min(0)), reason

    def diverged(reason, tb, h):
        raise DivergenceError(
            f"The mean-field ODE diverged near t = {tb:.4g} ({slv.name} step h = {h:.3g}): "
            f"{reason}. Reduce dt (e.g. to {h / 4:.3g}).")

    states = _integrate(f, (M0, q0), t, dt, slv, progress, post, "MF-ODE", diverged)
    M = torch.stack([s[0] for s in states], dim=-3)
    q = torch.stack([s[1] for s in states], dim=-2).clamp_min(0)
    Pt = P.unsqueeze(-3).expand(*M.shape[:-2], k, k)
    risk = mf_risk(M, q, Pt, activation=activation, d=d, delta=delta)
    return MFTrajectory(t=t.to(M.device), M=M, q=q, P=P, risk=risk)
