"""Width sweeps and particle trajectories of the introduction chapter (see the package
docstring)."""


from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
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
from ..device import as_generator, resolve_device, resolve_dtype
from ..models import TEACHER_KINDS, TwoLayer, _largest, teacher_data
from ..stats import SlopeFit, fit_loglog_slope, fit_weighted_loglog_slope, mc_estimate
from ..training import (
    _check_lr,
    _loss_per_network,
    relative_change,
    relative_ntk_change,
    train,
)

__all__ = [
    "PARAMETRIZATIONS",
    "QUANTITIES",
    "ACTIVATIONS",
    "INITS",
    "WidthSweep",
    "predicted_slope",
    "output_scale",
    "frobenius_relative_change",
    "width_sweep",
]

PARAMETRIZATIONS = ("ntk", "mf")
"""The two parametrizations compared in the chapter."""

QUANTITIES = ("weights", "kernel")
"""What :func:`predicted_slope` predicts: relative change of ``W`` or of the tangent kernel."""

ACTIVATIONS = ("relu", "tanh", "erf")
"""Activations with a stated kernel-change exponent (ReLU non-smooth, the others smooth)."""

INITS = ("standard", "antisymmetric")
r"""Initialisations of :func:`width_sweep`: i.i.d. :math:`N(0, 1)` weights, or the same draw
for half the neurons with each neuron doubled as :math:`(a_j, w_j), (-a_j, w_j)`, so that
:math:`f_0 = 0` up to rounding (Chizat, Oyallon & Bach 2019, Sec. 2, the "doubling trick")."""

_SMOOTH = ("tanh", "erf")
_MAX_WIDTH = 2**63 - 1  # the largest tensor dimension


def _fn(name: str) -> str:
    return f"mfteach.lazy_vs_meanfield.{name}"


def predicted_slope(quantity: str, parametrization: str, activation: str = "relu") -> float:
    r"""Predicted exponent :math:`\alpha` of the relative change :math:`\propto N^{\alpha}`.

    For a fixed training time :math:`t = \text{steps}\times\eta` and widths large enough:

    ========================  ===========================  ===========================
    quantity                  ``"ntk"``                    ``"mf"``
    ========================  ===========================  ===========================
    ``"weights"``             :math:`-1/2`                 :math:`0`
    ``"kernel"``              :math:`-3/4` (ReLU),         :math:`0`
                              :math:`-1` (smooth)
    ========================  ===========================  ===========================

    Parameters
    ----------
    quantity : {"weights", "kernel"}
        :math:`\|W_t - W_0\|_F/\|W_0\|_F` or :math:`\|K_t - K_0\|_F/\|K_0\|_F`.
    parametrization : {"ntk", "mf"}
    activation : {"relu", "tanh", "erf"}

    Returns
    -------
    float

    Raises
    ------
    ValueError, TypeError
        For an unknown ``quantity``, ``parametrization`` or ``activation``.

    Notes
    -----
    *Weights.* Under ``"ntk"`` the gradient of neuron :math:`j` carries the factor
    :math:`1/\sqrt N`, so :math:`\|w_j(t) - w_j(0)\| = O(t/\sqrt N)`, while
    :math:`\|W_0\|_F^2 \approx N d`: the ratio is :math:`O(N^{-1/2})`. Under ``"mf"`` each
    neuron moves by :math:`O(t)` and the ratio is :math:`O(1)`.

    *Kernel.* Lee et al. (2019), Thm. 2.1, bound the change by :math:`O(N^{-1/2})`; the
    measured change is smaller. The first-order change of
    :math:`K = \frac1N\sum_j[\sigma\sigma' + \frac{x\cdot x'}{d} a_j^2\sigma'\sigma']` is a sum
    of :math:`N` terms of size :math:`N^{-3/2}` whose signs follow the random signs of
    :math:`a_j`, hence :math:`O(N^{-1})` for smooth :math:`\sigma` (Dyer & Gur-Ari 2020,
    "Asymptotics of wide networks from Feynman diagrams", ICLR, arXiv:1909.11304). For ReLU,
    :math:`\sigma'` jumps: a fraction :math:`O(N^{-1/2})` of the neurons switch on or off at a
    given input, each changing :math:`K` by :math:`O(1/N)` with a random sign, which adds up
    to :math:`\sqrt{N^{1/2}}/N = N^{-3/4}`. **These are heuristic counts**, not theorems.
    Measured as the mean over 5 data sets (:func:`replicate_sweeps`, weighted fits, 16
    networks per width, :math:`t = 100`) over :math:`64 \le N \le 2048`: ReLU
    :math:`-0.75 \pm 0.02`, tanh :math:`-0.94 \pm 0.02`; over :math:`512 \le N \le 16384`:
    ReLU :math:`-0.70 \pm 0.01` and tanh :math:`-0.99 \pm 0.01`. So tanh reaches the
    :math:`-1` of the count at large width, while ReLU stays between :math:`-1/2` and
    :math:`-1`, near but not exactly at :math:`-3/4`. The tests check the bracket
    :math:`(-1, -1/2)`, the ordering tanh below ReLU, and tanh's :math:`-1` at large width.
    Introduced in the book in ``book/01_lazy_vs_meanfield.ipynb``.

    Examples
    --------
    >>> predicted_slope("weights", "ntk"), predicted_slope("kernel", "ntk", "tanh")
    (-0.5, -1.0)
    """
    fn = _fn("predicted_slope")
    check_choice(quantity, "quantity", fn, QUANTITIES)
    check_choice(parametrization, "parametrization", fn, PARAMETRIZATIONS)
    check_choice(activation, "activation", fn, ACTIVATIONS)
    if parametrization == "mf":
        return 0.0
    if quantity == "weights":
        return -0.5
    return -1.0 if activation in _SMOOTH else -0.75


def output_scale(width: int, parametrization: str) -> float:
    r"""Output scale :math:`s_N`: :math:`1/\sqrt N` under ``"ntk"``, :math:`1/N` under ``"mf"``.

    Parameters
    ----------
    width : int
        Number :math:`N \ge 1` of neurons, at most :math:`2^{63} - 1` (a tensor dimension).
    parametrization : {"ntk", "mf"}

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        For a non-integer, non-positive or larger-than-int64 ``width`` or an unknown
        ``parametrization``.

    Notes
    -----
    Eq. (eq-lvm-two-layer) of the introduction chapter; the same numbers as
    :attr:`mfteach.models.TwoLayer.scale`.

    Examples
    --------
    >>> output_scale(100, "ntk"), output_scale(100, "mf")
    (0.1, 0.01)
    """
    fn = _fn("output_scale")
    width = check_int(width, "width", fn, min=1, max=_MAX_WIDTH)
    check_choice(parametrization, "parametrization", fn, PARAMETRIZATIONS)
    return 1.0 / math.sqrt(width) if parametrization == "ntk" else 1.0 / width


def frobenius_relative_change(after: Tensor, before: Tensor) -> Tensor:
    r"""Relative change :math:`\|A - B\|_F / \|B\|_F` per network (leading axis).

    Parameters
    ----------
    after, before : Tensor, shape (B, ...)
        The same quantity (weights ``(B, N, d)`` or kernels ``(B, n, n)``) after and before
        training; same shape, device and dtype.

    Returns
    -------
    Tensor, shape (B,)

    Raises
    ------
    TypeError, ValueError
        For non-tensors, non-finite or non-float32/float64 tensors, fewer than two
        dimensions, different shapes, dtypes or devices, a zero ``before``, or a ratio too
        large for the dtype.

    Notes
    -----
    Eq. (eq-lvm-relative-change) of the introduction chapter. The training loop records the same
    quantity with :func:`mfteach.training.relative_change` and
    :func:`mfteach.training.relative_ntk_change`.

    Examples
    --------
    >>> B = torch.ones(2, 3, 4)
    >>> frobenius_relative_change(2 * B, B)
    tensor([1., 1.])
    """
    fn = _fn("frobenius_relative_change")
    for name, x in (("after", after), ("before", before)):
        check_tensor(x, name, fn)
        if x.ndim < 2:
            fail(name, fn, "a tensor of shape (B, ...) with at least 2 dimensions", x)
    if after.shape != before.shape:
        fail("after", fn, f"a tensor of the same shape as 'before' {tuple(before.shape)}",
             after)
    check_same_device_dtype(fn, before=before, after=after)
    if before.shape[0] == 0 or before[0].numel() == 0:
        fail("before", fn, "non-zero for every network (a non-empty tensor)", before)
    dims = tuple(range(1, before.ndim))
    # Divide by a power of 2 of the size of `before` (exact), so that huge entries whose
    # squares overflow still give the ratio.
    amax = before.abs().amax(dim=dims, keepdim=True)
    if bool((amax == 0).any()):
        fail("before", fn, "non-zero for every network", before)
    scale = torch.exp2(torch.floor(torch.log2(amax)))
    norm0 = torch.linalg.vector_norm(before / scale, dim=dims)
    out = torch.linalg.vector_norm(after / scale - before / scale, dim=dims) / norm0
    if not bool(torch.isfinite(out).all()):
        fail("after", fn, f"such that the relative change is finite in {after.dtype}", after)
    return out


@dataclass(frozen=True)
class WidthSweep:
    r"""Relative weight and kernel change versus width, with fitted log-log slopes.

    Attributes
    ----------
    parametrization, activation : str
    widths : tuple of int
        The widths :math:`N`, increasing.
    weight_change : Tensor, shape (n_widths, B)
        :math:`\|W_T - W_0\|_F/\|W_0\|_F` of each network of each ensemble.
    kernel_change : Tensor, shape (n_widths, B)
        :math:`\|K_T - K_0\|_F/\|K_0\|_F` of the tangent kernel on the training inputs.
    t : Tensor, shape (T,)
        Recorded times :math:`t = \text{step}\times\eta` (the theory's units).
    loss : Tensor, shape (n_widths, T)
        Training loss averaged over the ensemble.
    test_loss : Tensor, shape (n_widths, T)
        Held-out loss :math:`\frac12\,\overline{(f - y)^2}` on ``n_test`` fresh points of the
        same teacher, averaged over the ensemble.
    final_loss, final_test_loss : Tensor, shape (n_widths, B)
        Training and held-out loss of each network at the end.
    weight_fit, kernel_fit : SlopeFit
        Slopes of the log ensemble means against :math:`\log N`, weighted by the ensemble's
        standard errors (:func:`mfteach.stats.fit_weighted_loglog_slope`; the slope's error
        is propagated from them). One data set only: the spread over data sets is in
        :class:`SweepReplicates`.
    lr : float
        Learning rate :math:`\eta` in the theory's units.
    steps : int
    init : str
        ``"standard"`` or ``"antisymmetric"`` (``mfteach.lazy_vs_meanfield.INITS``).
    """

    parametrization: str
    activation: str
    widths: tuple[int, ...]
    weight_change: Tensor
    kernel_change: Tensor
    t: Tensor
    loss: Tensor
    test_loss: Tensor
    final_loss: Tensor
    final_test_loss: Tensor
    weight_fit: SlopeFit
    kernel_fit: SlopeFit
    lr: float
    steps: int
    init: str = "standard"

    @property
    def weight_mean(self) -> Tensor:
        """Ensemble mean of the relative weight change per width, shape (n_widths,)."""
        return self.weight_change.mean(1)

    @property
    def weight_stderr(self) -> Tensor:
        """Standard error of :attr:`weight_mean`, shape (n_widths,)."""
        return mc_estimate(self.weight_change, dim=1).stderr

    @property
    def kernel_mean(self) -> Tensor:
        """Ensemble mean of the relative kernel change per width, shape (n_widths,)."""
        return self.kernel_change.mean(1)

    @property
    def kernel_stderr(self) -> Tensor:
        """Standard error of :attr:`kernel_mean`, shape (n_widths,)."""
        return mc_estimate(self.kernel_change, dim=1).stderr

    def summary(self, digits: int = 2) -> str:
        """The fitted slopes with their standard errors, rounded, next to the predictions."""
        digits = check_int(digits, "digits", "mfteach.lazy_vs_meanfield.WidthSweep.summary",
                           min=1, max=17)
        pw = predicted_slope("weights", self.parametrization, self.activation)
        pk = predicted_slope("kernel", self.parametrization, self.activation)
        return (f"{self.parametrization:>3}: weight slope {self.weight_fit.slope:+.{digits}f}"
                f" ± {self.weight_fit.stderr:.{digits}f} (theory {pw:+.2f}), kernel slope "
                f"{self.kernel_fit.slope:+.{digits}f} ± {self.kernel_fit.stderr:.{digits}f}"
                f" (theory {pk:+.2f})")


def _generator(generator, dev: torch.device, fn: str) -> torch.Generator:
    """A generator drawing data then networks in turn; an int seed draws on the CPU, a
    generator on the CPU or on ``dev``."""
    if isinstance(generator, torch.Generator):
        if generator.device.type not in ("cpu", dev.type):
            fail("generator", fn, f"a generator on the cpu or on {dev.type}", generator,
                 hint=f"It lives on {generator.device}; pass an int seed instead.")
        return generator
    return as_generator(generator, "cpu", fn)


def _check_widths(widths, fn: str) -> tuple[int, ...]:
    rule = "a list of at least 3 increasing ints >= 1 (a fitted slope needs 3 points)"
    if isinstance(widths, (torch.Tensor, np.ndarray)) and widths.ndim == 1 and not (
            widths.dtype.is_floating_point if isinstance(widths, torch.Tensor)
            else widths.dtype.kind == "f"):
        widths = widths.tolist()
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        fail("widths", fn, rule, widths, exc=TypeError)
    out = tuple(check_int(w, "widths", fn, min=1) for w in widths)
    if len(out) < 3 or any(b <= a for a, b in zip(out, out[1:])):
        fail("widths", fn, rule, widths)
    return out


def _check_sizes(fn: str, *, widths: Sequence[int], n_networks: int, n_samples: int, d: int,
                 steps: int, record_every: int, dt: torch.dtype, extra: int = 0) -> None:
    """Refuse a run beyond the memory or step limits, naming the argument responsible."""
    N, it = max(widths), dt.itemsize
    # data, parameters, activations and gradients, tangent kernels: the largest size is named
    _largest(fn, it * (3.0 * n_samples * (d + 1) + n_networks * (
        3.0 * N * (d + 1) + 6.0 * n_samples * N + 5.0 * n_samples**2)),
        widths=N, n_networks=n_networks, n_samples=n_samples, d=d)
    check_budget("steps", fn, steps, steps=float(steps) * len(widths))
    check_budget("record_every", fn, record_every, nbytes=it * (
        steps // record_every + 2) * (n_networks + extra))


def width_sweep(widths: Sequence[int], parametrization: str, *, activation: str = "relu",
                lr: float = 0.5, steps: int = 200, n_networks: int = 16, d: int = 4,
                n_samples: int = 20, kind: str = "two_index", record_every: int = 4,
                n_test: int = 200, init: str = "standard",
                generator: int | torch.Generator, device: torch.device | str | None = None,
                dtype: torch.dtype | None = None, progress: bool = False) -> WidthSweep:
    r"""Train an ensemble per width and measure how far weights and tangent kernel move.

    For each width :math:`N`, ``n_networks`` independent networks start from
    :math:`a_j, w_{ji} \sim N(0, 1)` and run ``steps`` full-batch gradient-descent steps on
    :math:`L = \frac1{2n}\sum_i (f(x_i) - y_i)^2` (:func:`mfteach.training.train`); then

    .. math::

        \Delta_W(N) = \frac{\|W_T - W_0\|_F}{\|W_0\|_F},\qquad
        \Delta_K(N) = \frac{\|K_T - K_0\|_F}{\|K_0\|_F},

    with :math:`K` the empirical tangent kernel on the training inputs. The slopes of
    :math:`\log \overline{\Delta}` against :math:`\log N` are fitted by weighted least
    squares with the ensemble's standard errors (:func:`mfteach.stats.fit_weighted_loglog_slope`).
    The held-out loss on ``n_test`` fresh points of the teacher is recorded along training.

    Parameters
    ----------
    widths : sequence of int
        At least three increasing widths, e.g. ``[64, 128, ..., 2048]`` (the slopes are
        least-squares fits with standard errors, which need three points).
    parametrization : {"ntk", "mf"}
        Under ``"mf"`` the raw step is :math:`\eta N`, so the time :math:`t = \text{steps}
        \times \eta` means the same at every width.
    activation : {"relu", "tanh", "erf"}
    lr : float
        Learning rate :math:`\eta` in the theory's units.
    steps : int
        Number of gradient steps; the training time is ``steps * lr``.
    n_networks : int
        Ensemble size :math:`B \ge 2` per width (error bars are standard errors over it).
    d, n_samples : int
        Input dimension (``d >= 2``) and number of training points of the teacher task.
    kind : str
        Teacher of :func:`mfteach.models.teacher_data`.
    record_every : int
        Loss recording interval (steps).
    n_test : int
        Held-out points of the same teacher (drawn after the networks).
    init : {"standard", "antisymmetric"}
        :func:`init_network`: under ``"antisymmetric"`` every width must be even and
        :math:`f_0 = 0` up to rounding.
    generator : int or torch.Generator
        Draws the data, the networks width after width, then the test points (an int seed
        draws on the CPU, so a seed gives the same numbers on every device). The same seed
        gives the same data and initial networks under both parametrizations (common random
        numbers).
    device, dtype
        Where to train; ``float64`` on the CPU by default.
    progress : bool
        tqdm bar over the widths.

    Returns
    -------
    WidthSweep

    Raises
    ------
    TypeError, ValueError
        For bad arguments (fewer than 3 ``widths``, an ``lr`` whose raw step
        ``lr * max(widths)`` under ``"mf"`` is not representable in ``dtype``, sizes beyond the
        memory or step limits (CONTRIBUTING.md), ...);
        :class:`mfteach.training.DivergenceError` if training diverges.

    Notes
    -----
    Introduced in the book in ``book/01_lazy_vs_meanfield.ipynb`` (figure "weights and kernel
    versus width"); the predictions are :func:`predicted_slope`. Cost: ``len(widths)`` batched
    trainings of ``B`` networks, :math:`O(\text{steps}\cdot B\,n\,N\,d)` each.

    Examples
    --------
    >>> s = width_sweep([16, 32, 64], "mf", steps=20, n_networks=2, generator=0)
    >>> s.weight_change.shape, s.loss.shape, s.test_loss.shape
    (torch.Size([3, 2]), torch.Size([3, 6]), torch.Size([3, 6]))
    """
    fn = _fn("width_sweep")
    widths = _check_widths(widths, fn)
    check_choice(parametrization, "parametrization", fn, PARAMETRIZATIONS)
    check_choice(activation, "activation", fn, ACTIVATIONS)
    check_choice(kind, "kind", fn, TEACHER_KINDS)
    n_networks = check_int(n_networks, "n_networks", fn, min=2)
    steps = check_int(steps, "steps", fn, min=1)
    lr = check_float(lr, "lr", fn, min=0.0, min_open=True)
    record_every = check_int(record_every, "record_every", fn, min=1)
    d = check_int(d, "d", fn, min=2)
    n_samples = check_int(n_samples, "n_samples", fn, min=2)
    n_test = check_int(n_test, "n_test", fn, min=1)
    check_choice(init, "init", fn, INITS)
    if init == "antisymmetric" and any(N % 2 for N in widths):
        fail("widths", fn, "even widths (the antisymmetric initialisation pairs the neurons)",
             list(widths))
    check_bool(progress, "progress", fn)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    lr = _check_lr(lr, fn, dt, max(widths) if parametrization == "mf" else 1.0)
    _check_sizes(fn, widths=widths, n_networks=n_networks, n_samples=n_samples, d=d,
                 steps=steps, record_every=record_every, dt=dt, extra=2 * n_networks)
    # the test points and the (B, n_test, N) activations of one held-out evaluation
    check_budget("n_test", fn, n_test, nbytes=dt.itemsize * n_test * (
        d + 2.0 + 3.0 * n_networks * max(widths)))
    g = _generator(generator, dev, fn)
    X, y = teacher_data(n_samples, d, kind=kind, generator=g, device=dev, dtype=dt)
    # the networks of every width, then the test points: the data and the initial networks
    # do not depend on n_test
    models = [_init_network(d, N, activation, parametrization, n_networks, init, g, dev, dt)
              for N in widths]
    X_test, y_test = teacher_data(n_test, d, kind=kind, generator=g, device=dev, dtype=dt)
    dW, dK, losses, tests, final, final_test, t = [], [], [], [], [], [], None
    it = models
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(models, desc=f"width sweep ({parametrization})")
    for model in it:
        diags = {"W": relative_change(model, "W"), "K": relative_ntk_change(model, X)}
        hist = train(model, X, y, lr=lr, steps=steps, record_every=record_every,
                     diagnostics={"test": lambda m: _loss_per_network(m, X_test, y_test)})
        dW.append(diags["W"](model))
        dK.append(diags["K"](model))
        losses.append(hist.loss.mean(1))
        tests.append(hist.diagnostics["test"].mean(1))
        with torch.no_grad():
            final.append(_loss_per_network(model, X, y))
            final_test.append(_loss_per_network(model, X_test, y_test))
        t = hist.t
    weight_change, kernel_change = torch.stack(dW), torch.stack(dK)
    return WidthSweep(
        parametrization=parametrization, activation=activation, widths=widths,
        weight_change=weight_change, kernel_change=kernel_change, t=t,
        loss=torch.stack(losses), test_loss=torch.stack(tests), final_loss=torch.stack(final),
        final_test_loss=torch.stack(final_test),
        weight_fit=_fit(widths, weight_change), kernel_fit=_fit(widths, kernel_change),
        lr=float(lr), steps=steps, init=init)


def _init_network(d, N, activation, parametrization, n_networks, init, g, dev, dt) -> TwoLayer:
    if init == "standard":
        return TwoLayer(d, N, activation=activation, parametrization=parametrization,
                        n_networks=n_networks, generator=g, device=dev, dtype=dt)
    half = TwoLayer(d, N // 2, activation=activation, parametrization=parametrization,
                    n_networks=n_networks, generator=g, device=dev, dtype=dt)
    W, a = half.W.detach(), half.a.detach()
    return TwoLayer.from_params(torch.cat([W, W], 1), torch.cat([a, -a], 1),
                                activation=activation, parametrization=parametrization)


def _fit(widths, change: Tensor) -> SlopeFit:
    """Weighted fit of the ensemble means, unweighted where an ensemble has no spread."""
    est = mc_estimate(change.to(torch.float64), dim=1)
    if bool((est.stderr > 0).all()) and bool((est.mean > 0).all()):
        return fit_weighted_loglog_slope(widths, est.mean, est.stderr)
    return fit_loglog_slope(widths, est.mean)
