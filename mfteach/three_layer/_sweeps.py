r"""Sweeps of the chapter: neurons as functions as :math:`m_1` grows, and held-out error.

* :func:`neuron_covariance`: at :math:`\alpha = 1/2` the initial neurons are i.i.d. draws of a
  random function; their empirical covariance over :math:`i` estimates the Gaussian-process
  covariance :math:`k_1` (:func:`mfteach.three_layer.feature_kernel`).
* :func:`neuron_limit`: the trained neuron functions :math:`h_i(\cdot)` at a ladder of
  first-layer widths :math:`m_1` with everything else fixed (the same data, the same
  :math:`c_i`, nested features :math:`\theta_j`). Under ``"mf_one"`` a neuron is
  :math:`h_i = \frac1{m_1}\sum_j z_i(\theta_j)\phi_j` for an :math:`O(1)` function
  :math:`z_i(\theta)` of the feature, a Monte-Carlo average over :math:`\theta`: its trained
  curve converges pathwise to the function-space limit
  :math:`h_i(x) = \mathbb E_\theta[z_i(\theta)\sigma_1(\theta^\top x)]` at the rate
  :math:`m_1^{-1/2}`. (Under ``"mf_half"`` the initial :math:`h_i` is a
  :math:`m_1^{-1/2}`-scaled sum that converges only in law, so there is no pathwise limit to
  measure; its convergence is that of :func:`neuron_covariance`.)
* :func:`generalization_sweep`: the final training and held-out losses of the scalings over a
  ladder of training-set sizes :math:`N`, with the [REC] Rademacher template of
  ``mfteach.three_layer.History.rademacher``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import (
    check_bool,
    check_budget,
    check_choice,
    check_float,
    check_int,
    fail,
)
from ..device import resolve_device, resolve_dtype, spawn_generators
from ..stats import SlopeFit, fit_loglog_slope
from ._data import TARGETS, great_circle, sphere_data
from ._kernels import feature_kernel
from ._model import (
    ThreeLayer,
    _batched_inputs,
    _check_net,
    _neurons,
    features,
    get_scaling,
    init_three_layer,
)
from ._train import train

__all__ = ["NeuronCovariance", "neuron_covariance", "NeuronLimit", "neuron_limit",
           "GeneralizationSweep", "generalization_sweep", "VARIANTS", "DEFAULT_DT"]


@dataclass(frozen=True)
class NeuronCovariance:
    r"""The covariance of the neuron functions over neurons, against the random-feature
    kernel.

    Attributes
    ----------
    empirical : Tensor, shape (B, n, n)
        :math:`\hat C(x, x') = \frac1{m_2}\sum_i h_i(x)h_i(x')`.
    k1_hat : Tensor, shape (B, n, n)
        The finite-feature kernel :math:`\hat k_1 = \frac1{m_1}\Phi\Phi^\top`.
    theory : Tensor, shape (n, n) or (B, n, n), or None
        The closed form :math:`k_1` (:func:`mfteach.three_layer.feature_kernel`) for ReLU
        features, ``None`` for other features.
    stderr : Tensor, shape (B, n, n)
        The standard error of :math:`\hat C - k_1` at initialisation under
        :math:`\alpha = 1/2`: :math:`\big((\hat k_1(x,x)\hat k_1(x',x') + \hat k_1(x,x')^2)/m_2
        + \widehat{\mathrm{Var}}_j[\phi_j(x)\phi_j(x')]/m_1\big)^{1/2}` (Isserlis' theorem
        for the Gaussian neurons given the features, plus the feature sample).
    """

    empirical: Tensor
    k1_hat: Tensor
    theory: Tensor | None
    stderr: Tensor

    @property
    def z_scores(self) -> Tensor:
        r""":math:`|\hat C - k_1|` in standard errors, shape (B, n, n) (needs ``theory``)."""
        if self.theory is None:
            fail("theory", "mfteach.three_layer.NeuronCovariance.z_scores",
                 "the closed-form k1 (ReLU features)", None)
        return (self.empirical - self.theory).abs() / self.stderr


def neuron_covariance(net: ThreeLayer, X: Tensor) -> NeuronCovariance:
    r"""Empirical covariance of the neuron functions over neurons,
    :math:`\hat C(x, x') = \frac1{m_2}\sum_i h_i(x)h_i(x')`, with the kernel it estimates.

    At initialisation under ``"mf_half"`` (:math:`\alpha = 1/2`, :math:`z_{ij} \sim N(0, 1)`)
    the :math:`h_i` are i.i.d. given the features, Gaussian with covariance
    :math:`\hat k_1(x, x') = \frac1{m_1}\sum_j\phi_j(x)\phi_j(x')`, which tends to
    :math:`k_1`: so :math:`\hat C \to k_1` with errors :math:`O(m_2^{-1/2}) + O(m_1^{-1/2})`,
    estimated in ``NeuronCovariance.stderr``.

    Parameters
    ----------
    net : ThreeLayer
    X : Tensor, shape (n, d) or (B, n, d)

    Returns
    -------
    NeuronCovariance

    Examples
    --------
    >>> from mfteach.three_layer import init_three_layer
    >>> net = init_three_layer(3, 32, 16, generator=0)
    >>> neuron_covariance(net, torch.eye(3, dtype=torch.float64)).empirical.shape
    torch.Size([1, 3, 3])
    """
    fn = "mfteach.three_layer.neuron_covariance"
    _check_net(net, fn)
    Xb = _batched_inputs(net, X, fn)
    B, n = Xb.shape[:2]
    check_budget("X", fn, n, nbytes=2.0 * B * n * n * net.m1 * Xb.dtype.itemsize)
    Phi = features(Xb, net.theta, net.sigma1)  # (B, n, m1)
    H = _neurons(net, Phi)  # (B, n, m2)
    C = H @ H.transpose(-1, -2) / net.m2
    prod = Phi.unsqueeze(-2) * Phi.unsqueeze(-3)  # (B, n, n, m1)
    k1_hat = prod.mean(-1)
    var_phi = prod.var(-1) / net.m1 if net.m1 > 1 else torch.zeros_like(k1_hat)
    dg = torch.diagonal(k1_hat, dim1=-2, dim2=-1)
    var_h = (dg.unsqueeze(-1) * dg.unsqueeze(-2) + k1_hat.square()) / net.m2
    theory = feature_kernel(X) if net.sigma1.name == "relu" else None
    return NeuronCovariance(empirical=C, k1_hat=k1_hat, theory=theory,
                            stderr=(var_h + var_phi).sqrt())


@dataclass(frozen=True)
class NeuronLimit:
    r"""Trained neuron functions on a 1-D slice at a ladder of first-layer widths.

    Attributes
    ----------
    scaling : str
    m1s : tuple of int
        Increasing first-layer widths; the last is the reference.
    m2 : int
    slice_s : Tensor, shape (S,)
        Coordinates of the slice (:func:`mfteach.three_layer.great_circle`).
    h : Tensor, shape (W, B, n_show, S)
        The first ``n_show`` neurons at the end of training, per width and seed.
    distance : Tensor, shape (W - 1, B)
        RMS over all :math:`m_2` neurons and the slice of :math:`h_i^{(m_1)}(T) -
        h_i^{(m_1^{\max})}(T)`.
    fit : SlopeFit
        Log-log slope of the seed-mean distance against :math:`m_1`.
    slopes : Tensor, shape (B,)
        The slope fitted separately for each seed.
    """

    scaling: str
    m1s: tuple[int, ...]
    m2: int
    slice_s: Tensor
    h: Tensor
    distance: Tensor
    fit: SlopeFit
    slopes: Tensor

    @property
    def slope_mean(self) -> float:
        return float(self.slopes.mean())

    @property
    def slope_std(self) -> float:
        """Spread (sample standard deviation) of the per-seed slopes."""
        return float(self.slopes.std()) if self.slopes.numel() > 1 else 0.0


def _ladder(values, name: str, fn: str, *, n_min: int, min_value: int = 1) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        fail(name, fn, f"a list of at least {n_min} increasing ints >= {min_value}", values,
             exc=TypeError)
    vs = tuple(check_int(v, name, fn, min=min_value) for v in values)
    if len(vs) < n_min or any(b <= a for a, b in zip(vs, vs[1:])):
        fail(name, fn, f"a list of at least {n_min} increasing ints >= {min_value}", values)
    return vs


def neuron_limit(m1s: Sequence[int], *, scaling: str = "mf_one", m2: int = 50,
                 n_seeds: int = 5, d: int = 10, n_train: int = 10, dt: float = 1.0,
                 steps: int = 200, target: str = "single_index", n_slice: int = 129,
                 n_show: int = 4, generator: int | torch.Generator,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 progress: bool = False) -> NeuronLimit:
    r"""Train the same networks at first-layer widths ``m1s`` and compare the neuron functions.

    Seed :math:`b` uses one data set and one draw of the widest network at every width; the
    width-:math:`m_1` network keeps its first :math:`m_1` features (and the matching columns
    of :math:`z`), so the widths differ only in how many features the Monte-Carlo average
    over :math:`\theta` uses. Under ``"mf_one"`` the distance to the widest network falls like
    :math:`m_1^{-1/2}` (slope :math:`-1/2`, while :math:`m_1 \ll m_1^{\max}`).

    Parameters
    ----------
    m1s : sequence of int
        At least 4 increasing widths (the last is the reference, the others are fitted).
    scaling : {"mf_half", "mf_one", "ntk"}

    Other Parameters
    ----------------
    m2, n_seeds, d, n_train, dt, steps, target, n_slice, n_show
        As in :func:`mfteach.three_layer.run` (``n_seeds`` networks, at least 2).
    generator : int or torch.Generator
    device, dtype
        CPU and ``float64`` by default.

    Returns
    -------
    NeuronLimit
    """
    fn = "mfteach.three_layer.neuron_limit"
    ws = _ladder(m1s, "m1s", fn, n_min=4)
    sc = get_scaling(scaling, fn)
    m2 = check_int(m2, "m2", fn, min=1)
    n_seeds = check_int(n_seeds, "n_seeds", fn, min=2)
    d = check_int(d, "d", fn, min=2)
    n_train = check_int(n_train, "n_train", fn, min=1)
    dt = check_float(dt, "dt", fn, min=0.0, min_open=True)
    steps = check_int(steps, "steps", fn, min=0)
    check_choice(target, "target", fn, TARGETS)
    n_slice = check_int(n_slice, "n_slice", fn, min=2)
    n_show = check_int(n_show, "n_show", fn, min=1, max=m2)
    check_bool(progress, "progress", fn)
    dev = resolve_device(device, fn)
    dt_ = resolve_dtype(dtype, fn)
    M, N, S = ws[-1], n_train, n_slice
    sizes = {"m1s": M, "m2": m2, "n_seeds": n_seeds, "d": d, "n_train": N, "n_slice": S}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big], nbytes=dt_.itemsize * n_seeds * (
        3.0 * M * (d + m2) + 4.0 * M * m2 + (N + S) * (M + 4.0 * m2) + 6.0 * N * N
        + len(ws) * n_show * S))
    check_budget("steps", fn, steps, steps=float(steps) * len(ws))
    g_data, g_net = spawn_generators(generator, 2, "cpu", fn)
    X, y = sphere_data(N, d, n_sets=n_seeds, target=target, generator=g_data, device=dev,
                       dtype=dt_)
    widest = init_three_layer(d, M, m2, scaling=sc.name, n_networks=n_seeds,
                              generator=g_net, device=dev, dtype=dt_)
    s, Xs = great_circle(S, d, device=dev, dtype=dt_)
    hs = []
    for m in ws:
        net = widest.replace(theta=widest.theta[:, :m].contiguous(),
                             z=widest.z[:, :, :m].contiguous())
        h = train(net, X, y, dt=dt, steps=steps, record_every=steps or 1, progress=progress)
        hs.append(_neurons(h.final, features(Xs.expand(n_seeds, S, d), h.final.theta,
                                             h.final.sigma1)))  # (B, S, m2)
    ref = hs[-1]
    dist = torch.stack([(hm - ref).square().mean((-1, -2)).sqrt() for hm in hs[:-1]])
    dd = dist.detach().to("cpu", torch.float64).numpy()
    fit = fit_loglog_slope(ws[:-1], dd.mean(1))
    slopes = torch.tensor([fit_loglog_slope(ws[:-1], dd[:, b]).slope for b in range(n_seeds)],
                          dtype=torch.float64)
    shown = torch.stack([hm[..., :n_show].transpose(-1, -2) for hm in hs])
    return NeuronLimit(scaling=sc.name, m1s=ws, m2=m2, slice_s=s, h=shown, distance=dist,
                       fit=fit, slopes=slopes)


VARIANTS: tuple[str, ...] = ("mf_half", "mf_one", "ntk", "ntk_antisymmetric")
"""What :func:`generalization_sweep` compares: the three scalings, and ``"ntk"`` from the
mirror-pair initialisation (:math:`f_0 = 0`), which separates the cost of the random
initial function from the absence of feature learning."""


DEFAULT_DT: dict[str, float] = {"mf_half": 1.0, "mf_one": 1.0, "ntk": 2.5,
                                "ntk_antisymmetric": 2.5}
"""Euler steps of :func:`generalization_sweep` per variant (Euler numbers 0.6-0.75)."""


@dataclass(frozen=True)
class GeneralizationSweep:
    r"""Final losses of the variants over a ladder of training-set sizes.

    Attributes
    ----------
    variants : tuple of str
        From ``VARIANTS``.
    dt : dict of str to float
        The Euler step of each variant (training time ``steps * dt``).
    n_trains : tuple of int
    train_loss, test_loss : Tensor, shape (V, W, B)
        At the end of training, per variant, size and seed (seed :math:`b` uses the same
        data under every variant).
    rademacher : Tensor, shape (V, W, B)
        The [REC] template ``mfteach.three_layer.History.rademacher`` at the end.
    z_norm : Tensor, shape (V, W, B)
        ``mfteach.three_layer.History.z_norm`` at the end.
    """

    variants: tuple[str, ...]
    dt: dict[str, float]
    n_trains: tuple[int, ...]
    train_loss: Tensor
    test_loss: Tensor
    rademacher: Tensor
    z_norm: Tensor

    def mean_and_error(self, field: str = "test_loss") -> tuple[Tensor, Tensor]:
        """Seed mean and its standard error of ``field``, each of shape (V, W)."""
        fn = "mfteach.three_layer.GeneralizationSweep.mean_and_error"
        check_choice(field, "field", fn, ("train_loss", "test_loss", "rademacher", "z_norm"))
        v = getattr(self, field).detach().to("cpu", torch.float64)
        B = v.shape[-1]
        return v.mean(-1), v.std(-1) / B ** 0.5


def generalization_sweep(n_trains: Sequence[int], *, variants: Sequence[str] = VARIANTS,
                         m1: int = 500, m2: int = 100, d: int = 5, n_test: int = 200,
                         n_seeds: int = 5, dt: float | Mapping[str, float] | None = None,
                         steps: int = 400,
                         target: str = "single_index", generator: int | torch.Generator,
                         device: torch.device | str | None = None,
                         dtype: torch.dtype | None = None,
                         progress: bool = False) -> GeneralizationSweep:
    r"""Train every variant on :math:`N` points for each :math:`N` in ``n_trains`` and record
    the final training and held-out losses.

    Seed :math:`b` draws one pool of ``max(n_trains) + n_test`` points; size :math:`N` trains
    on its first :math:`N` and every size tests on the same last ``n_test`` (nested training
    sets, one test set). The networks are drawn once per seed and variant.

    Parameters
    ----------
    n_trains : sequence of int
        At least 2 increasing training-set sizes.
    variants : sequence of str
        A subset of ``VARIANTS``.

    Other Parameters
    ----------------
    m1, m2, d, n_test, n_seeds, steps, target
        As in :func:`mfteach.three_layer.run` (``m2`` even for ``"ntk_antisymmetric"``).
    dt : float or dict of str to float, optional
        The Euler step, one for all or one per variant; by default ``DEFAULT_DT`` (the
        NTK kernel is about 3 times smaller, so the same Euler number allows a 2.5 times
        longer step: every variant then runs near Euler number 0.6-0.75).
    generator : int or torch.Generator
    device, dtype
        CPU and ``float64`` by default.

    Returns
    -------
    GeneralizationSweep
    """
    fn = "mfteach.three_layer.generalization_sweep"
    ns = _ladder(n_trains, "n_trains", fn, n_min=2)
    if isinstance(variants, (str, bytes)) or not isinstance(variants, Sequence) or \
            not variants:
        fail("variants", fn, f"a non-empty list of names from {VARIANTS}", variants,
             exc=TypeError)
    vs = tuple(check_choice(v, "variants", fn, VARIANTS) for v in variants)
    m1 = check_int(m1, "m1", fn, min=1)
    m2 = check_int(m2, "m2", fn, min=1)
    if "ntk_antisymmetric" in vs and m2 % 2:
        fail("m2", fn, "an even int for the 'ntk_antisymmetric' variant", m2)
    d = check_int(d, "d", fn, min=2)
    n_test = check_int(n_test, "n_test", fn, min=1)
    n_seeds = check_int(n_seeds, "n_seeds", fn, min=2)
    if dt is None:
        dt = DEFAULT_DT
    if isinstance(dt, Mapping):
        missing = [v for v in vs if v not in dt]
        if missing:
            fail("dt", fn, f"a float or a dict with a step for every variant (missing "
                 f"{missing})", dt)
        dts = {v: check_float(dt[v], "dt", fn, min=0.0, min_open=True) for v in vs}
    else:
        step = check_float(dt, "dt", fn, min=0.0, min_open=True)
        dts = {v: step for v in vs}
    steps = check_int(steps, "steps", fn, min=0)
    check_choice(target, "target", fn, TARGETS)
    check_bool(progress, "progress", fn)
    dev = resolve_device(device, fn)
    dt_ = resolve_dtype(dtype, fn)
    N, P = ns[-1], n_test
    sizes = {"n_trains": N, "m1": m1, "m2": m2, "n_seeds": n_seeds, "d": d, "n_test": P}
    big = max(sizes, key=lambda k: sizes[k])
    check_budget(big, fn, sizes[big], nbytes=dt_.itemsize * n_seeds * (
        3.0 * (N + P) * (d + 1) + 3.0 * (m1 * (d + m2) + m2) + 4.0 * m1 * m2
        + (N + P) * (m1 + 4.0 * m2) + 6.0 * N * N))
    check_budget("steps", fn, steps, steps=float(steps) * len(ns) * len(vs))
    g_data, g_net = spawn_generators(generator, 2, "cpu", fn)
    X, y = sphere_data(N + P, d, n_sets=n_seeds, target=target, generator=g_data,
                       device=dev, dtype=dt_)
    Xt, yt = X[:, N:], y[:, N:]
    # Common random numbers: every variant draws its networks from the same seed (the
    # alpha = 1/2 variants then share theta, z and c; the mirror pairs share the first half).
    net_seed = int(torch.randint(0, 2**62, (1,), generator=g_net))
    out = {k: [] for k in ("train", "test", "rad", "z")}
    for v in vs:
        net = init_three_layer(d, m1, m2, scaling=v.removesuffix("_antisymmetric"),
                               n_networks=n_seeds, antisymmetric=v.endswith("_antisymmetric"),
                               generator=net_seed, device=dev, dtype=dt_)
        rows = {k: [] for k in out}
        for n in ns:
            h = train(net, X[:, :n], y[:, :n], dt=dts[v], steps=steps, X_test=Xt, y_test=yt,
                      record_every=steps or 1, progress=progress)
            rows["train"].append(h.loss[-1])
            rows["test"].append(h.test_loss[-1])
            rows["rad"].append(h.rademacher[-1] if h.rademacher is not None
                               else torch.full_like(h.loss[-1], float("nan")))
            rows["z"].append(h.z_norm[-1])
        for k in out:
            out[k].append(torch.stack(rows[k]))
    return GeneralizationSweep(variants=vs, dt=dts, n_trains=ns,
                               train_loss=torch.stack(out["train"]),
                               test_loss=torch.stack(out["test"]),
                               rademacher=torch.stack(out["rad"]),
                               z_norm=torch.stack(out["z"]))

