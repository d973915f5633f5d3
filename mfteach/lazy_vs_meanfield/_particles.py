"""The particle picture of the introduction chapter: one network's neurons over time."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_budget, check_choice, check_float, check_int
from ..device import resolve_device, resolve_dtype
from ..models import TEACHER_KINDS, TwoLayer, _largest, teacher_data
from ..training import _check_lr, snapshot, train
from ._sweep import ACTIVATIONS, PARAMETRIZATIONS, _fn, _generator, frobenius_relative_change

__all__ = ["ParticleTrajectory", "particle_trajectory"]


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
