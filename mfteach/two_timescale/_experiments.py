r"""The chapter's experiments: a training run at chapter size (or the paper's size), the
initial alignment levels against :math:`d`, learned-kernel ridge regression against fixed
kernels, the discretisation errors in :math:`\eta` and :math:`N`, and the label-noise identity.

Label-noise identities (our derivation; Takakura & Suzuki 2024, §5.2). Write :math:`R =
(\hat\Sigma_\mu + n\bar\lambda_a I)^{-1}`, :math:`s^2 = \sigma^2/3` the variance of
:math:`\mathrm{Unif}[-\sigma, \sigma]` and :math:`d_{\bar\lambda_a} = \mathrm{tr}[\hat\Sigma_\mu
R] = n - n\bar\lambda_a\,\mathrm{tr}R`. Then

* intrinsic noise, :math:`y = f^\circ + \varepsilon`: :math:`\mathbb{E}_\varepsilon U(\mu; y) =
  U(\mu; f^\circ) + \frac{\sigma^2}{6} - \frac{\sigma^2}{6n}d_{\bar\lambda_a}(\mu)`, so the
  noise *rewards* degrees of freedom (the paper's :math:`B - V`, with :math:`V =
  \sigma^2 d_{\bar\lambda_a}/(6n)`);
* the label-noise procedure: :math:`\mathbb{E}_{\tilde\varepsilon}J(\mu; \tilde\varepsilon) =
  U(\mu; Y) + \frac{\tilde\sigma^2}{6n}d_{\bar\lambda_a}(\mu)`, a penalty with constant
  :math:`c = 1/6` (the paper prints :math:`\bar\lambda_a/6`; with the
  :math:`\frac12`-normalised loss of §2.1 the Monte Carlo of :func:`label_noise_identity`
  settles :math:`1/6`).
"""

from __future__ import annotations

import dataclasses
import math
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
    check_same_device_dtype,
    fail,
)
from ..device import as_generator, resolve_device, resolve_dtype, spawn_generators
from ..stats import SlopeFit, fit_loglog_slope
from ..training import DivergenceError
from ._langevin import History, _check_constants, train
from ._langevin import _drift as _drift_raw
from ._model import (
    TARGETS,
    _check_vec,
    _check_XW,
    _features,
    _kernel_alignment,
    _parameter_alignment,
    _Solver,
    init_particles,
    make_data,
    relevant_directions,
)

__all__ = ["run", "RateFit", "fit_linear_rate", "AlignmentScaling", "initial_alignment",
           "KernelComparison", "kernel_comparison", "DiscretisationSweep",
           "time_discretisation", "particle_discretisation", "LabelNoiseCheck",
           "label_noise_identity"]


# Defaults of the discretisation experiments (measured; see their docstrings).
TIME_ETAS = (0.1, 0.05, 0.025)
PARTICLE_NS = (8, 16, 32)
DISC_LAM, DISC_LAMBDA_A, DISC_LAMBDA_W = 0.2, 0.5, 2.5


def _drift(*args):
    """The drift of :mod:`._langevin`; a non-finite state is a divergence, not a LinAlgError."""
    try:
        return _drift_raw(*args)
    except torch.linalg.LinAlgError:
        raise DivergenceError(
            "Langevin dynamics diverged (non-finite particles): the step or the temperature "
            "lam is too large; reduce eta or lam.") from None


def _sizes_budget(fn: str, itemsize: int, dims: tuple[int, int, int, int],
                  sizes: dict[str, int]) -> None:
    """Refuse up front a run whose peak allocation (B runs, n samples, N particles, P test
    points) passes the limit, naming the largest size argument."""
    B, n, N, P = dims
    big = max(sizes, key=lambda k: sizes[k])
    m = min(n, N)
    check_budget(big, fn, sizes[big], nbytes=itemsize * float(B) * (
        8.0 * n * N + 4.0 * m * m + 2.0 * P * N + (n + P) * 8.0 + N * 8.0))


def run(target: str = "x1x2", *, d: int = 5, n_train: int = 100, n_test: int = 500,
        n_particles: int = 100, n_runs: int = 5, lam: float = 0.01, lambda_a: float = 0.25,
        lambda_w: float = 0.25, eta: float = 1.0, steps: int = 400, sigma: float = 0.0,
        label_noise: float = 0.0, bias: bool = True, record_every: int = 10,
        store_particles: bool = False, n_chains: int = 1, temperature: float | None = None,
        generator: int | torch.Generator,
        device: torch.device | str | None = None, dtype: torch.dtype | None = None,
        progress: bool = False) -> History:
    r"""Draw ``n_runs`` data sets and particle systems and run mean-field Langevin dynamics.

    With ``n_chains > 1`` every data set gets ``n_chains`` independent particle systems
    (initial particles drawn from the same law :math:`\nu`, independent noise): the batch
    axis of the result is ``n_runs * n_chains``, chains of one data set adjacent (entry
    ``r * n_chains + c``), and :func:`fit_linear_rate` averages over them.

    Chapter defaults (about 0.7 s on one core): :math:`d = 5`, :math:`n = 100`, :math:`N =
    100`, :math:`\lambda = 0.01`, :math:`\eta = 1`, 400 steps (:math:`t = 400`). The paper's §6
    experiment is ``run("x1x2", d=15, n_particles=2000, lam=0.004, eta=0.2, steps=10_000,
    device="cuda")`` (its :math:`n` is not stated).

    Parameters
    ----------
    target : {"x1x2", "single_index"}

    Other Parameters
    ----------------
    d, n_train, n_test, n_particles, n_runs : int
    lam, lambda_a, lambda_w, eta, steps, label_noise, bias, record_every, store_particles
        See :func:`mfteach.two_timescale.train`.
    n_chains : int
        Independent particle systems per data set (default 1: one per data set, as before).
    temperature : float, optional
        Langevin temperature :math:`\tau \ge 0` (default ``None``: :math:`\tau = \lambda`,
        the paper's choice); see :func:`mfteach.two_timescale.train`.
    sigma : float
        Intrinsic label noise :math:`\mathrm{Unif}[-\sigma, \sigma]` of the training labels.
    generator : int or torch.Generator
        Split into data, particle and dynamics streams
        (:func:`mfteach.device.spawn_generators`): the same seed gives the same data and
        initial particles whatever the noise levels (common random numbers).
    device, dtype
        CPU and float64 by default.
    progress : bool

    Returns
    -------
    History
        With the test loss and the parameter alignment on the target's directions.

    Examples
    --------
    >>> h = run(d=3, n_train=20, n_test=20, n_particles=10, n_runs=2, steps=4, generator=0)
    >>> tuple(h.alignment.shape)
    (2, 2)
    """
    fn = "mfteach.two_timescale.run"
    check_choice(target, "target", fn, TARGETS)
    d = check_int(d, "d", fn, min=2)
    n_train = check_int(n_train, "n_train", fn, min=1)
    n_test = check_int(n_test, "n_test", fn, min=1)
    n_particles = check_int(n_particles, "n_particles", fn, min=1)
    n_runs = check_int(n_runs, "n_runs", fn, min=1)
    n_chains = check_int(n_chains, "n_chains", fn, min=1)
    lam, lambda_a, lambda_w = _check_constants(lam, lambda_a, lambda_w, fn)
    if temperature is not None:
        temperature = check_float(temperature, "temperature", fn, min=0.0)
    eta = check_float(eta, "eta", fn, min=0.0, min_open=True)
    steps = check_int(steps, "steps", fn, min=0)
    sigma = check_float(sigma, "sigma", fn, min=0.0)
    label_noise = check_float(label_noise, "label_noise", fn, min=0.0)
    check_bool(bias, "bias", fn)
    record_every = check_int(record_every, "record_every", fn, min=1, max=10**9)
    check_bool(store_particles, "store_particles", fn)
    check_bool(progress, "progress", fn)
    dev, dt = resolve_device(device, fn), resolve_dtype(dtype, fn)
    T = steps // record_every + 2
    BC = n_runs * n_chains
    _sizes_budget(fn, dt.itemsize, (BC, n_train, n_particles, n_test),
                  dict(d=d, n_train=n_train, n_test=n_test, n_particles=n_particles,
                       n_runs=n_runs, n_chains=n_chains))
    if store_particles:
        check_budget("steps", fn, steps, nbytes=dt.itemsize * BC * T * n_particles * (d + 1))
    check_budget("steps", fn, steps, steps=steps)
    g_data, g_part, g_dyn = spawn_generators(generator, 3, dev, fn)
    data = make_data(n_train + n_test, d, target=target, sigma=sigma, n_sets=n_runs,
                     generator=g_data, device=dev, dtype=dt)
    W = init_particles(d, n_particles, lambda_w=lambda_w, bias=bias, n_runs=BC,
                       generator=g_part, device=dev, dtype=dt)
    X, y, f = data.X, data.y, data.f
    if n_chains > 1:
        X, y, f = (v.repeat_interleave(n_chains, 0) for v in (X, y, f))
    h = train(X[:, :n_train], y[:, :n_train], W, lam=lam, lambda_a=lambda_a,
              lambda_w=lambda_w, eta=eta, steps=steps, bias=bias, f=f[:, :n_train],
              label_noise=label_noise, X_test=X[:, n_train:], f_test=f[:, n_train:],
              directions=relevant_directions(d, target, device=dev, dtype=dt),
              record_every=record_every, store_particles=store_particles,
              temperature=temperature, generator=g_dyn, progress=progress)
    return h if n_chains == 1 else dataclasses.replace(h, n_chains=n_chains)


# ---------------------------------------------------------------------------------------------
# The linear rate
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RateFit:
    r"""Fit of :math:`\log(\bar U(t) - U_\infty) = c - \rho t` per data set.

    :math:`\bar U` is the mean of :math:`U(\mu_t)` over the chains of a data set (one chain
    when the history has ``n_chains = 1``) and :math:`U_\infty` its mean over the last
    ``tail_fraction`` of the record.

    Attributes
    ----------
    rate : Tensor, shape (R,)
        :math:`\rho` per data set (``R = B / n_chains``).
    r2 : Tensor, shape (R,)
        Coefficient of determination of the log-linear fit.
    u_inf : Tensor, shape (R,)
    t_end : float
        End of the shortest fitted window (every window starts at ``t_start``).
    floor : Tensor, shape (R,) or None
        The stationary noise floor of :math:`\bar U`: its standard deviation at one time
        point in the tail (from the spread over the chains, divided by
        :math:`\sqrt{n_{\mathrm{chains}}}`; from the spread over the tail's times with one
        chain).
    window_end : Tensor, shape (R,) or None
        End of each data set's fitted window.
    n_chains : int
    """

    rate: Tensor
    r2: Tensor
    u_inf: Tensor
    t_end: float
    floor: Tensor | None = None
    window_end: Tensor | None = None
    n_chains: int = 1

    @property
    def mean(self) -> float:
        """Mean rate over the data sets."""
        return float(self.rate.mean())

    @property
    def std(self) -> float:
        """Spread (standard deviation) of the rate over the data sets."""
        return float(self.rate.std()) if self.rate.numel() > 1 else 0.0


def fit_linear_rate(history: History, *, tail_fraction: float = 0.25,
                    window_fraction: float | None = None, floor_factor: float = 5.0,
                    t_start: float = 0.0) -> RateFit:
    r"""Fit the linear (exponential) decay of :math:`\bar U(t) - U_\infty`, the gap of the
    chain-mean objective (Takakura & Suzuki 2024, Thm 3.7: :math:`e^{-2\alpha\lambda t}` in
    continuous time; their :math:`\alpha` is a lower bound, far below the measured rate at
    the paper's constants).

    The theorem is about the law of :math:`\mu_t`: at finite :math:`N` one chain's
    :math:`U(\mu_t)` fluctuates around :math:`U_\infty` by a stationary noise, which bends
    :math:`\log(U - U_\infty)` once the gap reaches it. Averaging over the chains of a
    history of :func:`run` with ``n_chains > 1`` lowers that floor by
    :math:`\sqrt{n_{\mathrm{chains}}}`; the fit uses only the window where the gap stays
    above ``floor_factor`` times the floor (where :math:`\log` is accurate to about
    ``1 / floor_factor``).

    Measured (``run(n_chains=32, lam=0.02, lambda_a=0.5, lambda_w=2.5, eta=0.2, steps=500,
    n_train=30, n_particles=30, record_every=5)``, ``t_start=4``, 5 data sets, about 5 s on
    one core): rate :math:`0.144 \pm 0.024` (spread over the data sets), :math:`R^2`
    0.97-0.98, where one chain per data set gave 0.74-0.89. The decay is not a single
    exponential: the local rate falls from about 0.16 to 0.10 across the window, towards
    :math:`2\bar\lambda_w = 0.1`, the rate of the variance mode of the prior's
    Ornstein-Uhlenbeck process (the law stays symmetric under :math:`w \to -w`, so the
    first-moment mode, rate :math:`\bar\lambda_w`, is not excited). At the chapter's
    defaults (:math:`\bar\lambda_w = 0.0025`) that mode needs :math:`t \gg 400`: the tail
    of a 400-step run is not yet stationary and :math:`U_\infty` from it is biased.

    Parameters
    ----------
    history : History
        A run of :func:`run` (its ``n_chains`` groups the batch axis into data sets).
    tail_fraction : float in (0, 1)
        Fraction of the record averaged for :math:`U_\infty` (and the floor).
    window_fraction : float in (0, 1), optional
        A fixed window, the first ``window_fraction`` of the run from ``t_start``; by default
        (``None``) the window of each data set ends at the first record where
        :math:`\bar U - U_\infty` falls below ``floor_factor`` times the floor (with at
        least 3 records).
    floor_factor : float
        How far above the noise floor the fitted gap must stay (> 1).
    t_start : float
        Start of the fitted window (skip an initial transient); 0 by default.

    Returns
    -------
    RateFit

    Raises
    ------
    TypeError, ValueError
        For bad arguments, or a history too short for a fit (one line naming it).

    Examples
    --------
    >>> h = run(d=3, n_train=20, n_test=10, n_particles=10, n_runs=2, n_chains=4, steps=40,
    ...         record_every=2, generator=0)
    >>> fit_linear_rate(h).rate.shape
    torch.Size([2])
    """
    fn = "mfteach.two_timescale.fit_linear_rate"
    if not isinstance(history, History):
        fail("history", fn, "an mfteach.two_timescale.History", history, exc=TypeError)
    tail_fraction = check_float(tail_fraction, "tail_fraction", fn, min=0.0, max=1.0,
                                min_open=True, max_open=True)
    if window_fraction is not None:
        window_fraction = check_float(window_fraction, "window_fraction", fn, min=0.0,
                                      max=1.0, min_open=True, max_open=True)
    floor_factor = check_float(floor_factor, "floor_factor", fn, min=1.0, min_open=True)
    t_start = check_float(t_start, "t_start", fn, min=0.0)
    t = history.t.to("cpu")
    U = history.U.detach().to("cpu", torch.float64)
    T, B = U.shape
    M = history.n_chains
    R = B // M
    Uc = U.reshape(T, R, M)
    Ubar = Uc.mean(-1)  # (T, R)
    n_tail = max(2, int(round(tail_fraction * T)))
    if T < 6:
        fail("history", fn, "a History with at least 6 recorded steps (record more often)",
             history)
    if t_start >= float(t[-n_tail]):
        fail("t_start", fn, f"a time before the tail of the record (t < {float(t[-n_tail]):g})",
             t_start)
    u_inf = Ubar[-n_tail:].mean(0)
    if M > 1:
        floor = Uc[-n_tail:].var(-1).mean(0).sqrt() / math.sqrt(M)
    else:
        floor = Ubar[-n_tail:].std(0)
    gap = Ubar - u_inf
    first = int(torch.searchsorted(t.contiguous(), torch.tensor(t_start, dtype=t.dtype)))
    rates, r2s, ends = [], [], []
    for r in range(R):
        if window_fraction is not None:
            stop = int((t <= t_start + window_fraction * (float(t[-1]) - t_start)).sum())
        else:
            below = (gap[first:, r] <= floor_factor * floor[r]).nonzero()
            stop = first + (int(below[0, 0]) if below.numel() else T - n_tail - first)
        stop = min(max(stop, first + 3), T)
        lg = gap[first:stop, r].clamp_min(torch.finfo(torch.float64).tiny).log()
        tw = t[first:stop]
        tc, yc = tw - tw.mean(), lg - lg.mean()
        slope = (tc * yc).sum() / tc.square().sum()
        ss_res = (yc - slope * tc).square().sum()
        rates.append(-slope)
        r2s.append(1 - ss_res / yc.square().sum().clamp_min(1e-300))
        ends.append(tw[-1])
    window_end = torch.stack(ends).to(torch.float64)
    return RateFit(rate=torch.stack(rates), r2=torch.stack(r2s), u_inf=u_inf,
                   t_end=float(window_end.min()), floor=floor, window_end=window_end,
                   n_chains=M)


# ---------------------------------------------------------------------------------------------
# Initial alignment against d
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlignmentScaling:
    r"""Alignments at initialisation :math:`\mu_0 = \nu` against the input dimension.

    Attributes
    ----------
    ds : tuple of int
    kernel : Tensor, shape (D, B)
        :math:`\hat A(\mu_0)`.
    parameter : Tensor, shape (D, B)
        :math:`P(\mu_0)` (exactly :math:`k/d` in expectation).
    kernel_fit, parameter_fit : SlopeFit
        Log-log slopes of the seed means (Thm 5.4: :math:`O(d^{-1/2})` and
        :math:`O(d^{-1})`).
    kernel_slopes, parameter_slopes : Tensor, shape (B,)
        The slopes fitted per seed.
    """

    ds: tuple[int, ...]
    kernel: Tensor
    parameter: Tensor
    kernel_fit: SlopeFit
    parameter_fit: SlopeFit
    kernel_slopes: Tensor
    parameter_slopes: Tensor


def _int_ladder(values, name: str, fn: str, minimum: int = 1) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        fail(name, fn, f"a list of at least 3 increasing ints >= {minimum}", values,
             exc=TypeError)
    vs = tuple(check_int(v, name, fn, min=minimum) for v in values)
    if len(vs) < 3 or any(b <= a for a, b in zip(vs, vs[1:])):
        fail(name, fn, f"a list of at least 3 increasing ints >= {minimum}", values)
    return vs


def initial_alignment(ds: Sequence[int] = (8, 16, 32, 64), *, target: str = "single_index",
                      n: int = 1000, n_particles: int = 1000, lambda_w: float = 0.25,
                      bias: bool = False, n_runs: int = 5, generator: int | torch.Generator,
                      device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> AlignmentScaling:
    r"""Measure :math:`\hat A(\mu_0)` and :math:`P(\mu_0)` over a ladder of dimensions.

    Thm 5.4 of Takakura & Suzuki (2024) states :math:`A(\mu_0) = O(1/\sqrt d)` and
    :math:`P(\mu_0) = O(1/d)` (Gaussian inputs, single-index target). The default setting
    (odd features without bias, the odd single-index target :math:`\tanh(2x_1)`) shows the
    :math:`d^{-1/2}` level: the kernel then has no even part, its Hilbert-Schmidt norm is
    dominated by the :math:`d` linear eigenfunctions (each of eigenvalue :math:`\asymp 1/d`),
    and the target's linear part sees one of them: :math:`\hat A \approx (1/d)/
    \sqrt{d\cdot d^{-2}} = d^{-1/2}`. Needs :math:`n, N \gg d` (the diagonal of the Gram and
    the finite-particle noise add :math:`O(1/n)` and :math:`O(1/N)` terms).

    Parameters
    ----------
    ds : sequence of int
        At least 3 increasing dimensions (>= 2).

    Other Parameters
    ----------------
    target : {"x1x2", "single_index"}
    n, n_particles, n_runs : int
    lambda_w : float
    bias : bool
    generator, device, dtype

    Returns
    -------
    AlignmentScaling

    Examples
    --------
    >>> s = initial_alignment([4, 8, 16], n=50, n_particles=50, n_runs=2, generator=0)
    >>> s.kernel.shape
    torch.Size([3, 2])
    """
    fn = "mfteach.two_timescale.initial_alignment"
    dl = _int_ladder(ds, "ds", fn, 2)
    check_choice(target, "target", fn, TARGETS)
    n = check_int(n, "n", fn, min=1)
    n_particles = check_int(n_particles, "n_particles", fn, min=1)
    lambda_w = check_float(lambda_w, "lambda_w", fn, min=0.0, min_open=True)
    check_bool(bias, "bias", fn)
    n_runs = check_int(n_runs, "n_runs", fn, min=2)
    dev, dt = resolve_device(device, fn), resolve_dtype(dtype, fn)
    _sizes_budget(fn, dt.itemsize, (n_runs, n, n_particles, 0),
                  dict(ds=dl[-1], n=n, n_particles=n_particles, n_runs=n_runs))
    gens = spawn_generators(generator, 2 * len(dl), dev, fn)
    A, P = [], []
    for i, d in enumerate(dl):
        data = make_data(n, d, target=target, n_sets=n_runs, generator=gens[2 * i],
                         device=dev, dtype=dt)
        if not bool((data.f.square().sum(-1) > 0).all()):
            fail("n", fn, "large enough that the target is not zero on every sample", n)
        W = init_particles(d, n_particles, lambda_w=lambda_w, bias=bias, n_runs=n_runs,
                           generator=gens[2 * i + 1], device=dev, dtype=dt)
        A.append(_kernel_alignment(_features(data.X, W, bias), data.f, None))
        P.append(_parameter_alignment(W, relevant_directions(d, target, device=dev,
                                                             dtype=dt), bias, None))
    A, P = torch.stack(A), torch.stack(P)
    if not (bool(torch.isfinite(A).all()) and bool((A > 0).all())):
        fail("lambda_w", fn, "small enough that the features at initialisation are not all "
             "zero", lambda_w)
    Ac, Pc = A.detach().to("cpu", torch.float64), P.detach().to("cpu", torch.float64)
    ks = torch.tensor([fit_loglog_slope(dl, Ac[:, b]).slope for b in range(n_runs)],
                      dtype=torch.float64)
    ps = torch.tensor([fit_loglog_slope(dl, Pc[:, b]).slope for b in range(n_runs)],
                      dtype=torch.float64)
    return AlignmentScaling(ds=dl, kernel=A, parameter=P,
                            kernel_fit=fit_loglog_slope(dl, Ac.mean(1)),
                            parameter_fit=fit_loglog_slope(dl, Pc.mean(1)),
                            kernel_slopes=ks, parameter_slopes=ps)


# ---------------------------------------------------------------------------------------------
# Learned kernel against fixed kernels
# ---------------------------------------------------------------------------------------------

KERNELS = ("learned", "initial", "isotropic")


@dataclass(frozen=True)
class KernelComparison:
    r"""Test error of kernel ridge regression with three kernels against the sample size.

    Attributes
    ----------
    sample_sizes : tuple of int
    errors : dict[str, Tensor]
        ``"learned"`` (:math:`k_{\mu_T}`), ``"initial"`` (:math:`k_{\mu_0}`) and
        ``"isotropic"`` (Gaussian RBF with bandwidth :math:`\sqrt d`): the test mean squared
        error against :math:`f^\circ`, shape (S, B), each with its ridge chosen on a
        validation set from ``ridges``.
    ridges : tuple of float
    """

    sample_sizes: tuple[int, ...]
    errors: dict[str, Tensor]
    ridges: tuple[float, ...]


def _krr_errors(F: Tensor, y: Tensor, Fv: Tensor, fv: Tensor, Ft: Tensor, ft: Tensor,
                ridges: Tensor) -> Tensor:
    """Feature-space ridge: features F (B, m, r); validation picks the ridge; (B,) test MSE."""
    m = F.shape[-2]
    Uo, S, Vh = torch.linalg.svd(F, full_matrices=False)  # F = U S V^T
    Uty = Uo.mT @ y.unsqueeze(-1)  # (B, r, 1)
    filt = S.unsqueeze(-1) / (S.square().unsqueeze(-1) + m * ridges)  # (B, r, R)
    theta = Vh.mT @ (filt * Uty)  # (B, r_feat, R)
    val = ((Fv @ theta) - fv.unsqueeze(-1)).square().mean(-2)  # (B, R)
    best = val.argmin(-1)
    test = ((Ft @ theta) - ft.unsqueeze(-1)).square().mean(-2)
    return test.gather(-1, best.unsqueeze(-1)).squeeze(-1)


def _rbf_errors(X, y, Xv, fv, Xt, ft, ridges) -> Tensor:
    d = X.shape[-1]

    def k(A, B_):
        return torch.exp(-torch.cdist(A, B_).square() / (2 * d))

    K = k(X, X)
    m = K.shape[-1]
    lam_, Q = torch.linalg.eigh(K)
    Qty = Q.mT @ y.unsqueeze(-1)
    alpha = Q @ (Qty / (lam_.clamp_min(0).unsqueeze(-1) + m * ridges))  # (B, m, R)
    val = (k(Xv, X) @ alpha - fv.unsqueeze(-1)).square().mean(-2)
    best = val.argmin(-1)
    test = (k(Xt, X) @ alpha - ft.unsqueeze(-1)).square().mean(-2)
    return test.gather(-1, best.unsqueeze(-1)).squeeze(-1)


def kernel_comparison(history: History, target: str = "x1x2", *,
                      sample_sizes: Sequence[int] = (25, 50, 100, 200, 400),
                      n_val: int = 200, n_test: int = 500, sigma: float = 0.0,
                      generator: int | torch.Generator) -> KernelComparison:
    r"""Kernel ridge regression on fresh data with the learned kernel :math:`k_{\mu_T}`, the
    initial kernel :math:`k_{\mu_0}` and an isotropic RBF kernel.

    The learned kernel is the intrinsic kernel of the final particles of ``history``
    (the second layer of Takakura & Suzuki 2024 is exactly this ridge regression, §2.2); the
    point of their §4 is that learning :math:`\mu` picks a kernel from a union of RKHSs
    adapted to the target, so its test error falls faster with the sample size.

    Parameters
    ----------
    history : History
        A run of :func:`run` (its ``W0``, ``W``, device and dtype are used).
    target : {"x1x2", "single_index"}
        The target the run was trained on.

    Other Parameters
    ----------------
    sample_sizes : sequence of int
        At least 3 increasing sizes.
    n_val, n_test : int
        Validation points (ridge selection) and test points.
    sigma : float
        Label noise of the regression data.
    generator : int or torch.Generator

    Returns
    -------
    KernelComparison

    Examples
    --------
    >>> h = run(d=3, n_train=20, n_test=10, n_particles=10, n_runs=2, steps=4, generator=0)
    >>> c = kernel_comparison(h, sample_sizes=[5, 10, 20], n_val=10, n_test=10, generator=1)
    >>> sorted(c.errors)
    ['initial', 'isotropic', 'learned']
    """
    fn = "mfteach.two_timescale.kernel_comparison"
    if not isinstance(history, History):
        fail("history", fn, "an mfteach.two_timescale.History", history, exc=TypeError)
    check_choice(target, "target", fn, TARGETS)
    sizes = _int_ladder(sample_sizes, "sample_sizes", fn, 1)
    n_val = check_int(n_val, "n_val", fn, min=1)
    n_test = check_int(n_test, "n_test", fn, min=1)
    sigma = check_float(sigma, "sigma", fn, min=0.0, max=1e6)
    W, W0, bias = history.W, history.W0, history.bias
    B, N, dp = W.shape
    d = dp - int(bias)
    if target == "x1x2" and d < 2:
        fail("target", fn, "'single_index' for a one-dimensional input", target)
    M = sizes[-1]
    counts = {"sample_sizes": M, "n_val": n_val, "n_test": n_test}
    big = max(counts, key=lambda k: counts[k])
    check_budget(big, fn, counts[big], nbytes=W.dtype.itemsize * B * (
        6.0 * M * M + 3.0 * (M + n_val + n_test) * (N + M)))
    dev, dt = W.device, W.dtype
    g_tr, g_ev = spawn_generators(generator, 2, dev, fn)
    tr = make_data(M, d, target=target, sigma=sigma, n_sets=B, generator=g_tr, device=dev,
                   dtype=dt)
    ev = make_data(n_val + n_test, d, target=target, n_sets=B, generator=g_ev, device=dev,
                   dtype=dt)
    Xv, fv, Xt, ft = ev.X[:, :n_val], ev.f[:, :n_val], ev.X[:, n_val:], ev.f[:, n_val:]
    ridges = torch.logspace(-7, 0, 15, dtype=dt, device=dev)
    errs: dict[str, list[Tensor]] = {k: [] for k in KERNELS}
    for m in sizes:
        X, y = tr.X[:, :m], tr.y[:, :m]
        for name, Wk in (("learned", W), ("initial", W0)):
            scale = 1.0 / math.sqrt(N)
            errs[name].append(_krr_errors(
                _features(X, Wk, bias) * scale, y, _features(Xv, Wk, bias) * scale, fv,
                _features(Xt, Wk, bias) * scale, ft, ridges))
        errs["isotropic"].append(_rbf_errors(X, y, Xv, fv, Xt, ft, ridges))
    return KernelComparison(sample_sizes=sizes,
                            errors={k: torch.stack(v) for k, v in errs.items()},
                            ridges=tuple(float(r) for r in ridges))


# ---------------------------------------------------------------------------------------------
# Discretisation errors
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DiscretisationSweep:
    r"""A bias of the stationary objective against a discretisation parameter (step
    :math:`\eta` or particles :math:`N`), with its fitted log-log slopes.

    Attributes
    ----------
    kind : str
        ``"eta"`` or ``"particles"``.
    values : tuple
        The ladder of :math:`\eta` or :math:`N`.
    gap : Tensor, shape (V, B)
        The bias estimate per value and data set (the mean over the chains; see the function
        that made it). Its sign is part of the result: a gap that is not positive is noise.
    fit : SlopeFit
        Slope of the data-set mean of the gap (clamped at 1e-300 for the fit).
    slopes : Tensor, shape (B,)
        Slopes fitted per data set (on the gap clamped at 1e-300: meaningful only where
        :attr:`resolved`).
    path_gap : Tensor, shape (V, B) or None
        For ``"eta"``: the pathwise (strong) error at the end of the run, root mean square
        over particles, coordinates and chains of :math:`W_\eta(t_f) - W_{\eta/2}(t_f)` on
        the same Brownian paths.
    path_fit : SlopeFit or None
    path_slopes : Tensor, shape (B,) or None
    gap_stderr : Tensor, shape (V, B) or None
        Standard error of ``gap``, from the spread over the independent chains.
    """

    kind: str
    values: tuple
    gap: Tensor
    fit: SlopeFit
    slopes: Tensor
    path_gap: Tensor | None = None
    path_fit: SlopeFit | None = None
    path_slopes: Tensor | None = None
    gap_stderr: Tensor | None = None

    @property
    def slope_mean(self) -> float:
        """Mean of the per-data-set slopes."""
        return float(self.slopes.mean())

    @property
    def slope_std(self) -> float:
        """Standard deviation of the per-data-set slopes (their spread)."""
        return float(self.slopes.std())

    @property
    def snr(self) -> Tensor:
        """``gap / gap_stderr``, shape (V, B) (infinite where no standard error is known)."""
        if self.gap_stderr is None:
            return torch.full_like(self.gap, math.inf)
        return self.gap / self.gap_stderr.clamp_min(1e-300)

    @property
    def to_reference(self) -> Tensor:
        r"""The level differences summed up the ladder, shape (V, B): the gap of each value to
        the finest level (:math:`\bar G_\eta - \bar G_{\eta_{\min}/2}` or :math:`\bar G_N -
        \bar G_{2N_{\max}}`)."""
        return self.gap.flip(0).cumsum(0).flip(0)

    @property
    def resolved(self) -> Tensor:
        """Data sets whose every gap exceeds 3 standard errors, shape (B,), bool."""
        return (self.snr > 3).all(0)


def _slopes(values, gap: Tensor) -> tuple[SlopeFit, Tensor]:
    g = gap.detach().to("cpu", torch.float64).clamp_min(1e-300)
    fit = fit_loglog_slope(values, g.mean(1))
    s = torch.tensor([fit_loglog_slope(values, g[:, b]).slope for b in range(g.shape[1])],
                     dtype=torch.float64)
    return fit, s


def _chain_mean(x: Tensor, n_runs: int, n_chains: int) -> tuple[Tensor, Tensor]:
    """Mean over the chains of each data set and its standard error, (B,) each."""
    x = x.reshape(n_runs, n_chains)
    se = (x.std(-1) / math.sqrt(n_chains) if n_chains > 1
          else torch.zeros(n_runs, dtype=x.dtype, device=x.device))
    return x.mean(-1), se


def time_discretisation(etas: Sequence[float] = TIME_ETAS, *,
                        t_final: float = 20.0, burn_in_fraction: float = 0.25,
                        d: int = 3, n: int = 20, n_particles: int = 16, n_runs: int = 5,
                        n_chains: int = 16, lam: float = DISC_LAM,
                        lambda_a: float = DISC_LAMBDA_A, lambda_w: float = DISC_LAMBDA_W,
                        target: str = "x1x2",
                        generator: int | torch.Generator,
                        device: torch.device | str | None = None,
                        dtype: torch.dtype | None = None,
                        progress: bool = False) -> DiscretisationSweep:
    r"""The time-discretisation bias of the stationary objective, :math:`O(\eta)` (Takakura
    & Suzuki 2024, Thm 3.7: the discrete-time bias is :math:`\bar\delta_{\eta, N} =
    O(\eta + 1/N)`).

    What is measured: the weak (stationary) bias :math:`\mathbb{E}_\eta[G] -
    \mathbb{E}_{\eta/2}[G]` of the objective :math:`G(\mu_W)` under the stationary law of the
    :math:`N`-particle Euler-Maruyama chain of step :math:`\eta` (Euler-Maruyama's invariant
    measure is :math:`O(\eta)` from the diffusion's, so this level difference is
    :math:`c\eta/2 + O(\eta^2)` and its log-log slope is 1; no level is taken as the truth).
    The levels :math:`\eta_0, \eta_0/2, \dots` run on the *same* Brownian paths (the
    increments of the finest level summed in blocks) from the same particles: the coupled
    paths stay :math:`O(\eta)` apart (strong order 1 for additive noise), so the difference
    of their time averages has a standard deviation :math:`O(\eta)`, the size of the signal,
    at every level (the multilevel Monte-Carlo coupling). For each data set, ``n_chains``
    independent chains (initial particles and paths) run for ``t_final``; after the first
    ``burn_in_fraction`` of the run, :math:`G` is averaged over time on the grid of the
    coarser step of each pair; ``gap`` is the mean over the chains, ``gap_stderr`` its
    standard error from their spread. ``path_gap`` is the strong error of the same coupled
    paths at :math:`t_f`.

    Why the constants: the levels must be stationary and the coupled paths must stay
    together. With :math:`\bar\lambda_w = \lambda\lambda_w = 0.5` (defaults :math:`\lambda =
    0.2`, :math:`\lambda_a = 0.5`, :math:`\lambda_w = 2.5`) the chains mix in :math:`t
    \approx 2`, so :math:`t_f = 20` with a quarter burnt in is stationary; the bias per level
    is resolved at 30 to 50 standard errors with 16 chains (about 3 s on one core). At the
    earlier constants (:math:`\lambda = 0.05`, :math:`\lambda_w = 0.25`, :math:`\eta` from 0.4
    to 0.05, pathwise gap at :math:`t_f = 10`) the weight decay :math:`\bar\lambda_w =
    0.0125` needs :math:`t \gg 80` to mix, the drift's Jacobian (autograd, after
    :math:`t = 200`) has eigenvalues down to :math:`-4.6` (so :math:`\eta L` up to 1.8, outside the
    asymptotic regime) and up to :math:`+0.48` (coupled paths separate like
    :math:`e^{0.48t}`), and the pathwise slopes scattered from 0.09 to 0.95. At the new
    constants the Jacobian's extreme eigenvalues still reach :math:`-5.5` and :math:`+11` on
    the data set with the largest labels (1 to 4 on the others), so :math:`\eta L` is at most
    1.1 at the coarsest step; the weak slopes are 1 within 0.07 on every data set.

    Most of the bias at these constants is the weight decay's: with the data term negligible
    the chain is an Ornstein-Uhlenbeck process whose Euler-Maruyama stationary variance is
    :math:`2\tau/(\bar\lambda_w(2 - \eta\bar\lambda_w))`, so the level difference is
    :math:`d'\tau\,[1/(2 - \eta\bar\lambda_w) - 1/(2 - \eta\bar\lambda_w/2)]`; the measured
    one is 0.97 to 1.47 times that over the data sets (the data term adds the rest).

    Parameters
    ----------
    etas : sequence of float
        At least 3 step sizes, each the half of the previous one (one more level,
        ``etas[-1] / 2``, is run).

    Other Parameters
    ----------------
    t_final : float
        Length :math:`t_f = k\eta` of every chain; a multiple of ``etas[0]``.
    burn_in_fraction : float in [0, 1)
        Fraction of the run discarded before the time average.
    d, n, n_particles, n_runs, n_chains : int
        Data sets (seeds) ``n_runs`` of ``n`` samples in ``d`` dimensions; ``n_chains``
        chains per data set (at least 2 for a standard error).
    lam, lambda_a, lambda_w : float
    target : {"x1x2", "single_index"}
    generator, device, dtype, progress

    Returns
    -------
    DiscretisationSweep
        ``gap`` (V, B): :math:`\bar G_{\eta} - \bar G_{\eta/2}` per data set, with
        ``gap_stderr``; ``slopes`` per data set.

    Raises
    ------
    DivergenceError
        When a step is too large for the drift.
    TypeError, ValueError
        For bad arguments.

    Examples
    --------
    >>> s = time_discretisation([0.4, 0.2, 0.1], t_final=0.8, n=10, n_particles=8, n_runs=2,
    ...                         n_chains=2, generator=0)
    >>> s.gap.shape
    torch.Size([3, 2])
    """
    fn = "mfteach.two_timescale.time_discretisation"
    if isinstance(etas, (str, bytes)) or not isinstance(etas, Sequence):
        fail("etas", fn, "a list of at least 3 halving step sizes", etas, exc=TypeError)
    es = tuple(check_float(e, "etas", fn, min=0.0, min_open=True) for e in etas)
    if len(es) < 3 or any(abs(b / a - 0.5) > 1e-9 for a, b in zip(es, es[1:])):
        fail("etas", fn, "a list of at least 3 step sizes, each half the previous one", etas)
    t_final = check_float(t_final, "t_final", fn, min=0.0, min_open=True)
    burn_in_fraction = check_float(burn_in_fraction, "burn_in_fraction", fn, min=0.0,
                                   max=1.0, max_open=True)
    d = check_int(d, "d", fn, min=2)
    n = check_int(n, "n", fn, min=1)
    n_particles = check_int(n_particles, "n_particles", fn, min=1)
    n_runs = check_int(n_runs, "n_runs", fn, min=2)
    n_chains = check_int(n_chains, "n_chains", fn, min=1)
    lam, lambda_a, lambda_w = _check_constants(lam, lambda_a, lambda_w, fn)
    check_choice(target, "target", fn, TARGETS)
    check_bool(progress, "progress", fn)
    dev, dt = resolve_device(device, fn), resolve_dtype(dtype, fn)
    levels = es + (es[-1] / 2,)
    L = len(levels)
    fine = levels[-1]
    every = [2 ** (L - 1 - i) for i in range(L)]  # fine steps per step of level i
    if t_final / fine > 1e15:
        check_budget("t_final", fn, t_final, steps=t_final / fine)
    k_fine = int(round(t_final / fine))
    block = every[0]
    if k_fine < block or k_fine % block:
        fail("t_final", fn, f"a multiple of the largest step {es[0]:g}", t_final)
    k_burn = int(round(burn_in_fraction * k_fine / block)) * block
    if k_burn >= k_fine:
        fail("burn_in_fraction", fn, f"small enough to leave at least one step of "
             f"{es[0]:g} to average over", burn_in_fraction)
    BC = n_runs * n_chains
    _sizes_budget(fn, dt.itemsize, (BC * L, n, n_particles, 0),
                  dict(d=d, n=n, n_particles=n_particles, n_runs=n_runs, n_chains=n_chains))
    check_budget("t_final", fn, t_final, steps=2.0 * k_fine * BC)
    g_data, g_part, g_dyn = spawn_generators(generator, 3, dev, fn)
    data = make_data(n, d, target=target, n_sets=n_runs, generator=g_data, device=dev,
                     dtype=dt)
    W0 = init_particles(d, n_particles, lambda_w=lambda_w, n_runs=BC, generator=g_part,
                        device=dev, dtype=dt)
    X = data.X.repeat_interleave(n_chains, 0)
    y = data.y.repeat_interleave(n_chains, 0)
    law = lam * lambda_w
    Ws = [W0.clone() for _ in levels]
    acc = [torch.zeros_like(W0) for _ in levels]
    own = [torch.zeros(BC, dtype=dt, device=dev) for _ in levels]  # on the level's grid
    parent = [torch.zeros(BC, dtype=dt, device=dev) for _ in levels]  # on the coarser grid
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=k_fine, desc="time discretisation")
    for k in range(k_fine):
        xi = torch.randn(W0.shape, generator=g_dyn, device=dev, dtype=dt)
        for i, e in enumerate(levels):
            acc[i] += xi
            if (k + 1) % every[i]:
                continue
            start = k + 1 - every[i]  # fine index of the state being stepped
            drift, _, _, _, U = _drift(X, y, Ws[i], None, lam, lambda_a, lambda_w, True, 0.0,
                                       "auto")
            if start >= k_burn:
                G = U + 0.5 * law * Ws[i].square().sum(-1).mean(-1)
                own[i] += G
                if i > 0 and start % every[i - 1] == 0:
                    parent[i] += G
            Ws[i] = Ws[i] + e * drift + math.sqrt(2 * e * lam / every[i]) * acc[i]
            acc[i].zero_()
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if not all(bool(torch.isfinite(W).all()) for W in Ws):
        raise DivergenceError(f"Langevin dynamics diverged for etas={list(es)}; try a smaller "
                              f"largest step, e.g. {es[0] / 4:g}.")
    k_avg = k_fine - k_burn
    gaps, ses = [], []
    for i in range(L - 1):
        diff = own[i] / (k_avg // every[i]) - parent[i + 1] / (k_avg // every[i])
        m, se = _chain_mean(diff, n_runs, n_chains)
        gaps.append(m)
        ses.append(se)
    gap, gap_se = torch.stack(gaps), torch.stack(ses)
    fit, slopes = _slopes(es, gap)
    path = torch.stack([(Ws[i] - Ws[i + 1]).reshape(n_runs, -1).square().mean(-1).sqrt()
                        for i in range(L - 1)])
    pfit, pslopes = _slopes(es, path)
    return DiscretisationSweep(kind="eta", values=es, gap=gap, fit=fit, slopes=slopes,
                               path_gap=path, path_fit=pfit, path_slopes=pslopes,
                               gap_stderr=gap_se)


def particle_discretisation(particles: Sequence[int] = PARTICLE_NS, *,
                            n_reference: int | None = None, eta: float = 0.05,
                            burn_in: float = 5.0, t_average: float = 15.0, d: int = 3,
                            n: int = 20, n_runs: int = 5, n_chains: int = 16,
                            lam: float = DISC_LAM, lambda_a: float = DISC_LAMBDA_A,
                            lambda_w: float = DISC_LAMBDA_W, target: str = "x1x2",
                            generator: int | torch.Generator,
                            device: torch.device | str | None = None,
                            dtype: torch.dtype | None = None,
                            progress: bool = False) -> DiscretisationSweep:
    r"""The particle-discretisation bias of the stationary objective, :math:`O(1/N)`
    (Takakura & Suzuki 2024, Thm 3.7 and Prop. 3.8).

    What is measured: the level differences :math:`\mathbb{E}_N[G] - \mathbb{E}_{2N}[G]`
    of the objective :math:`G(\mu_W)` under the stationary laws of the :math:`N`- and
    :math:`2N`-particle chains (same step :math:`\eta`, so the time-discretisation bias
    cancels to first order). For a bias :math:`c/N` the difference is :math:`c/(2N)`: its
    log-log slope is :math:`-1`, and no level is taken as the truth (summed up the ladder,
    :attr:`DiscretisationSweep.to_reference` is :math:`\bar G_N - \bar
    G_{N_{\mathrm{ref}}}`, :math:`N_{\mathrm{ref}} = 2N_{\max}`).

    The coupling (antithetic, as in multilevel Monte Carlo for interacting particles): a
    :math:`2N`-particle system and the two :math:`N`-particle systems made of its halves
    start from the same particles and are driven by the same Brownian increments, and the
    estimator is :math:`G(\mu^{2N}) - \frac12(G(\mu^{N,a}) + G(\mu^{N,b}))`, averaged over
    time after ``burn_in`` and over ``n_chains`` independent chains per data set
    (``gap_stderr`` from their spread). Independent runs would not do: the stationary
    fluctuation of :math:`G(\mu_W)` is :math:`O(N^{-1/2})` (mostly the weight decay
    :math:`\frac{\bar\lambda_w}{2}\mathbb{E}_{\mu_W}\|w\|^2`), far above the bias
    :math:`O(1/N)`, while the coupled difference fluctuates by :math:`O(1/N)`, so its
    signal-to-noise ratio does not fall with :math:`N`. The bias itself has two
    :math:`O(1/N)` sources: :math:`G` is convex and nonlinear in :math:`\mu`, so the
    fluctuation of :math:`\mu_W` raises :math:`\mathbb{E}\,G(\mu_W)`, and the interaction
    shifts the stationary marginals.

    Parameters
    ----------
    particles : sequence of int
        At least 3 particle numbers, each twice the previous one; the ladder is run up to
        ``2 * particles[-1]``.

    Other Parameters
    ----------------
    n_reference : int, optional
        The top of the ladder, ``2 * particles[-1]`` (the default; another value is
        refused).
    eta, burn_in, t_average : float
        Step, and the times (in :math:`t = k\eta`) discarded and averaged.
    d, n, n_runs, n_chains : int
    lam, lambda_a, lambda_w : float
    target : {"x1x2", "single_index"}
    generator, device, dtype, progress

    Returns
    -------
    DiscretisationSweep
        ``gap`` (V, B): :math:`\bar G_N - \bar G_{2N}` per data set, with ``gap_stderr``;
        ``slopes`` per data set.

    Raises
    ------
    DivergenceError
        When the step is too large for the drift.
    TypeError, ValueError
        For bad arguments.

    Examples
    --------
    >>> s = particle_discretisation([2, 4, 8], burn_in=1.0, t_average=1.0, n=8, n_runs=2,
    ...                             n_chains=2, generator=0)
    >>> s.gap.shape
    torch.Size([3, 2])
    """
    fn = "mfteach.two_timescale.particle_discretisation"
    Ns = _int_ladder(particles, "particles", fn, 1)
    if any(b != 2 * a for a, b in zip(Ns, Ns[1:])):
        fail("particles", fn, "a list of at least 3 particle numbers, each twice the "
             "previous one", particles)
    if n_reference is not None:
        n_reference = check_int(n_reference, "n_reference", fn, min=1)
        if n_reference != 2 * Ns[-1]:
            fail("n_reference", fn, f"None or {2 * Ns[-1]} (twice the largest particle "
                 f"number: the top of the ladder)", n_reference)
    n_top = 2 * Ns[-1]
    eta = check_float(eta, "eta", fn, min=0.0, min_open=True)
    burn_in = check_float(burn_in, "burn_in", fn, min=0.0)
    t_average = check_float(t_average, "t_average", fn, min=0.0, min_open=True)
    d = check_int(d, "d", fn, min=2)
    n = check_int(n, "n", fn, min=1)
    n_runs = check_int(n_runs, "n_runs", fn, min=2)
    n_chains = check_int(n_chains, "n_chains", fn, min=1)
    lam, lambda_a, lambda_w = _check_constants(lam, lambda_a, lambda_w, fn)
    check_choice(target, "target", fn, TARGETS)
    check_bool(progress, "progress", fn)
    dev, dt = resolve_device(device, fn), resolve_dtype(dtype, fn)
    if burn_in / eta > 1e15 or t_average / eta > 1e15:
        name, value = ("burn_in", burn_in) if burn_in > t_average else ("t_average", t_average)
        check_budget(name, fn, value, steps=max(burn_in, t_average) / eta)
    k_burn, k_avg = int(round(burn_in / eta)), max(1, int(round(t_average / eta)))
    BC = n_runs * n_chains
    _sizes_budget(fn, dt.itemsize, (2 * BC, n, n_top, 0),
                  dict(d=d, n=n, particles=n_top, n_runs=n_runs, n_chains=n_chains))
    name, value = ("burn_in", burn_in) if burn_in > t_average else ("t_average", t_average)
    check_budget(name, fn, value, steps=float(k_burn + k_avg) * 2 * len(Ns) * BC)
    g_data, g_dyn = spawn_generators(generator, 2, dev, fn)
    data = make_data(n, d, target=target, n_sets=n_runs, generator=g_data, device=dev,
                     dtype=dt)
    X = data.X.repeat_interleave(n_chains, 0)
    y = data.y.repeat_interleave(n_chains, 0)
    X2, y2 = X.repeat_interleave(2, 0), y.repeat_interleave(2, 0)  # the two halves
    gens = spawn_generators(g_dyn, len(Ns), dev, fn)
    law = lam * lambda_w
    scale = math.sqrt(2 * eta * lam)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(Ns) * (k_burn + k_avg), desc="particle discretisation")
    gaps, ses = [], []
    for Nn, g in zip(Ns, gens):
        W = init_particles(d, 2 * Nn, lambda_w=lambda_w, n_runs=BC, generator=g, device=dev,
                           dtype=dt)  # (BC, 2N, d')
        Wh = W.reshape(2 * BC, Nn, -1).clone()  # halves a, b of each chain
        tot = torch.zeros(BC, dtype=dt, device=dev)
        for k in range(k_burn + k_avg):
            drift, _, _, _, U = _drift(X, y, W, None, lam, lambda_a, lambda_w, True, 0.0,
                                       "auto")
            drift_h, _, _, _, Uh = _drift(X2, y2, Wh, None, lam, lambda_a, lambda_w, True,
                                          0.0, "auto")
            if k >= k_burn:
                G = U + 0.5 * law * W.square().sum(-1).mean(-1)
                Gh = (Uh + 0.5 * law * Wh.square().sum(-1).mean(-1)).reshape(BC, 2)
                tot += Gh.mean(-1) - G  # G_N - G_2N, coupled
            xi = torch.randn(W.shape, generator=g, device=dev, dtype=dt)
            W = W + eta * drift + scale * xi
            Wh = Wh + eta * drift_h + scale * xi.reshape(Wh.shape)
            if bar is not None:
                bar.update(1)
        if not (bool(torch.isfinite(tot).all()) and bool(torch.isfinite(W).all())):
            raise DivergenceError(f"Langevin dynamics diverged at N={2 * Nn} with "
                                  f"eta={eta:g}; try eta={eta / 4:g}.")
        m, se = _chain_mean(tot / k_avg, n_runs, n_chains)
        gaps.append(m)
        ses.append(se)
    if bar is not None:
        bar.close()
    gap, gap_se = torch.stack(gaps), torch.stack(ses)
    fit, slopes = _slopes(Ns, gap)
    return DiscretisationSweep(kind="particles", values=Ns, gap=gap, fit=fit, slopes=slopes,
                               gap_stderr=gap_se)


# ---------------------------------------------------------------------------------------------
# The label-noise identity
# ---------------------------------------------------------------------------------------------

MODES = ("intrinsic", "procedure")


@dataclass(frozen=True)
class LabelNoiseCheck:
    r"""A closed-form expectation over label noise and its Monte Carlo samples.

    Attributes
    ----------
    mode : str
        ``"intrinsic"``: :math:`U(\mu; Y + \varepsilon)`; ``"procedure"``: the clean-label
        objective :math:`J(\mu; \tilde\varepsilon)` of the second layer fitted on
        :math:`Y + \tilde\varepsilon`.
    sigma : float
    expected : Tensor, shape (B,)
        The closed form (module docstring), with the constant :math:`c = 1/6`.
    samples : Tensor, shape (S, B)
        The objective computed directly (loss plus penalty at the fitted second layer) for
        ``S`` noise draws.
    dof : Tensor, shape (B,)
        :math:`d_{\bar\lambda_a}(\mu)`.
    base : Tensor, shape (B,)
        :math:`U(\mu; Y)` without noise.
    n_train : int
    lambda_a_bar : float
    """

    mode: str
    sigma: float
    expected: Tensor
    samples: Tensor
    dof: Tensor
    base: Tensor
    n_train: int
    lambda_a_bar: float

    @property
    def paper_prediction(self) -> Tensor:
        r"""The same expectation with the paper's printed constant :math:`\bar\lambda_a/6`
        in place of :math:`1/6` in the degrees-of-freedom term (what the Monte Carlo
        refutes)."""
        n_var = self.sigma**2 / 3
        n = self.n_train
        term = self.lambda_a_bar * n_var * self.dof / (2 * n)
        if self.mode == "intrinsic":
            return self.base + n_var / 2 - term
        return self.base + term


def label_noise_identity(X: Tensor, y: Tensor, W: Tensor, *, sigma: float = 0.5,
                         lambda_a_bar: float = 1e-3, mode: str = "procedure",
                         n_samples: int = 2000, bias: bool = True,
                         generator: int | torch.Generator) -> LabelNoiseCheck:
    r"""Settle the degrees-of-freedom constant: the expectation over uniform label noise of
    the objective, in closed form and by Monte Carlo.

    ``mode="intrinsic"``: :math:`\mathbb{E}_\varepsilon U(\mu; Y + \varepsilon) = U(\mu; Y) +
    \frac{\sigma^2}{6} - \frac{\sigma^2}{6n}d_{\bar\lambda_a}(\mu)`.
    ``mode="procedure"``: :math:`\mathbb{E}_{\tilde\varepsilon}J(\mu; \tilde\varepsilon) =
    U(\mu; Y) + \frac{\sigma^2}{6n}d_{\bar\lambda_a}(\mu)`, where :math:`J` is the clean-label
    loss plus :math:`\frac{\bar\lambda_a}{2}\|\tilde a\|^2_{L^2(\mu)}` at the second layer
    :math:`\tilde a` fitted on :math:`Y + \tilde\varepsilon` (Takakura & Suzuki 2024, §5.2,
    where the printed constant is :math:`\bar\lambda_a/6`; see the module docstring).

    The samples are computed *directly*: the second layer by a Cholesky solve, then the loss
    :math:`\frac1{2n}\|f(X) - Y\|^2` and the penalty as sums; the closed form uses only
    :math:`U(\mu; Y)` and the trace formula for :math:`d_{\bar\lambda_a}`.

    Parameters
    ----------
    X : Tensor, shape (n, d) or (B, n, d)
    y : Tensor, shape (n,) or (B, n)
    W : Tensor, shape (N, d + bias) or (B, N, d + bias)
    sigma : float
        Noise half-width :math:`\sigma > 0`.
    lambda_a_bar : float
    mode : {"intrinsic", "procedure"}
    n_samples : int
        Monte Carlo draws (at least 2).
    bias : bool
    generator : int or torch.Generator

    Returns
    -------
    LabelNoiseCheck

    Examples
    --------
    >>> data = make_data(30, 3, generator=0)
    >>> chk = label_noise_identity(data.X, data.y, init_particles(3, 20, generator=1),
    ...                            n_samples=20_000, generator=2)
    >>> err = float((chk.samples.mean(0) - chk.expected).abs().max())
    >>> err < 5 * float(chk.samples.std(0).max()) / 20_000 ** 0.5
    True
    """
    fn = "mfteach.two_timescale.label_noise_identity"
    Xb, Wb = _check_XW(X, W, bias, fn)
    B, n, N = Xb.shape[0], Xb.shape[1], Wb.shape[1]
    yb = _check_vec(y, "y", B, n, Wb, fn)
    sigma = check_float(sigma, "sigma", fn, min=0.0, max=1e6, min_open=True)
    lambda_a_bar = check_float(lambda_a_bar, "lambda_a_bar", fn, min=0.0, min_open=True)
    check_choice(mode, "mode", fn, MODES)
    n_samples = check_int(n_samples, "n_samples", fn, min=2)
    check_budget("n_samples", fn, n_samples, nbytes=Xb.dtype.itemsize * B * (
        4.0 * n * N + 2.0 * n * n + 4.0 * n_samples * (n + N)))
    g = as_generator(generator, Wb.device, fn)
    H = _features(Xb, Wb, bias)  # (B, n, N)
    Sigma = H @ H.mT / N
    L = torch.linalg.cholesky(Sigma + n * lambda_a_bar * torch.eye(n, dtype=H.dtype,
                                                                     device=H.device))
    eps = (2 * torch.rand(B, n, n_samples, generator=g, device=Wb.device, dtype=Wb.dtype)
           - 1) * sigma
    Yn = yb.unsqueeze(-1) + eps  # (B, n, S)
    a = H.mT @ torch.cholesky_solve(Yn, L)  # second layer on the noisy labels, (B, N, S)
    f = H @ a / N  # (B, n, S)
    labels = Yn if mode == "intrinsic" else yb.unsqueeze(-1)
    loss = 0.5 * (f - labels).square().mean(-2)
    samples = (loss + 0.5 * lambda_a_bar * a.square().mean(-2)).mT  # (S, B)
    s = _Solver(H, lambda_a_bar, None, "auto")
    base = 0.5 * lambda_a_bar * (yb * s.apply(yb.unsqueeze(-1))[..., 0]).sum(-1)
    dof = s.dof()
    var = sigma**2 / 3
    if mode == "intrinsic":
        expected = base + var / 2 - var * dof / (2 * n)
    else:
        expected = base + var * dof / (2 * n)
    check_same_device_dtype(fn, X=Xb, W=Wb)
    return LabelNoiseCheck(mode=mode, sigma=sigma, expected=expected, samples=samples,
                           dof=dof, base=base, n_train=n, lambda_a_bar=lambda_a_bar)
