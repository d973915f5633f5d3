r"""The experiments of chapter 04, one function each (the notebook only calls and plots).

Each function starts SGD and the ODEs from the *same* initial overlaps, in the paper's time
:math:`t = \nu\gamma/(pd)`, and returns tensors and fitted slopes; the plots are in
:mod:`._plots`.

**Random streams.** An experiment's ``generator`` (an int seed or a ``torch.Generator``) first
draws the initial weights, exactly as ``init_weights(..., generator=generator)`` does (so one
seed's initialisation can be recomputed alone), and then spawns the independent stream of the
SGD inputs and label noise, ``spawn_generators(generator, 1)[0]``
(:func:`mfteach.device.spawn_generators`, a :class:`numpy.random.SeedSequence` child): seed
``s + 1``'s initial weights are unrelated to seed ``s``'s SGD samples. Scans over several
settings give setting ``i`` the stream ``spawn_generators(generator, i + 1)[i]``.

Every function validates its own arguments (the messages name them) and refuses, before any
work, sizes beyond ``MFTEACH_MAX_BYTES`` and runs beyond ``MFTEACH_MAX_STEPS``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import DEFAULT_MAX_STEPS, check_budget, check_choice, check_float, check_int, fail
from ..device import as_generator, spawn_generators
from ..stats import SlopeFit, fit_loglog_slope
from ._overlaps import (
    Overlaps,
    check_init_budget,
    check_overlaps,
    check_sizes,
    init_weights,
    overlaps,
    plateau_overlaps,
    teacher_cosines,
)
from ._rhs import REGIMES, _check_activation, check_mf
from ._simulate import simulate_sgd
from ._solve import MFTrajectory, Trajectory, solve_mf_ode, solve_ode

__all__ = ["ode_vs_sgd", "gap_vs_scale", "GapScan", "near_plateau", "specialization",
           "mean_field_vs_sgd", "noise_floor", "NoiseFloor", "perpendicular_q",
           "limits_triangle"]


def perpendicular_q(o: Overlaps) -> Tensor:
    r""":math:`q_i = (Q - MP^{-1}M^\top)_{ii}`, the squared norm of the part of :math:`w_i`
    orthogonal to the teacher subspace (over :math:`d`), the mean-field ODE's variable.

    Parameters
    ----------
    o : Overlaps
        Valid overlaps (as :func:`omega`) with an invertible ``P``.

    Returns
    -------
    Tensor, shape (..., p)
        Non-negative (rounding below 0 is clamped).

    Raises
    ------
    TypeError
        If ``o`` is not an :class:`Overlaps`.
    ValueError
        Invalid overlaps, or a singular ``P``.

    Examples
    --------
    >>> import torch
    >>> o = Overlaps(Q=2 * torch.eye(1), M=torch.ones(1, 1), P=torch.eye(1))
    >>> perpendicular_q(o)
    tensor([1.])
    """
    fn = "mfteach.sgd_odes.perpendicular_q"
    if not isinstance(o, Overlaps):
        fail("o", fn, "an Overlaps (Q, M, P)", o, exc=TypeError)
    Q, M, P = check_overlaps(o.Q, o.M, o.P, fn, names=("o.Q", "o.M", "o.P"))
    q = torch.diagonal(Q, dim1=-2, dim2=-1) - (M * torch.linalg.solve_ex(P, M.mT)[0].mT).sum(-1)
    return check_mf(M, q, P, fn, names=("o.M", "o.Q", "o.P"))[1]


def _streams(generator, fn: str):
    """Validate ``generator``; return (the generator of the initial weights, a function
    that spawns the SGD stream once the initial weights are drawn)."""
    g = as_generator(generator, None, fn)
    parent = g if isinstance(generator, torch.Generator) else generator

    def sgd_stream() -> torch.Generator:
        return spawn_generators(parent, 1, fn=fn)[0]

    return g, sgd_stream


def _check_sgd_run(fn: str, p: int, k: int, d: int, n_runs: int, gamma, t_max, n_save: int,
                   *, gamma_name: str = "gamma", d_name: str = "d") -> tuple[float, float]:
    """Validate and budget an experiment's SGD run of ``round(t_max p d / gamma)`` steps
    recorded at ``n_save`` equispaced times; sizes are already checked ints."""
    gamma = check_float(gamma, gamma_name, fn, min=0.0, min_open=True)
    t_max = check_float(t_max, "t_max", fn, min=0.0, min_open=True)
    check_init_budget(p, k, d, n_runs, 8, fn, d_name=d_name)
    check_budget("n_save", fn, n_save, nbytes=6 * n_save * n_runs * (p + k) ** 2 * 8)
    steps = t_max * p * d / gamma
    # blame gamma when the same run at gamma = 1 would be within the limit
    if gamma < 1 and t_max * p * d <= DEFAULT_MAX_STEPS:
        check_budget(gamma_name, fn, gamma, steps=steps)
    else:
        check_budget("t_max", fn, t_max, steps=steps)
    if t_max / (n_save - 1) * p * d / gamma < 0.5:
        fail(gamma_name, fn, f"small enough that the first save time t_max/(n_save - 1) = "
             f"{t_max / (n_save - 1):.3g} is at least half an SGD step gamma/(p d)",
             gamma, hint=f"One step advances t by {gamma / (p * d):.3g}; reduce "
                         f"{gamma_name!r}, or raise 't_max' or lower 'n_save'.")
    return gamma, t_max


def _check_ode_dt(fn: str, dt, t_max: float) -> float:
    dt = check_float(dt, "dt", fn, min=0.0, min_open=True)
    check_budget("dt", fn, dt, steps=t_max / dt)
    return dt


def ode_vs_sgd(activation: str, p: int, k: int, d: int, *, gamma: float, delta: float = 0.0,
               t_max: float, n_runs: int = 8, n_save: int = 21, dt: float = 0.05,
               regime: str = "high_d",
               generator: int | torch.Generator = 0) -> tuple[Trajectory, Trajectory]:
    r"""``n_runs`` batched SGD runs and the ODE started from each run's initial overlaps.

    Parameters
    ----------
    activation : {"erf_sqrt2", "square"}
    p, k, d : int
        Student width, teacher width (``k <= d``), input dimension.
    gamma, delta : float, keyword-only
        Raw learning rate :math:`\gamma > 0` and label-noise variance :math:`\Delta \ge 0`.
    t_max : float, keyword-only
        Final time :math:`t = \nu\gamma/(pd)`.
    n_runs, n_save, dt, regime, generator : keyword-only
        Runs, saved times (``>= 2``; the first, ``t_max/(n_save - 1)``, must be at least half
        an SGD step), ODE step, ODE regime (see :func:`solve_ode`), and an int seed or a
        ``torch.Generator``: the initial weights are ``init_weights(p, k, d, n_runs=n_runs,
        generator=generator)``, the SGD samples come from ``spawn_generators(generator,
        1)[0]`` (module docstring).

    Returns
    -------
    (Trajectory, Trajectory)
        SGD (leading axis: runs) and the ODE (same leading axis).

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named), sizes beyond the memory limit or runs beyond the step limit.
    mfteach.training.DivergenceError
        SGD or the ODE diverged (too large ``gamma`` or ``dt``).

    Notes
    -----
    Chapter 04, "The high-dimensional ODE".
    """
    fn = "mfteach.sgd_odes.ode_vs_sgd"
    activation = _check_activation(activation, fn)
    p, k, d, n_runs = check_sizes(p, k, d, n_runs, fn)
    if k > d:
        fail("k", fn, f"<= d = {d} (orthogonal teachers)", k)
    n_save = check_int(n_save, "n_save", fn, min=2)
    delta = check_float(delta, "delta", fn, min=0.0)
    regime = check_choice(regime, "regime", fn, REGIMES)
    gamma, t_max = _check_sgd_run(fn, p, k, d, n_runs, gamma, t_max, n_save)
    dt = _check_ode_dt(fn, dt, t_max)
    g, sgd_stream = _streams(generator, fn)
    return _ode_vs_sgd(activation, p, k, d, gamma, delta, t_max, n_runs, n_save, dt, regime,
                       g, sgd_stream)


def _ode_vs_sgd(activation, p, k, d, gamma, delta, t_max, n_runs, n_save, dt, regime, g,
                sgd_stream):
    W, Ws = init_weights(p, k, d, n_runs=n_runs, generator=g)
    o = overlaps(W, Ws)
    kw = dict(activation=activation, delta=delta, t_max=t_max, n_save=n_save)
    sgd = simulate_sgd(W, Ws, gamma=gamma, generator=sgd_stream(), **kw)
    ode = solve_ode(o.Q, o.M, o.P, gamma=gamma, regime=regime, dt=dt, **kw)
    return sgd, ode


@dataclass(frozen=True)
class GapScan:
    r"""SGD-ODE distance against the predicted scale :math:`\varepsilon = \sqrt{\gamma/(pd)}`.

    Attributes
    ----------
    eps : Tensor, shape (n,)
    rms : Tensor, shape (n,)
        Root-mean-square over runs of :math:`\max_{t, i, r}|M^{SGD}_{ir}(t) - M_{ir}(t)|`.
    fit : SlopeFit
        Slope of :math:`\log` rms against :math:`\log\varepsilon` (Thm 1 predicts 1).
    """

    eps: Tensor
    rms: Tensor
    fit: SlopeFit


def gap_vs_scale(activation: str, ds: Sequence[int], *, p: int = 2, k: int = 1,
                 gamma: float = 1.0, t_max: float = 2.0, n_runs: int = 24,
                 n_save: int | None = None,
                 generator: int | torch.Generator = 0) -> GapScan:
    r"""Measure how the SGD-ODE gap shrinks as :math:`d` grows (Thm 1 of the paper).

    Parameters
    ----------
    activation : {"erf_sqrt2", "square"}
    ds : sequence of int
        At least three distinct input dimensions (a fitted slope needs three points for its
        standard error), each ``>= k``.
    p, k, gamma, t_max, n_runs : keyword-only
        As in :func:`ode_vs_sgd`.
    n_save : int, keyword-only, optional
        Equispaced recorded times (``>= 2``) over which the gap's :math:`\max_t` is taken;
        the first, ``t_max/(n_save - 1)``, must be at least half an SGD step in every
        dimension. Default: a dense grid, ``min(21, 1 + floor(t_max p min(ds) / gamma))``
        (21 times, or one per SGD step of the smallest dimension when it takes fewer steps).
    generator : int or torch.Generator, keyword-only
        Dimension ``ds[i]`` runs :func:`ode_vs_sgd` with ``generator=spawn_generators(
        generator, i + 1)[i]``: any one dimension can be recomputed alone.

    Returns
    -------
    GapScan

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named), e.g. fewer than three or repeated dimensions.

    Notes
    -----
    Chapter 04; the test-suite asserts the slope.
    """
    fn = "mfteach.sgd_odes.gap_vs_scale"
    activation = _check_activation(activation, fn)
    if isinstance(ds, (str, bytes)) or not hasattr(ds, "__len__"):
        fail("ds", fn, "a sequence of at least three distinct ints >= 1", ds, exc=TypeError)
    ds = [check_int(d, "ds", fn, min=1) for d in ds]
    if len(ds) < 3 or len(set(ds)) != len(ds):
        fail("ds", fn, "a sequence of at least three distinct ints >= 1 (a fitted slope needs "
             "three points for its standard error)", ds)
    p = check_int(p, "p", fn, min=1)
    k = check_int(k, "k", fn, min=1)
    n_runs = check_int(n_runs, "n_runs", fn, min=1)
    if k > min(ds):
        fail("k", fn, f"<= min(ds) = {min(ds)} (orthogonal teachers)", k)
    if n_save is None:
        gamma = check_float(gamma, "gamma", fn, min=0.0, min_open=True)
        t_max = check_float(t_max, "t_max", fn, min=0.0, min_open=True)
        steps_min = t_max * p * min(ds) / gamma  # steps of the smallest dimension
        n_save = 21 if not steps_min < 20 else max(2, 1 + int(steps_min))
    n_save = check_int(n_save, "n_save", fn, min=2)
    for d in sorted(ds, reverse=True):  # the largest d first: it sets memory and steps
        gamma, t_max = _check_sgd_run(fn, p, k, d, n_runs, gamma, t_max, n_save, d_name="ds")
    check_budget("ds", fn, ds, steps=t_max * p * sum(ds) / gamma)
    children = spawn_generators(generator, len(ds), fn=fn)
    eps, rms = [], []
    for d, child in zip(ds, children):
        g, sgd_stream = _streams(child, fn)
        sgd, ode = _ode_vs_sgd(activation, p, k, d, gamma, 0.0, t_max, n_runs, n_save, 0.05,
                               "high_d", g, sgd_stream)
        err = (sgd.M - ode.M).abs().amax(dim=(-1, -2, -3))
        eps.append(math.sqrt(gamma / (p * d)))
        rms.append(float(err.pow(2).mean().sqrt()))
    e, r = torch.tensor(eps, dtype=torch.float64), torch.tensor(rms, dtype=torch.float64)
    if not bool((r > 0).all()):
        fail("t_max", fn, "long enough for SGD and the ODE to differ (a gap of 0 has no "
             "logarithm)", t_max)
    return GapScan(eps=e, rms=r, fit=fit_loglog_slope(e, r))


def near_plateau(K: int, *, perturbation: float = 1e-4) -> Overlaps:
    r"""The Saad-Solla symmetric point (:func:`plateau_overlaps`), with student 1 moved by
    ``perturbation`` along teacher 1 so that gradient flow eventually leaves it.

    :math:`w_1 \to w_1 + \epsilon w^*_1` raises :math:`M_{11}` by :math:`\epsilon` (the other
    :math:`M_{1r}` stay, :math:`P = I`) and updates :math:`Q` consistently,
    :math:`Q_{11} \mathrel{+}= 2\epsilon M_{11} + \epsilon^2`,
    :math:`Q_{1j} = Q_{j1} \mathrel{+}= \epsilon M_{j1}`: overlaps of real weights (raising
    :math:`M_{11}` alone would give a :math:`\Omega` that is not positive semi-definite,
    because all students coincide on the plateau).

    Parameters
    ----------
    K : int
        Student and teacher width.
    perturbation : float, keyword-only, default 1e-4
        :math:`\epsilon`, of either sign, :math:`|\epsilon| \le 1` (a perturbation of unit-scale
        overlaps).

    Returns
    -------
    Overlaps

    Examples
    --------
    >>> o = near_plateau(2, perturbation=0.0)
    >>> bool((o.M == o.M[0, 0]).all())
    True
    """
    fn = "mfteach.sgd_odes.near_plateau"
    K = check_int(K, "K", fn, min=1)
    check_budget("K", fn, K, nbytes=4 * K * K * 8)
    perturbation = check_float(perturbation, "perturbation", fn, min=-1.0, max=1.0)
    o = plateau_overlaps(K)
    eps = perturbation
    Q, M = o.Q.clone(), o.M.clone()
    old = M[:, 0].clone()  # M_{j1} before the move
    Q[0, :] += eps * old
    Q[:, 0] += eps * old
    Q[0, 0] += eps * eps  # 2 eps M_11 from the two lines above, plus eps^2 P_11
    M[0, 0] += eps
    return Overlaps(Q=Q, M=M, P=o.P)


def specialization(p: int = 10, k: int = 2, d: int = 10, *, gamma: float = 0.05,
                   t_max: float = 40.0, n_save: int = 81, dt: float = 0.1,
                   generator: int | torch.Generator = 0):
    r"""One SGD run and its gradient-flow ODE, as neuron cosines with the teachers (Fig. 2).

    Parameters
    ----------
    p, k, d : int
        Student width, teacher width (``k <= d``), input dimension.
    gamma, t_max, n_save, dt, generator : keyword-only
        Learning rate, final time, saved times, ODE step, seed or generator (as in
        :func:`ode_vs_sgd`: the initial weights are ``init_weights(p, k, d,
        generator=generator)``).

    Returns
    -------
    (Tensor, Tensor, Trajectory, Trajectory)
        Cosines :math:`M_{ir}/\sqrt{Q_{ii}P_{rr}}` along the ODE and along SGD, shapes
        (T, p, k), then the two trajectories.

    Raises
    ------
    ValueError, TypeError, mfteach.training.DivergenceError
        As :func:`ode_vs_sgd`.

    Notes
    -----
    The paper's Fig. 2 (left) uses :math:`k = 2, p = 10, \gamma = 0.05, \Delta = 0`.
    Chapter 04, "Specialization".
    """
    fn = "mfteach.sgd_odes.specialization"
    p, k, d, _ = check_sizes(p, k, d, 1, fn)
    if k > d:
        fail("k", fn, f"<= d = {d} (orthogonal teachers)", k)
    n_save = check_int(n_save, "n_save", fn, min=2)
    gamma, t_max = _check_sgd_run(fn, p, k, d, 1, gamma, t_max, n_save)
    dt = _check_ode_dt(fn, dt, t_max)
    g, sgd_stream = _streams(generator, fn)
    sgd, ode = _ode_vs_sgd("erf_sqrt2", p, k, d, gamma, 0.0, t_max, 1, n_save, dt, "gf", g,
                           sgd_stream)
    c_ode = teacher_cosines(ode.Q[0], ode.M[0], ode.P[0])
    c_sgd = teacher_cosines(sgd.Q[0], sgd.M[0], sgd.P[0])
    return c_ode, c_sgd, ode, sgd


def mean_field_vs_sgd(p: int = 200, k: int = 1, d: int = 5, *, gamma: float = 1.0,
                      t_max: float = 2.0, n_runs: int = 8, n_save: int = 11,
                      generator: int | torch.Generator = 0
                      ) -> tuple[Trajectory, dict[str, MFTrajectory]]:
    r"""Square activation, large :math:`p`, small :math:`d`: SGD against the reduced
    mean-field ODE with the :math:`\mathbb E_\Xi` correction and without it (:math:`\Xi=I`).

    Parameters
    ----------
    p, k, d : int
        Student width, teacher width, input dimension (``d >= k + 2`` for the correction).
    gamma, t_max, n_runs, n_save, generator : keyword-only
        As in :func:`ode_vs_sgd` (the ODE step is 0.02).

    Returns
    -------
    (Trajectory, dict of str to MFTrajectory)
        SGD runs and the two ODE solutions (keys ``"mean-field ODE with E_Xi"`` and
        ``"mean-field ODE, Xi = I"``).

    Raises
    ------
    ValueError, TypeError, mfteach.training.DivergenceError
        As :func:`ode_vs_sgd`.

    Notes
    -----
    The paper's App. (c). Chapter 04, "The mean-field limit".
    """
    fn = "mfteach.sgd_odes.mean_field_vs_sgd"
    p, k, d, n_runs = check_sizes(p, k, d, n_runs, fn)
    if d < k + 2:  # blame d when no k would do
        fail("d" if d < 3 else "k", fn, "such that d >= k + 2 (the E_Xi correction lives on "
             "S^(d-k-1))", d if d < 3 else k, hint=f"Got d = {d} and k = {k}.")
    n_save = check_int(n_save, "n_save", fn, min=2)
    gamma, t_max = _check_sgd_run(fn, p, k, d, n_runs, gamma, t_max, n_save)
    check_budget("t_max", fn, t_max, steps=t_max / 0.02)
    g, sgd_stream = _streams(generator, fn)
    W, Ws = init_weights(p, k, d, n_runs=n_runs, generator=g)
    o = overlaps(W, Ws)
    sgd = simulate_sgd(W, Ws, activation="square", gamma=gamma, t_max=t_max, n_save=n_save,
                       generator=sgd_stream())
    kw = dict(activation="square", t_max=t_max, n_save=n_save, dt=0.02)
    q0 = perpendicular_q(o)
    return sgd, {"mean-field ODE with E_Xi": solve_mf_ode(o.M, q0, o.P, d=d, **kw),
                 "mean-field ODE, Xi = I": solve_mf_ode(o.M, q0, o.P, d=None, **kw)}


def limits_triangle(activation: str, p: int, d: int, *, gamma: float, k: int = 2,
                    delta: float = 0.0, t_max: float = 1.5, n_runs: int = 2, n_save: int = 16,
                    dt: float = 0.25, generator: int | torch.Generator = 0
                    ) -> tuple[Trajectory, dict]:
    r"""SGD runs and the three ODEs of the triangle of limits, from the same initial overlaps.

    Parameters
    ----------
    activation : {"erf_sqrt2", "square"}
    p, d : int
        Student width and input dimension (``d >= k``).
    gamma : float, keyword-only
        Raw learning rate :math:`\gamma > 0`.
    k, delta, t_max, n_runs, n_save, dt, generator : keyword-only
        Teacher width, label-noise variance, final time, SGD runs, saved times, ODE step,
        seed or generator (as in :func:`ode_vs_sgd`).

    Returns
    -------
    (Trajectory, dict of str to Trajectory or MFTrajectory)
        SGD (leading axis: runs), then ``"high-d ODE"`` (with the :math:`\gamma/p` variance
        term), ``"gradient-flow ODE"`` and ``"mean-field ODE"`` (with the
        :math:`\mathbb E_\Xi` correction when :math:`d \ge k + 2`).

    Raises
    ------
    ValueError, TypeError, mfteach.training.DivergenceError
        As :func:`ode_vs_sgd`.

    Notes
    -----
    Chapter 04, "The triangle of limits": large :math:`d` -> high-d ODE; small
    :math:`\gamma/p` -> gradient flow; large :math:`p` -> mean field.
    """
    fn = "mfteach.sgd_odes.limits_triangle"
    activation = _check_activation(activation, fn)
    p, k, d, n_runs = check_sizes(p, k, d, n_runs, fn)
    if k > d:
        fail("k", fn, f"<= d = {d} (orthogonal teachers)", k)
    n_save = check_int(n_save, "n_save", fn, min=2)
    delta = check_float(delta, "delta", fn, min=0.0)
    gamma, t_max = _check_sgd_run(fn, p, k, d, n_runs, gamma, t_max, n_save)
    dt = _check_ode_dt(fn, dt, t_max)
    g, sgd_stream = _streams(generator, fn)
    W, Ws = init_weights(p, k, d, n_runs=n_runs, generator=g)
    o = overlaps(W, Ws)
    kw = dict(activation=activation, delta=delta, t_max=t_max, n_save=n_save)
    sgd = simulate_sgd(W, Ws, gamma=gamma, generator=sgd_stream(), **kw)
    hd = solve_ode(o.Q, o.M, o.P, gamma=gamma, dt=dt, **kw)
    gf = solve_ode(o.Q, o.M, o.P, regime="gf", dt=dt, **kw)
    mf = solve_mf_ode(o.M, perpendicular_q(o), o.P, d=d if d >= k + 2 else None, dt=dt, **kw)
    return sgd, {"high-d ODE": hd, "gradient-flow ODE": gf, "mean-field ODE": mf}


@dataclass(frozen=True)
class NoiseFloor:
    r"""Late-time excess risk of the high-d ODE against :math:`\gamma\Delta/p`.

    Attributes
    ----------
    x : Tensor
        :math:`\gamma\Delta/p` per run.
    floor : Tensor
        Excess risk :math:`R - \Delta/2` at ``t_max``.
    fit : SlopeFit
        Slope of :math:`\log` floor against :math:`\log x`.
    trajectories : list of Trajectory
    delta : float
    """

    x: Tensor
    floor: Tensor
    fit: SlopeFit
    trajectories: list
    delta: float


def noise_floor(gammas: Sequence[float], *, K: int = 2, delta: float = 0.01,
                t_max: float = 40.0) -> NoiseFloor:
    r"""High-d ODE for erf, :math:`p = k = K`, started at the teacher (:math:`Q = M = P = I`):
    the label noise drives the student to a floor that grows with :math:`\gamma\Delta/p`.

    Parameters
    ----------
    gammas : sequence of float
        At least three distinct learning rates :math:`\gamma > 0` (a fitted slope needs three
        points for its standard error).
    K : int, keyword-only, default 2
    delta : float, keyword-only, default 0.01
        Label-noise variance :math:`\Delta > 0` (without noise there is no floor).
    t_max : float, keyword-only, default 40
        Final time (41 saved times, RK4 step 0.1).

    Returns
    -------
    NoiseFloor

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named).
    mfteach.training.DivergenceError
        The ODE diverged (too large a ``gamma`` or ``delta``).

    Notes
    -----
    The paper's appendix "Effect of noise". Chapter 04, "Noise".
    """
    fn = "mfteach.sgd_odes.noise_floor"
    if isinstance(gammas, (str, bytes)) or not hasattr(gammas, "__len__"):
        fail("gammas", fn, "a sequence of at least three distinct positive finite floats",
             gammas, exc=TypeError)
    gammas = [check_float(g, "gammas", fn, min=0.0, min_open=True) for g in gammas]
    if len(gammas) < 3 or len(set(gammas)) != len(gammas):
        fail("gammas", fn, "a sequence of at least three distinct positive finite floats (a "
             "fitted slope needs three points for its standard error)", gammas)
    K = check_int(K, "K", fn, min=1)
    check_budget("K", fn, K, nbytes=64 * K**4 * 8 * 41)
    delta = check_float(delta, "delta", fn, min=0.0, min_open=True)
    t_max = check_float(t_max, "t_max", fn, min=0.0, min_open=True)
    check_budget("t_max", fn, t_max, steps=len(gammas) * t_max / 0.1)
    eye = torch.eye(K, dtype=torch.float64)
    times = torch.linspace(0, t_max, 41, dtype=torch.float64)
    trs = [solve_ode(eye, eye, eye, activation="erf_sqrt2", gamma=g, delta=delta, times=times,
                     dt=0.1) for g in gammas]
    x = torch.tensor([g * delta / K for g in gammas], dtype=torch.float64)
    floor = torch.stack([tr.risk[-1] - delta / 2 for tr in trs])
    if not bool((floor > 0).all()):
        fail("t_max", fn, "long enough for the excess risk to rise above rounding (its "
             "logarithm is fitted)", t_max)
    return NoiseFloor(x=x, floor=floor, fit=fit_loglog_slope(x, floor),
                      trajectories=trs, delta=delta)
