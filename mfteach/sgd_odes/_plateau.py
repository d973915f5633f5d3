r"""How long the Saad-Solla plateau lasts: a saddle's unstable rate against measured escapes.

**The law.** The symmetric point of :func:`plateau_overlaps` (erf, :math:`p = k = K`,
:math:`P = I`) is a saddle of the overlap ODE; its unstable directions are the doubly centred
:math:`HMH`, :math:`H = I - \frac1K\mathbf 1\mathbf 1^\top` (students preferring different
teachers: one irreducible representation of the student and teacher permutations, so one
rate, :math:`(K-1)^2`-fold). A start at distance :math:`\epsilon` along it leaves after
:math:`t_{esc} = \frac1\lambda\log\frac1\epsilon + c + O(\epsilon)`, :math:`\lambda` the
largest eigenvalue of the ODE's Jacobian at the saddle (autograd, :func:`torch.func.jacrev`,
on the packed :math:`(Q_{i\le j}, M)`). Measured (:func:`plateau_escape`): the fitted slope is
:math:`1/\lambda` to five digits (:math:`K = 2`: 30.41847 :math:`\pm` 0.00007 against
30.41834; :math:`K = 3`: 65.067 :math:`\pm` 0.005 against 65.051).

**The variance term** :math:`\frac\gamma p\Psi^{(Var)}` of the high-d ODE (regime
``"high_d"``) keeps coinciding students coinciding, so the saddle survives, moved up in risk
(Newton's method), and it *raises* :math:`\lambda`: it shortens the plateau. Without label noise
the effect is small, :math:`\lambda = 0.032875` at :math:`\gamma = 0` and 0.032986, 0.033164,
0.033497 (+0.3, +0.9, +1.9 %) at :math:`\gamma/p` = 0.1, 0.25, 0.5 (:math:`K = 2`); measured,
escapes from :math:`\epsilon = 10^{-2}` to :math:`10^{-6}` come 2.6 to 7.9 time units (2 %)
earlier at :math:`\gamma = 1`. With label noise the variance term carries
:math:`\frac\gamma p\Delta\,\mathbb E[\sigma'\sigma']` and the effect is large:
:math:`\lambda` = 0.0402 (+22 %) at :math:`\gamma/p = 0.5, \Delta = 0.05` and 0.0465
(+42 %) at :math:`\Delta = 0.1` (:math:`K = 3`: +53 % and +138 %).

**From a random start** (:func:`plateau_from_random`). Students :math:`W_0 = sG`, :math:`G`
i.i.d. :math:`N(0, 1)`: the *initial overlap scale* :math:`s` gives :math:`Q_{ii}\approx s^2`
and :math:`M_{ir}\sim N(0, s^2/d)`. Gradient flow carries all students along
:math:`\sum_r w^*_r` onto the plateau while the doubly centred part of :math:`M`, its own
representation, is only multiplied by a universal factor: its initial size
:math:`\epsilon_0 = \lVert HM_0H\rVert_F/(1 - 1/K) \propto s/\sqrt d` (normalised so that
:func:`near_plateau` has :math:`\epsilon_0 = \epsilon`) plays :math:`\epsilon`. Measured: the
plateau ends at :math:`\log(1/\epsilon_0)/\lambda - 8.0948` for every initialisation at small
:math:`s` (:math:`K = 2`, band 0.2), corrections :math:`O(s^2)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._checks import check_budget, check_choice, check_float, check_int, fail
from ._experiments import near_plateau
from ._linearised import drift_fn, excess, newton, pack
from ._overlaps import plateau_overlaps
from ._rhs import _check_activation
from ._solve import solve_ode

__all__ = ["LogLawFit", "PlateauEscape", "plateau_escape", "plateau_rate"]

#: Largest label-noise variance: the excess risks here are O(1e-3) and the risk carries
#: Delta/2, so beyond this the excess would be lost to rounding of R - Delta/2.
MAX_DELTA = 100.0
F64 = torch.float64


# --- The saddle and its unstable rate (autograd Jacobian of the full high-d RHS)

def _drift_fn(K: int, gamma: float, delta: float):
    return drift_fn(K, torch.eye(K, dtype=F64), "erf_sqrt2", gamma, delta)


def _excess(x: Tensor, K: int) -> float:
    return excess(x, K, torch.eye(K, dtype=F64), "erf_sqrt2")


def _newton(K: int, gamma: float, delta: float, x: Tensor, fn: str, what: str) -> Tensor:
    """Stationary point of the high-d drift near ``x`` (:func:`._linearised.newton`)."""
    out = newton(_drift_fn(K, gamma, delta), x)
    if out is None:
        fail("gammas" if fn.endswith("escape") else "gamma", fn, f"small enough, with "
             f"'delta', that the {what} survives (Newton's method did not converge at "
             f"K = {K}, gamma = {gamma:g}, Delta = {delta:g})", gamma)
    return out


def _saddle(K: int, gamma: float, delta: float, fn: str) -> tuple[Tensor, Tensor]:
    """(packed saddle, Jacobian there) of the high-d ODE at (gamma, delta)."""
    o = plateau_overlaps(K)
    x = pack(o.Q, o.M)
    if gamma > 0:  # without it the variance term is absent and the point is exact
        x = _newton(K, gamma, delta, x, fn, "symmetric saddle")
    return x, torch.func.jacrev(_drift_fn(K, gamma, delta))(x)


def _rate(J: Tensor) -> float:
    return float(torch.linalg.eigvals(J).real.max())


def _floor_excess(K: int, gamma: float, delta: float, fn: str) -> float:
    """Excess risk at the stationary point near the teacher (0 without label noise)."""
    if delta == 0 or gamma == 0:
        return 0.0
    eye = torch.eye(K, dtype=F64)
    return _excess(_newton(K, gamma, delta, pack(eye, eye), fn, "noise floor"), K)


def plateau_rate(K: int = 2, gamma: float = 0.0, delta: float = 0.0) -> float:
    r"""Unstable rate :math:`\lambda` of the Saad-Solla saddle of the high-d ODE (erf,
    :math:`p = k = K`, :math:`P = I`).

    The largest real eigenvalue of the Jacobian of :math:`(\dot Q_{i\le j}, \dot M)` at the
    symmetric saddle (:func:`plateau_overlaps` for :math:`\gamma\Delta = 0 = \gamma`,
    otherwise the saddle moved by the variance term, found by Newton's method).

    Parameters
    ----------
    K : int, default 2
        ``2 <= K <= 4`` (the Jacobian costs :math:`O(K^6)`).
    gamma : float, default 0
        Learning rate :math:`\gamma \ge 0`; :math:`\gamma/p` enters.
    delta : float, default 0
        Label-noise variance, :math:`0 \le \Delta \le 100`.

    Returns
    -------
    float
        :math:`\lambda`; the plateau lasts :math:`\frac1\lambda\log\frac1\epsilon` + const.

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named), or a saddle that Newton's method loses (huge ``gamma``).

    Notes
    -----
    Saad & Solla (1995), Phys. Rev. E 52, 4225; arXiv 2302.05882, Thm 1. Chapter 04.

    Examples
    --------
    >>> round(plateau_rate(2), 6)
    0.032875
    """
    fn = "mfteach.sgd_odes.plateau_rate"
    K = check_int(K, "K", fn, min=2, max=4)
    gamma = check_float(gamma, "gamma", fn, min=0.0)
    delta = check_float(delta, "delta", fn, min=0.0, max=MAX_DELTA)
    return _rate(_saddle(K, gamma, delta, fn)[1])


# --- Crossing times and the log law

def _crossing(t: np.ndarray, y: np.ndarray, level: float, start: int) -> tuple[float, float]:
    """First time at or after index ``start`` where ``y`` falls below ``level``.

    Inverse interpolation of :math:`t` as a cubic in :math:`\\log y` through the four records
    around the crossing (linear when fewer are usable). Returns (time, error estimate): the
    difference from the quadratic through the three records nearest the crossing (linear:
    from the linear one), an upper estimate of the cubic's error. NaN when there is no
    crossing.
    """
    below = np.nonzero(y[start:] < level)[0]
    if not below.size:
        return math.nan, math.nan
    i = start + int(below[0])
    if i == 0:
        return float(t[0]), 0.0
    lv = math.log(level)
    y0, y1 = max(y[i - 1], 1e-300), max(y[i], 1e-300)
    l0, l1 = math.log(y0), math.log(y1)
    lin = float(t[i - 1] + (lv - l0) / (l1 - l0) * (t[i] - t[i - 1]))
    lo, hi = i - 2, i + 2
    if lo < 0 or hi > y.size or not bool(np.all(y[lo:hi] > 0)):
        return lin, abs(float(t[i] - t[i - 1]))
    ly = np.log(y[lo:hi])
    if not bool(np.all(np.diff(ly) < 0)):
        return lin, abs(float(t[i] - t[i - 1]))
    tt = t[lo:hi] - t[i - 1]
    cub = float(np.polyval(np.polyfit(ly - lv, tt, 3), 0.0))
    quad = float(np.polyval(np.polyfit(ly[1:] - lv, tt[1:], 2), 0.0))
    return cub + float(t[i - 1]), abs(cub - quad)


@dataclass(frozen=True)
class LogLawFit:
    r"""Least-squares fit of :math:`t = c + \text{slope}\,\log(1/x) + \beta x^{n}`.

    The :math:`\beta x^n` term is the first correction to the logarithmic law (the next order
    of the unstable amplitude); ``stderr`` is the OLS standard error of ``slope`` (residuals
    with ``n_points - 3`` degrees of freedom).

    Attributes
    ----------
    slope, stderr, intercept, correction : float
        :math:`\text{slope}`, its standard error, :math:`c` and :math:`\beta`.
    power : int
        :math:`n`.
    n_points : int
    """

    slope: float
    stderr: float
    intercept: float
    correction: float
    power: int
    n_points: int

    def __str__(self) -> str:
        return f"slope {self.slope:.5f} ± {self.stderr:.2g} ({self.n_points} points)"


def _log_law_fit(x: np.ndarray, t: np.ndarray, power: int) -> tuple[LogLawFit, np.ndarray]:
    """The fit and the slope's row of the pseudo-inverse (to propagate errors of ``t``)."""
    A = np.stack([np.ones_like(x), np.log(1 / x), x**power], axis=1)
    pinv = np.linalg.pinv(A)
    coef = pinv @ t
    r = t - A @ coef
    dof = x.size - 3
    cov = np.linalg.inv(A.T @ A) * float(r @ r) / dof
    fit = LogLawFit(slope=float(coef[1]), stderr=math.sqrt(max(float(cov[1, 1]), 0.0)),
                    intercept=float(coef[0]), correction=float(coef[2]), power=power,
                    n_points=x.size)
    return fit, pinv[1]


def _rk4_rate_error(rate: float, h: float) -> float:
    """|1/lambda_h - 1/lambda|: RK4's growth rate of a linear mode, log R(lambda h)/h."""
    z = rate * h
    amp = 1 + z + z * z / 2 + z**3 / 6 + z**4 / 24
    return abs(h / math.log(amp) - 1 / rate)


def _check_values(v, name: str, fn: str, lo: float, hi: float, n_min: int) -> list[float]:
    """Distinct floats in (lo, hi] (in [0, hi] when ``lo`` is None), at least ``n_min``."""
    rule = f"a sequence of at least {n_min} distinct numbers"
    if isinstance(v, (str, bytes)) or not hasattr(v, "__len__"):
        fail(name, fn, rule, v, exc=TypeError)
    out = [check_float(x, name, fn, min=0.0 if lo is None else lo, max=hi,
                       min_open=lo is not None) for x in v]
    if len(out) < n_min or len(set(out)) != len(out):
        fail(name, fn, rule + (" (the law's fit has three parameters and needs residuals)"
                               if n_min > 1 else ""), v)
    return out


def _run_until(Q, M, P, *, gamma, delta, dt, t_chunk, t_cap, done, fn, name, value):
    """Integrate the high-d ODE from t = 0 in chunks until ``done(t, excess)``.

    Returns (t (T,), excess (..., T)) as numpy float64.
    """
    check_budget(name, fn, value, steps=t_cap / dt)
    ts, ex, t0 = [], [], 0.0
    while True:
        n = max(2, math.ceil(t_chunk / dt))
        times = t0 + dt * torch.arange(n + 1, dtype=F64)
        tr = solve_ode(Q, M, P, activation="erf_sqrt2", gamma=gamma, delta=delta, times=times,
                       dt=dt)
        first = 0 if not ts else 1
        ts.append(tr.t[first:].numpy())
        ex.append((tr.risk[..., first:] - delta / 2).numpy())
        Q, M, t0 = tr.Q[..., -1, :, :], tr.M[..., -1, :, :], float(times[-1])
        t_all, ex_all = np.concatenate(ts), np.concatenate(ex, axis=-1)
        if done(t_all, ex_all):
            return t_all, ex_all
        if t0 >= t_cap:
            fail(name, fn, f"such that every run leaves the plateau by t = {t_cap:.4g} (one "
                 "did not: a start too close to the symmetric subspace escapes after "
                 "log(1/eps)/lambda)", value)


# --- 1. Escape from near the saddle

@dataclass(frozen=True)
class PlateauEscape:
    r"""Escape times from the Saad-Solla saddle against :math:`\log(1/\epsilon)/\lambda`.

    Attributes
    ----------
    K : int
    gammas : Tensor, shape (n_g,)
    delta : float
    perturbations : Tensor, shape (n_e,)
        :math:`\epsilon` of :func:`near_plateau`.
    t_escape : Tensor, shape (n_g, n_e)
        First time the excess risk falls below ``threshold`` (cubic inverse interpolation).
    threshold : Tensor, shape (n_g,)
        ``(1 - band) * saddle_risk + band * floor``.
    saddle_risk : Tensor, shape (n_g,)
        Excess risk :math:`R - \Delta/2` at the saddle (:func:`plateau_risk` at
        :math:`\gamma = \Delta = 0`).
    floor : Tensor, shape (n_g,)
        Excess risk at the stationary point near the teacher (0 when :math:`\Delta = 0`).
    rate : Tensor, shape (n_g,)
        :math:`\lambda(\gamma)` (:func:`plateau_rate`).
    fits : tuple of LogLawFit
        :math:`t_{esc}` against :math:`\log(1/\epsilon)`, one per :math:`\gamma`; ``slope``
        estimates :math:`1/\lambda`.
    allowance : Tensor, shape (n_g,)
        Discretisation allowance of each fitted slope: RK4's error in the growth rate,
        :math:`|h/\log R(\lambda h) - 1/\lambda|`, plus the interpolation errors propagated
        through the fit.
    t : Tensor, shape (T,)
    excess : Tensor, shape (n_g, n_e, T)
        Excess risk along every run.
    """

    K: int
    gammas: Tensor
    delta: float
    perturbations: Tensor
    t_escape: Tensor
    threshold: Tensor
    saddle_risk: Tensor
    floor: Tensor
    rate: Tensor
    fits: tuple
    allowance: Tensor
    t: Tensor
    excess: Tensor


def plateau_escape(K: int = 2, *,
                   perturbations: Sequence[float] = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5, 1e-6),
                   gammas: Sequence[float] = (0.0, 0.5, 1.0), delta: float = 0.0,
                   band: float = 0.2, activation: str = "erf_sqrt2",
                   dt: float = 1.0) -> PlateauEscape:
    r"""Escape times of the high-d ODE from :func:`near_plateau` against the saddle's rate.

    For each :math:`\gamma` every :math:`\epsilon` starts at ``near_plateau(K,
    perturbation=eps)`` (one batched ODE, regime ``"high_d"``; :math:`\gamma = 0` is gradient
    flow) and escapes when its excess risk first falls a fraction ``band`` of the way from
    the saddle's to the floor's. The law :math:`t_{esc} = \frac1\lambda\log\frac1\epsilon + c +
    \beta\epsilon` is fitted; its slope should be :math:`1/\lambda(\gamma)` within a few
    standard errors plus ``allowance``.

    Parameters
    ----------
    K : int, default 2
        :math:`p = k = K`, ``2 <= K <= 4``.
    perturbations : sequence of float, keyword-only
        At least four distinct :math:`\epsilon \in (0, 0.1]`.
    gammas : sequence of float, keyword-only, default (0, 0.5, 1)
        Learning rates :math:`\gamma \ge 0` (only :math:`\gamma/p` enters).
    delta : float, keyword-only, default 0
        Label-noise variance, at most 100.
    band : float, keyword-only, default 0.2
        Escape threshold: excess risk :math:`(1 - b)R_s + bR_\infty`, :math:`R_s` the
        saddle's, :math:`R_\infty` the floor's, in (0, 1). Keep it small for :math:`K \ge 3`:
        :func:`near_plateau` keeps students :math:`2..K` exactly symmetric, so the run
        leaves the first saddle for a partially specialised one (excess risk 0.00129 =
        0.57 :math:`R_s` at :math:`K = 3`) and stays there.
    activation : {"erf_sqrt2"}, keyword-only
        The Saad-Solla plateau of :func:`plateau_overlaps` is that of erf(u/sqrt 2).
    dt : float, keyword-only, default 1.0
        RK4 step and recording interval, ``<= 2`` (the risk moves by less than 1e-5 time
        units in the escape times from dt = 0.5, measured).

    Returns
    -------
    PlateauEscape

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named), a saddle Newton's method loses, or a run that never escapes.

    Notes
    -----
    Measured (erf, :math:`K = 2`, :math:`\Delta = 0`, defaults): slopes 30.41847, 30.15355,
    29.85387 (:math:`\pm 7\cdot 10^{-5}`) against :math:`1/\lambda` = 30.41834, 30.15342,
    29.85375; :math:`t_{esc}(10^{-4}) = 265.4, 262.9, 260.1`. Book size (defaults) about 5 s
    on one CPU core. Saad & Solla (1995); arXiv 2302.05882, Thm 1, Sec. 4. Chapter 04.

    Examples
    --------
    >>> r = plateau_escape(perturbations=(1e-2, 3e-3, 1e-3, 3e-4), gammas=(0.0,), dt=2.0)
    >>> abs(r.fits[0].slope * float(r.rate[0]) - 1) < 1e-3
    True
    """
    fn = "mfteach.sgd_odes.plateau_escape"
    K = check_int(K, "K", fn, min=2, max=4)
    eps = _check_values(perturbations, "perturbations", fn, 0.0, 0.1, 4)
    gs = _check_values(gammas, "gammas", fn, None, math.inf, 1)
    delta = check_float(delta, "delta", fn, min=0.0, max=MAX_DELTA)
    check_choice(_check_activation(activation, fn), "activation", fn, ("erf_sqrt2",))
    band = check_float(band, "band", fn, min=0.0, max=1.0, min_open=True, max_open=True)
    dt = check_float(dt, "dt", fn, min=0.0, max=2.0, min_open=True)
    os_ = [near_plateau(K, perturbation=e) for e in eps]
    Q0 = torch.stack([o.Q for o in os_])
    M0 = torch.stack([o.M for o in os_])
    P = torch.stack([o.P for o in os_])
    out: dict[str, list] = {k: [] for k in ("te", "fit", "allow", "lam", "sad", "flo", "thr",
                                             "ex")}
    t_ref = np.zeros(0)
    for g in gs:
        xs, J = _saddle(K, g, delta, fn)
        lam = _rate(J)
        s_ex, f_ex = _excess(xs, K), _floor_excess(K, g, delta, fn)
        level = (1 - band) * s_ex + band * f_ex
        t_guess = 1.2 * (math.log(1 / min(eps)) + 1) / lam + 40
        t, ex = _run_until(Q0, M0, P, gamma=g, delta=delta, dt=dt, t_chunk=t_guess,
                           t_cap=4 * t_guess, fn=fn, name="perturbations", value=perturbations,
                           done=lambda t, ex, v=level: all(
                               math.isfinite(_crossing(t, e, v, 1)[0]) for e in ex))
        cross = np.array([_crossing(t, e, level, 1) for e in ex])  # (n_e, 2)
        fit, w = _log_law_fit(np.asarray(eps), cross[:, 0], 1)
        for k, v in (("te", cross[:, 0]), ("fit", fit), ("lam", lam), ("sad", s_ex),
                     ("flo", f_ex), ("thr", level), ("ex", ex),
                     ("allow", _rk4_rate_error(lam, dt) + float(np.abs(w) @ cross[:, 1]))):
            out[k].append(v)
        t_ref = t if t.size > t_ref.size else t_ref
    excess = np.full((len(gs), len(eps), t_ref.size), np.nan)
    for i, ex in enumerate(out["ex"]):
        excess[i, :, :ex.shape[-1]] = ex
    return PlateauEscape(K=K, gammas=_ten(gs), delta=delta, perturbations=_ten(eps),
                         t_escape=_ten(np.stack(out["te"])), threshold=_ten(out["thr"]),
                         saddle_risk=_ten(out["sad"]), floor=_ten(out["flo"]),
                         rate=_ten(out["lam"]), fits=tuple(out["fit"]),
                         allowance=_ten(out["allow"]), t=_ten(t_ref), excess=_ten(excess))


def _ten(v) -> Tensor:
    return torch.as_tensor(np.asarray(v, dtype=np.float64))
