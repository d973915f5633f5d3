r"""The chapter's experiments: expressivity versus the number of features, training across the
threshold :math:`M = N`, the depth limit of a trained network, and its flow in the plane.

Every sweep trains or draws all seeds of one configuration as one batched program (leading
ensemble axis), and derives one independent stream per configuration with
:func:`mfteach.device.spawn_generators` (:class:`numpy.random.SeedSequence`), so any cell can
be recomputed alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
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
from ..stats import fit_loglog_slope
from ._features import FAMILIES, _phi, draw_features, feature_gram, feature_kernel
from ._model import SCHEMES, ResNet, _check_net, init_resnet, lift, project
from ._model import trajectories as _trajectories
from ._pl import lazy_prediction
from ._train import fit_log_rate, toy_data, train

__all__ = ["GramSpectrum", "gram_spectrum", "WidthSweep", "width_sweep", "DepthConvergence",
           "depth_convergence", "FlowGrid", "flow_grid"]


def _widths(widths, fn: str, name: str = "widths") -> list[int]:
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        fail(name, fn, "a sequence of positive ints", widths, exc=TypeError)
    out = [check_int(w, name, fn, min=1) for w in widths]
    if len(out) < 2 or sorted(set(out)) != out:
        fail(name, fn, "at least two distinct positive ints in increasing order", widths)
    return out


def _seed_slopes(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean and standard error over columns of the least-squares slope of log y on log x."""
    lx = np.log(x)
    ly = np.log(y)  # (W, S)
    xc = lx - lx.mean()
    slopes = (xc[:, None] * (ly - ly.mean(0))).sum(0) / (xc @ xc)
    se = float(slopes.std(ddof=1) / math.sqrt(slopes.size)) if slopes.size > 1 else 0.0
    return float(slopes.mean()), se


# ------------------------------------------------------------------------------------------
# Expressivity: the feature Gram versus M
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GramSpectrum:
    r"""The feature Gram :math:`K_M` at fixed data, against the kernel :math:`K`.

    Attributes
    ----------
    widths : list of int
        :math:`M`.
    n_points : int
        :math:`N`.
    lam_min : Tensor, shape (W, S)
        :math:`\lambda_{\min}(K_M)` per width and feature draw (0 to rounding below
        :math:`M = N`: the Gram has rank at most :math:`M`).
    lam_kernel : float
        :math:`\lambda_{\min}(K)`, the :math:`M \to \infty` limit.
    rank : Tensor, shape (W, S)
        Numerical rank of :math:`K_M`.
    rms_error : Tensor, shape (W, S)
        :math:`\|K_M - K\|_F/N`: falls like :math:`M^{-1/2}` (an average of :math:`M` i.i.d.
        rank-one terms).
    slope, slope_se : float
        Log-log slope of ``rms_error`` against :math:`M`, mean and standard error over draws.
    """

    widths: list
    n_points: int
    family: str
    lam_min: Tensor
    lam_kernel: float
    rank: Tensor
    rms_error: Tensor
    slope: float
    slope_se: float


def gram_spectrum(X: Tensor, widths, *, family: str = "gaussian", bandwidth: float = 0.3,
                  nu: float = 3.0, n_draws: int = 5,
                  generator: int | torch.Generator) -> GramSpectrum:
    r"""Draw ``n_draws`` feature sets per width and measure the Gram at ``X`` against the kernel.

    Parameters
    ----------
    X : Tensor, shape (N, q)
        The points (the lifted data).
    widths : sequence of int
        Increasing numbers of features :math:`M`.
    family, bandwidth, nu
        See :func:`mfteach.resnet.draw_features`.
    n_draws : int
        Independent feature draws per width (at least 2, for the slope's spread).
    generator : int or torch.Generator
        One independent stream per width is derived from it.

    Returns
    -------
    GramSpectrum

    Examples
    --------
    >>> X = torch.rand(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> s = gram_spectrum(X, [3, 12, 48], n_draws=3, generator=0)
    >>> s.rank[0].tolist(), bool(s.lam_min[-1].min() > 0)
    ([3, 3, 3], True)
    """
    fn = "mfteach.resnet.gram_spectrum"
    check_tensor(X, "X", fn, ndim=2)
    ws = _widths(widths, fn)
    check_choice(family, "family", fn, FAMILIES)
    S = check_int(n_draws, "n_draws", fn, min=2)
    N, q = X.shape
    big = "widths" if ws[-1] >= S else "n_draws"
    check_budget(big, fn, max(ws[-1], S), nbytes=4.0 * S * ws[-1] * (N + q) * X.dtype.itemsize)
    gens = spawn_generators(generator, len(ws), fn=fn)
    lam, rank, err = [], [], []
    K = None
    for M, g in zip(ws, gens):
        f = draw_features(q, M, family=family, bandwidth=bandwidth, nu=nu, n_networks=S,
                          generator=g, device=X.device, dtype=X.dtype)
        if K is None:
            K = feature_kernel(f, X)
        G = feature_gram(f, X)
        ev = torch.linalg.eigvalsh(G)
        tol = N * torch.finfo(X.dtype).eps * ev[:, -1:]
        lam.append(ev[:, 0])
        rank.append((ev > tol).sum(-1))
        err.append((G - K).square().sum((-1, -2)).sqrt() / N)
    err_t = torch.stack(err)
    slope, se = _seed_slopes(np.asarray(ws, float), err_t.cpu().double().numpy())
    return GramSpectrum(widths=ws, n_points=N, family=family, lam_min=torch.stack(lam),
                        lam_kernel=float(torch.linalg.eigvalsh(K)[0]), rank=torch.stack(rank),
                        rms_error=err_t, slope=slope, slope_se=se)


# ------------------------------------------------------------------------------------------
# Training across M = N
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WidthSweep:
    r"""Training at several widths :math:`M`, ``n_data`` data sets each, with the lazy
    prediction :eq:`rn-lazy` beside every run.

    Attributes
    ----------
    widths : list of int
    n_train : int
    lr : float
    step : Tensor, shape (T,)
    loss : Tensor, shape (W, T, S)
        Measured training loss.
    lazy_loss : Tensor, shape (W, T, S)
        The linearised prediction.
    pl_ratio : Tensor, shape (W, T, S)
    pl_floor0 : Tensor, shape (W, S)
        :math:`2\lambda_{\min}(K_M(Ax))/(LN)`.
    gram_min : Tensor, shape (W, S)
        :math:`\lambda_{\min}(K_M(Ax))`.
    rate, lazy_rate : Tensor, shape (W, S)
        Fitted late log-loss rate per step (:func:`mfteach.resnet.fit_log_rate`) of the
        network and of the lazy curve, on the same window (so that the fit's own bias, from
        modes that have not yet died out, cancels in their ratio).
    lazy_rho : Tensor, shape (W, S)
        The asymptotic lazy rate :math:`\rho` (0 below :math:`M = N`).
    plateau : Tensor, shape (W, S)
        Lazy plateau :math:`\mathcal{L}_\infty` (positive below :math:`M = N`).
    """

    widths: list
    n_train: int
    depth: int
    lr: float
    amplitude: float
    step: Tensor
    loss: Tensor
    lazy_loss: Tensor
    pl_ratio: Tensor
    pl_floor0: Tensor
    gram_min: Tensor
    rate: Tensor
    lazy_rate: Tensor
    lazy_rho: Tensor
    plateau: Tensor


def width_sweep(widths, *, n_train: int = 10, depth: int = 8, bandwidth: float = 0.3,
                family: str = "gaussian", nu: float = 3.0, scheme: str = "euler",
                amplitude: float = 0.1, min_distance: float = 0.4, lr: float = 10.0,
                steps: int = 300, record_every: int = 10, n_data: int = 5,
                generator: int | torch.Generator, device: torch.device | str | None = None,
                dtype: torch.dtype | None = None, progress: bool = False) -> WidthSweep:
    r"""Train ResNets with :math:`M` features on ``n_data`` toy data sets per width (one
    network per data set, all in one batch), and compute the lazy prediction beside each.

    The data are :func:`mfteach.resnet.toy_data` (``"sine"``, points at least
    ``min_distance`` apart, target amplitude ``amplitude``); the same data sets are used at
    every width.

    Parameters
    ----------
    widths : sequence of int
        Increasing :math:`M`, typically on both sides of :math:`N`.
    n_train : int
        :math:`N`.
    depth, bandwidth, family, nu, scheme
        See :func:`mfteach.resnet.init_resnet`.
    amplitude, min_distance
        See :func:`mfteach.resnet.toy_data`.
    lr, steps, record_every
        See :func:`mfteach.resnet.train`.
    n_data : int
        Data sets (and networks) per width, at least 2.

    Other Parameters
    ----------------
    generator : int or torch.Generator
        One stream for the data, one per width for the features.
    device, dtype
        CPU and float64 by default.
    progress : bool
        A progress bar over the widths.

    Returns
    -------
    WidthSweep

    Examples
    --------
    >>> sw = width_sweep([4, 64], n_train=6, depth=4, steps=40, n_data=2, generator=0)
    >>> tuple(sw.loss.shape), bool(sw.plateau[0].min() > 0), bool(sw.plateau[1].max() == 0)
    ((2, 5, 2), True, True)
    """
    fn = "mfteach.resnet.width_sweep"
    ws = _widths(widths, fn)
    N = check_int(n_train, "n_train", fn, min=1)
    L = check_int(depth, "depth", fn, min=1)
    steps = check_int(steps, "steps", fn, min=1)
    record_every = check_int(record_every, "record_every", fn, min=1)
    S = check_int(n_data, "n_data", fn, min=2)
    check_bool(progress, "progress", fn)
    dev = resolve_device(device, fn)
    dt = resolve_dtype(dtype, fn)
    # the late-window rate fit (fit_log_rate) needs 3 recorded steps k >= max(steps / 2, 1)
    lo = max(-(-steps // 2), 1)
    late = steps // record_every - (lo - 1) // record_every + (steps % record_every > 0)
    if late < 3:
        fail("record_every", fn, f"small enough to record at least 3 of the last half of the "
             f"{steps} 'steps' (the late-window rate fit)", record_every)
    sizes = {"widths": ws[-1], "n_train": N, "depth": L, "n_data": S}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big], nbytes=dt.itemsize * S * (
        12.0 * L * ws[-1] + 4.0 * L * N * (ws[-1] + 2) + 2.0 * L * N * N + 8.0 * N))
    runs = {"steps": steps, "depth": L, "n_data": S}
    big = max(runs, key=lambda k: runs[k])
    check_budget(big, fn, runs[big], steps=steps * len(ws) * L * S)
    gens = spawn_generators(generator, len(ws) + 1, fn=fn)
    data = [toy_data(N, 2, amplitude=amplitude, min_distance=min_distance, generator=g,
                     device=dev, dtype=dt)
            for g in spawn_generators(gens[0], S, fn=fn)]
    X = torch.stack([x for x, _ in data])
    Y = torch.stack([y for _, y in data])
    out: dict[str, list[Tensor]] = {k: [] for k in ("loss", "lazy", "pl", "floor", "gram",
                                                    "rate", "lazy_rate", "rho", "plateau")}
    it = zip(ws, gens[1:])
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(list(it), desc="widths")
    step = None
    for M, g in it:
        net = init_resnet(2, 2, M, L, family=family, bandwidth=bandwidth, nu=nu,
                          scheme=scheme, n_networks=S, generator=g, device=dev, dtype=dt)
        h = train(net, X, Y, lr=lr, steps=steps, record_every=record_every)
        lazy = lazy_prediction(net, X, Y, lr=lr, step=h.step)
        step = h.step
        out["loss"].append(h.loss)
        out["lazy"].append(lazy.loss)
        out["pl"].append(h.pl_ratio)
        out["floor"].append(h.pl_floor0)
        out["gram"].append(lazy.gram_min)
        out["rate"].append(fit_log_rate(h).rate)
        out["lazy_rate"].append(fit_log_rate(replace(h, loss=lazy.loss)).rate)
        out["rho"].append(lazy.rate)
        out["plateau"].append(lazy.plateau)
    st = {k: torch.stack(v) for k, v in out.items()}
    return WidthSweep(widths=ws, n_train=N, depth=L, lr=float(lr),
                      amplitude=float(amplitude), step=step, loss=st["loss"],
                      lazy_loss=st["lazy"], pl_ratio=st["pl"], pl_floor0=st["floor"],
                      gram_min=st["gram"], rate=st["rate"].to(dt),
                      lazy_rate=st["lazy_rate"].to(dt), lazy_rho=st["rho"],
                      plateau=st["plateau"])


# ------------------------------------------------------------------------------------------
# Depth limit of a trained network
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DepthConvergence:
    r"""Outputs and trajectories of one velocity field at increasing depths, against an
    accurate solution of the neural ODE.

    Attributes
    ----------
    depths : list of int
    error_output : dict of str to Tensor, shape (len(depths),)
        Per scheme: :math:`\max_n |f_L(x_n) - f_\infty(x_n)|`.
    error_path : dict of str to Tensor, shape (len(depths),)
        Per scheme: the largest state error over the layers :math:`s = l/L` and points.
    order, order_se : dict of str to float
        Fitted log-log slope (sign flipped) of ``error_output`` and its OLS standard error.
    """

    depths: list
    error_output: dict
    error_path: dict
    order: dict
    order_se: dict


def _velocity_blocks(net: ResNet) -> Tensor:
    """U (B, L0, q, M), read as the values of a velocity at the block midpoints."""
    return net.U.detach()


def _interp_U(U: Tensor, s: Tensor) -> Tensor:
    """Piecewise-linear interpolation in depth of blocks U (B, L0, q, M) given at
    s_l = (l + 1/2)/L0, constant beyond the first and last midpoints: (B, len(s), q, M)."""
    L0 = U.shape[1]
    pos = (s * L0 - 0.5).clamp(0, L0 - 1)
    lo = pos.floor().long().clamp(max=L0 - 1)
    hi = (lo + 1).clamp(max=L0 - 1)
    w = (pos - lo.to(pos.dtype))[None, :, None, None]
    return U[:, lo] * (1 - w) + U[:, hi] * w


def depth_convergence(net: ResNet, X: Tensor, depths, *, schemes=SCHEMES,
                      rtol: float = 1e-12) -> DepthConvergence:
    r"""Discretise the velocity of a trained network at other depths and compare with an
    accurate solution of :math:`\dot x = U(s)\phi(x)`.

    The blocks of ``net`` (depth :math:`L_0`) are read as samples of a velocity at the block
    midpoints :math:`s = (l + \frac12)/L_0`, linearly interpolated in between (as the
    authors interpolate their blocks in depth). A ResNet of depth :math:`L` takes
    :math:`U_l = U(l/L)` (Euler) or :math:`U((l + \frac12)/L)` (midpoint); the reference is
    ``scipy.integrate.solve_ivp`` (DOP853, ``rtol``) on each linear piece. With :math:`L` a
    multiple of :math:`2L_0` the kinks of :math:`U(s)` fall on block boundaries, so the
    schemes keep their orders :math:`L^{-1}` and :math:`L^{-2}`.

    Parameters
    ----------
    net : ResNet
        A single network (``n_networks == 1``), e.g. ``train(...).final``.
    X : Tensor, shape (n, d)
    depths : sequence of int
        Increasing multiples of ``2 * net.depth``.
    schemes : sequence of str
    rtol : float

    Returns
    -------
    DepthConvergence

    Examples
    --------
    >>> from mfteach.resnet import init_resnet, toy_data, train
    >>> X, Y = toy_data(5, generator=0)
    >>> net = train(init_resnet(2, 2, 16, 2, bandwidth=0.5, generator=1), X, Y, lr=5.0,
    ...             steps=10).final
    >>> c = depth_convergence(net, X, [4, 8, 16])
    >>> c.order["euler"] > 0.7 and c.order["midpoint"] > 1.7
    True
    """
    from scipy.integrate import solve_ivp

    fn = "mfteach.resnet.depth_convergence"
    _check_net(net, fn)
    if net.n_networks != 1:
        fail("net", fn, "a single network (n_networks == 1)", f"{net.n_networks} networks")
    check_tensor(X, "X", fn, shape=(None, net.d))
    Ls = _widths(depths, fn, "depths")
    L0 = net.depth
    if any(L % (2 * L0) for L in Ls):
        fail("depths", fn, f"multiples of 2 * net.depth = {2 * L0} (so that the kinks of the "
             "interpolated velocity fall on block boundaries)", depths)
    if isinstance(schemes, str):
        schemes = (schemes,)
    for s in schemes:
        check_choice(s, "schemes", fn, SCHEMES)
    rtol = check_float(rtol, "rtol", fn, min=1e-14, max=1e-3)
    U = _velocity_blocks(net).to("cpu", torch.float64)
    feats = net.feats
    fc = type(feats)(feats.family, feats.omega.to("cpu", torch.float64),
                     feats.phase.to("cpu", torch.float64), feats.bandwidth, feats.nu)
    x0 = lift(X.detach().to("cpu", torch.float64), net.q)
    n, q = x0.shape
    Lmax = Ls[-1]
    # Reference states at s = k / Lmax (all coarser grids are subsets).
    grid = np.arange(Lmax + 1) / Lmax
    knots = np.unique(np.concatenate([[0.0, 1.0], (np.arange(L0) + 0.5) / L0]))

    def rhs(s, y):
        x = torch.as_tensor(y, dtype=torch.float64).reshape(1, n, q)
        Us = _interp_U(U, torch.tensor([s], dtype=torch.float64))[:, 0]  # (1, q, M)
        return (_phi(fc, x) @ Us.transpose(-1, -2)).reshape(-1).numpy()

    ref = [x0.reshape(-1).numpy()]
    y = ref[0]
    for a, b in zip(knots[:-1], knots[1:]):
        inside = grid[(grid > a + 1e-15) & (grid < b - 1e-15)]
        ts = np.concatenate([inside, [b]])
        sol = solve_ivp(rhs, (a, b), y, method="DOP853", rtol=rtol, atol=rtol * 1e-2,
                        t_eval=ts)
        if not sol.success:
            fail("net", fn, "a velocity field the reference solver can integrate",
                 sol.message)
        on_grid = np.isclose(ts, grid[np.searchsorted(grid, ts - 1e-12).clip(max=Lmax)],
                             rtol=0, atol=1e-12)
        ref.extend(sol.y.T[on_grid])
        y = sol.y[:, -1]
    ref_t = torch.as_tensor(np.stack(ref), dtype=torch.float64).reshape(Lmax + 1, n, q)
    err_out: dict[str, Tensor] = {}
    err_path: dict[str, Tensor] = {}
    order: dict[str, float] = {}
    order_se: dict[str, float] = {}
    for scheme in schemes:
        eo, ep = [], []
        shift = 0.0 if scheme == "euler" else 0.5
        for L in Ls:
            s = (torch.arange(L, dtype=torch.float64) + shift) / L
            net_L = ResNet(fc, _interp_U(U, s), net.d, scheme)
            path = _trajectories(net_L, X.detach().to("cpu", torch.float64))[0]
            sub = ref_t[:: Lmax // L]
            eo.append(float((project(path[-1], net.d) - project(sub[-1], net.d)).abs().max()))
            ep.append(float((path - sub).abs().max()))
        err_out[scheme] = torch.tensor(eo, dtype=torch.float64)
        err_path[scheme] = torch.tensor(ep, dtype=torch.float64)
        fit = fit_loglog_slope(Ls, eo)
        order[scheme] = -fit.slope
        order_se[scheme] = fit.stderr
    return DepthConvergence(depths=Ls, error_output=err_out, error_path=err_path, order=order,
                            order_se=order_se)


# ------------------------------------------------------------------------------------------
# The learned flow in the plane
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlowGrid:
    r"""A grid of lines and the data carried through the blocks of a 2-D network.

    Attributes
    ----------
    depth_s : Tensor, shape (L + 1,)
        :math:`s = l/L`.
    lines : Tensor, shape (L + 1, 2 * n_lines, n_points, 2)
        Horizontal then vertical grid lines at every layer (first two state coordinates).
    points : Tensor, shape (L + 1, n, 2)
        The data's trajectories.
    """

    depth_s: Tensor
    lines: Tensor
    points: Tensor


def flow_grid(net: ResNet, X: Tensor, *, n_lines: int = 11, n_points: int = 41,
              margin: float = 0.15, network: int = 0) -> FlowGrid:
    r"""Push a square grid (the data's bounding box plus ``margin``) and the data through
    the blocks of one network of the ensemble.

    Examples
    --------
    >>> from mfteach.resnet import init_resnet, toy_data
    >>> X, _ = toy_data(5, generator=0)
    >>> g = flow_grid(init_resnet(2, 2, 8, 4, generator=1), X, n_lines=3, n_points=5)
    >>> tuple(g.lines.shape), bool(torch.equal(g.lines[0], g.lines[-1]))  # U = 0: identity
    ((5, 6, 5, 2), True)
    """
    fn = "mfteach.resnet.flow_grid"
    _check_net(net, fn)
    check_tensor(X, "X", fn, shape=(None, net.d))
    if net.d != 2:
        fail("net", fn, "a network on the plane (d == 2)", f"d = {net.d}")
    nl = check_int(n_lines, "n_lines", fn, min=2, max=200)
    npt = check_int(n_points, "n_points", fn, min=2, max=2000)
    margin = check_float(margin, "margin", fn, min=0.0)
    b = check_int(network, "network", fn, min=0, max=net.n_networks - 1)
    one = net.replace(U=net.U[b:b + 1], feats=type(net.feats)(
        net.feats.family, net.feats.omega[b:b + 1], net.feats.phase[b:b + 1],
        net.feats.bandwidth, net.feats.nu))
    lo = X.detach().amin(0) - margin
    hi = X.detach().amax(0) + margin
    t = torch.linspace(0, 1, npt, dtype=X.dtype, device=X.device)
    c = torch.linspace(0, 1, nl, dtype=X.dtype, device=X.device)
    hor = torch.stack(torch.broadcast_tensors(lo[0] + (hi[0] - lo[0]) * t[None, :],
                                              lo[1] + (hi[1] - lo[1]) * c[:, None]), -1)
    ver = torch.stack(torch.broadcast_tensors(lo[0] + (hi[0] - lo[0]) * c[:, None],
                                              lo[1] + (hi[1] - lo[1]) * t[None, :]), -1)
    pts = torch.cat([hor, ver]).reshape(-1, 2)
    with torch.no_grad():
        path = _trajectories(one, torch.cat([pts, X.detach()]))[0][..., :2]  # (L+1, P, 2)
    L = net.depth
    lines = path[:, : pts.shape[0]].reshape(L + 1, 2 * nl, npt, 2)
    return FlowGrid(depth_s=torch.arange(L + 1, dtype=X.dtype, device=X.device) / L,
                    lines=lines, points=path[:, pts.shape[0]:])
