r"""Dimension independence shown by SGD, and the collapse of the SGD-ODE gap on
:math:`\varepsilon = \sqrt{\gamma/(pd)}` (chapter 04).

Arnaboldi, Stephan, Krzakala, Loureiro (2023), arXiv 2302.05882. Thm 1: from the same initial
overlaps, one-pass SGD stays within :math:`e^{Ct}\sqrt{\gamma/(pd)}` of the high-dimensional
ODE, which has no :math:`d` (Sec. 4, Fig. 2 right: runs in several :math:`d` from the same
overlaps fall on one curve, their spread shrinking with :math:`d`). Two experiments:

* :func:`dimension_independence`: SGD in several :math:`d` from *the same* overlaps
  (realised by :func:`weights_from_overlaps`), beside the ODE solved from them; the spread of
  the runs against :math:`\varepsilon`, whose fitted slope Thm 1 predicts to be 1.
* :func:`gap_collapse`: the SGD-ODE gap over a grid of :math:`(d, \gamma)`: every cell on one
  line of slope 1 against :math:`\varepsilon`, not against :math:`1/d` alone.

**Random streams.** Cell ``c`` (dimension ``ds[c]``; for the grid, cell ``(i, j)`` is ``c = i *
len(gammas) + j``) uses the child ``spawn_generators(generator, n_cells)[c]``
(:func:`mfteach.device.spawn_generators`): it first draws the random rotations of
:func:`weights_from_overlaps`, then the SGD inputs, so any cell can be recomputed alone. The
``n_replicates * n_runs`` runs of a cell are one batched SGD call; replicate ``r`` is runs
``r * n_runs`` to ``(r + 1) * n_runs - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_budget, check_float, check_int, fail
from ..device import resolve_device, resolve_dtype, spawn_generators
from ..stats import SlopeFit, SlopeSpread, fit_loglog_slope, slope_spread
from ._experiments import _check_sgd_run
from ._overlaps import check_overlaps, weights_from_overlaps
from ._rhs import _check_activation
from ._simulate import simulate_sgd
from ._solve import Trajectory, solve_ode

__all__ = ["DimensionRuns", "GapCollapse", "default_overlaps", "dimension_independence",
           "gap_collapse"]

#: RK4 step of the ODE (its error, ~dt^4, is far below the SGD fluctuations measured here).
_ODE_DT = 0.05


def default_overlaps(p: int, k: int, *, device=None,
                     dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor, Tensor]:
    r"""The fixed, well-conditioned initial overlaps of the scaling experiments.

    :math:`Q_0 = I_p`, :math:`P = I_k` and :math:`M_{0,ir} = (0.2 + 0.3\,[i \bmod k = r])
    /\sqrt{pk}`: every student starts partly aligned (student :math:`i` most with teacher
    :math:`i \bmod k`), away from the unstable :math:`M = 0` and from the symmetric plateau.
    :math:`\|M_0\|_F^2 \le 1/4`, so :math:`Q_0 - M_0P^{-1}M_0^\top \succeq \frac34 I`.

    Parameters
    ----------
    p, k : int
        Student and teacher widths.
    device, dtype : keyword-only
        Default CPU, float64.

    Returns
    -------
    (Q0, M0, P) : Tensors of shapes (p, p), (p, k), (k, k)

    Examples
    --------
    >>> Q0, M0, P = default_overlaps(2, 1)
    >>> round(float(M0[0, 0]), 4), Q0.shape
    (0.3536, torch.Size([2, 2]))
    """
    fn = "mfteach.sgd_odes.default_overlaps"
    p = check_int(p, "p", fn, min=1)
    k = check_int(k, "k", fn, min=1)
    check_budget("p", fn, p, nbytes=8 * p * p)
    check_budget("k", fn, k, nbytes=8 * (p + k) * k)
    dev, dt = resolve_device(device, fn), resolve_dtype(dtype, fn)
    i = torch.arange(p, device=dev).unsqueeze(-1)
    r = torch.arange(k, device=dev)
    M0 = (0.2 + 0.3 * (i % k == r).to(dt)) / math.sqrt(p * k)
    return torch.eye(p, dtype=dt, device=dev), M0, torch.eye(k, dtype=dt, device=dev)


# ------------------------------------------------------------------------------------------
# Validation shared by the two experiments
# ------------------------------------------------------------------------------------------

def _check_list(values, name: str, fn: str, kind, min_len: int = 3):
    what = "ints >= 1" if kind is int else "positive finite floats"
    rule = f"a sequence of at least {min_len} distinct {what}"
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        fail(name, fn, rule, values, exc=TypeError)
    if kind is int:
        out = [check_int(v, name, fn, min=1) for v in values]
    else:
        out = [check_float(v, name, fn, min=0.0, min_open=True) for v in values]
    if len(out) < min_len or len(set(out)) != len(out):
        fail(name, fn, rule + " (a fitted slope needs three points for its standard error)",
             values)
    return out


def _setup(fn, activation, ds, gammas, p, k, t_max, n_runs, n_save, n_replicates, Q0, M0, P,
           device, dtype, gamma_name):
    """Validate the arguments shared by the experiments (``ds`` and the learning rates are
    already checked lists) and budget every cell; return (activation, p, k, t_max, n_runs,
    n_save, n_replicates, Q0, M0, P), the overlaps on the device and dtype of the runs."""
    activation = _check_activation(activation, fn)
    p = check_int(p, "p", fn, min=1)
    k = check_int(k, "k", fn, min=1)
    n_runs = check_int(n_runs, "n_runs", fn, min=2)
    n_save = check_int(n_save, "n_save", fn, min=21)
    n_replicates = check_int(n_replicates, "n_replicates", fn, min=2)
    # weights, their QR and one SGD block: ~4 n (p + k) d float64s; each size alone, then
    # together (blaming the largest factor)
    shown = {"ds": ds, "p": p, "k": k, "n_runs": n_runs, "n_replicates": n_replicates}
    sizes = {"ds": max(ds), "p": p, "k": k, "n_runs": n_runs, "n_replicates": n_replicates}
    for name, value in sizes.items():
        check_budget(name, fn, shown[name], nbytes=32 * value)
    sizes["p"] += k
    del sizes["k"]
    name = max(sizes, key=sizes.get)
    check_budget(name, fn, shown[name],
                 nbytes=32 * n_runs * n_replicates * (p + k) * max(ds))
    if k > min(ds):
        fail("k", fn, f"<= min(ds) = {min(ds)} (k teachers need k independent directions)",
             k)
    if p + k > min(ds):
        fail("ds", fn, f"a sequence of dimensions each >= p + k = {p + k} (the overlaps are "
             f"realised by p + k orthonormal directions)", ds)
    given = [x is not None for x in (Q0, M0, P)]
    if any(given) and not all(given):
        name = ("Q0", "M0", "P")[given.index(False)]
        fail(name, fn, "given together with the other two overlaps (or all three None)", None,
             exc=TypeError)
    if Q0 is None:
        Q0, M0, P = default_overlaps(p, k, device=resolve_device(device, fn),
                                     dtype=resolve_dtype(dtype, fn))
    else:
        Q0, M0, P = check_overlaps(Q0, M0, P, fn, names=("Q0", "M0", "P"))
        if Q0.ndim != 2 or Q0.shape != (p, p) or M0.shape != (p, k):
            fail("Q0", fn, f"an overlap of shape ({p}, {p}) (with M0 ({p}, {k}), P ({k}, {k})) "
                 f"for p = {p}, k = {k}, without batch axes", Q0)
        if device is not None and resolve_device(device, fn).type != Q0.device.type:
            fail("device", fn, f"None or the device of Q0 ({Q0.device})", device)
        if dtype is not None and resolve_dtype(dtype, fn) != Q0.dtype:
            fail("dtype", fn, f"None or the dtype of Q0 ({Q0.dtype})", dtype)
    n = n_runs * n_replicates
    # the largest d and the smallest gamma first: they set memory and steps
    for d in sorted(ds, reverse=True):
        for g in sorted(gammas):
            _, t_max = _check_sgd_run(fn, p, k, d, n, g, t_max, n_save, gamma_name=gamma_name,
                                      d_name="ds")
    check_budget("ds", fn, ds, steps=t_max * p * sum(ds) * sum(1 / g for g in gammas))
    return activation, p, k, t_max, n_runs, n_save, n_replicates, Q0, M0, P


def _run_cell(activation, d, gamma, Q0, M0, P, t_max, n, n_save, gen):
    """n SGD runs in dimension d from (Q0, M0, P), and the ODE at their recorded times."""
    p, k = M0.shape
    W, Ws = weights_from_overlaps(Q0.expand(n, p, p), M0.expand(n, p, k), P.expand(n, k, k),
                                  d, generator=gen)
    sgd = simulate_sgd(W, Ws, activation=activation, gamma=gamma, t_max=t_max, n_save=n_save,
                       generator=gen)
    ode = solve_ode(Q0, M0, P, activation=activation, gamma=gamma, times=sgd.t.cpu(),
                    dt=_ODE_DT)
    return sgd, ode


def _rms(x: Tensor, dim) -> Tensor:
    return x.pow(2).mean(dim).sqrt()


# ------------------------------------------------------------------------------------------
# Dimension independence
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DimensionRuns:
    r"""SGD from the same overlaps in several dimensions, beside the ODE (which has no d).

    Attributes
    ----------
    ds : tuple of int
    gamma : float
    eps : Tensor, shape (n_d,)
        :math:`\sqrt{\gamma/(pd)}`.
    t : Tensor, shape (n_d, T)
        Recorded times of each dimension (whole SGD steps, so they differ by < half a step).
    risk_mean, risk_stderr : Tensor, shape (n_d, T)
        Mean SGD risk over all ``n_replicates * n_runs`` runs and its standard error.
    ode_risk : Tensor, shape (n_d, T)
        The high-d ODE's risk from the same overlaps, at each dimension's recorded times.
    risk_spread, M_spread : Tensor, shape (n_d, T)
        Standard deviation over all runs of the risk, and the rms over entries of the standard
        deviation of :math:`M_{ir}`.
    max_risk_gap : Tensor, shape (n_d,)
        :math:`\max_t|\overline{R}_{SGD}(t) - R_{ODE}(t)|`.
    initial_error : Tensor, shape (n_d,)
        Largest :math:`|\Omega_{SGD}(0) - \Omega_0|` over runs and entries.
    spread : Tensor, shape (n_replicates, n_d)
        Time-averaged (over the recorded :math:`t > 0`) ``M`` spread of each replicate.
    fits : tuple of SlopeFit
        Per replicate, :math:`\log` spread against :math:`\log\varepsilon`.
    spread_fit : SlopeSpread
        Their mean and standard error (Thm 1: slope 1).
    risk_fit : SlopeSpread
        The same for the time-averaged spread of the risk.
    sgd, ode : tuple of Trajectory
        Per dimension: the SGD runs (leading axis: runs) and the ODE.
    Q0, M0, P : Tensor
        The requested initial overlaps.
    n_runs, n_replicates : int
    """

    ds: tuple[int, ...]
    gamma: float
    eps: Tensor
    t: Tensor
    risk_mean: Tensor
    risk_stderr: Tensor
    ode_risk: Tensor
    risk_spread: Tensor
    M_spread: Tensor
    max_risk_gap: Tensor
    initial_error: Tensor
    spread: Tensor
    fits: tuple[SlopeFit, ...]
    spread_fit: SlopeSpread
    risk_fit: SlopeSpread
    sgd: tuple[Trajectory, ...]
    ode: tuple[Trajectory, ...]
    Q0: Tensor
    M0: Tensor
    P: Tensor
    n_runs: int
    n_replicates: int


def dimension_independence(activation: str, ds: Sequence[int], *, p: int = 2, k: int = 1,
                           gamma: float = 0.5, t_max: float = 1.0, n_runs: int = 16,
                           n_save: int = 21, n_replicates: int = 5, Q0: Tensor | None = None,
                           M0: Tensor | None = None, P: Tensor | None = None,
                           generator: int | torch.Generator = 0, device=None,
                           dtype: torch.dtype | None = None) -> DimensionRuns:
    r"""SGD in several dimensions from the same initial overlaps, against the high-d ODE.

    For each ``d`` in ``ds`` the overlaps :math:`(Q_0, M_0, P)` are realised by
    :func:`weights_from_overlaps` (a fresh random rotation per run), ``n_replicates * n_runs``
    runs of one-pass SGD follow, and the ODE (no :math:`d` in it) is solved from the same
    overlaps. Thm 1 of arXiv 2302.05882: the runs fluctuate about the ODE by
    :math:`O(\varepsilon)`, :math:`\varepsilon = \sqrt{\gamma/(pd)}`; the fitted slope of
    :math:`\log` spread against :math:`\log\varepsilon` is 1 (Fig. 2 right of the paper).

    Parameters
    ----------
    activation : {"erf_sqrt2", "square"}
    ds : sequence of int
        At least three distinct dimensions, each ``>= p + k``.
    p, k, gamma, t_max : keyword-only
        Widths, raw learning rate :math:`\gamma > 0`, final time :math:`t = \nu\gamma/(pd)`.
    n_runs, n_save, n_replicates : int, keyword-only
        Runs per replicate (``>= 2``), recorded times (``>= 21``: a dense grid), independent
        replicates (``>= 2``; 5 or more for a slope the book interprets).
    Q0, M0, P : Tensor, keyword-only, optional
        Initial overlaps, shapes (p, p), (p, k), (k, k), positive definite together; default
        :func:`default_overlaps`. They set device and dtype.
    generator : int or torch.Generator, keyword-only
        Dimension ``ds[c]`` uses ``spawn_generators(generator, len(ds))[c]`` (module
        docstring).
    device, dtype : keyword-only
        Of the default overlaps (CPU, float64); a GPU run takes ``device="cuda"`` and, for
        speed, ``dtype=torch.float32``.

    Returns
    -------
    DimensionRuns

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named), sizes beyond ``MFTEACH_MAX_BYTES``, runs beyond
        ``MFTEACH_MAX_STEPS``.
    mfteach.training.DivergenceError
        SGD or the ODE diverged (too large a ``gamma``).

    Notes
    -----
    The slope is fitted to the spread *time-averaged* over the recorded :math:`t > 0`; the
    spread at :math:`t = 0` is zero by construction. The asymptotics hold for small
    :math:`\varepsilon` (the book size has :math:`\varepsilon \le 0.07`), where the
    :math:`O(\varepsilon^2)` corrections are small. Chapter 04, "Dimension independence".

    Examples
    --------
    >>> runs = dimension_independence("erf_sqrt2", [20, 40, 80], t_max=0.5, n_runs=4,
    ...                               n_replicates=2, gamma=1.0)
    >>> runs.M_spread.shape, runs.spread_fit.n
    (torch.Size([3, 21]), 2)
    """
    fn = "mfteach.sgd_odes.dimension_independence"
    ds = _check_list(ds, "ds", fn, int)
    gamma = check_float(gamma, "gamma", fn, min=0.0, min_open=True)
    activation, p, k, t_max, n_runs, n_save, n_rep, Q0, M0, P = _setup(
        fn, activation, ds, [gamma], p, k, t_max, n_runs, n_save, n_replicates, Q0, M0, P,
        device, dtype, "gamma")
    n = n_runs * n_rep
    children = spawn_generators(generator, len(ds), device=Q0.device, fn=fn)
    Om0 = torch.cat([torch.cat([Q0, M0], -1), torch.cat([M0.mT, P], -1)], -2)
    sgds, odes, t, mean, se, ode_r, rs, ms, init_err, spread, rspread = ([] for _ in range(11))
    for d, gen in zip(ds, children):
        sgd, ode = _run_cell(activation, d, gamma, Q0, M0, P, t_max, n, n_save, gen)
        sgds.append(sgd)
        odes.append(ode)
        risk = sgd.risk.double().cpu()  # (n, T)
        t.append(sgd.t.cpu())
        mean.append(risk.mean(0))
        se.append(risk.std(0) / math.sqrt(n))
        ode_r.append(ode.risk.double().cpu())
        rs.append(risk.std(0))
        Mr = sgd.M.double().cpu()  # (n, T, p, k)
        ms.append(_rms(Mr.std(0), (-2, -1)))
        Om = torch.cat([torch.cat([sgd.Q[:, 0], sgd.M[:, 0]], -1),
                        torch.cat([sgd.M[:, 0].mT, sgd.P[:, 0]], -1)], -2)
        init_err.append(float((Om - Om0).abs().max()))
        Mrep = Mr.reshape(n_rep, n_runs, *Mr.shape[1:])
        spread.append(_rms(Mrep.std(1), (-2, -1))[:, 1:].mean(-1))  # (n_rep,)
        rrep = risk.reshape(n_rep, n_runs, -1)
        rspread.append(rrep.std(1)[:, 1:].mean(-1))
    eps = torch.tensor([math.sqrt(gamma / (p * d)) for d in ds], dtype=torch.float64)
    spread_t, rspread_t = torch.stack(spread, 1), torch.stack(rspread, 1)  # (n_rep, n_d)
    if not bool((spread_t > 0).all() and (rspread_t > 0).all()):
        fail("t_max", fn, "long enough for the runs to spread (a spread of 0 has no "
             "logarithm)", t_max)
    fits = tuple(fit_loglog_slope(eps, s) for s in spread_t)
    rfits = tuple(fit_loglog_slope(eps, s) for s in rspread_t)
    mean_t, ode_t = torch.stack(mean), torch.stack(ode_r)
    return DimensionRuns(
        ds=tuple(ds), gamma=gamma, eps=eps, t=torch.stack(t), risk_mean=mean_t,
        risk_stderr=torch.stack(se), ode_risk=ode_t, risk_spread=torch.stack(rs),
        M_spread=torch.stack(ms), max_risk_gap=(mean_t - ode_t).abs().amax(-1),
        initial_error=torch.tensor(init_err, dtype=torch.float64), spread=spread_t,
        fits=fits, spread_fit=slope_spread(fits), risk_fit=slope_spread(rfits),
        sgd=tuple(sgds), ode=tuple(odes), Q0=Q0, M0=M0, P=P, n_runs=n_runs,
        n_replicates=n_rep)


# ------------------------------------------------------------------------------------------
# Gap collapse over (d, gamma)
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GapCollapse:
    r"""The SGD-ODE gap over a :math:`(d, \gamma)` grid against :math:`\varepsilon`.

    The gap of one run is :math:`\sup_t\max_{i,r}|M^{SGD}_{ir}(t) - M^{ODE}_{ir}(t)|` over the
    ``n_save`` recorded times; a cell's gap is its rms over runs.

    Attributes
    ----------
    ds, gammas : tuple
    eps : Tensor, shape (n_d, n_gamma)
        :math:`\sqrt{\gamma/(pd)}` of each cell.
    gap : Tensor, shape (n_d, n_gamma)
        Rms over all ``n_replicates * n_runs`` runs.
    gap_stderr : Tensor, shape (n_d, n_gamma)
        Its standard error (delta method on the mean of the squared gaps).
    replicate_gap : Tensor, shape (n_replicates, n_d, n_gamma)
        Rms over each replicate's ``n_runs`` runs.
    fit : SlopeFit
        Pooled fit of :math:`\log` gap against :math:`\log\varepsilon` over all cells.
    fits : tuple of SlopeFit
        The same fit on each replicate.
    spread : SlopeSpread
        Mean and standard error of the replicates' slopes (Thm 1: 1).
    fit_d : SlopeFit
        The fit against :math:`1/d` alone (all gammas pooled).
    scatter_eps, scatter_d : float
        Rms residual of :math:`\log` gap about the :math:`\varepsilon` line and about the
        :math:`1/d` line: the first is smaller when the single scale is :math:`\gamma/(pd)`.
    n_runs, n_replicates : int
    """

    ds: tuple[int, ...]
    gammas: tuple[float, ...]
    eps: Tensor
    gap: Tensor
    gap_stderr: Tensor
    replicate_gap: Tensor
    fit: SlopeFit
    fits: tuple[SlopeFit, ...]
    spread: SlopeSpread
    fit_d: SlopeFit
    scatter_eps: float
    scatter_d: float
    n_runs: int
    n_replicates: int


def _residual_rms(x: Tensor, y: Tensor, fit: SlopeFit) -> float:
    r = y.log() - fit.intercept - fit.slope * x.log()
    return float(r.pow(2).mean().sqrt())


def _cell_gaps(sgd: Trajectory, ode: Trajectory) -> Tensor:
    """(n,) sup over times and entries of |M_SGD - M_ODE|, float64 on the CPU."""
    return (sgd.M.double().cpu() - ode.M.double().cpu()).abs().amax(dim=(-1, -2, -3))


def gap_collapse(activation: str, ds: Sequence[int], gammas: Sequence[float], *, p: int = 2,
                 k: int = 1, t_max: float = 1.0, n_runs: int = 16, n_save: int = 21,
                 n_replicates: int = 5, Q0: Tensor | None = None, M0: Tensor | None = None,
                 P: Tensor | None = None, generator: int | torch.Generator = 0, device=None,
                 dtype: torch.dtype | None = None) -> GapCollapse:
    r"""The SGD-ODE gap over a grid of dimensions and learning rates: one line in
    :math:`\varepsilon = \sqrt{\gamma/(pd)}`.

    Every cell starts SGD (``n_replicates * n_runs`` runs) and the high-d ODE (with its
    :math:`\gamma/p` term) from the same overlaps, realised in dimension ``d`` by
    :func:`weights_from_overlaps`. Thm 1 of arXiv 2302.05882 bounds the gap by
    :math:`e^{Ct}\varepsilon`; the fluctuations of SGD are of that order, so all cells fall on
    one line of slope 1 in log-log, whatever the mix of :math:`d` and :math:`\gamma`.

    Parameters
    ----------
    activation : {"erf_sqrt2", "square"}
    ds : sequence of int
        At least three distinct dimensions, each ``>= p + k``.
    gammas : sequence of float
        At least three distinct learning rates :math:`\gamma > 0`.
    p, k, t_max, n_runs, n_save, n_replicates, Q0, M0, P, device, dtype : keyword-only
        As in :func:`dimension_independence`.
    generator : int or torch.Generator, keyword-only
        Cell ``(i, j)`` (``ds[i]``, ``gammas[j]``) uses ``spawn_generators(generator,
        len(ds) * len(gammas))[i * len(gammas) + j]``.

    Returns
    -------
    GapCollapse

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named), sizes or steps beyond the limits.
    mfteach.training.DivergenceError
        SGD or the ODE diverged.

    Notes
    -----
    The fits use every cell; they hold where :math:`\varepsilon` is small (book size:
    :math:`\varepsilon \le 0.1`) so that the :math:`O(\varepsilon^2)` corrections are small.
    Chapter 04, "The SGD-ODE gap".

    Examples
    --------
    >>> c = gap_collapse("erf_sqrt2", [20, 40, 80], [0.5, 1.0, 2.0], t_max=0.5, n_runs=4,
    ...                  n_replicates=2)
    >>> c.gap.shape, len(c.fits)
    (torch.Size([3, 3]), 2)
    """
    fn = "mfteach.sgd_odes.gap_collapse"
    ds = _check_list(ds, "ds", fn, int)
    gammas = _check_list(gammas, "gammas", fn, float)
    activation, p, k, t_max, n_runs, n_save, n_rep, Q0, M0, P = _setup(
        fn, activation, ds, gammas, p, k, t_max, n_runs, n_save, n_replicates, Q0, M0, P,
        device, dtype, "gammas")
    n = n_runs * n_rep
    children = spawn_generators(generator, len(ds) * len(gammas), device=Q0.device, fn=fn)
    gaps = torch.empty(len(ds), len(gammas), n, dtype=torch.float64)
    for i, d in enumerate(ds):
        for j, g in enumerate(gammas):
            sgd, ode = _run_cell(activation, d, g, Q0, M0, P, t_max, n, n_save,
                                 children[i * len(gammas) + j])
            gaps[i, j] = _cell_gaps(sgd, ode)
    if not bool((gaps.amax(-1) > 0).all()):
        fail("t_max", fn, "long enough for SGD and the ODE to differ (a gap of 0 has no "
             "logarithm)", t_max)
    eps = torch.tensor([[math.sqrt(g / (p * d)) for g in gammas] for d in ds],
                       dtype=torch.float64)
    sq = gaps.pow(2)
    gap = sq.mean(-1).sqrt()
    gap_se = sq.std(-1) / math.sqrt(n) / (2 * gap)
    rep = sq.reshape(len(ds), len(gammas), n_rep, n_runs).mean(-1).sqrt().permute(2, 0, 1)
    if not bool((rep > 0).all()):
        fail("t_max", fn, "long enough for every replicate's runs to leave the ODE", t_max)
    fit = fit_loglog_slope(eps.flatten(), gap.flatten())
    fits = tuple(fit_loglog_slope(eps.flatten(), r.flatten()) for r in rep)
    inv_d = torch.tensor([1.0 / d for d in ds], dtype=torch.float64).unsqueeze(-1).expand_as(
        eps)
    fit_d = fit_loglog_slope(inv_d.flatten(), gap.flatten())
    return GapCollapse(
        ds=tuple(ds), gammas=tuple(gammas), eps=eps, gap=gap, gap_stderr=gap_se,
        replicate_gap=rep, fit=fit, fits=fits, spread=slope_spread(fits), fit_d=fit_d,
        scatter_eps=_residual_rms(eps.flatten(), gap.flatten(), fit),
        scatter_d=_residual_rms(inv_d.flatten(), gap.flatten(), fit_d),
        n_runs=n_runs, n_replicates=n_rep)
