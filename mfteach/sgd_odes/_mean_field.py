r"""The mean-field limit measured (chapter 04; arXiv 2302.05882, Sec. 5): the error of the
reduced ODE (:func:`solve_mf_ode`) against :math:`p` (Thm 2), the high-d mean field (Thm 3,
Fig. 3 right) and the cosine histogram (App. (d)).

**The finite-p description, square activation.** With :math:`A = W^{*\top}W^*/k - W^\top W/p`,
:math:`\mathcal E = x^\top Ax` and :math:`\mathbb E[(x^\top Ax)xx^\top] = (\operatorname{tr}A
+ 2A)/d^2` for :math:`x\sim N(0, I_d/d)`: the gradient-flow ODE of :math:`(Q, M)`
(``solve_ode(regime="gf")``) is the weight flow :math:`\dot W = \frac2d W(\operatorname{tr}A
+ 2A)`, risk :math:`((\operatorname{tr}A)^2 + 2\operatorname{tr}A^2)/(2d^2)`: :math:`O(pd^2)`
per step instead of :math:`O(p^3)` (tested against ``solve_ode``).

**Random streams.** ``generator`` draws the initial weights, then spawns the SGD stream
``spawn_generators(generator, 1)[0]``; :func:`mean_field_error` gives ``ps[j]`` the child
``spawn_generators(generator, len(ps))[j]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._checks import check_bool, check_budget, check_float, check_int, fail
from ..device import as_generator, resolve_device, resolve_dtype, spawn_generators
from ..stats import SlopeSpread, fit_loglog_slope, slope_spread
from ._experiments import _check_sgd_run
from ._overlaps import init_weights
from ._rhs import _check_activation
from ._simulate import simulate_sgd
from ._solve import SOLVERS, solve_mf_ode, solve_ode, time_grid

__all__ = ["MeanFieldError", "mean_field_error", "HighDMeanField", "high_d_mean_field",
           "CosineHistogram", "cosine_histogram", "cosine_density"]


def _neuron_stats(Q_diag: Tensor, M: Tensor, P: Tensor) -> tuple[Tensor, Tensor]:
    """(q_i, q_i / Q_ii): the squared orthogonal norms and the fraction outside span(W*)."""
    q = (Q_diag - (M * torch.linalg.solve(P, M.mT).mT).sum(-1)).clamp_min(0)
    return q, q / Q_diag


def _square_flow(W: Tensor, Ws: Tensor, times: Tensor, dt: float):
    """Gradient flow of the weights for sigma = u^2 (module docstring), RK4.

    W (n, p, d), Ws (n, k, d). Returns risk (n, T), M (n, T, p, k), q (n, T, p)."""
    p, d, k = W.shape[-2], W.shape[-1], Ws.shape[-2]
    A0 = Ws.mT @ Ws / k
    P = Ws @ Ws.mT / d

    def f(y):
        V = y[0]
        A = A0 - V.mT @ V / p
        trA = torch.diagonal(A, dim1=-2, dim2=-1).sum(-1)[..., None, None]
        return ((2 / d) * (V * trA + 2 * V @ A),)

    def record(V):
        A = A0 - V.mT @ V / p
        trA = torch.diagonal(A, dim1=-2, dim2=-1).sum(-1)
        M = V @ Ws.mT / d
        q, _ = _neuron_stats((V * V).sum(-1) / d, M, P)
        return (trA * trA + 2 * (A * A).sum((-2, -1))) / (2 * d * d), M, q

    out, y = [record(W)], (W,)
    for a, b in zip(times[:-1].tolist(), times[1:].tolist()):
        n = max(1, math.ceil((b - a) / dt - 1e-9))
        for _ in range(n):
            y = SOLVERS["rk4"].stepper(f, y, (b - a) / n)
        out.append(record(y[0]))
    return tuple(torch.stack([o[i] for o in out], dim=1) for i in range(3))


def _full_gf(activation, W, Ws, times, dt):
    """risk (n, T), M (n, T, p, k), q (n, T, p) of the p x p gradient-flow ODE."""
    if activation == "square":
        return _square_flow(W, Ws, times, dt)
    d = W.shape[-1]
    tr = solve_ode(W @ W.mT / d, W @ Ws.mT / d, Ws @ Ws.mT / d, activation=activation,
                   regime="gf", times=times, dt=dt)
    q, _ = _neuron_stats(torch.diagonal(tr.Q, dim1=-2, dim2=-1), tr.M, tr.P)
    return tr.risk, tr.M, q


@dataclass(frozen=True)
class MeanFieldError:
    r"""Distance of the reduced mean-field ODE to the finite-p gradient flow, against p.

    Attributes
    ----------
    ps : tuple of int
    t : Tensor, shape (T,)
        The recorded times over which the suprema are taken.
    risk_error : Tensor, shape (n_init, n_p)
        :math:`\sup_t|R_{full}(t) - R_{MF}(t)|` for initialisation ``r`` at ``ps[j]``.
    overlap_error : Tensor, shape (n_init, n_p)
        :math:`\sup_t\big(\frac1p\sum_i\|M_i^{full} - M_i^{MF}\|^2 + (q_i^{full} -
        q_i^{MF})^2\big)^{1/2}`: the per-neuron distance the proof of Thm 2 controls.
    initial_error : Tensor, shape (n_init, n_p)
        :math:`|R_{full}(0) - R_{MF}(0)|` (the :math:`\mathbb E_\Xi` average against the
        initial weights' own off-diagonal :math:`Q^\perp`).
    risk_mean, risk_stderr, overlap_mean, overlap_stderr : Tensor, shape (n_p,)
    risk_fit, overlap_fit : SlopeSpread
        Slopes of :math:`\log` error against :math:`\log p`, one fit per initialisation.
    risk_windows, overlap_windows : tuple of (int, int, SlopeSpread)
        The fits on every three consecutive ``ps`` (first p, last p, slopes).
    risk_full, risk_mf : Tensor, shape (n_init, T)
        Both risks along time at the largest p.
    activation, k, d, n_init
    """

    ps: tuple[int, ...]
    t: Tensor
    risk_error: Tensor
    overlap_error: Tensor
    initial_error: Tensor
    risk_mean: Tensor
    risk_stderr: Tensor
    overlap_mean: Tensor
    overlap_stderr: Tensor
    risk_fit: SlopeSpread
    overlap_fit: SlopeSpread
    risk_windows: tuple[tuple[int, int, SlopeSpread], ...]
    overlap_windows: tuple[tuple[int, int, SlopeSpread], ...]
    risk_full: Tensor
    risk_mf: Tensor
    activation: str
    k: int
    d: int
    n_init: int


def _fits(ps: Tensor, err: Tensor):
    """SlopeSpread over all ps and over each window of three consecutive ps."""
    whole = slope_spread([fit_loglog_slope(ps, e) for e in err])
    wins = tuple((int(ps[j]), int(ps[j + 2]),
                  slope_spread([fit_loglog_slope(ps[j:j + 3], e[j:j + 3]) for e in err]))
                 for j in range(len(ps) - 2))
    return whole, wins


def mean_field_error(ps: Sequence[int] = (16, 32, 64, 128, 256, 512), *, k: int = 1,
                     d: int = 5, activation: str = "square", n_init: int = 5,
                     t_max: float = 2.0, n_save: int = 81, dt: float = 0.02,
                     generator: int | torch.Generator = 0, device=None,
                     dtype: torch.dtype | None = None) -> MeanFieldError:
    r"""The error of the reduced mean-field ODE against the width :math:`p` (Thm 2).

    For each ``p`` and each of ``n_init`` random initialisations (:func:`init_weights`), the
    reduced ODE (:func:`solve_mf_ode` with the :math:`\mathbb E_\Xi` average in dimension
    ``d``) and the finite-p description, the full :math:`p\times p` gradient-flow ODE (which
    SGD follows as :math:`\gamma\to 0` in any ``d``), start from *the same* weights: the MF
    ODE starts at their exact :math:`M` and :math:`q_i`, so its error comes from the ansatz
    on :math:`\Xi` only (starting at a population average would add an :math:`O(p^{-1/2})`
    error at :math:`t = 0` that has nothing to do with the reduction).

    Parameters
    ----------
    ps : sequence of int, default (16, 32, ..., 512)
        At least three distinct widths (sorted here).
    k, d : int, keyword-only
        Teacher width and input dimension, ``d >= k + 2``.
    activation : {"square", "erf_sqrt2"}, keyword-only
        ``"square"`` integrates the weights (module docstring, :math:`O(pd^2)` per step);
        ``"erf_sqrt2"`` the overlap ODE, :math:`O(p^4)` per step: ``ps`` up to about 32.
    n_init : int, keyword-only, default 5
        Initialisations per width (>= 2; 5 or more for a slope to interpret).
    t_max, n_save, dt : keyword-only
        Horizon :math:`T`, recorded times (the suprema are over them) and the RK4 step.
    generator : int or torch.Generator, keyword-only
        ``ps[j]`` draws its weights from ``spawn_generators(generator, len(ps))[j]``.
    device, dtype : keyword-only
        Default CPU, float64.

    Returns
    -------
    MeanFieldError

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named), sizes beyond ``MFTEACH_MAX_BYTES``.
    mfteach.training.DivergenceError
        An ODE diverged (``dt`` too large).

    Notes
    -----
    What is measured against what is bounded: Thm 2 bounds the risk error by
    :math:`p^{-1/2}` (up to logs) on an event of probability :math:`1 - e^{-z^2}`; its proof
    couples each neuron of the two descriptions, at distance :math:`O(p^{-1/2})`. That
    distance is ``overlap_error``, and its fitted slope is :math:`-1/2`. The risk, however,
    depends on the neurons only through averages (:math:`\operatorname{Tr}Q/p`,
    :math:`\operatorname{Tr}MM^\top/p`, :math:`\operatorname{Tr}Q^2/p^2`) in which the
    mean-zero :math:`O(p^{-1/2})` per-neuron errors cancel to first order: e.g. at
    :math:`t = 0` the risk error is :math:`\frac1{p^2}\sum_{i\ne j}q_iq_j(\xi_{ij}^2 -
    \frac1{d-k})`, :math:`p^2` uncorrelated mean-zero terms, hence :math:`O(1/p)`. So the
    measured risk slope is :math:`-1`, inside the theorem's bound. Chapter 04, "The
    mean-field limit".

    Examples
    --------
    >>> res = mean_field_error((16, 32, 64), n_init=2, t_max=0.5, n_save=11)
    >>> res.risk_error.shape, len(res.risk_windows)
    (torch.Size([2, 3]), 1)
    """
    fn = "mfteach.sgd_odes.mean_field_error"
    if isinstance(ps, (str, bytes)) or not hasattr(ps, "__len__"):
        fail("ps", fn, "a sequence of at least three distinct ints >= 1", ps, exc=TypeError)
    ps = sorted(check_int(p, "ps", fn, min=1) for p in ps)
    if len(ps) < 3 or len(set(ps)) != len(ps):
        fail("ps", fn, "a sequence of at least three distinct ints >= 1 (a fitted slope needs "
             "three points for its standard error)", ps)
    activation = _check_activation(activation, fn)
    k = check_int(k, "k", fn, min=1)
    d = check_int(d, "d", fn, min=3)
    if d < k + 2:
        fail("k", fn, f"<= d - 2 = {d - 2} (the E_Xi average lives on S^(d-k-1))", k)
    n_init = check_int(n_init, "n_init", fn, min=2)
    t_max = check_float(t_max, "t_max", fn, min=0.0, min_open=True)
    n_save = check_int(n_save, "n_save", fn, min=2)
    dt = check_float(dt, "dt", fn, min=0.0, min_open=True)
    steps_name = "t_max" if t_max / dt >= n_save else "n_save"
    check_budget(steps_name, fn, t_max if steps_name == "t_max" else n_save,
                 steps=len(ps) * (t_max / dt + n_save))
    big = max((("ps", ps[-1]), ("d", d), ("n_init", n_init), ("n_save", n_save)),
              key=lambda kv: kv[1])[0]
    check_budget(big, fn, {"ps": ps, "d": d, "n_init": n_init, "n_save": n_save}[big],
                 nbytes=8 * n_init * ps[-1] * (4 * d + 2 * n_save * (k + 2)))
    dev, dt_ = resolve_device(device, fn), resolve_dtype(dtype, fn)
    times = time_grid(t_max, None, n_save, fn, dtype=dt_).to(dev)
    children = spawn_generators(generator, len(ps), device=dev, fn=fn)
    r_err, o_err, i_err = [], [], []
    for p, g in zip(ps, children):
        W, Ws = init_weights(p, k, d, n_runs=n_init, generator=g, device=dev, dtype=dt_)
        risk, M, q = _full_gf(activation, W, Ws, times, dt)
        mf = solve_mf_ode(M[:, 0], q[:, 0], Ws @ Ws.mT / d, activation=activation, d=d,
                          times=times.cpu(), dt=dt)
        gap = (risk - mf.risk).abs()
        r_err.append(gap.amax(-1))
        i_err.append(gap[:, 0])
        dev2 = ((M - mf.M).pow(2).sum(-1) + (q - mf.q).pow(2)).mean(-1)
        o_err.append(dev2.sqrt().amax(-1))
    R, O, I0 = (torch.stack(x, 1).double().cpu() for x in (r_err, o_err, i_err))
    if not bool((R > 0).all() and (O > 0).all()):
        fail("t_max", fn, "long enough for the two descriptions to differ (an error of 0 has "
             "no logarithm)", t_max)
    x = torch.tensor(ps, dtype=torch.float64)
    rfit, rwin = _fits(x, R)
    ofit, owin = _fits(x, O)
    sq = math.sqrt(n_init)
    return MeanFieldError(
        ps=tuple(ps), t=times.cpu(), risk_error=R, overlap_error=O, initial_error=I0,
        risk_mean=R.mean(0), risk_stderr=R.std(0) / sq, overlap_mean=O.mean(0),
        overlap_stderr=O.std(0) / sq, risk_fit=rfit, overlap_fit=ofit, risk_windows=rwin,
        overlap_windows=owin, risk_full=risk.double().cpu(), risk_mf=mf.risk.double().cpu(),
        activation=activation, k=k, d=d, n_init=n_init)


def _init_and_stream(p, k, d, n_runs, generator, dev, dtype, fn):
    """The initial weights from ``generator``, then the spawned SGD stream."""
    g = as_generator(generator, dev, fn)
    W, Ws = init_weights(p, k, d, n_runs=n_runs, generator=g, device=dev, dtype=dtype)
    parent = g if isinstance(generator, torch.Generator) else generator
    return W, Ws, spawn_generators(parent, 1, device=dev, fn=fn)[0]


@dataclass(frozen=True)
class HighDMeanField:
    r"""SGD in high dimension against the high-d mean-field ODE (:math:`\Xi = I`).

    Attributes
    ----------
    p, k, d : int
    gamma : float
    t : Tensor, shape (T,)
    sgd_risk, mf_risk : Tensor, shape (n_runs, T)
        SGD's population risk and the MF ODE's from each run's initial :math:`(M, q)`.
    hd_risk : Tensor of shape (n_runs, T), or None
        The full high-d ODE (with its :math:`\gamma/p` term) from the same overlaps.
    sgd_outside, mf_outside : Tensor, shape (n_runs, T)
        Mean over neurons of :math:`q_i/Q_{ii}`, the fraction of :math:`\|w_i\|^2`
        outside the teacher subspace.
    hd_outside : Tensor of shape (n_runs, T), or None
    initial_gap : Tensor, shape (n_runs,)
        :math:`R_{SGD}(0) - R_{MF}(0)`: the initial weights' off-diagonal :math:`Q^\perp`,
        which :math:`\Xi = I` drops.
    xi_correction : Tensor, shape (n_runs,)
        Its expectation over :math:`\Xi`, :math:`\frac1{p^2}\sum_{i\ne j}\frac{q_iq_j}{d-k}`.
    max_gap : Tensor, shape (n_runs,)
        :math:`\sup_t|R_{SGD}(t) - R_{MF}(t)|`.
    """

    p: int
    k: int
    d: int
    gamma: float
    t: Tensor
    sgd_risk: Tensor
    mf_risk: Tensor
    hd_risk: Tensor | None
    sgd_outside: Tensor
    mf_outside: Tensor
    hd_outside: Tensor | None
    initial_gap: Tensor
    xi_correction: Tensor
    max_gap: Tensor


def high_d_mean_field(p: int = 40, k: int = 5, d: int = 1000, *, gamma: float = 10.0,
                      t_max: float = 10.0, n_runs: int = 4, n_save: int = 26,
                      full_ode: bool | None = None, dt: float = 0.02,
                      generator: int | torch.Generator = 0, device=None,
                      dtype: torch.dtype | None = None) -> HighDMeanField:
    r"""The paper's Fig. 3 (right): square activation, SGD in :math:`d = 1000` against the
    high-dimensional mean-field ODE (:math:`\Xi = I`, Thm 3) and the full high-d ODE, with
    the weights' distance from the teacher subspace.

    Parameters
    ----------
    p, k, d : int
        Student width, teacher width, input dimension (``d >= k + 2``).
    gamma : float, keyword-only, default 10
        Raw learning rate; :math:`\gamma/p` must stay small (the square activation diverges
        beyond about :math:`\gamma/p = 0.5`; the MF ODE has no :math:`\gamma/p` term).
    t_max, n_runs, n_save : keyword-only
        Horizon, independent SGD runs, recorded times.
    full_ode : bool or None, keyword-only
        Solve the :math:`p\times p` high-d ODE too (:math:`O(p^3)` per step); ``None``: when
        ``p <= 256``.
    dt : float, keyword-only, default 0.02
        RK4 step of the ODEs.
    generator, device, dtype : keyword-only
        Seed or generator (module docstring); device and dtype of the weights and SGD
        (default CPU, float64; on a GPU ``dtype=torch.float32`` is fine at ``d = 1000``).

    Returns
    -------
    HighDMeanField

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named), sizes or steps beyond the limits.
    mfteach.training.DivergenceError
        SGD or an ODE diverged (too large ``gamma``).

    Notes
    -----
    Cost: :math:`tpd/\gamma` SGD steps of :math:`O(pd)` each; the default takes about 5 s on
    one core. The book size is ``high_d_mean_field(p=1000, t_max=20, device="cuda",
    dtype=torch.float32)``. Thm 3: the gap is :math:`O(p^{-1/2} + d^{-1/2})` as
    :math:`\gamma/p\to 0`; at fixed :math:`\gamma` the dropped :math:`\gamma/p` term also
    shrinks with :math:`p`. Chapter 04, "The mean-field limit".

    Examples
    --------
    >>> r = high_d_mean_field(p=8, k=2, d=50, gamma=1.0, t_max=0.5, n_runs=2, n_save=3)
    >>> r.sgd_risk.shape, r.hd_risk is not None
    (torch.Size([2, 3]), True)
    """
    fn = "mfteach.sgd_odes.high_d_mean_field"
    p, k, d, n_runs = (check_int(v, name, fn, min=1)
                       for v, name in ((p, "p"), (k, "k"), (d, "d"), (n_runs, "n_runs")))
    if d < k + 2:
        if k > d:
            fail("k", fn, f"<= d - 2 = {d - 2} (room for the orthogonal parts)", k)
        fail("d", fn, f">= k + 2 = {k + 2} (room for the orthogonal parts)", d)
    n_save = check_int(n_save, "n_save", fn, min=2)
    gamma, t_max = _check_sgd_run(fn, p, k, d, n_runs, gamma, t_max, n_save)
    dt = check_float(dt, "dt", fn, min=0.0, min_open=True)
    check_budget("dt", fn, dt, steps=2 * t_max / dt)
    if full_ode is None:
        full_ode = p <= 256
    check_bool(full_ode, "full_ode", fn)
    dev, dty = resolve_device(device, fn), resolve_dtype(dtype, fn)
    W, Ws, stream = _init_and_stream(p, k, d, n_runs, generator, dev, dty, fn)
    sgd = simulate_sgd(W, Ws, activation="square", gamma=gamma, t_max=t_max, n_save=n_save,
                       generator=stream)
    Q, M, P = (x.double().cpu() for x in (sgd.Q, sgd.M, sgd.P))
    # a float32 run's W W^T / d is symmetric only to float32 rounding (a BLAS may round the
    # two triangles differently): symmetrise before the float64 ODEs check it
    Q, P = (Q + Q.mT) / 2, (P + P.mT) / 2
    q, out = _neuron_stats(torch.diagonal(Q, dim1=-2, dim2=-1), M, P)
    t = sgd.t.double().cpu()
    mf = solve_mf_ode(M[:, 0], q[:, 0], P[:, 0], activation="square", times=t, dt=dt)
    mf_out = (mf.q / (mf.q + (mf.M * torch.linalg.solve(P[:, :1], mf.M.mT).mT).sum(-1)))
    hd_risk = hd_out = None
    if full_ode:
        hd = solve_ode(Q[:, 0], M[:, 0], P[:, 0], activation="square", gamma=gamma, times=t,
                       dt=dt)
        hd_risk = hd.risk
        hd_out = _neuron_stats(torch.diagonal(hd.Q, dim1=-2, dim2=-1), hd.M, hd.P)[1].mean(-1)
    q0 = q[:, 0]
    corr = (q0.sum(-1) ** 2 - (q0 * q0).sum(-1)) / (p * p * (d - k))
    risk = sgd.risk.double().cpu()
    return HighDMeanField(
        p=p, k=k, d=d, gamma=gamma, t=t, sgd_risk=risk, mf_risk=mf.risk, hd_risk=hd_risk,
        sgd_outside=out.mean(-1), mf_outside=mf_out.mean(-1), hd_outside=hd_out,
        initial_gap=risk[:, 0] - mf.risk[:, 0], xi_correction=corr,
        max_gap=(risk - mf.risk).abs().amax(-1))


def cosine_density(c, *, d: int, ratio: float = 1.0) -> np.ndarray:
    r"""Law of :math:`\cos(w_j, w^*)` under the mean-field flow, :math:`k = 1`.

    At :math:`t = 0` (isotropic weights in :math:`\mathbb R^d`) the density is
    :math:`f_0(c) = (1-c^2)^{(d-3)/2}/B(\frac12, \frac{d-1}2)`: uniform for ``d = 3``. In the
    mean-field ODE with one teacher every :math:`M_j` and every :math:`q_j` is multiplied by
    a factor common to all neurons (up to :math:`O(1/p)`): :math:`\dot M_j = M_j(2\operatorname
    {tr}S + 4 - 4\overline{M^2})`, :math:`\dot q_j = q_j(4\operatorname{tr}S - \dots)`. So
    :math:`q_j/M_j^2` shrinks by one ratio :math:`r(t)`, a cosine moves as
    :math:`c = c_0/\sqrt{c_0^2 + (1-c_0^2)r}`, and

    .. math::

        f_t(c) = f_0(c_0)\,\frac{\sqrt r}{(1 - (1-r)c^2)^{3/2}},\qquad
        c_0 = \frac{c\sqrt r}{\sqrt{1 - (1-r)c^2}} .

    Parameters
    ----------
    c : array-like
        Cosines in :math:`(-1, 1)`.
    d : int, keyword-only
        Input dimension, >= 3.
    ratio : float, keyword-only, default 1
        :math:`r(t) \in (0, 1]` (``CosineHistogram.ratio``); 1 is :math:`t = 0`.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> cosine_density([0.0, 0.5], d=3).tolist()
    [0.5, 0.5]
    """
    fn = "mfteach.sgd_odes.cosine_density"
    # beyond 1e6 dimensions the law is a point mass at 0 to double precision
    d = check_int(d, "d", fn, min=3, max=10**6)
    r = check_float(ratio, "ratio", fn, min=0.0, max=1.0, min_open=True)
    if isinstance(c, (str, bytes)):
        fail("c", fn, "a number or an array of cosines in [-1, 1]", c, exc=TypeError)
    try:
        c = np.asarray(c, dtype=np.float64)
    except (TypeError, ValueError):
        fail("c", fn, "a number or an array of cosines in [-1, 1]", c, exc=TypeError)
    if c.size == 0 or not np.isfinite(c).all() or (np.abs(c) > 1).any():
        fail("c", fn, "a non-empty array of finite cosines in [-1, 1]", c)
    s = 1 - (1 - r) * c * c
    c0 = c * math.sqrt(r) / np.sqrt(s)
    logb = math.lgamma(0.5) + math.lgamma((d - 1) / 2) - math.lgamma(d / 2)
    f0 = np.exp((d - 3) / 2 * np.log1p(-c0 * c0) - logb) if d > 3 else np.full_like(c, 0.5)
    return f0 * math.sqrt(r) / s**1.5


def _theory_mean_cos2(r: Tensor, d: int) -> Tensor:
    """E c^2 under cosine_density(d, r), Gauss-Legendre in c_0 (400 nodes)."""
    x, w = np.polynomial.legendre.leggauss(400)
    f0 = cosine_density(x, d=d)
    rr = r.double().cpu().numpy()[..., None]
    g = x * x / (x * x + (1 - x * x) * rr)
    return torch.as_tensor((g * f0 * w).sum(-1), dtype=torch.float64)


@dataclass(frozen=True)
class CosineHistogram:
    r"""Cosines :math:`\cos(w_j, w^*)` of SGD and of the mean-field ODE at a few times.

    Attributes
    ----------
    p, d, n_runs : int
    gamma : float
    t : Tensor, shape (n_t,)
        The SGD times (whole steps).
    cosines, mf_cosines : Tensor, shape (n_t, n_runs, p)
        SGD's, and those of the MF ODE (with :math:`\mathbb E_\Xi`) from the same weights.
    ratio : Tensor, shape (n_t, n_runs)
        :math:`r(t)`: geometric mean over neurons of :math:`(q_j(t)/q_j(0))(M_j(0)/
        M_j(t))^2` along the MF ODE (:func:`cosine_density`).
    sgd_mean_cos2, mf_mean_cos2, theory_mean_cos2 : Tensor, shape (n_t, n_runs)
        Mean of :math:`\cos^2` over neurons: SGD, MF ODE, and :math:`\int c^2 f_t` with
        :math:`r(t)`.
    """

    p: int
    d: int
    n_runs: int
    gamma: float
    t: Tensor
    cosines: Tensor
    mf_cosines: Tensor
    ratio: Tensor
    sgd_mean_cos2: Tensor
    mf_mean_cos2: Tensor
    theory_mean_cos2: Tensor


def cosine_histogram(p: int = 1000, k: int = 1, d: int = 3, *, gamma: float = 1.0,
                     times: Sequence[float] = (0.0, 1.0, 10.0), n_runs: int = 5,
                     dt: float = 0.01, generator: int | torch.Generator = 0, device=None,
                     dtype: torch.dtype | None = None) -> CosineHistogram:
    r"""App. (d) of the paper: the histogram of :math:`\cos(w_j, w^*)` along SGD, square
    activation, one teacher: uniform at :math:`t = 0` for ``d = 3``, then towards
    :math:`\frac12(\delta_1 + \delta_{-1})`.

    Parameters
    ----------
    p, k, d : int
        Student width, teacher width (1: one teacher direction), input dimension (>= 3).
    gamma : float, keyword-only, default 1
    times : sequence of float, keyword-only
        Recorded times, starting at 0.
    n_runs : int, keyword-only, default 5
        Independent runs (the per-run mean of :math:`\cos^2` carries the Monte-Carlo error).
    dt : float, keyword-only
        RK4 step of the MF ODE.
    generator, device, dtype : keyword-only
        As in :func:`high_d_mean_field`.

    Returns
    -------
    CosineHistogram

    Raises
    ------
    ValueError, TypeError, mfteach.training.DivergenceError
        As :func:`high_d_mean_field`; ``k != 1``.

    Notes
    -----
    The default takes about 4 s on one core; the paper's size is ``cosine_histogram(p=5000,
    times=(0, 10, 100), n_runs=1, device="cuda")``. :math:`r(t)` falls roughly like
    :math:`1/t`, so :math:`\mathbb E\cos^2 \approx 1 - \frac\pi2\sqrt r` approaches 1 slowly.
    Chapter 04, "The mean-field limit".

    Examples
    --------
    >>> h = cosine_histogram(p=50, times=(0.0, 0.1), n_runs=2)
    >>> h.cosines.shape
    torch.Size([2, 2, 50])
    """
    fn = "mfteach.sgd_odes.cosine_histogram"
    p, d, n_runs = (check_int(v, name, fn, min=1)
                    for v, name in ((p, "p"), (d, "d"), (n_runs, "n_runs")))
    k = check_int(k, "k", fn, min=1)
    if k != 1:
        fail("k", fn, "1 (the histogram is of the cosine with the one teacher; for k > 1 use "
             "teacher_cosines)", k)
    if d < 3:
        fail("d", fn, "an int >= 3 (the E_Xi average lives on S^(d-2))", d)
    gamma = check_float(gamma, "gamma", fn, min=0.0, min_open=True)
    big = max((("p", p), ("n_runs", n_runs), ("d", d)), key=lambda kv: kv[1])
    check_budget(big[0], fn, big[1], nbytes=16 * n_runs * p * (d + 4))
    t_req = time_grid(None, times, 2, fn, record_bytes=16 * n_runs * p)
    if not float(t_req[-1]) > 0:
        fail("times", fn, "a sequence of times from 0 with a positive last time", times)
    dt = check_float(dt, "dt", fn, min=0.0, min_open=True)
    _check_sgd_run(fn, p, k, d, n_runs, gamma, float(t_req[-1]), 2)
    check_budget("dt", fn, dt, steps=float(t_req[-1]) / dt)
    dev, dty = resolve_device(device, fn), resolve_dtype(dtype, fn)
    W, Ws, stream = _init_and_stream(p, k, d, n_runs, generator, dev, dty, fn)
    # d is tiny: short blocks (the Gram-matrix trick pays off only for large d)
    sgd = simulate_sgd(W, Ws, activation="square", gamma=gamma, times=t_req, generator=stream,
                       block_size=8)
    Qd = torch.diagonal(sgd.Q, dim1=-2, dim2=-1).double().cpu()  # (n, T, p)
    M = sgd.M.double().cpu()[..., 0]  # (n, T, p)
    P11 = sgd.P.double().cpu()[:, 0, 0, 0].view(-1, 1, 1)  # (n, 1, 1): |w*|^2 / d
    cos = M / (Qd * P11).sqrt()
    q0 = (Qd[:, 0] - M[:, 0] ** 2 / P11[:, 0]).clamp_min(0)
    t = sgd.t.double().cpu()
    mf = solve_mf_ode(M[:, 0, :, None], q0, P11, activation="square", d=d, times=t, dt=dt)
    Mm = mf.M[..., 0]
    mf_cos = Mm / (Mm * Mm + mf.q * P11).sqrt()  # Q_jj P = M_j^2 + q_j P
    logr = (mf.q / mf.q[:, :1]).log() - 2 * (Mm / Mm[:, :1]).abs().log()
    ratio = logr.mean(-1).exp().clamp(max=1.0).mT  # (n_t, n)
    return CosineHistogram(
        p=p, d=d, n_runs=n_runs, gamma=gamma, t=t, cosines=cos.transpose(0, 1),
        mf_cosines=mf_cos.transpose(0, 1), ratio=ratio,
        sgd_mean_cos2=(cos * cos).mean(-1).mT, mf_mean_cos2=(mf_cos * mf_cos).mean(-1).mT,
        theory_mean_cos2=_theory_mean_cos2(ratio, d))
