r"""The experiments of chapter 04, one function each (the notebook only calls and plots).

Each function starts SGD and the ODEs from the *same* initial overlaps, in the paper's time
:math:`t = \nu\gamma/(pd)`, and returns tensors and fitted slopes; the plots are in
:mod:`._plots`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_float, check_int
from ..stats import SlopeFit, fit_loglog_slope
from ._overlaps import Overlaps, init_weights, overlaps, plateau_overlaps, teacher_cosines
from ._rhs import _check_activation
from ._simulate import simulate_sgd
from ._solve import MFTrajectory, Trajectory, solve_mf_ode, solve_ode

__all__ = ["ode_vs_sgd", "gap_vs_scale", "GapScan", "near_plateau", "specialization",
           "mean_field_vs_sgd", "noise_floor", "NoiseFloor", "perpendicular_q",
           "limits_triangle"]


def perpendicular_q(o: Overlaps) -> Tensor:
    r""":math:`q_i = (Q - MP^{-1}M^\top)_{ii}`, the squared norm of the part of :math:`w_i`
    orthogonal to the teacher subspace (over :math:`d`), the mean-field ODE's variable.

    Examples
    --------
    >>> import torch
    >>> o = Overlaps(Q=2 * torch.eye(1), M=torch.ones(1, 1), P=torch.eye(1))
    >>> perpendicular_q(o)
    tensor([1.])
    """
    return torch.diagonal(o.Q - o.M @ torch.linalg.solve(o.P, o.M.mT), dim1=-2, dim2=-1)


def ode_vs_sgd(activation: str, p: int, k: int, d: int, *, gamma: float, delta: float = 0.0,
               t_max: float, n_runs: int = 8, n_save: int = 21, dt: float = 0.05,
               regime: str = "high_d", generator: int = 0) -> tuple[Trajectory, Trajectory]:
    r"""``n_runs`` batched SGD runs and the ODE started from each run's initial overlaps.

    Parameters
    ----------
    activation : {"erf", "square"}
    p, k, d : int
        Student width, teacher width, input dimension.
    gamma, delta : float, keyword-only
        Raw learning rate :math:`\gamma` and label-noise variance :math:`\Delta`.
    t_max : float, keyword-only
        Final time :math:`t = \nu\gamma/(pd)`.
    n_runs, n_save, dt, regime, generator : keyword-only
        Runs, saved times, ODE step, ODE regime (see :func:`solve_ode`), seed.

    Returns
    -------
    (Trajectory, Trajectory)
        SGD (leading axis: runs) and the ODE (same leading axis).

    Notes
    -----
    Chapter 04, "The high-dimensional ODE".
    """
    fn = "mfteach.sgd_odes.ode_vs_sgd"
    activation = _check_activation(activation, fn)
    n_runs = check_int(n_runs, "n_runs", fn, min=1)
    W, Ws = init_weights(p, k, d, n_runs=n_runs, generator=generator)
    o = overlaps(W, Ws)
    kw = dict(activation=activation, delta=delta, t_max=t_max, n_save=n_save)
    sgd = simulate_sgd(W, Ws, gamma=gamma, generator=generator + 1, **kw)
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
                 generator: int = 0) -> GapScan:
    r"""Measure how the SGD-ODE gap shrinks as :math:`d` grows (Thm 1 of the paper).

    Parameters
    ----------
    activation : {"erf", "square"}
    ds : sequence of int
        Input dimensions, at least two.
    p, k, gamma, t_max, n_runs, generator : keyword-only
        As in :func:`ode_vs_sgd`.

    Returns
    -------
    GapScan

    Notes
    -----
    Chapter 04; the test-suite asserts the slope.
    """
    fn = "mfteach.sgd_odes.gap_vs_scale"
    if len(ds) < 2:
        raise ValueError(f"The 'ds' parameter of {fn} must hold at least two dimensions. "
                         f"Got {list(ds)!r} instead.")
    eps, rms = [], []
    for i, d in enumerate(ds):
        d = check_int(d, "ds", fn, min=1)
        sgd, ode = ode_vs_sgd(activation, p, k, d, gamma=gamma, t_max=t_max, n_runs=n_runs,
                              n_save=3, generator=generator + 10 * i)
        err = (sgd.M - ode.M).abs().amax(dim=(-1, -2, -3))
        eps.append(math.sqrt(gamma / (p * d)))
        rms.append(float(err.pow(2).mean().sqrt()))
    e, r = torch.tensor(eps, dtype=torch.float64), torch.tensor(rms, dtype=torch.float64)
    return GapScan(eps=e, rms=r, fit=fit_loglog_slope(e, r))


def near_plateau(K: int, *, perturbation: float = 1e-4) -> Overlaps:
    r"""The Saad-Solla symmetric point (:func:`plateau_overlaps`), with :math:`M_{11}`
    raised by ``perturbation`` so that gradient flow eventually leaves it.

    Examples
    --------
    >>> o = near_plateau(2, perturbation=0.0)
    >>> bool((o.M == o.M[0, 0]).all())
    True
    """
    fn = "mfteach.sgd_odes.near_plateau"
    perturbation = check_float(perturbation, "perturbation", fn)
    o = plateau_overlaps(K)
    M = o.M.clone()
    M[0, 0] += perturbation
    return Overlaps(Q=o.Q, M=M, P=o.P)


def specialization(p: int = 10, k: int = 2, d: int = 10, *, gamma: float = 0.05,
                   t_max: float = 40.0, n_save: int = 81, dt: float = 0.1,
                   generator: int = 0):
    r"""One SGD run and its gradient-flow ODE, as neuron cosines with the teachers (Fig. 2).

    Parameters
    ----------
    p, k, d : int
        Student width, teacher width, input dimension.
    gamma, t_max, n_save, dt, generator : keyword-only
        Learning rate, final time, saved times, ODE step, seed (as in :func:`ode_vs_sgd`).

    Returns
    -------
    (Tensor, Tensor, Trajectory, Trajectory)
        Cosines :math:`M_{ir}/\sqrt{Q_{ii}P_{rr}}` along the ODE and along SGD, shapes
        (T, p, k), then the two trajectories.

    Notes
    -----
    The paper's Fig. 2 (left) uses :math:`k = 2, p = 10, \gamma = 0.05, \Delta = 0`.
    Chapter 04, "Specialization".
    """
    sgd, ode = ode_vs_sgd("erf", p, k, d, gamma=gamma, t_max=t_max, n_runs=1, n_save=n_save,
                          dt=dt, regime="gf", generator=generator)
    c_ode = teacher_cosines(ode.Q[0], ode.M[0], ode.P[0])
    c_sgd = teacher_cosines(sgd.Q[0], sgd.M[0], sgd.P[0])
    return c_ode, c_sgd, ode, sgd


def mean_field_vs_sgd(p: int = 200, k: int = 1, d: int = 5, *, gamma: float = 1.0,
                      t_max: float = 2.0, n_runs: int = 8, n_save: int = 11,
                      generator: int = 0) -> tuple[Trajectory, dict[str, MFTrajectory]]:
    r"""Square activation, large :math:`p`, small :math:`d`: SGD against the reduced
    mean-field ODE with the :math:`\mathbb E_\Xi` correction and without it (:math:`\Xi=I`).

    Returns
    -------
    (Trajectory, dict of str to MFTrajectory)
        SGD runs and the two ODE solutions (keys ``"with E_Xi"`` and ``"Xi = I"``).

    Notes
    -----
    The paper's App. (c). Chapter 04, "The mean-field limit".
    """
    W, Ws = init_weights(p, k, d, n_runs=n_runs, generator=generator)
    o = overlaps(W, Ws)
    sgd = simulate_sgd(W, Ws, activation="square", gamma=gamma, t_max=t_max, n_save=n_save,
                       generator=generator + 1)
    kw = dict(activation="square", t_max=t_max, n_save=n_save, dt=0.02)
    q0 = perpendicular_q(o)
    return sgd, {"mean-field ODE with E_Xi": solve_mf_ode(o.M, q0, o.P, d=d, **kw),
                 "mean-field ODE, Xi = I": solve_mf_ode(o.M, q0, o.P, d=None, **kw)}


def limits_triangle(activation: str, p: int, d: int, *, gamma: float, k: int = 2,
                    delta: float = 0.0, t_max: float = 1.5, n_runs: int = 2, n_save: int = 16,
                    dt: float = 0.25, generator: int = 0) -> tuple[Trajectory, dict]:
    r"""SGD runs and the three ODEs of the triangle of limits, from the same initial overlaps.

    Parameters
    ----------
    activation : {"erf", "square"}
    p, d : int
        Student width and input dimension.
    gamma : float, keyword-only
        Raw learning rate :math:`\gamma`.
    k, delta, t_max, n_runs, n_save, dt, generator : keyword-only
        Teacher width, label-noise variance, final time, SGD runs, saved times, ODE step,
        seed (as in :func:`ode_vs_sgd`).

    Returns
    -------
    (Trajectory, dict of str to Trajectory or MFTrajectory)
        SGD (leading axis: runs), then ``"high-d ODE"`` (with the :math:`\gamma/p` variance
        term), ``"gradient-flow ODE"`` and ``"mean-field ODE"`` (with the
        :math:`\mathbb E_\Xi` correction when :math:`d \ge k + 2`).

    Notes
    -----
    Chapter 04, "The triangle of limits": large :math:`d` -> high-d ODE; small
    :math:`\gamma/p` -> gradient flow; large :math:`p` -> mean field.
    """
    fn = "mfteach.sgd_odes.limits_triangle"
    activation = _check_activation(activation, fn)
    d = check_int(d, "d", fn, min=1)
    k = check_int(k, "k", fn, min=1)
    W, Ws = init_weights(p, k, d, n_runs=n_runs, generator=generator)
    o = overlaps(W, Ws)
    kw = dict(activation=activation, delta=delta, t_max=t_max, n_save=n_save)
    sgd = simulate_sgd(W, Ws, gamma=gamma, generator=generator + 1, **kw)
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

    Notes
    -----
    The paper's appendix "Effect of noise". Chapter 04, "Noise".
    """
    fn = "mfteach.sgd_odes.noise_floor"
    K = check_int(K, "K", fn, min=1)
    delta = check_float(delta, "delta", fn, min=0.0)
    eye = torch.eye(K, dtype=torch.float64)
    times = torch.linspace(0, t_max, 41, dtype=torch.float64)
    trs = [solve_ode(eye, eye, eye, activation="erf", gamma=g, delta=delta, times=times,
                     dt=0.1) for g in gammas]
    x = torch.tensor([g * delta / K for g in gammas], dtype=torch.float64)
    floor = torch.stack([tr.risk[-1] - delta / 2 for tr in trs])
    return NoiseFloor(x=x, floor=floor, fit=fit_loglog_slope(x, floor),
                      trajectories=trs, delta=delta)
