r"""The chapter's experiments: one training run at chapter sizes, the linear rate, and the
neuron movement against width.

* :func:`run` draws data and an ensemble and trains it (:func:`mfteach.three_layer.train`).
* :func:`fit_log_rate` fits :math:`\log L(t) \approx a - \rho t` on the late part of training,
  per network, with its :math:`R^2` and the :math:`R^2` that any *algebraic* decay
  :math:`L \propto t^{-p}` would reach on the same window (a power law is linear in
  :math:`\log t`, and :math:`R^2` is invariant under affine maps, so that number does not
  depend on :math:`p`): a linear rate shows as an :math:`R^2` above it.
* :func:`movement_sweep` measures :math:`\|h(T) - h(0)\|` over a ladder of widths
  :math:`m_1 = m_2 = m` and fits its log-log slope per seed: about 0 in both mean-field
  regimes (feature learning), about :math:`-1/2` under ``"ntk"`` (lazy training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import (
    check_bool,
    check_budget,
    check_choice,
    check_float,
    check_int,
    check_tensor,
    fail,
)
from ..device import resolve_device, resolve_dtype, spawn_generators
from ..stats import SlopeFit, fit_loglog_slope
from ._data import TARGETS, great_circle, sphere_data, target_function
from ._model import _activation, get_scaling, init_three_layer
from ._train import History, train

__all__ = ["run", "slice_target", "RateFit", "fit_log_rate", "algebraic_r2", "MovementSweep",
           "movement_sweep"]


def run(scaling: str = "mf_half", *, m1: int = 1000, m2: int = 200, d: int = 10,
        n_train: int = 10, n_test: int = 50, n_networks: int = 5, dt: float = 1.0,
        steps: int = 400, target: str = "single_index", sigma1: str = "relu",
        sigma2: str = "tanh", antisymmetric: bool = False, record_every: int = 10,
        n_slice: int = 129, n_show: int = 4, generator: int | torch.Generator,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None, progress: bool = False) -> History:
    r"""Draw ``n_networks`` data sets and networks (one of each per ensemble member) and train.

    The defaults are the chapter's sizes (:math:`N = 10` points on :math:`S^9`, ReLU features,
    tanh neurons, :math:`m_1 = 1000`, :math:`m_2 = 200`, Euler step 1 for 400 steps, i.e.
    :math:`T = 400`, long enough for the late log-loss to be straight; the Euler number
    :math:`dt\,\lambda_{\max}/N` stays below 0.7); they take about two seconds on one core.

    Parameters
    ----------
    scaling : {"mf_half", "mf_one", "ntk"}

    Other Parameters
    ----------------
    m1, m2, d, n_train, n_test, n_networks : int
    dt, steps, record_every, n_show
        See :func:`mfteach.three_layer.train`.
    target : {"single_index", "two_index", "linear"}
    sigma1, sigma2 : str
    antisymmetric : bool
        Mirror-pair initialisation with :math:`f_0 = 0` (up to rounding)
        (:func:`mfteach.three_layer.init_three_layer`).
    n_slice : int
        Points on the great-circle slice of the snapshots.
    generator : int or torch.Generator
        Split (:func:`mfteach.device.spawn_generators`) into a data stream and a network
        stream, so the same seed gives the same data under every scaling and width.
    device, dtype
        CPU and ``float64`` by default.

    Returns
    -------
    History
    """
    fn = "mfteach.three_layer.run"
    # Every argument is checked here, under this function's name, before any helper runs.
    get_scaling(scaling, fn)
    m1 = check_int(m1, "m1", fn, min=1)
    m2 = check_int(m2, "m2", fn, min=1)
    d = check_int(d, "d", fn, min=2)
    n_train = check_int(n_train, "n_train", fn, min=1)
    n_test = check_int(n_test, "n_test", fn, min=1)
    n_networks = check_int(n_networks, "n_networks", fn, min=1)
    dt = check_float(dt, "dt", fn, min=0.0, min_open=True)
    steps = check_int(steps, "steps", fn, min=0)
    check_choice(target, "target", fn, TARGETS)
    _activation(sigma1, "sigma1", fn)
    _activation(sigma2, "sigma2", fn)
    check_bool(antisymmetric, "antisymmetric", fn)
    if antisymmetric and m2 % 2:
        fail("m2", fn, "an even int for antisymmetric=True (neurons come in mirror pairs)", m2)
    record_every = check_int(record_every, "record_every", fn, min=1)
    n_slice = check_int(n_slice, "n_slice", fn, min=2)
    n_show = check_int(n_show, "n_show", fn, min=1, max=m2)
    check_bool(progress, "progress", fn)
    dev = resolve_device(device, fn)
    dt_ = resolve_dtype(dtype, fn)
    # Peak memory: the data, the networks, training (train's own estimate) and the slice.
    N, P, S = n_train, n_test, n_slice
    sizes = {"m1": m1, "m2": m2, "d": d, "n_train": N, "n_test": P, "n_networks": n_networks,
             "n_slice": S}
    big = max(sizes, key=lambda k: sizes[k])
    nbytes = dt_.itemsize * n_networks * (
        3.0 * (N + P) * (d + 1) + 3.0 * (m1 * (d + m2) + m2)
        + 4.0 * m1 * m2 + (N + P) * (m1 + 4.0 * m2) + 6.0 * N * N
        + 2.0 * S * (d + m1 + m2)) + 2.0 * S * d * dt_.itemsize
    check_budget(big, fn, sizes[big], nbytes=nbytes)
    check_budget("steps", fn, steps, steps=steps)
    g_data, g_net = spawn_generators(generator, 2, "cpu", fn)
    X, y = sphere_data(n_train + n_test, d, n_sets=n_networks, target=target,
                       generator=g_data, device=dev, dtype=dt_)
    net = init_three_layer(d, m1, m2, scaling=scaling, n_networks=n_networks, sigma1=sigma1,
                           sigma2=sigma2, antisymmetric=antisymmetric, generator=g_net,
                           device=dev, dtype=dt_)
    s, Xs = great_circle(n_slice, d, device=dev, dtype=dt_)
    return train(net, X[:, :n_train], y[:, :n_train], dt=dt, steps=steps,
                 X_test=X[:, n_train:], y_test=y[:, n_train:], X_slice=Xs, slice_s=s,
                 n_show=n_show, record_every=record_every, progress=progress)


def slice_target(history: History, target: str = "single_index") -> Tensor:
    """The teacher on the slice of a :func:`run` history (for the pictures)."""
    fn = "mfteach.three_layer.slice_target"
    if not isinstance(history, History):
        fail("history", fn, "an mfteach.three_layer.History", history, exc=TypeError)
    check_choice(target, "target", fn, TARGETS)
    if history.slice_s is None:
        fail("history", fn, "a History with a slice", history)
    s = history.slice_s
    X = torch.stack([torch.cos(s), torch.sin(s)], -1)
    d = history.final.d
    X = torch.cat([X, X.new_zeros(len(s), d - 2)], -1)
    return target_function(X, target)


@dataclass(frozen=True)
class RateFit:
    r"""Least-squares fit of :math:`\log L(t) = a - \rho\,t` on a late window, per network.

    Attributes
    ----------
    rate : Tensor, shape (B,)
        :math:`\rho` (positive for a decaying loss).
    r2 : Tensor, shape (B,)
        Coefficient of determination of each fit.
    r2_algebraic : float
        :math:`R^2` of :math:`\log t` against :math:`t` on the same window: what any power
        law :math:`L \propto t^{-p}` would reach.
    r2_power : Tensor, shape (B,)
        :math:`R^2` of the power-law fit :math:`\log L = a - p\log t` on the same window: a
        linear rate fits better in :math:`t` than in :math:`\log t`.
    t_start, t_end : float
    """

    rate: Tensor
    r2: Tensor
    r2_algebraic: float
    r2_power: Tensor
    t_start: float
    t_end: float

    @property
    def mean(self) -> float:
        return float(self.rate.mean())

    @property
    def std(self) -> float:
        """Spread (sample standard deviation) of the rate over the ensemble."""
        return float(self.rate.std()) if self.rate.numel() > 1 else 0.0


def algebraic_r2(t: Tensor) -> float:
    r""":math:`R^2` of the least-squares line through :math:`(t_k, \log t_k)`.

    Examples
    --------
    >>> round(algebraic_r2(torch.linspace(40, 80, 41, dtype=torch.float64)), 4)
    0.9917
    """
    fn = "mfteach.three_layer.algebraic_r2"
    check_tensor(t, "t", fn, ndim=1)
    tt = t.detach().to("cpu", torch.float64)
    if tt.numel() < 3 or not bool((tt > 0).all()):
        fail("t", fn, "a 1-D tensor of at least 3 positive times", t)
    lt = tt.log()
    tc, lc = tt - tt.mean(), lt - lt.mean()
    return float((tc @ lc) ** 2 / ((tc @ tc) * (lc @ lc)))


def fit_log_rate(history: History, *, start_fraction: float = 0.5) -> RateFit:
    r"""Fit the late log-loss, :math:`\log L(t) \approx a - \rho t` for :math:`t \ge
    \texttt{start\_fraction}\times T`, per network.

    Parameters
    ----------
    history : History
    start_fraction : float in (0, 1)

    Returns
    -------
    RateFit
    """
    fn = "mfteach.three_layer.fit_log_rate"
    if not isinstance(history, History):
        fail("history", fn, "an mfteach.three_layer.History", history, exc=TypeError)
    start_fraction = check_float(start_fraction, "start_fraction", fn, min=0.0, max=1.0,
                                 min_open=True, max_open=True)
    t = history.t
    keep = t >= start_fraction * t[-1]
    if int(keep.sum()) < 3:
        fail("history", fn, "a History with at least 3 recorded steps in the fitted window "
             "(record more often)", history)
    tw = t[keep]
    L = history.loss.detach().to("cpu", torch.float64)[keep.cpu()]  # (W, B)
    if not bool((L > 0).all()):
        fail("history", fn, "a History whose losses in the window are positive", history)
    lL = L.log()
    tc = (tw - tw.mean()).unsqueeze(-1)
    slope = (tc * (lL - lL.mean(0))).sum(0) / tc.square().sum()
    return RateFit(rate=-slope, r2=_r2(tw, lL), r2_algebraic=algebraic_r2(tw),
                   r2_power=_r2(tw.log(), lL), t_start=float(tw[0]), t_end=float(tw[-1]))


def _r2(x: Tensor, Y: Tensor) -> Tensor:
    """R^2 of the least-squares line of each column of Y (W, B) against x (W,)."""
    xc = (x - x.mean()).unsqueeze(-1)
    yc = Y - Y.mean(0)
    slope = (xc * yc).sum(0) / xc.square().sum()
    ss_res = (yc - slope * xc).square().sum(0)
    ss_tot = yc.square().sum(0)
    return torch.where(ss_tot > 0, 1 - ss_res / ss_tot.clamp_min(1e-300),
                       torch.zeros_like(ss_tot))


@dataclass(frozen=True)
class MovementSweep:
    r"""Neuron movement :math:`\|h(T) - h(0)\|` against width :math:`m = m_1 = m_2`.

    Attributes
    ----------
    scaling : str
    widths : tuple of int
    movement : Tensor, shape (W, B)
        Final movement of each network (network :math:`b` uses data set :math:`b` at every
        width, and its parameters are nested across widths: common random numbers).
    final_loss : Tensor, shape (W, B)
    fit : SlopeFit
        Slope of the log ensemble mean against :math:`\log m`.
    slopes : Tensor, shape (B,)
        The slope fitted separately for each seed.
    histories : tuple of History
        The training record at each width (with slice snapshots when the sweep was asked
        for them, ``n_slice``), for pictures of the same runs.
    """

    scaling: str
    widths: tuple[int, ...]
    movement: Tensor
    final_loss: Tensor
    fit: SlopeFit
    slopes: Tensor
    histories: tuple[History, ...] = ()

    @property
    def slope_mean(self) -> float:
        return float(self.slopes.mean())

    @property
    def slope_std(self) -> float:
        """Spread (sample standard deviation) of the per-seed slopes."""
        return float(self.slopes.std())


def movement_sweep(widths: Sequence[int], scaling: str, *, n_seeds: int = 5, d: int = 10,
                   n_train: int = 10, n_test: int = 20, dt: float = 0.2, steps: int = 150,
                   target: str = "single_index", n_slice: int | None = None,
                   record_every: int | None = None, generator: int | torch.Generator,
                   device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                   progress: bool = False) -> MovementSweep:
    r"""Train ``n_seeds`` networks at each width :math:`m_1 = m_2 = m` and fit the movement's
    log-log slope.

    Under both mean-field scalings the neurons move by :math:`O(1)` (slope near 0); under
    ``"ntk"`` by :math:`O(m_2^{-1/2})` (slope near :math:`-1/2`).

    Parameters
    ----------
    widths : sequence of int
        At least 3 increasing widths.
    scaling : {"mf_half", "mf_one", "ntk"}

    Other Parameters
    ----------------
    n_seeds : int
        Ensemble size per width (at least 2; the slope's spread is over seeds).
    d, n_train, n_test, dt, steps, target
        As in :func:`run`.
    n_slice : int, optional
        Record slice snapshots (:func:`mfteach.three_layer.great_circle`, ``n_slice`` points)
        in ``MovementSweep.histories``.
    record_every : int, optional
        Recording interval of the histories (by default only the first and last step).
    generator : int or torch.Generator
        Split into a data stream (the same data at every width) and a network stream: the
        widest networks are drawn once and the width-:math:`m` network is their leading
        :math:`m \times m` block (common random numbers, so the per-seed slopes are smooth).

    Returns
    -------
    MovementSweep
    """
    fn = "mfteach.three_layer.movement_sweep"
    get_scaling(scaling, fn)
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        fail("widths", fn, "a list of at least 3 increasing ints >= 1", widths, exc=TypeError)
    ws = tuple(check_int(w, "widths", fn, min=1) for w in widths)
    if len(ws) < 3 or any(b <= a for a, b in zip(ws, ws[1:])):
        fail("widths", fn, "a list of at least 3 increasing ints >= 1", widths)
    n_seeds = check_int(n_seeds, "n_seeds", fn, min=2)
    d = check_int(d, "d", fn, min=1)
    n_train = check_int(n_train, "n_train", fn, min=1)
    n_test = check_int(n_test, "n_test", fn, min=1)
    dt = check_float(dt, "dt", fn, min=0.0, min_open=True)
    steps = check_int(steps, "steps", fn, min=0)
    check_choice(target, "target", fn, TARGETS)
    if target == "two_index" and d < 2:
        fail("d", fn, "an int >= 2 for target='two_index'", d)
    if n_slice is not None:
        n_slice = check_int(n_slice, "n_slice", fn, min=2)
        if d < 2:
            fail("d", fn, "an int >= 2 for a slice (n_slice)", d)
    record_every = (steps or 1) if record_every is None else check_int(
        record_every, "record_every", fn, min=1)
    check_bool(progress, "progress", fn)
    dev = resolve_device(device, fn)
    dt_ = resolve_dtype(dtype, fn)
    # Peak memory: the data, the widest networks, one training run at the widest width.
    M, N, P = ws[-1], n_train, n_test
    sizes = {"widths": M, "n_seeds": n_seeds, "d": d, "n_train": N, "n_test": P,
             "n_slice": n_slice or 0}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big], nbytes=dt_.itemsize * n_seeds * (
        3.0 * (N + P) * (d + 1) + 3.0 * (M * (d + M) + M) + 4.0 * M * M
        + (N + P) * 5.0 * M + 6.0 * N * N
        # the trained networks kept in the histories, and the slice
        + sum(m * (m + d + 1.0) for m in ws) + (2.0 * n_slice * (d + 2 * M) if n_slice else 0)))
    check_budget("steps", fn, steps, steps=float(steps) * len(ws))
    g_data, g_net = spawn_generators(generator, 2, "cpu", fn)
    X, y = sphere_data(n_train + n_test, d, n_sets=n_seeds, target=target, generator=g_data,
                       device=dev, dtype=dt_)
    # Nested networks (common random numbers across widths): the width-m network is the
    # leading m x m block of the widest one.
    M = ws[-1]
    big = init_three_layer(d, M, M, scaling=scaling, n_networks=n_seeds, generator=g_net,
                           device=dev, dtype=dt_)
    sl = {}
    if n_slice is not None:
        s, Xs = great_circle(n_slice, d, device=dev, dtype=dt_)
        sl = {"X_slice": Xs, "slice_s": s, "n_show": min(4, ws[0])}
    moves, losses, hists = [], [], []
    for m in ws:
        net = big.replace(theta=big.theta[:, :m].contiguous(),
                          z=big.z[:, :m, :m].contiguous(), c=big.c[:, :m].contiguous())
        h = train(net, X[:, :n_train], y[:, :n_train], dt=dt, steps=steps,
                  X_test=X[:, n_train:], y_test=y[:, n_train:], record_every=record_every,
                  progress=progress, **sl)
        moves.append(h.movement[-1])
        losses.append(h.loss[-1])
        hists.append(h)
    movement, final_loss = torch.stack(moves), torch.stack(losses)
    mv = movement.detach().to("cpu", torch.float64).numpy()
    fit = fit_loglog_slope(ws, mv.mean(1))
    slopes = torch.tensor([fit_loglog_slope(ws, mv[:, b]).slope for b in range(n_seeds)],
                          dtype=torch.float64)
    return MovementSweep(scaling=get_scaling(scaling).name, widths=ws, movement=movement,
                         final_loss=final_loss, fit=fit, slopes=slopes,
                         histories=tuple(hists))

