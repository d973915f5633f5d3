r"""Lazy versus mean-field training of two-layer networks: the introduction chapter's experiments.

The same two-layer network :math:`f(x) = s_N \sum_{j=1}^N a_j \sigma(w_j\cdot x/\sqrt d)`
(:class:`mfteach.models.TwoLayer`) is trained by gradient descent in two parametrizations:

* ``"ntk"``: :math:`s_N = 1/\sqrt N`, learning rate :math:`\eta`. Every neuron moves by
  :math:`O(N^{-1/2})`, so :math:`\|W_t - W_0\|_F/\|W_0\|_F = O(N^{-1/2})` and the tangent
  kernel freezes as :math:`N \to \infty` (lazy training).
* ``"mf"``: :math:`s_N = 1/N`, learning rate :math:`\eta N`. Every neuron moves by
  :math:`O(1)` in the time :math:`t = \text{steps}\times\eta`, so the relative weight change
  and the relative kernel change stay :math:`O(1)` (mean-field, or feature-learning, regime).

This module measures those two relative changes over a ladder of widths with an ensemble of
networks per width (:func:`width_sweep`), fits the log-log slopes, records the neurons of one
network in the plane for the particle picture (:func:`particle_trajectory`), and draws the
chapter's figures. The predicted slopes are in :func:`predicted_slope`.

Introduced in the book in ``book/01_lazy_vs_meanfield.ipynb``.

References
----------
Jacot, Gabriel & Hongler (2018), "Neural Tangent Kernel", NeurIPS, arXiv:1806.07572, Thm. 2.
Lee et al. (2019), "Wide neural networks of any depth evolve as linear models under gradient
descent", NeurIPS, arXiv:1902.06720, Thm. 2.1 (weights and kernel move by :math:`O(N^{-1/2})`).
Chizat, Oyallon & Bach (2019), "On lazy training in differentiable programming", NeurIPS,
arXiv:1812.07956, Sec. 2 (the scale of the output decides lazy versus non-lazy).
Mei, Montanari & Nguyen (2018), "A mean field view of the landscape of two-layer neural
networks", PNAS, arXiv:1804.06561, Eqs. (1)-(7) (the :math:`1/N` scaling and the particle PDE).
Chizat & Bach (2018), "On the global convergence of gradient descent for over-parameterized
models using optimal transport", NeurIPS, arXiv:1805.09545 (particles as a measure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ._checks import (
    check_bool,
    check_budget,
    check_choice,
    check_float,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from .device import as_generator, resolve_device, resolve_dtype
from .models import TEACHER_KINDS, TwoLayer, _largest, teacher_data
from .stats import SlopeFit, fit_loglog_slope, mc_estimate
from .training import _check_lr, relative_change, relative_ntk_change, snapshot, train

__all__ = [
    "PARAMETRIZATIONS",
    "QUANTITIES",
    "ACTIVATIONS",
    "WidthSweep",
    "ParticleTrajectory",
    "predicted_slope",
    "output_scale",
    "frobenius_relative_change",
    "width_sweep",
    "particle_trajectory",
    "plot_loss_curves",
    "plot_width_scaling",
    "plot_particles",
    "plot_training",
]

PARAMETRIZATIONS = ("ntk", "mf")
"""The two parametrizations compared in the chapter."""

QUANTITIES = ("weights", "kernel")
"""What :func:`predicted_slope` predicts: relative change of ``W`` or of the tangent kernel."""

ACTIVATIONS = ("relu", "tanh", "erf")
"""Activations with a stated kernel-change exponent (ReLU non-smooth, the others smooth)."""

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
    to :math:`\sqrt{N^{1/2}}/N = N^{-3/4}`. These are heuristic counts. Measured over
    :math:`64 \le N \le 2048` (the chapter's sweep) the fitted slopes are about
    :math:`-0.83` (ReLU, the :math:`N^{-1}` part still visible) and :math:`-0.87` (tanh, not yet
    :math:`-1`); the tests check the ReLU value and the ordering. Introduced in the book in
    ``book/01_lazy_vs_meanfield.ipynb``.

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
    weight_fit, kernel_fit : SlopeFit
        Least-squares slopes of the log ensemble means against :math:`\log N`.
    lr : float
        Learning rate :math:`\eta` in the theory's units.
    steps : int
    """

    parametrization: str
    activation: str
    widths: tuple[int, ...]
    weight_change: Tensor
    kernel_change: Tensor
    t: Tensor
    loss: Tensor
    weight_fit: SlopeFit
    kernel_fit: SlopeFit
    lr: float
    steps: int

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
    :math:`\log \overline{\Delta}` against :math:`\log N` are fitted by least squares
    (:func:`mfteach.stats.fit_loglog_slope`).

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
    generator : int or torch.Generator
        Draws the data, then the networks width after width (an int seed draws on the CPU, so
        a seed gives the same numbers on every device). The same seed gives the same data and
        initial networks under both parametrizations (common random numbers).
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
    >>> s.weight_change.shape, s.loss.shape
    (torch.Size([3, 2]), torch.Size([3, 6]))
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
    check_bool(progress, "progress", fn)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    lr = _check_lr(lr, fn, dt, max(widths) if parametrization == "mf" else 1.0)
    _check_sizes(fn, widths=widths, n_networks=n_networks, n_samples=n_samples, d=d,
                 steps=steps, record_every=record_every, dt=dt)
    g = _generator(generator, dev, fn)
    X, y = teacher_data(n_samples, d, kind=kind, generator=g, device=dev, dtype=dt)
    dW, dK, losses, t = [], [], [], None
    it = widths
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(widths, desc=f"width sweep ({parametrization})")
    for N in it:
        model = TwoLayer(d, N, activation=activation, parametrization=parametrization,
                         n_networks=n_networks, generator=g, device=dev, dtype=dt)
        diags = {"W": relative_change(model, "W"), "K": relative_ntk_change(model, X)}
        hist = train(model, X, y, lr=lr, steps=steps, record_every=record_every)
        dW.append(diags["W"](model))
        dK.append(diags["K"](model))
        losses.append(hist.loss.mean(1))
        t = hist.t
    weight_change, kernel_change = torch.stack(dW), torch.stack(dK)
    return WidthSweep(
        parametrization=parametrization, activation=activation, widths=widths,
        weight_change=weight_change, kernel_change=kernel_change, t=t,
        loss=torch.stack(losses),
        weight_fit=fit_loglog_slope(widths, weight_change.mean(1)),
        kernel_fit=fit_loglog_slope(widths, kernel_change.mean(1)),
        lr=float(lr), steps=steps)


@dataclass(frozen=True)
class ParticleTrajectory:
    r"""The neurons :math:`(a_j, w_j)` of one network in the plane (:math:`d = 2`) over time.

    Attributes
    ----------
    parametrization : str
    width : int
    t : Tensor, shape (T,)
        Recorded times :math:`t = \text{step}\times\eta`.
    W : Tensor, shape (T, N, 2)
        Input weights :math:`w_j(t)`: the particle positions.
    a : Tensor, shape (T, N)
        Output weights :math:`a_j(t)`: the particle masses (signed).
    loss : Tensor, shape (T,)
    weight_change : float
        :math:`\|W_T - W_0\|_F/\|W_0\|_F` at the end.
    """

    parametrization: str
    width: int
    t: Tensor
    W: Tensor
    a: Tensor
    loss: Tensor
    weight_change: float


def particle_trajectory(width: int, parametrization: str, *, activation: str = "relu",
                        lr: float = 0.5, steps: int = 200, record_every: int = 10,
                        n_samples: int = 40, kind: str = "two_index",
                        generator: int | torch.Generator,
                        device: torch.device | str | None = None,
                        dtype: torch.dtype | None = None) -> ParticleTrajectory:
    r"""Train one network on a 2-D task and record its neurons as particles in the plane.

    The mean-field view writes the network as an average over particles,
    :math:`f(x) = \int a\,\sigma(w\cdot x/\sqrt d)\,\rho(da, dw)` with
    :math:`\rho = \frac1N\sum_j \delta_{(a_j, w_j)}`; gradient descent with the raw step
    :math:`\eta N` moves each particle along :math:`-\nabla_{(a,w)}` of the same potential
    (Mei, Montanari & Nguyen 2018, Eq. (7)). Under ``"ntk"`` the same network barely moves
    when :math:`N` is large.

    Parameters
    ----------
    width : int
        Number :math:`N` of neurons (particles).
    parametrization : {"ntk", "mf"}
    activation : {"relu", "tanh", "erf"}
    lr : float
        Learning rate :math:`\eta` in the theory's units.
    steps, record_every : int
        Gradient steps and the recording interval.
    n_samples : int
        Training points of the 2-D teacher task ``kind``.
    kind : str
        Teacher of :func:`mfteach.models.teacher_data`; ``"two_index"``
        (:math:`y = \mathrm{relu}(x_1) - \mathrm{relu}(x_2)`) by default.
    generator : int or torch.Generator
        Draws the data, then the network.
    device, dtype
        ``float64`` on the CPU by default.

    Returns
    -------
    ParticleTrajectory

    Raises
    ------
    TypeError, ValueError
        For bad arguments (an ``lr`` whose raw step is not representable in ``dtype``, sizes
        or a number of records beyond the size limits (CONTRIBUTING.md));
        :class:`mfteach.training.DivergenceError` if training diverges.

    Notes
    -----
    Introduced in the book in ``book/01_lazy_vs_meanfield.ipynb`` (the particle picture).

    Examples
    --------
    >>> traj = particle_trajectory(8, "mf", steps=20, record_every=10, generator=0)
    >>> traj.W.shape, traj.a.shape, traj.t.tolist()
    (torch.Size([3, 8, 2]), torch.Size([3, 8]), [0.0, 5.0, 10.0])
    """
    fn = _fn("particle_trajectory")
    width = check_int(width, "width", fn, min=1)
    check_choice(parametrization, "parametrization", fn, PARAMETRIZATIONS)
    check_choice(activation, "activation", fn, ACTIVATIONS)
    check_choice(kind, "kind", fn, TEACHER_KINDS)
    n_samples = check_int(n_samples, "n_samples", fn, min=1)
    lr = check_float(lr, "lr", fn, min=0.0, min_open=True)
    steps = check_int(steps, "steps", fn, min=1)
    record_every = check_int(record_every, "record_every", fn, min=1)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    lr = _check_lr(lr, fn, dt, width if parametrization == "mf" else 1.0)
    _largest(fn, dt.itemsize * (9.0 * width + 6.0 * n_samples * (width + 3)
                                + 5.0 * n_samples**2), width=width, n_samples=n_samples)
    check_budget("steps", fn, steps, steps=steps)
    # the snapshots of W (N, 2) and a (N,) at every record
    check_budget("record_every", fn, record_every, nbytes=(steps // record_every + 2)
                 * 3.0 * width * dt.itemsize)
    g = _generator(generator, dev, fn)
    X, y = teacher_data(n_samples, 2, kind=kind, generator=g, device=dev, dtype=dt)
    model = TwoLayer(2, width, activation=activation, parametrization=parametrization,
                     generator=g, device=dev, dtype=dt)
    hist = train(model, X, y, lr=lr, steps=steps, record_every=record_every,
                 diagnostics={"W": snapshot("W"), "a": snapshot("a")})
    W, a = hist.diagnostics["W"][:, 0], hist.diagnostics["a"][:, 0]  # (T, N, 2), (T, N)
    change = float(frobenius_relative_change(W[-1:], W[:1])[0])
    return ParticleTrajectory(parametrization=parametrization, width=width, t=hist.t, W=W,
                              a=a, loss=hist.loss[:, 0], weight_change=change)


# Figures ----------------------------------------------------------------------------------
_COLORS = {"ntk": "tab:blue", "mf": "tab:red"}
_LABELS = {"ntk": "NTK  ($s_N = N^{-1/2}$)", "mf": "mean-field  ($s_N = N^{-1}$)"}


def _np(x: Tensor) -> np.ndarray:
    return x.detach().cpu().to(torch.float64).numpy()


def _check_sweeps(sweeps, fn: str) -> list[WidthSweep]:
    if isinstance(sweeps, WidthSweep):
        sweeps = [sweeps]
    if not isinstance(sweeps, Sequence) or not sweeps or not all(
            isinstance(s, WidthSweep) for s in sweeps):
        fail("sweeps", fn, "a WidthSweep or a non-empty list of them", sweeps, exc=TypeError)
    for s in sweeps:
        for field in ("t", "loss", "weight_change", "kernel_change"):
            _check_drawable(getattr(s, field), "sweeps", fn, f"WidthSweep.{field}",
                            positive=field != "t")
        for fit in (s.weight_fit, s.kernel_fit):
            if not all(math.isfinite(v) for v in (fit.slope, fit.stderr, fit.intercept)):
                fail("sweeps", fn, "sweeps with finite fitted slopes", fit)
    return list(sweeps)


def _check_drawable(x: Tensor, name: str, fn: str, what: str, *,
                    positive: bool = False) -> None:
    """A result field about to be drawn: finite (and positive on a log axis), never a NaN
    that matplotlib would silently leave out."""
    if not isinstance(x, torch.Tensor) or not bool(torch.isfinite(x).all()):
        fail(name, fn, f"a result with finite {what}", x)
    if positive and not bool((x > 0).all()):
        fail(name, fn, f"a result with positive {what} (a logarithmic axis)", x)


def _check_ax(ax, fn: str) -> None:
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        fail("ax", fn, "a matplotlib Axes or None", ax, exc=TypeError)


def _check_traj(traj, fn: str, *, loss: bool = False) -> None:
    if not isinstance(traj, ParticleTrajectory):
        fail("traj", fn, "a ParticleTrajectory", traj, exc=TypeError)
    for field in ("t", "W", "a") + (("loss",) if loss else ()):
        _check_drawable(getattr(traj, field), "traj", fn, f"ParticleTrajectory.{field}",
                        positive=field == "loss")


def plot_loss_curves(sweeps: WidthSweep | Sequence[WidthSweep]):
    r"""Training loss against time :math:`t = \text{step}\times\eta`, one panel per sweep.

    Parameters
    ----------
    sweeps : WidthSweep or list of WidthSweep
        Typically the ``"ntk"`` and ``"mf"`` sweeps; one curve per width, darker for wider.

    Returns
    -------
    (fig, axes)
        A matplotlib ``Figure`` (not managed by pyplot) and its array of axes.
    """
    from matplotlib.figure import Figure

    sweeps = _check_sweeps(sweeps, _fn("plot_loss_curves"))
    fig = Figure(figsize=(4.6 * len(sweeps), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(sweeps), sharey=True))
    for ax, s in zip(axes, sweeps):
        shades = np.linspace(0.35, 1.0, len(s.widths))
        cmap = "Blues" if s.parametrization == "ntk" else "Reds"
        import matplotlib

        colors = matplotlib.colormaps[cmap](shades)
        for k, N in enumerate(s.widths):
            ax.plot(_np(s.t), _np(s.loss[k]), color=colors[k], label=f"N = {N}")
        ax.set_yscale("log")
        ax.set_xlabel(r"time $t = \mathrm{step}\times\eta$")
        ax.set_title(_LABELS[s.parametrization], fontsize=10)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("training loss (ensemble mean)")
    return fig, axes


def plot_width_scaling(sweeps: WidthSweep | Sequence[WidthSweep]):
    r"""Relative weight change and kernel change against width on log-log axes, with fits.

    Each sweep gives a series of ensemble means with standard-error bars, its fitted line
    (slope in the legend) and a dotted line with the predicted slope
    (:func:`predicted_slope`) through the widest point.

    Parameters
    ----------
    sweeps : WidthSweep or list of WidthSweep

    Returns
    -------
    (fig, axes)
        Two panels: weights (left), tangent kernel (right).
    """
    from matplotlib.figure import Figure

    sweeps = _check_sweeps(sweeps, _fn("plot_width_scaling"))
    fig = Figure(figsize=(9.5, 3.6), layout="constrained")
    axes = fig.subplots(1, 2)
    panels = (("weights", r"$\|W_T - W_0\|_F \,/\, \|W_0\|_F$"),
              ("kernel", r"$\|K_T - K_0\|_F \,/\, \|K_0\|_F$"))
    for ax, (q, ylabel) in zip(axes, panels):
        for s in sweeps:
            N = np.asarray(s.widths, dtype=float)
            mean = _np(s.weight_mean if q == "weights" else s.kernel_mean)
            err = _np(s.weight_stderr if q == "weights" else s.kernel_stderr)
            fit = s.weight_fit if q == "weights" else s.kernel_fit
            c = _COLORS[s.parametrization]
            ax.errorbar(N, mean, yerr=err, fmt="o", color=c, ms=4, capsize=2,
                        label=f"{s.parametrization}: slope {fit.slope:+.2f} ± {fit.stderr:.2f}")
            ax.plot(N, np.exp(fit.intercept) * N**fit.slope, "-", color=c, lw=1)
            p = predicted_slope(q, s.parametrization, s.activation)
            ax.plot(N, mean[-1] * (N / N[-1]) ** p, ":", color="k", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("width $N$")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8, title="dotted: theory", title_fontsize=8)
    return fig, axes


def plot_particles(traj: ParticleTrajectory, ax=None, *, trails: bool = True,
                   lim: float | None = None):
    r"""The particle picture: neurons :math:`w_j` in the plane, start and end, with trails.

    Initial positions are grey dots, grey lines are the paths :math:`w_j(t)`, and the final
    positions are drawn by ``mfteach.plotting.particles_2d`` (colour :math:`a_j`, area
    :math:`\propto |a_j|`) with the teacher directions :math:`e_1, e_2` of ``"two_index"``.

    Parameters
    ----------
    traj : ParticleTrajectory
    ax : matplotlib Axes, optional
        Drawn into a new figure (not managed by pyplot) when omitted.
    trails : bool
        Draw the paths.
    lim : float, optional
        Half-width of the square view; default from the data.

    Returns
    -------
    (fig, ax)

    Raises
    ------
    TypeError, ValueError
        If ``traj`` is not a :class:`ParticleTrajectory` or holds non-finite values, ``ax``
        is not an Axes, ``trails`` not a bool, or ``lim`` not a positive finite number.
    """
    from matplotlib.collections import LineCollection

    from .plotting import particles_2d

    fn = _fn("plot_particles")
    _check_traj(traj, fn)
    _check_ax(ax, fn)
    trails = check_bool(trails, "trails", fn)
    if lim is not None:
        lim = check_float(lim, "lim", fn, min=0.0, min_open=True)
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(4.6, 3.9), layout="constrained").add_subplot()
    W, a = _np(traj.W), _np(traj.a)
    if lim is None:
        lim = float(np.quantile(np.abs(W), 0.98)) * 1.15 + 1e-9
    if trails:
        paths = np.transpose(W, (1, 0, 2))  # (N, T, 2): one polyline per neuron
        ax.add_collection(LineCollection(paths, colors="0.65", linewidths=0.6, zorder=0))
    ax.scatter(W[0, :, 0], W[0, :, 1], s=5, color="0.55", zorder=1, label="start")
    fig, ax = particles_2d(W[-1], a[-1], directions=[[1.0, 0.0], [0.0, 1.0]], ax=ax,
                           xlabel="$w_{j1}$", ylabel="$w_{j2}$")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    # Plain text, not mathtext: a title that changes every frame would be re-parsed each time.
    ax.set_title(f"{traj.parametrization}, N={traj.width}, t={float(traj.t[-1]):g}: "
                 f"‖ΔW‖/‖W₀‖ = {traj.weight_change:.3f}", fontsize=8)
    ax.legend(fontsize=7, loc="lower left")
    return fig, ax


def plot_training(traj: ParticleTrajectory):
    """Loss curve (left) and particle picture (right) of one run: the live widget's figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    _check_traj(traj, _fn("plot_training"), loss=True)
    fig = Figure(figsize=(8.6, 3.7))  # fixed margins: a layout engine would double the cost
    ax_loss, ax_p = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    fig.subplots_adjust(left=0.09, right=0.97, bottom=0.14, top=0.9, wspace=0.3)
    ax_loss.plot(_np(traj.t), _np(traj.loss), color=_COLORS[traj.parametrization])
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel(r"time $t = \mathrm{step}\times\eta$")
    ax_loss.set_ylabel("training loss")
    plot_particles(traj, ax=ax_p)
    return fig
