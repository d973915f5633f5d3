r"""The width-limit experiment: finite-:math:`M` training against the infinite-width network
trained by gradient descent with the exact kernel (:mod:`mfteach.resnet._kernel_limit`), with
the error's log-log slope against :math:`M` (the Monte Carlo rate :math:`M^{-1/2}`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._checks import (
    check_bool,
    check_budget,
    check_int,
    check_same_device_dtype,
    check_tensor,
    fail,
)
from ..device import resolve_device, resolve_dtype, spawn_generators
from ._experiments import _seed_slopes, _widths
from ._kernel_limit import kernel_resnet_output, kernel_trajectories, train_kernel_limit
from ._model import init_resnet, resnet_output, trajectories
from ._train import train

__all__ = ["WidthLimit", "width_limit"]


@dataclass(frozen=True)
class WidthLimit:
    r"""Trained finite-width ResNets against the trained infinite-width limit.

    Attributes
    ----------
    widths : list of int
        :math:`M`.
    X_test : Tensor, shape (n, d)
        Where the networks are compared.
    output_error : Tensor, shape (W, S)
        RMS over ``X_test`` and the coordinates of :math:`f_M - f_\infty`, per width and draw.
    trajectory_error : Tensor, shape (W, S)
        RMS over the blocks :math:`l = 1, \dots, L`, ``X_test`` and the coordinates of
        :math:`x_l^M - x_l^\infty` (the input state :math:`l = 0` is the same for both).
    loss : Tensor, shape (W, S)
        Final training loss at width :math:`M`.
    limit_loss : float
        Final training loss of the limit, whose outputs at ``X_test`` are
    limit_output : Tensor, shape (n, d)
    output_slope, output_stderr, trajectory_slope, trajectory_stderr : float
        Mean over the draws of each draw's least-squares slope of :math:`\log` error against
        :math:`\log M`, and its standard error (spread over the draws over
        :math:`\sqrt S`); theory: :math:`-1/2`.
    """

    widths: list
    X_test: Tensor
    output_error: Tensor
    trajectory_error: Tensor
    loss: Tensor
    limit_loss: float
    limit_output: Tensor
    output_slope: float
    output_stderr: float
    trajectory_slope: float
    trajectory_stderr: float


def _grid(X: Tensor, n_target: int = 100) -> Tensor:
    """A regular grid of about n_target points over the bounding box of X (n, d)."""
    d = X.shape[1]
    per = max(2, round(n_target ** (1.0 / d)))
    lo, hi = X.amin(0), X.amax(0)
    t = torch.linspace(0, 1, per, dtype=X.dtype, device=X.device)
    axes = [lo[i] + t * (hi[i] - lo[i]) for i in range(d)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)


def width_limit(X: Tensor, Y: Tensor, widths, *, depth: int = 8, q: int | None = None,
                bandwidth: float = 0.3, scheme: str = "midpoint", lr: float = 10.0,
                steps: int = 200, n_seeds: int = 5, X_test: Tensor | None = None,
                generator: int | torch.Generator, device: torch.device | str | None = None,
                dtype: torch.dtype | None = None, progress: bool = False) -> WidthLimit:
    r"""Train ``n_seeds`` ResNets with :math:`M` Gaussian random features per width (one
    batched program per width) and the kernel limit :func:`train_kernel_limit` on the same
    data, then compare outputs and trajectories: the error should fall like :math:`M^{-1/2}`.

    Parameters
    ----------
    X, Y : Tensor, shape (N, d)
        One training set, shared by every run.
    widths : sequence of int
        Increasing :math:`M`.
    depth, q, bandwidth, scheme, lr, steps
        As in :func:`init_resnet`, :func:`train` and :func:`train_kernel_limit`.
    n_seeds : int
        Feature draws per width, ``S >= 2``. The standard errors of the slopes come from the
        spread over the draws: use at least 5 for a z-test (the test suite does).

    Other Parameters
    ----------------
    X_test : Tensor, shape (n, d), optional
        Comparison points; by default a regular grid of about 100 points over the bounding
        box of ``X``.
    generator : int or torch.Generator
        One independent stream per width (:func:`mfteach.device.spawn_generators`,
        :class:`numpy.random.SeedSequence`).
    device, dtype
        Where to compute: those of ``X`` by default; when given, ``X``, ``Y`` and ``X_test``
        are moved there.
    progress : bool
        Show a tqdm bar over the widths.

    Returns
    -------
    WidthLimit

    Raises
    ------
    DivergenceError
        From a run whose loss blows up.
    TypeError, ValueError
        For bad arguments (one line naming the argument).

    Examples
    --------
    >>> from mfteach.resnet import toy_data
    >>> X, Y = toy_data(4, generator=0)
    >>> w = width_limit(X, Y, [16, 64], depth=2, steps=5, n_seeds=2, generator=0)
    >>> tuple(w.output_error.shape), tuple(w.X_test.shape)
    ((2, 2), (100, 2))
    """
    fn = "mfteach.resnet.width_limit"
    ws = _widths(widths, fn)
    check_tensor(X, "X", fn, ndim=2)
    N, d = X.shape
    check_tensor(Y, "Y", fn)
    if Y.shape != X.shape:
        fail("Y", fn, f"a tensor of shape ({N}, {d}) matching 'X'", Y)
    check_same_device_dtype(fn, X=X, Y=Y)
    if X_test is not None:
        check_tensor(X_test, "X_test", fn, shape=(None, d))
        check_same_device_dtype(fn, X=X, X_test=X_test)
    dev = X.device if device is None else resolve_device(device, fn)
    dt = X.dtype if dtype is None else resolve_dtype(dtype, fn)
    S = check_int(n_seeds, "n_seeds", fn, min=2)
    steps = check_int(steps, "steps", fn, min=1)
    L = check_int(depth, "depth", fn, min=1)
    check_bool(progress, "progress", fn)
    runs = {"steps": steps, "depth": L, "n_seeds": S}
    big = max(runs, key=lambda k: runs[k])
    check_budget(big, fn, runs[big], steps=steps * L * len(ws) * S)
    qq = d if q is None else check_int(q, "q", fn, min=1)
    sizes = {"widths": ws[-1], "n_seeds": S, "depth": L, "q": qq}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big], nbytes=dt.itemsize * S * (
        6.0 * L * qq * ws[-1] + 4.0 * L * N * (ws[-1] + qq) + 2.0 * L * N * N))
    X, Y = X.to(dev, dt), Y.to(dev, dt)
    if X_test is None:
        per = max(2, round(100 ** (1.0 / d)))
        check_budget("X", fn, d, nbytes=float(per) ** d * d * dt.itemsize * 4)
        X_test = _grid(X)
    X_test = X_test.to(dev, dt)
    gens = spawn_generators(generator, len(ws), fn=fn)
    lim = train_kernel_limit(X, Y, depth=depth, q=q, bandwidth=bandwidth, scheme=scheme,
                             lr=lr, steps=steps, record_every=steps)
    knet = lim.final
    f_inf = kernel_resnet_output(knet, X_test)  # (1, n, d)
    p_inf = kernel_trajectories(knet, X_test)[:, 1:]  # (1, L, n, q)
    out_err, traj_err, loss = [], [], []
    it = zip(ws, gens)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(list(it), desc="widths")
    for M, g in it:
        net = init_resnet(d, knet.q, M, knet.depth, bandwidth=bandwidth, scheme=scheme,
                          n_networks=S, generator=g, device=dev, dtype=dt)
        h = train(net, X, Y, lr=lr, steps=steps, record_every=steps)
        f = resnet_output(h.final, X_test)  # (S, n, d)
        p = trajectories(h.final, X_test)[:, 1:]  # (S, L, n, q)
        out_err.append((f - f_inf).square().mean((1, 2)).sqrt())
        traj_err.append((p - p_inf).square().mean((1, 2, 3)).sqrt())
        loss.append(h.loss[-1])
    oe, te = torch.stack(out_err), torch.stack(traj_err)
    if not (bool((oe > 0).all()) and bool((te > 0).all())):
        fail("Y", fn, "targets that training moves the networks towards (an error is 0, so "
             "no log-log slope exists)", Y)
    x = np.asarray(ws, dtype=np.float64)
    os_, ose = _seed_slopes(x, oe.detach().cpu().double().numpy())
    ts, tse = _seed_slopes(x, te.detach().cpu().double().numpy())
    return WidthLimit(widths=ws, X_test=X_test, output_error=oe, trajectory_error=te,
                      loss=torch.stack(loss), limit_loss=float(lim.loss[-1, 0]),
                      limit_output=f_inf[0], output_slope=os_, output_stderr=ose,
                      trajectory_slope=ts, trajectory_stderr=tse)

