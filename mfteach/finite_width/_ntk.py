r"""The tangent kernel at finite width: fluctuations at initialisation, drift in training, and
the trained ensemble against the Gaussian process of the linear flow.

One hidden layer, NTK parametrization, both layers trained (:class:`mfteach.models.TwoLayer`
with ``parametrization="ntk"``); training is full-batch gradient descent on
:math:`\mathcal L = \frac1{2n}\sum_{\mu=1}^n (f(x_\mu) - y_\mu)^2` with learning rate :math:`\eta`
(:func:`mfteach.training.train`).

At infinite width the tangent kernel :math:`\Theta` is deterministic and constant, so
gradient descent moves the outputs linearly:

.. math::
    :label: linear-flow

    f_k(x) = f_0(x) - \Theta(x, X)\,\Theta^{-1}\big(I - (I - \tfrac{\eta}{n}\Theta)^k\big)
    \big(f_0(X) - y\big),\qquad \Theta = \Theta(X, X),

and since :math:`f_0` is the NNGP (covariance :math:`K`), :math:`f_k(x)` is Gaussian with
explicit mean and variance (:func:`gp_prediction`): the initial Gaussian process pushed
through the linear flow (Carvalho et al. 2023, contribution (3)).
"""

from __future__ import annotations

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
    check_tensor,
    fail,
)
from ..activations import ACTIVATIONS, Activation, resolve_activation
from ..device import as_generator, resolve_device, resolve_dtype
from ..gaussian import MAX_DEGREE, gauss_hermite_expectation
from ..kernels import nngp, ntk
from ..models import TwoLayer, _draw_generator, _largest, teacher_data
from ..stats import SlopeFit, fit_loglog_slope
from ..training import _check_lr, relative_ntk_change, train
from ._cumulants import fit_weighted_loglog_slope
from ._edgeworth import edgeworth_cdf, ks_distance
from ._sampling import (
    READOUTS,
    _check_common,
    _check_sample_budget,
    _check_widths,
    _draw_readout,
    readout_law,
    sample_ntk,
)

__all__ = [
    "ntk_variance_coefficient",
    "NTKFluctuations",
    "ntk_fluctuations",
    "sphere_data",
    "NTKDrift",
    "ntk_drift",
    "GPPrediction",
    "gp_prediction",
    "trained_ensemble",
    "EnsembleVsGP",
    "ensemble_vs_gp",
]


_activation = resolve_activation


_widths = _check_widths


def _check_x(x, fn: str) -> Tensor:
    """Inputs (k, d), k, d >= 1, finite, with a finite Gram matrix x x^T / d in float64."""
    check_tensor(x, "x", fn, ndim=2)
    if x.shape[0] < 1 or x.shape[1] < 1:
        fail("x", fn, "a tensor of shape (k, d) with k, d >= 1", x)
    x = x.to(torch.float64)
    if float(x.abs().max()) > 1e100:
        fail("x", fn, "inputs with entries of magnitude at most 1e100 (the kernels' "
             "moments must stay finite)", x)
    return x


def _check_train_sizes(fn: str, *, width: int, n_networks: int, n_train: int, d: int,
                       steps: int, n_widths: int, dt: torch.dtype) -> None:
    it = dt.itemsize
    sizes = {"widths" if n_widths else "width": width, "n_networks": n_networks,
             "n_train": n_train, "d": d}
    _largest(fn, it * (3.0 * (n_train + 1) * (d + 1) + n_networks * (
        3.0 * width * (d + 1) + 6.0 * n_train * width + 5.0 * n_train**2)), **sizes)
    check_budget("steps", fn, steps, steps=float(steps) * max(n_widths, 1))


# --------------------------------------------------------------------------------------------
# Fluctuations at initialisation
# --------------------------------------------------------------------------------------------

def ntk_variance_coefficient(x: Tensor, *, activation: str | Activation,
                             readout: str = "gaussian", degree: int = 96) -> Tensor:
    r""":math:`N\,\mathrm{Var}\,\hat\Theta(x, x')` of the one-hidden-layer empirical NTK.

    :math:`\hat\Theta(x, x') = \frac1N\sum_i T_i` with i.i.d.
    :math:`T = \phi(u)\phi(u') + \rho\,a^2\phi'(u)\phi'(u')`, :math:`\rho = x\cdot x'/d`, so
    :math:`N\,\mathrm{Var}\,\hat\Theta = \mathrm{Var}\,T` exactly:

    .. math::

        \mathrm{Var}\,T = \mathbb{E}[\phi^2\phi'^2] + 2\rho\,\mathbb{E}[\phi\phi'\,\phi'\phi']
        + \rho^2\,\mathbb{E}a^4\,\mathbb{E}[\phi'^2\phi'^2] - \Theta(x, x')^2

    (expectations over the pair :math:`(u, u')`, 2-D Gauss-Hermite quadrature with
    ``degree`` nodes per axis). ReLU on the sphere :math:`|x|^2 = d` with Gaussian :math:`a`:
    diagonal :math:`3`.

    Parameters
    ----------
    x : Tensor, shape (k, d)
    activation : str or Activation
    readout : {"gaussian", "rademacher", "exponential"}
    degree : int

    Returns
    -------
    Tensor, shape (k, k), float64

    Examples
    --------
    >>> x = torch.ones(1, 4, dtype=torch.float64)
    >>> round(float(ntk_variance_coefficient(x, activation="relu")[0, 0]), 3)
    3.0
    """
    fn = "mfteach.finite_width.ntk_variance_coefficient"
    x = _check_x(x, fn)
    act = _activation(activation, fn)
    a4 = readout_law(check_choice(readout, "readout", fn, READOUTS)).moments[3]
    degree = check_int(degree, "degree", fn, min=1, max=MAX_DEGREE)
    return _ntk_variance_coefficient(x, act, a4, degree, fn)


def _ntk_variance_coefficient(x: Tensor, act: Activation, a4: float, degree: int,
                              fn: str) -> Tensor:
    gram = x @ x.T / x.shape[1]
    c11 = gram.diagonal().unsqueeze(1).expand_as(gram)
    c22 = gram.diagonal().unsqueeze(0).expand_as(gram)
    f, df = act.fn, act.deriv

    def e(fun):
        return gauss_hermite_expectation(fun, c11, gram, c22, degree=degree)

    e1 = e(lambda u, v: (f(u) * f(v)) ** 2)
    e2 = e(lambda u, v: f(u) * f(v) * df(u) * df(v))
    e3 = e(lambda u, v: (df(u) * df(v)) ** 2)
    theta = ntk(x, activation=act, depth=1)
    out = e1 + 2 * gram * e2 + gram**2 * a4 * e3 - theta**2
    if not bool(torch.isfinite(out).all()):
        fail("x", fn, "inputs whose kernel moments are finite in float64", x)
    return out


@dataclass(frozen=True)
class NTKFluctuations:
    r"""Empirical NTK at initialisation over a ladder of widths.

    Attributes
    ----------
    widths : tuple of int
    mean, mean_stderr : Tensor, shape (W, k, k)
        Ensemble mean of :math:`\hat\Theta` and its standard error.
    var, var_stderr : Tensor, shape (W, k, k)
        Ensemble variance of :math:`\hat\Theta` and its standard error.
    theory_mean : Tensor, shape (k, k)
        :func:`mfteach.kernels.ntk` (``depth=1``).
    theory_var_coef : Tensor, shape (k, k)
        :func:`ntk_variance_coefficient`: the variance is ``theory_var_coef / N``.
    fit : SlopeFit
        Weighted fit of the variance of entry ``[0, 0]`` against the width (theory:
        slope :math:`-1`).
    n_samples : int
    """

    widths: tuple[int, ...]
    mean: Tensor
    mean_stderr: Tensor
    var: Tensor
    var_stderr: Tensor
    theory_mean: Tensor
    theory_var_coef: Tensor
    fit: SlopeFit
    n_samples: int


def ntk_fluctuations(x: Tensor, *, activation: str | Activation, widths: Sequence[int],
                     n_samples: int, generator: int | torch.Generator,
                     readout: str = "gaussian", device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> NTKFluctuations:
    r"""Mean and variance of the empirical NTK at initialisation, against theory.

    For each width, ``n_samples`` networks (:func:`sample_ntk`); the mean should match
    :func:`mfteach.kernels.ntk` at every width and the variance fall like
    :math:`v/N` (:func:`ntk_variance_coefficient`). ``x`` is ``(k, d)``, ``widths`` at least
    two distinct widths (the slope is a weighted fit), ``n_samples >= 4``.

    Raises
    ------
    TypeError, ValueError
        For bad arguments, named as this function's; for an ``x`` whose kernel does not
        fluctuate (e.g. ``x = 0``); for sizes beyond the size limits (CONTRIBUTING.md).

    Examples
    --------
    >>> fl = ntk_fluctuations(torch.ones(1, 2), activation="relu", widths=[4, 16],
    ...                       n_samples=4000, generator=0)
    >>> round(fl.fit.slope)
    -1
    """
    fn = "mfteach.finite_width.ntk_fluctuations"
    widths = _widths(widths, fn)
    xs = _check_x(x, fn)
    N = max(widths)
    _, act, _, n_samples, _, _, dev, dt = _check_common(
        fn, x, activation, N, n_samples, readout, 1, None, device, dtype, ndim=2)
    if n_samples < 4:
        fail("n_samples", fn, "an int >= 4 (a variance with its standard error)", n_samples)
    k = xs.shape[0]
    _check_sample_budget(fn, n_out=3 * k * k, per_network=N * (3 * k + min(k, xs.shape[1])),
                         width=N, n_samples=n_samples, chunk_size=None, depth=len(widths),
                         width_name="widths",
                         dt=dt, dev=dev)
    theory_mean = ntk(xs.to(dev), activation=act, depth=1)
    theory_var = _ntk_variance_coefficient(xs.to(dev), act, readout_law(readout).moments[3],
                                           96, fn)
    g = as_generator(generator, dev, fn)
    means, mses, vars_, vses = [], [], [], []
    for n in widths:
        K = sample_ntk(x, activation=activation, width=n, n_samples=n_samples, generator=g,
                       readout=readout, device=dev, dtype=dtype).to(torch.float64)
        m = K.mean(0)
        dev2 = (K - m) ** 2
        means.append(m)
        mses.append(K.std(0) / math.sqrt(n_samples))
        vars_.append(dev2.sum(0) / (n_samples - 1))
        vses.append(dev2.std(0) / math.sqrt(n_samples))
    var, var_se = torch.stack(vars_), torch.stack(vses)
    if not (bool((var[:, 0, 0] > 0).all()) and bool((var_se[:, 0, 0] > 0).all())):
        fail("x", fn, "an input whose empirical kernel Theta(x_1, x_1) fluctuates (its "
             "variance is 0 here, so no slope can be fitted)", x)
    return NTKFluctuations(
        widths=widths, mean=torch.stack(means), mean_stderr=torch.stack(mses), var=var,
        var_stderr=var_se, theory_mean=theory_mean, theory_var_coef=theory_var,
        fit=fit_weighted_loglog_slope(widths, var[:, 0, 0], var_se[:, 0, 0]),
        n_samples=n_samples)


# --------------------------------------------------------------------------------------------
# Drift during training
# --------------------------------------------------------------------------------------------

def sphere_data(n: int, d: int, *, generator: int | torch.Generator,
                dtype: torch.dtype | None = None, device: torch.device | str | None = None
                ) -> tuple[Tensor, Tensor]:
    r"""Training set on the sphere :math:`|x|^2 = d` with labels :math:`\tanh(2x_1)`.

    :func:`mfteach.models.teacher_data` (``"single_index"``) with each input rescaled to norm
    :math:`\sqrt d`, so that every pre-activation has unit variance.

    Examples
    --------
    >>> X, y = sphere_data(5, 3, generator=0)
    >>> [round(v, 6) for v in (X ** 2).sum(1).tolist()]
    [3.0, 3.0, 3.0, 3.0, 3.0]
    """
    return _sphere_data(n, d, generator, dtype, device, "mfteach.finite_width.sphere_data")


def _sphere_data(n, d, generator, dtype, device, fn: str, n_name: str = "n"
                 ) -> tuple[Tensor, Tensor]:
    n = check_int(n, n_name, fn, min=1)
    d = check_int(d, "d", fn, min=1)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn, default=torch.float32)
    name = n_name if n >= d else "d"
    check_budget(name, fn, n if n >= d else d, nbytes=3.0 * n * (d + 1) * dt.itemsize)
    g = _draw_generator(generator, dev, fn)
    X, _ = teacher_data(n, d, generator=g, dtype=dt, device=dev)
    norm = X.norm(dim=1, keepdim=True)
    if not bool((norm > 0).all()):  # probability 0 (d = 1 and a draw of exactly 0)
        fail("generator", fn, "a seed whose inputs are all non-zero", generator)
    X = X / norm * math.sqrt(d)
    return X, torch.tanh(2 * X[:, 0])


@dataclass(frozen=True)
class NTKDrift:
    r"""Relative change :math:`\|\Theta_t - \Theta_0\|_F/\|\Theta_0\|_F` during training.

    Attributes
    ----------
    widths : tuple of int
    step : Tensor, shape (T,)
    drift : Tensor, shape (T, W, B)
        Per recorded step, width and network.
    loss : Tensor, shape (T, W, B)
    final, final_stderr : Tensor, shape (W,)
        Mean over networks of the last recorded drift, and its standard error.
    fit : SlopeFit
        Weighted fit of ``final`` against the width: about :math:`-1` for smooth activations,
        shallower for ReLU.
    activation : str
    lr : float
    """

    widths: tuple[int, ...]
    step: Tensor
    drift: Tensor
    loss: Tensor
    final: Tensor
    final_stderr: Tensor
    fit: SlopeFit
    activation: str
    lr: float


def ntk_drift(activation: str, widths: Sequence[int], *, lr: float = 0.5, steps: int = 500,
              n_train: int = 20, d: int = 5, n_networks: int = 4,
              generator: int | torch.Generator, record_every: int | None = None,
              device: torch.device | str | None = None, dtype: torch.dtype | None = None,
              progress: bool = False) -> NTKDrift:
    r"""Train ``n_networks`` networks per width by GD; record the tangent kernel's drift.

    Data: :func:`sphere_data` (``n_train`` points in dimension ``d``). Each width trains one
    batched :class:`~mfteach.models.TwoLayer` ensemble (``"ntk"``) with
    :func:`mfteach.training.train` and the diagnostic
    :func:`mfteach.training.relative_ntk_change`.

    Parameters
    ----------
    activation : str
    widths : sequence of int
    lr : float
        Learning rate :math:`\eta` (the linear-flow time is :math:`t = \eta\,k`).
    steps : int

    Returns
    -------
    NTKDrift

    Raises
    ------
    TypeError, ValueError
        For bad arguments (named as this function's), an ``lr`` not representable in
        ``dtype`` or too small for the kernel to move, or sizes beyond
        the size limits (CONTRIBUTING.md); :class:`mfteach.training.DivergenceError` if
        training diverges.

    Notes
    -----
    The rigorous bounds give :math:`O(N^{-1/2})` (Jacot et al. 2018; Lee et al. 2019); the
    typical drift of smooth activations is :math:`O(N^{-1})` (Dyer & Gur-Ari 2020). ReLU
    measures in between: its kernel depends on the signs of the pre-activations, and the
    :math:`O(N^{-1/2})` moves flip the few neurons near the kink. Book chapter 02.

    Examples
    --------
    >>> dr = ntk_drift("tanh", [64, 256], steps=50, n_networks=2, generator=0)
    >>> dr.drift.shape[1:], bool(dr.final[1] < dr.final[0])
    (torch.Size([2, 2]), True)
    """
    fn = "mfteach.finite_width.ntk_drift"
    check_choice(activation, "activation", fn, ACTIVATIONS)
    widths = _widths(widths, fn)
    lr = check_float(lr, "lr", fn, min=0.0, min_open=True)
    steps = check_int(steps, "steps", fn, min=1)
    n_train = check_int(n_train, "n_train", fn, min=1)
    d = check_int(d, "d", fn, min=1)
    n_networks = check_int(n_networks, "n_networks", fn, min=2)
    record_every = steps if record_every is None else check_int(record_every, "record_every",
                                                                fn, min=1)
    check_bool(progress, "progress", fn)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn, default=torch.float32)
    lr = _check_lr(lr, fn, dt)
    _check_train_sizes(fn, width=max(widths), n_networks=n_networks, n_train=n_train, d=d,
                       steps=steps, n_widths=len(widths), dt=dt)
    check_budget("record_every", fn, record_every, nbytes=2.0 * (steps // record_every + 2)
                 * len(widths) * n_networks * 8)
    g = _draw_generator(generator, dev, fn)
    X, y = _sphere_data(n_train, d, g, dt, dev, fn, "n_train")
    drifts, losses, step = [], [], None
    for n in widths:
        model = TwoLayer(d, n, activation=activation, n_networks=n_networks, generator=g,
                         device=dev, dtype=dt)
        hist = train(model, X, y, lr=lr, steps=steps, record_every=record_every,
                     diagnostics={"ntk": relative_ntk_change(model, X)}, progress=progress)
        drifts.append(hist.diagnostics["ntk"])
        losses.append(hist.loss)
        step = hist.step
    drift = torch.stack(drifts, 1).to(torch.float64)  # (T, W, B)
    final = drift[-1].mean(1)
    final_se = drift[-1].std(1) / math.sqrt(n_networks)
    if bool((final > 0).all()) and bool((final_se > 0).all()):
        fit = fit_weighted_loglog_slope(widths, final, final_se)
    elif bool((final > 0).all()) and len(widths) >= 3:
        fit = fit_loglog_slope(widths, final)  # equal drifts across networks: unweighted
    else:
        fail("lr", fn, "large enough (with steps) for the tangent kernel to move measurably "
             "at every width", lr, hint="The drift is 0 at some width, so no slope can be "
             "fitted; raise lr or steps.")
    return NTKDrift(widths, step, drift, torch.stack(losses, 1), final, final_se, fit,
                    activation, lr)


# --------------------------------------------------------------------------------------------
# Trained ensemble versus the Gaussian process of the linear flow
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GPPrediction:
    r"""Law of :math:`f_k(x_*)` at infinite width after ``steps`` GD steps.

    Attributes
    ----------
    mean : Tensor, shape (m,)
    cov : Tensor, shape (m, m)
    var : Tensor, shape (m,)
        Diagonal of ``cov``.
    """

    mean: Tensor
    cov: Tensor
    var: Tensor


def gp_prediction(X: Tensor, y: Tensor, x_test: Tensor, *, activation: str | Activation,
                  lr: float, steps: int) -> GPPrediction:
    r"""Mean and covariance of the infinite-width outputs at ``x_test`` after GD.

    With :math:`\Theta = QΛQ^\top` on the training set and
    :math:`B = \Theta(x_*, X)\,Q\,\mathrm{diag}\big((1 - (1 - \eta\lambda_j/n)^k)/\lambda_j
    \big)Q^\top`, :math:`f_k(x_*) = f_0(x_*) - Bf_0(X) + By` and

    .. math::

        \mathbb{E}f_k(x_*) = By,\qquad \mathrm{Cov}\,f_k(x_*) = K_{**} - BK_{X*}
        - K_{*X}B^\top + BK_{XX}B^\top,

    with :math:`K` the NNGP and :math:`\Theta` the NTK (:mod:`mfteach.kernels`, ``depth=1``),
    computed in float64.

    Parameters
    ----------
    X : Tensor, shape (n, d)
    y : Tensor, shape (n,)
    x_test : Tensor, shape (m, d)
    activation : str or Activation
    lr : float
        :math:`\eta`.
    steps : int
        :math:`k`; the factor :math:`(1 - (1 - c)^k)/\lambda` is evaluated with
        ``expm1``/``log1p`` and tends to :math:`k\eta/n` as :math:`\lambda \to 0`.

    Returns
    -------
    GPPrediction
        Float64, on the device of ``X``.

    Raises
    ------
    TypeError, ValueError
        For bad or mismatched ``X``, ``y``, ``x_test`` (shapes, devices, dtypes, non-finite
        or empty), an ``lr`` at or beyond the linear model's stability bound, or results that
        overflow float64.

    Examples
    --------
    >>> X = torch.eye(2, dtype=torch.float64) * 2 ** 0.5
    >>> p = gp_prediction(X, torch.tensor([1.0, -1.0], dtype=torch.float64), X,
    ...                   activation="relu", lr=1.0, steps=10_000)
    >>> [round(v, 6) for v in p.mean.tolist()], bool(p.var.abs().max() < 1e-10)
    ([1.0, -1.0], True)
    """
    fn = "mfteach.finite_width.gp_prediction"
    act = _activation(activation, fn)
    X, y, x_test = _check_train_test(X, y, x_test, fn)
    lr = check_float(lr, "lr", fn, min=0.0, min_open=True)
    steps = check_int(steps, "steps", fn, min=0)
    return _gp_prediction(X, y, x_test, act, lr, steps, fn)


def _check_train_test(X, y, x_test, fn: str) -> tuple[Tensor, Tensor, Tensor]:
    """Training inputs X (n, d), n, d >= 1, targets y (n,), test inputs (m, d), m >= 1, all
    finite, on one device and dtype."""
    check_tensor(X, "X", fn, ndim=2)
    if X.shape[0] < 1 or X.shape[1] < 1:
        fail("X", fn, "a tensor of shape (n, d) with n, d >= 1", X)
    check_tensor(y, "y", fn, ndim=1)
    if y.shape[0] != X.shape[0]:
        fail("y", fn, f"a tensor of shape ({X.shape[0]},): one target per row of 'X'", y)
    check_tensor(x_test, "x_test", fn, ndim=2)
    if x_test.shape[1] != X.shape[1] or x_test.shape[0] < 1:
        fail("x_test", fn, f"a tensor of shape (m, {X.shape[1]}), m >= 1: as many columns "
             f"as 'X'", x_test)
    check_same_device_dtype(fn, X=X, y=y, x_test=x_test)
    return X, y, x_test


def _gp_prediction(X: Tensor, y: Tensor, x_test: Tensor, act: Activation, lr: float,
                   steps: int, fn: str) -> GPPrediction:
    N = X.shape[0]
    check_budget("X", fn, X, nbytes=8.0 * 6 * (N + x_test.shape[0]) ** 2)
    if float(torch.cat([X, x_test]).abs().max()) > 1e100:
        fail("X", fn, "inputs with entries of magnitude at most 1e100 (the kernels must "
             "stay finite)", X)
    Xa = torch.cat([X, x_test]).to(torch.float64)
    K = nngp(Xa, activation=act, depth=1)
    T = ntk(Xa, activation=act, depth=1)
    lam, Q = torch.linalg.eigh(T[:N, :N])
    c = lr * lam / N
    if bool((c >= 2).any()):
        fail("lr", fn, f"below 2n/lambda_max = {2 * N / float(lam.max()):.4g} (gradient "
             "descent on the linear model diverges beyond it)", lr)
    k = float(steps) if steps < 2**1000 else math.inf  # the long-time limit
    safe = lam > 1e-12 * lam.abs().max()
    lam_s = torch.where(safe, lam, torch.ones_like(lam))
    gain = torch.where(safe, -torch.expm1(k * torch.log1p(-c)) / lam_s,
                       torch.full_like(lam, k * lr / N))
    if not bool(torch.isfinite(gain).all()):
        fail("steps", fn, "small enough that the flow along the kernel's null directions "
             "stays finite", steps)
    B = T[N:, :N] @ Q @ torch.diag(gain) @ Q.T  # (m, N)
    mean = B @ y.to(torch.float64)
    cov = K[N:, N:] - B @ K[:N, N:] - K[N:, :N] @ B.T + B @ K[:N, :N] @ B.T
    cov = 0.5 * (cov + cov.T)
    if not bool(torch.isfinite(mean).all()):
        fail("y", fn, "small enough that the predicted mean is finite in float64", y)
    if not bool(torch.isfinite(cov).all()):
        fail("X", fn, "inputs whose predicted covariance is finite in float64", X)
    return GPPrediction(mean=mean, cov=cov, var=cov.diagonal().clone())


def trained_ensemble(X: Tensor, y: Tensor, x_test: Tensor, *, activation: str, width: int,
                     n_networks: int, lr: float, steps: int,
                     generator: int | torch.Generator, progress: bool = False,
                     readout: str = "gaussian",
                     record_steps: Sequence[int] | None = None) -> Tensor:
    r"""Outputs at ``x_test`` of ``n_networks`` width-``width`` networks trained by GD.

    One batched :class:`~mfteach.models.TwoLayer` ensemble (``"ntk"``, Gaussian input
    weights) on the device and dtype of ``X``, trained on the same data with
    :func:`mfteach.training.train`: no loop over networks.

    Other Parameters
    ----------------
    readout : {"gaussian", "rademacher", "exponential"}
        Law of the initial readout weights :math:`a_i` (:func:`sample_readout`). The default
        keeps :class:`~mfteach.models.TwoLayer`'s own Gaussian draw (same numbers as
        before the option existed); another law keeps the same input weights and replaces
        :math:`a` by a draw of that law from the same generator.
    record_steps : sequence of int, optional
        Strictly increasing steps in ``[0, steps]``: return the outputs at each of them,
        from one training run (GD is continued between records, not restarted).

    Returns
    -------
    Tensor, shape (n_networks, m), or (len(record_steps), n_networks, m)

    Raises
    ------
    TypeError, ValueError
        For bad arguments, named as this function's (``X``, ``y``, ``x_test`` on one device
        and dtype; ``lr`` representable in it; sizes within
        the size limits (CONTRIBUTING.md)); :class:`mfteach.training.DivergenceError` if
        training diverges.

    Examples
    --------
    >>> X, y = sphere_data(4, 3, generator=0, dtype=torch.float64)
    >>> trained_ensemble(X, y, X[:1], activation="erf", width=32, n_networks=3, lr=0.5,
    ...                  steps=5, generator=1).shape
    torch.Size([3, 1])
    >>> trained_ensemble(X, y, X[:1], activation="erf", width=32, n_networks=3, lr=0.5,
    ...                  steps=5, generator=1, readout="rademacher",
    ...                  record_steps=[0, 2, 5]).shape
    torch.Size([3, 3, 1])
    """
    fn = "mfteach.finite_width.trained_ensemble"
    check_choice(activation, "activation", fn, ACTIVATIONS)
    X, y, x_test = _check_train_test(X, y, x_test, fn)
    width = check_int(width, "width", fn, min=1)
    n_networks = check_int(n_networks, "n_networks", fn, min=1)
    lr = _check_lr(lr, fn, X.dtype)
    steps = check_int(steps, "steps", fn, min=0)
    check_bool(progress, "progress", fn)
    check_choice(readout, "readout", fn, READOUTS)
    if record_steps is not None:
        record_steps = _check_record_steps(record_steps, steps, fn)
    _check_train_sizes(fn, width=width, n_networks=n_networks, n_train=X.shape[0],
                       d=X.shape[1], steps=steps, n_widths=0, dt=X.dtype)
    if record_steps is not None:
        check_budget("record_steps", fn, record_steps, nbytes=2.0 * len(record_steps)
                     * n_networks * x_test.shape[0] * X.dtype.itemsize)
    g = _draw_generator(generator, X.device, fn)
    return _trained_ensemble(X, y, x_test, activation, width, n_networks, lr, steps, g,
                             progress, readout, record_steps)


def _check_record_steps(record_steps, steps: int, fn: str) -> tuple[int, ...]:
    rule = f"a non-empty, strictly increasing sequence of ints in [0, steps={steps}]"
    if isinstance(record_steps, Tensor) and record_steps.ndim == 1 and not (
            record_steps.dtype.is_floating_point or record_steps.dtype == torch.bool):
        record_steps = record_steps.tolist()
    if isinstance(record_steps, (str, bytes)) or not isinstance(record_steps, Sequence):
        fail("record_steps", fn, rule, record_steps, exc=TypeError)
    out = tuple(check_int(k, "record_steps", fn, min=0, max=steps) for k in record_steps)
    if not out or any(b <= a for a, b in zip(out, out[1:])):
        fail("record_steps", fn, rule, record_steps)
    return out


def _ensemble_model(d: int, activation: str, width: int, n_networks: int, readout: str,
                    g: torch.Generator, device: torch.device, dtype: torch.dtype) -> TwoLayer:
    """The initial ensemble: TwoLayer's Gaussian draw, the readout redrawn from ``readout``."""
    model = TwoLayer(d, width, activation=activation, n_networks=n_networks, generator=g,
                     device=device, dtype=dtype)
    if readout == "gaussian":
        return model
    a = _draw_readout((n_networks, width), readout, g, g.device, dtype).to(device)
    return TwoLayer.from_params(model.W.detach(), a, activation=activation)


def _trained_ensemble(X, y, x_test, activation, width, n_networks, lr, steps, g, progress,
                      readout="gaussian", record_steps=None):
    model = _ensemble_model(X.shape[1], activation, width, n_networks, readout, g, X.device,
                            X.dtype)
    if record_steps is None:
        train(model, X, y, lr=lr, steps=steps, record_every=max(steps, 1), progress=progress)
        with torch.no_grad():
            return model(x_test)
    outs, done = [], 0
    for k in record_steps:
        if k > done:  # continue the same GD run up to step k
            train(model, X, y, lr=lr, steps=k - done, record_every=k - done,
                  progress=progress)
            done = k
        with torch.no_grad():
            outs.append(model(x_test))
    return torch.stack(outs)


@dataclass(frozen=True)
class EnsembleVsGP:
    r"""Trained ensembles at several widths against the infinite-width Gaussian law.

    Attributes
    ----------
    widths : tuple of int
    outputs : Tensor, shape (W, M)
        :math:`f_k(x_*)` of the M networks per width.
    mean, mean_stderr, var, var_stderr : Tensor, shape (W,)
    gp_mean, gp_var : float
        :func:`gp_prediction` at :math:`x_*`.
    w2 : Tensor, shape (W,)
        :math:`W_2` between the Gaussian fitted to the ensemble and the GP law,
        :math:`\sqrt{(m - m_\infty)^2 + (s - s_\infty)^2}`: a LOWER bound on the
        :math:`W_2` between the ensemble's law and the GP law (Gelbrich 1990: any two laws
        are at least as far apart as the Gaussians with their means and variances). For an
        upper estimate see :func:`empirical_w2` and :func:`trained_distance`.
    w2_floor : float
        Its size from sampling alone, :math:`s_\infty\sqrt{3/(2M)}` (rms, for M samples).
    ks : Tensor, shape (W,)
        Kolmogorov-Smirnov distance of the ensemble to :math:`\mathcal N(m_\infty, s^2_\infty)`.
    ks_floor : float
        :math:`0.87/\sqrt M`, its mean under the GP law.
    """

    widths: tuple[int, ...]
    outputs: Tensor
    mean: Tensor
    mean_stderr: Tensor
    var: Tensor
    var_stderr: Tensor
    gp_mean: float
    gp_var: float
    w2: Tensor
    w2_floor: float
    ks: Tensor
    ks_floor: float


def ensemble_vs_gp(activation: str, widths: Sequence[int], *, n_networks: int = 500,
                   lr: float = 0.5, steps: int = 200, n_train: int = 8, d: int = 3,
                   generator: int | torch.Generator, dtype: torch.dtype | None = None,
                   device: torch.device | str | None = None,
                   progress: bool = False, readout: str = "gaussian") -> EnsembleVsGP:
    r"""Compare trained finite-width ensembles with the Gaussian process of the linear flow.

    Data: :func:`sphere_data` (``n_train`` points), test point :math:`x_*` a fresh point of
    the sphere. For each width, :func:`trained_ensemble` (initial readout law ``readout``);
    theory :func:`gp_prediction`. ``w2`` is the moment-matched distance, a lower bound on the
    true :math:`W_2` (:class:`EnsembleVsGP`).

    Examples
    --------
    >>> r = ensemble_vs_gp("erf", [4, 64], n_networks=200, steps=20, generator=0)
    >>> r.outputs.shape
    torch.Size([2, 200])
    """
    fn = "mfteach.finite_width.ensemble_vs_gp"
    check_choice(activation, "activation", fn, ACTIVATIONS)
    widths = _widths(widths, fn)
    n_networks = check_int(n_networks, "n_networks", fn, min=4)
    n_train = check_int(n_train, "n_train", fn, min=1)
    d = check_int(d, "d", fn, min=1)
    lr = check_float(lr, "lr", fn, min=0.0, min_open=True)
    steps = check_int(steps, "steps", fn, min=0)
    check_bool(progress, "progress", fn)
    check_choice(readout, "readout", fn, READOUTS)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn, default=torch.float64)
    lr = _check_lr(lr, fn, dt)
    _check_train_sizes(fn, width=max(widths), n_networks=n_networks, n_train=n_train, d=d,
                       steps=steps, n_widths=len(widths), dt=dt)
    g = _draw_generator(generator, dev, fn)
    Xa, ya = _sphere_data(n_train + 1, d, g, dt, dev, fn, "n_train")
    X, y, xs = Xa[:n_train], ya[:n_train], Xa[n_train:]
    gp = _gp_prediction(X, y, xs, _activation(activation, fn), lr, steps, fn)
    m_inf, v_inf = float(gp.mean[0]), float(gp.var[0])
    s_inf = math.sqrt(max(v_inf, 0.0))
    outs = []
    for n in widths:
        outs.append(_trained_ensemble(X, y, xs, activation, n, n_networks, lr, steps, g,
                                      progress, readout)[:, 0])
    F = torch.stack(outs).to(torch.float64)  # (W, M)
    M = n_networks
    mean = F.mean(1)
    var = F.var(1)
    dev2 = (F - mean.unsqueeze(1)) ** 2
    w2 = ((mean - m_inf) ** 2 + (var.sqrt() - s_inf) ** 2).sqrt()

    def cdf(u):
        return edgeworth_cdf(u, kappa1=m_inf, kappa2=max(v_inf, 1e-300), terms=0)

    ks = torch.tensor([ks_distance(f, cdf) for f in F], dtype=torch.float64)
    return EnsembleVsGP(widths, F, mean, F.std(1) / math.sqrt(M), var,
                        dev2.std(1) / math.sqrt(M), m_inf, v_inf, w2,
                        s_inf * math.sqrt(1.5 / M), ks, 0.87 / math.sqrt(M))
