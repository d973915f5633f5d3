r"""The tangent kernel's drift during the whole training, over independent data sets.

Carvalho et al. (2023, arXiv 2304.03385, abstract) show that the NTK of a wide network stays
close to its initial value "during the whole training", with bounds sharper than the
classical :math:`O(N^{-1/2})`, and, as a corollary, that gradient descent reaches a global
minimum with high probability for wide networks. This module measures both statements for
:math:`f(x) = N^{-1/2}\sum_i a_i\phi(w_i\cdot x/\sqrt d)` (:class:`mfteach.models.TwoLayer`,
``"ntk"``) trained by full-batch gradient descent (:func:`mfteach.training.train`) *to
convergence*, i.e. until every network's loss
:math:`\mathcal L = \frac1{2n}\sum_\mu (f(x_\mu) - y_\mu)^2` is below a threshold or a step
budget is spent:

* the supremum over training time of :math:`\|\Theta_t - \Theta_0\|_F/\|\Theta_0\|_F` per
  network, against the width, with its weighted log-log slope on each of several independent
  data sets and the spread of those slopes (:func:`mfteach.stats.slope_spread`);
* the fraction of networks whose loss falls below the threshold, against the width.

Predicted exponents of the sup drift (heuristics, not theorems): :math:`N^{-1}` for smooth
activations (the kernel's change is second order in the :math:`O(N^{-1/2})` weight moves;
Dyer & Gur-Ari 2020, arXiv 1909.11304), between :math:`N^{-1/2}` and :math:`N^{-1}` for ReLU
(the :math:`O(N^{-1/2})` moves flip the signs of the few neurons near the kink). The rigorous
bound is :math:`O(N^{-1/2})` (Jacot et al. 2018; Lee et al. 2019, arXiv 1902.06720).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._checks import check_bool, check_budget, check_choice, check_float, check_int, fail
from ..activations import ACTIVATIONS
from ..device import as_generator, resolve_device, resolve_dtype
from ..models import TwoLayer, _largest
from ..stats import SlopeFit, SlopeSpread, fit_weighted_loglog_slope, slope_spread
from ..training import _check_lr, relative_ntk_change, train
from ._ntk import _sphere_data
from ._sampling import _check_widths

__all__ = ["DriftDataset", "DriftStudy", "ntk_drift_dataset", "ntk_drift_study"]


@dataclass(frozen=True)
class DriftDataset:
    r"""One data set: per width, an ensemble trained to convergence, and its kernel drift.

    Attributes
    ----------
    seed : int
        The data set's seed: :func:`ntk_drift_dataset` with ``generator=seed`` (and the same
        other arguments) recomputes it.
    widths : tuple of int
    sup_drift, final_drift : Tensor, shape (W, B), float64
        :math:`\sup_t` (over the recorded steps) and last value of
        :math:`\|\Theta_t - \Theta_0\|_F/\|\Theta_0\|_F` per width and network.
    reached : Tensor, shape (W, B), bool
        Whether the network's loss fell below the threshold within ``max_steps``.
    threshold_step : Tensor, shape (W, B), int64
        First recorded step with loss below the threshold, -1 where never reached (see
        :attr:`steps_to_threshold` for the float version with ``inf``).
    steps_run : Tensor, shape (W,), int64
        Steps trained per width (training stops once every network is below threshold).
    step, drift, loss : tuple of Tensor
        Per width, the recorded steps (T_w,), drifts (T_w, B) and losses (T_w, B).
    """

    seed: int
    widths: tuple[int, ...]
    sup_drift: Tensor
    final_drift: Tensor
    reached: Tensor
    threshold_step: Tensor
    steps_run: Tensor
    step: tuple[Tensor, ...]
    drift: tuple[Tensor, ...]
    loss: tuple[Tensor, ...]

    @property
    def steps_to_threshold(self) -> Tensor:
        """``threshold_step`` as float64, ``inf`` where the threshold was not reached."""
        s = self.threshold_step.to(torch.float64)
        return torch.where(self.reached, s, torch.full_like(s, math.inf))


@dataclass(frozen=True)
class DriftStudy:
    r"""Sup-in-time NTK drift and convergence over widths and independent data sets.

    Attributes
    ----------
    activation : str
    widths : tuple of int
    seeds : tuple of int
        Per-data-set seeds (``numpy.random.SeedSequence`` children of the generator).
    datasets : tuple of DriftDataset
    sup_drift, final_drift : Tensor, shape (D, W, B), float64
    reached : Tensor, shape (D, W, B), bool
    sup_mean, sup_stderr : Tensor, shape (D, W)
        Mean over the B networks of the sup drift and its Monte-Carlo standard error.
    fit_widths : tuple of int
        The widths entering the slope fits (those ``>= fit_min_width``).
    fits : tuple of SlopeFit
        Per data set, weighted log-log fit of ``sup_mean`` against the width.
    spread : SlopeSpread
        The slopes over the D data sets: the exponent quoted is ``spread.mean`` with
        ``spread.stderr``.
    fraction, fraction_stderr : Tensor, shape (W,)
        Fraction of the D*B networks that reached the threshold, with its binomial standard
        error :math:`\sqrt{p(1-p)/(DB)}`.
    lr, loss_threshold : float
    max_steps, record_every, n_networks : int
    """

    activation: str
    widths: tuple[int, ...]
    seeds: tuple[int, ...]
    datasets: tuple[DriftDataset, ...]
    sup_drift: Tensor
    final_drift: Tensor
    reached: Tensor
    sup_mean: Tensor
    sup_stderr: Tensor
    fit_widths: tuple[int, ...]
    fits: tuple[SlopeFit, ...]
    spread: SlopeSpread
    fraction: Tensor
    fraction_stderr: Tensor
    lr: float
    loss_threshold: float
    max_steps: int
    record_every: int
    n_networks: int


def _entropy(generator, fn: str) -> int:
    """An int seed as is; a torch.Generator contributes one 62-bit draw (it advances)."""
    if isinstance(generator, torch.Generator):
        return int(torch.randint(0, 2**62, (1,), generator=generator,
                                 device=generator.device).item())
    return as_generator(generator, None, fn).initial_seed()


def _child_seed(entropy: int, *key: int) -> int:
    return int(np.random.SeedSequence(entropy, spawn_key=key).generate_state(1, np.uint64)[0])


def _check_args(fn, activation, widths, n_networks, lr, max_steps, loss_threshold, n_train,
                d, record_every, device, dtype, progress, n_datasets=1):
    check_choice(activation, "activation", fn, ACTIVATIONS)
    widths = _check_widths(widths, fn)
    n_networks = check_int(n_networks, "n_networks", fn, min=2)
    lr = check_float(lr, "lr", fn, min=0.0, min_open=True)
    max_steps = check_int(max_steps, "max_steps", fn, min=1)
    loss_threshold = check_float(loss_threshold, "loss_threshold", fn, min=0.0, min_open=True)
    n_train = check_int(n_train, "n_train", fn, min=1)
    d = check_int(d, "d", fn, min=1)
    record_every = check_int(record_every, "record_every", fn, min=1)
    check_bool(progress, "progress", fn)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn, default=torch.float32)
    lr = _check_lr(lr, fn, dt)
    W, N = len(widths), max(widths)
    _largest(fn, dt.itemsize * (3.0 * (n_train + 1) * (d + 1) + n_networks * (
        3.0 * N * (d + 1) + 6.0 * n_train * N + 5.0 * n_train**2)), widths=N,
        n_networks=n_networks, n_train=n_train, d=d)
    check_budget("max_steps", fn, max_steps, steps=float(max_steps) * W)
    check_budget("n_datasets", fn, n_datasets, steps=float(max_steps) * W * n_datasets)
    n_rec = max_steps // record_every + 2
    check_budget("record_every", fn, record_every,
                 nbytes=2.0 * n_rec * W * n_networks * 8 * n_datasets)
    return (widths, n_networks, lr, max_steps, loss_threshold, n_train, d, record_every,
            dev, dt)


def _run_dataset(fn, seed, activation, widths, n_networks, lr, max_steps, thr, n_train, d,
                 record_every, dev, dt, progress) -> DriftDataset:
    X, y = _sphere_data(n_train, d, _child_seed(seed, 0), dt, dev, fn, "n_train")
    B = n_networks
    sups, finals, reached, first, runs, steps, drifts, losses = ([] for _ in range(8))
    for n in widths:
        model = TwoLayer(d, n, activation=activation, n_networks=B,
                         generator=_child_seed(seed, 1, n), device=dev, dtype=dt)
        diag = {"ntk": relative_ntk_change(model, X)}
        rec_s, rec_d, rec_l = [], [], []
        hit = torch.full((B,), -1, dtype=torch.long)
        done = 0
        while done < max_steps:
            chunk = min(record_every, max_steps - done)
            h = train(model, X, y, lr=lr, steps=chunk, record_every=chunk, diagnostics=diag,
                      progress=progress)
            pts = [0, 1] if done == 0 else [1]  # a chunk's first record is the last one's end
            for p in pts:
                k = done + int(h.step[p])
                loss = h.loss[p].detach().to("cpu", torch.float64)
                rec_s.append(k)
                rec_l.append(loss)
                rec_d.append(h.diagnostics["ntk"][p].detach().to("cpu", torch.float64))
                hit = torch.where((hit < 0) & (loss < thr), torch.full_like(hit, k), hit)
            done += chunk
            if bool((hit >= 0).all()):
                break
        D = torch.stack(rec_d)  # (T, B)
        sups.append(D.max(0).values)
        finals.append(D[-1])
        reached.append(hit >= 0)
        first.append(hit)
        runs.append(done)
        steps.append(torch.tensor(rec_s, dtype=torch.long))
        drifts.append(D)
        losses.append(torch.stack(rec_l))
    return DriftDataset(seed, widths, torch.stack(sups), torch.stack(finals),
                        torch.stack(reached), torch.stack(first),
                        torch.tensor(runs, dtype=torch.long), tuple(steps), tuple(drifts),
                        tuple(losses))


def ntk_drift_dataset(activation: str, widths: Sequence[int], *,
                      generator: int | torch.Generator, n_networks: int = 4,
                      lr: float = 0.5, max_steps: int = 600, loss_threshold: float = 1e-2,
                      n_train: int = 20, d: int = 5, record_every: int = 10,
                      device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None,
                      progress: bool = False) -> DriftDataset:
    r"""One data set of :func:`ntk_drift_study`: train ``n_networks`` networks per width to
    convergence and record the tangent kernel's drift along the way.

    The data (:func:`sphere_data`, ``n_train`` points in dimension ``d``) and the networks of
    width :math:`N` are drawn from ``numpy.random.SeedSequence`` children of the seed (keys
    ``(0,)`` and ``(1, N)``): the networks of a width do not depend on the other widths. Each
    width trains by GD in chunks of ``record_every`` steps until every network's loss is
    below ``loss_threshold`` or ``max_steps`` steps are spent; the drift and the loss are
    recorded at the end of every chunk, so the supremum is over those steps and the step of
    reaching the threshold is known to ``record_every`` steps.

    Parameters
    ----------
    activation : str
    widths : sequence of int
    generator : int or torch.Generator
        The data set's seed (``DriftStudy.seeds[i]`` recomputes data set ``i``).
    lr : float
        :math:`\eta` (linear-flow time :math:`t = \eta k`); float32 by default.

    Returns
    -------
    DriftDataset

    Raises
    ------
    TypeError, ValueError
        For bad arguments, named as this function's, or sizes beyond the limits
        (CONTRIBUTING.md); :class:`mfteach.training.DivergenceError` if training diverges.

    Examples
    --------
    >>> r = ntk_drift_dataset("tanh", [8, 64], generator=0, max_steps=20, n_networks=2)
    >>> r.sup_drift.shape, bool((r.sup_drift >= r.final_drift).all())
    (torch.Size([2, 2]), True)
    """
    fn = "mfteach.finite_width.ntk_drift_dataset"
    (widths, n_networks, lr, max_steps, thr, n_train, d, record_every, dev,
     dt) = _check_args(fn, activation, widths, n_networks, lr, max_steps, loss_threshold,
                       n_train, d, record_every, device, dtype, progress)
    seed = _entropy(generator, fn)
    return _run_dataset(fn, seed, activation, widths, n_networks, lr, max_steps, thr,
                        n_train, d, record_every, dev, dt, progress)


def ntk_drift_study(activation: str, widths: Sequence[int], *, n_datasets: int = 5,
                    n_networks: int = 4, lr: float = 0.5, max_steps: int = 600,
                    loss_threshold: float = 1e-2, n_train: int = 20, d: int = 5,
                    record_every: int = 10, fit_min_width: int = 1,
                    generator: int | torch.Generator,
                    device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None, progress: bool = False) -> DriftStudy:
    r"""Sup-in-time NTK drift and the fraction of converged networks, against the width, on
    ``n_datasets`` independent data sets.

    Data set :math:`i` is :func:`ntk_drift_dataset` with the seed
    ``SeedSequence(seed).spawn(n_datasets)[i]`` (an int ``generator`` is the entropy; a
    ``torch.Generator`` contributes one draw), so one data set can be recomputed alone
    (``DriftStudy.seeds``). Per data set the sup drift's mean over networks, with its
    Monte-Carlo standard error, is fitted against the width by weighted least squares on
    log-log axes (:func:`mfteach.stats.fit_weighted_loglog_slope`) over the widths
    ``>= fit_min_width``; the exponent reported is the mean of the per-data-set slopes with
    the standard error of their spread (:func:`mfteach.stats.slope_spread`).

    Parameters
    ----------
    activation : str
    widths : sequence of int
        At least two distinct widths.
    n_datasets : int
        Independent data sets (at least 2; 5 or more for an exponent the text interprets).
    n_networks, lr, max_steps, loss_threshold, n_train, d, record_every
        As :func:`ntk_drift_dataset`.
    fit_min_width : int
        Smallest width entering the slope fits: fit only where the asymptotic regime holds
        (at widths of a few units the networks leave the kernel regime, the drift is of order
        1 and some do not converge); at least two widths must remain.
    generator : int or torch.Generator
    device, dtype, progress
        Placement (float32 by default: training is a performance path) and a progress bar.

    Returns
    -------
    DriftStudy

    Raises
    ------
    TypeError, ValueError
        For bad arguments, named as this function's, sizes beyond the limits
        (CONTRIBUTING.md), or a drift that is 0 or does not fluctuate at a fitted width;
        :class:`mfteach.training.DivergenceError` if training diverges.

    Notes
    -----
    Heuristic exponents of the sup drift: :math:`-1` for smooth activations, between
    :math:`-1/2` and :math:`-1` for ReLU; the rigorous bound is :math:`-1/2` (module
    docstring). Carvalho et al. (2023) state the kernel stays close "during the whole
    training", hence the supremum over time rather than the final value; their corollary
    (a global minimum is reached with high probability for wide networks) is the
    ``fraction`` rising to 1 with the width. Measured at the defaults (widths 32, 128, 512,
    2048, 5 data sets of 20 points in d = 5, 4 networks, generator 0): tanh slope
    :math:`-0.98 \pm 0.02` (sd 0.05), ReLU :math:`-0.76 \pm 0.02` (sd 0.04), every network
    below the threshold. ReLU at widths 2, 4, 8, 16, 64, 256 (16 networks per data set,
    generator 1): fractions 0, 0.35, 0.90, 0.96, 1, 1 (width 2 has 12 parameters for 20
    points); tanh reaches the threshold at every width there (one tanh neuron realises the
    target :math:`\tanh(2x_1)`), so the corollary is seen with ReLU. The results are
    float64 tensors on the CPU, whatever the training device. Book chapter 02.

    Examples
    --------
    >>> st = ntk_drift_study("tanh", [16, 64, 256], n_datasets=2, n_networks=2,
    ...                      max_steps=30, generator=0)
    >>> st.sup_drift.shape, len(st.fits), st.spread.n
    (torch.Size([2, 3, 2]), 2, 2)
    >>> bool(st.spread.mean < -0.5)
    True
    """
    fn = "mfteach.finite_width.ntk_drift_study"
    n_datasets = check_int(n_datasets, "n_datasets", fn, min=2)
    (widths, n_networks, lr, max_steps, thr, n_train, d, record_every, dev,
     dt) = _check_args(fn, activation, widths, n_networks, lr, max_steps, loss_threshold,
                       n_train, d, record_every, device, dtype, progress, n_datasets)
    fit_min_width = check_int(fit_min_width, "fit_min_width", fn, min=1)
    fit_idx = [j for j, n in enumerate(widths) if n >= fit_min_width]
    if len(fit_idx) < 2:
        fail("fit_min_width", fn, f"at most the second largest width ({sorted(widths)[-2]}) "
             "so that at least two widths enter the slope fits", fit_min_width)
    entropy = _entropy(generator, fn)
    seeds = tuple(int(s.generate_state(1, np.uint64)[0])
                  for s in np.random.SeedSequence(entropy).spawn(n_datasets))
    runs = tuple(_run_dataset(fn, s, activation, widths, n_networks, lr, max_steps, thr,
                              n_train, d, record_every, dev, dt, progress) for s in seeds)
    sup = torch.stack([r.sup_drift for r in runs])  # (D, W, B)
    final = torch.stack([r.final_drift for r in runs])
    reached = torch.stack([r.reached for r in runs])
    mean = sup.mean(2)
    se = sup.std(2) / math.sqrt(n_networks)
    fw = tuple(widths[j] for j in fit_idx)
    fits = []
    for i in range(n_datasets):
        m, s = mean[i, fit_idx], se[i, fit_idx]
        if not (bool((m > 0).all()) and bool((s > 0).all())
                and bool(torch.isfinite(m).all() & torch.isfinite(s).all())):
            fail("lr", fn, "large enough (with max_steps) for the tangent kernel to move "
                 "measurably, and differently across networks, at every fitted width", lr)
        fits.append(fit_weighted_loglog_slope(fw, m, s))
    M = n_datasets * n_networks
    p = reached.to(torch.float64).mean((0, 2))
    return DriftStudy(
        activation=activation, widths=widths, seeds=seeds, datasets=runs, sup_drift=sup,
        final_drift=final, reached=reached, sup_mean=mean, sup_stderr=se, fit_widths=fw,
        fits=tuple(fits), spread=slope_spread(fits), fraction=p,
        fraction_stderr=(p * (1 - p) / M).sqrt(), lr=lr, loss_threshold=thr,
        max_steps=max_steps, record_every=record_every, n_networks=n_networks)
