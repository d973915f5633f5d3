"""The validation sweep over the whole public API, generated from the signatures.

Every public callable (each name in an ``__all__`` of ``mfteach`` and of every public module
or subpackage under it, chapter packages included as they appear; class constructors and their
public methods) gets

1. a VALID call, built from parameter-name conventions (``x``: an ``(n, d)`` float64 tensor,
   ``width``: a small int, ``generator``: 0, ...) and the signature's defaults, or, where the
   conventions cannot build one, an explicit entry of ``VALID_CALLS``.
   ``test_valid_call_succeeds`` runs it: a new function without a valid call fails there, so
   it is covered by default.
2. BAD inputs generated per parameter from the kind of its valid value (tensor, array-like,
   int, float, string choice, bool, seed, device, dtype, sequence, callable, object): wrong
   type, rank and dtype, NaN and inf, zero and negative sizes, bools for ints, huge sizes
   (refused quickly, not allocated), out-of-range seeds, absurd learning rates and times.

Expectations, checked by ``test_bad_input``:

* ``reject``: a ``ValueError``/``TypeError`` with a one-line message (< 400 chars) naming the
  parameter (``'name'``);
* ``accept``: no exception, and the result (dataclass/dict/tuple/tensor tree) is finite
  (a ``torch.Generator`` where an int seed is taken, a ``torch.device``, float32, ...);
* ``safe`` (absurd magnitudes, and inputs an API may either take or refuse: a list or a numpy
  array for an unannotated array argument, a one-element sequence): ``reject``, or
  :class:`mfteach.training.DivergenceError`, or a finite result: never NaN, never another
  exception type, never a hang.

Every call runs under a wall-clock limit (``signal.setitimer``) so that a hang fails its case,
and the huge-size cases under an address-space cap so that an unguarded allocation fails fast
instead of swapping the machine. Legitimately accepted "bad" inputs are listed, with a reason,
in ``ALLOWED``; ambiguous ("safe") cases that must be refused for a given callable, in
``STRICT``; parameters that are not user input, in ``NOT_FUZZED``. A tensor on the ``meta``
device stands in for "another device" on machines without CUDA.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import math
import numbers
import pkgutil
import re
import resource
import signal
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import mfteach
from mfteach.training import DivergenceError

F64 = torch.float64
F32 = torch.float32

#: Wall-clock limits (s) of one call: a bad input must be refused fast; valid calls are small.
BAD_CALL_LIMIT_S = 2.0
VALID_CALL_LIMIT_S = 10.0
#: Extra address space (bytes) a huge-size case may map before the allocation fails.
HUGE_CASE_EXTRA_BYTES = 6 * 2**30
HUGE = 10**12

# ---------------------------------------------------------------------------------------------
# 1. Collecting the public API
# ---------------------------------------------------------------------------------------------

#: Public modules not swept here, with the reason.
EXCLUDED_MODULES = {
    "mfteach.widgets": "builds ipywidgets UIs over the chapter functions (swept here); "
                       "covered by its own sweep in tests/widgets/test_sweep.py",
    "mfteach.testing": "assertion helpers for tests and checker cells: their contract is an "
                       "AssertionError; their statistics go through mfteach.stats (swept)",
}

#: Public callables not swept, with the reason (checked to exist, so no entry goes stale).
#: Frozen result dataclasses without validation are excluded automatically (``_auto_reason``);
#: their public methods are still swept.
EXCLUDED: dict[str, str] = {
    "mfteach.show_source": "prints inspect.getsource(obj) for the book; a debugging aid "
                           "whose only argument is any Python object",
    "mfteach.device.disable_tf32": "takes no argument (sets the TF32 flags)",
}


@dataclasses.dataclass(frozen=True)
class Entry:
    """One public callable: a function, a class constructor, or a method of a class."""

    id: str                 # e.g. "mfteach.kernels.ntk", "mfteach.models.TwoLayer.forward"
    obj: Callable
    owner: str | None = None  # the class id, for methods
    method: str | None = None

    @property
    def short(self) -> str:
        return self.id.removeprefix("mfteach.")


def _public_modules() -> list[Any]:
    """``mfteach`` and every public module/subpackage reachable from it, minus exclusions."""
    found: dict[str, Any] = {}
    todo = [mfteach]
    while todo:
        mod = todo.pop()
        if mod.__name__ in found:
            continue
        found[mod.__name__] = mod
        children = [getattr(mod, n) for n in getattr(mod, "__all__", [])
                    if inspect.ismodule(getattr(mod, n, None))]
        if hasattr(mod, "__path__"):  # a package: its public submodules, listed or not
            for info in pkgutil.iter_modules(mod.__path__):
                name = f"{mod.__name__}.{info.name}"
                if not info.name.startswith("_") and name not in EXCLUDED_MODULES:
                    children.append(importlib.import_module(name))
        todo += [c for c in children if c.__name__.startswith("mfteach")
                 and c.__name__ not in EXCLUDED_MODULES]
    return sorted(found.values(), key=lambda m: m.__name__)


def _auto_reason(cls: type) -> str | None:
    if issubclass(cls, BaseException):
        return "an exception type"
    params = getattr(cls, "__dataclass_params__", None)
    if params is not None and params.frozen and not hasattr(cls, "__post_init__"):
        return "a frozen result dataclass without validation (built by the library)"
    return None


def _methods(cls: type) -> list[str]:
    out = []
    for name, raw in vars(cls).items():
        if name.startswith("_") or isinstance(raw, property):
            continue
        if isinstance(raw, (classmethod, staticmethod)) or inspect.isfunction(raw):
            out.append(name)
    return sorted(out)


def collect_api() -> tuple[list[Entry], dict[str, str]]:
    """(entries, excluded id -> reason). A re-exported object gets its most specific id."""
    owners: dict[int, tuple[str, Any]] = {}
    for mod in _public_modules():
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.ismodule(obj) or not callable(obj):
                continue  # constants and submodules (walked above)
            key = id(obj)
            full = f"{mod.__name__}.{name}"
            if key not in owners or full.count(".") > owners[key][0].count("."):
                owners[key] = (full, obj)
    entries: list[Entry] = []
    excluded: dict[str, str] = {}
    for full, obj in sorted(owners.values(), key=lambda t: t[0]):
        if inspect.isclass(obj):
            reason = _auto_reason(obj)
            if reason:
                excluded[full] = reason
            else:
                entries.append(Entry(full, obj))
            if not issubclass(obj, BaseException):
                for m in _methods(obj):
                    entries.append(Entry(f"{full}.{m}", obj, owner=full, method=m))
        elif full in EXCLUDED:
            excluded[full] = EXCLUDED[full]
        else:
            entries.append(Entry(full, obj))
    return entries, excluded


# ---------------------------------------------------------------------------------------------
# 2. Valid calls: conventions by parameter name, module conventions, explicit overrides
# ---------------------------------------------------------------------------------------------

def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _x(n: int = 4, d: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=_g(seed), dtype=F64)


def _cov(k: int) -> torch.Tensor:
    A = torch.randn(k, k, generator=_g(k), dtype=F64)
    return A @ A.T / k + torch.eye(k, dtype=F64)


def _vec(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, generator=_g(seed), dtype=F64)


def _model(**kw):
    args = dict(d=3, width=8, n_networks=2, generator=0, dtype=F64)
    args.update(kw)
    return mfteach.models.TwoLayer(**args)


def _std_normal_cdf(u):
    return 0.5 * (1 + torch.erf(torch.as_tensor(u, dtype=F64) / math.sqrt(2)))


#: Values of required parameters, by name, for every module.
CONVENTIONS: dict[str, Callable[[], Any]] = {
    "x": _x, "x1": _x, "X": _x, "x_test": lambda: _x(2, 3, 2),
    "y": lambda: _vec(4, 1),
    "samples": lambda: _vec(64, 3),
    "u": lambda: torch.linspace(-2, 2, 5, dtype=F64),
    "v": lambda: torch.linspace(-2, 2, 5, dtype=F64),
    "C": lambda: _cov(3),
    "c11": lambda: 1.0, "c12": lambda: 0.3, "c22": lambda: 1.2, "q": lambda: 1.0,
    "d": lambda: 3, "width": lambda: 8, "n": lambda: 4, "depth": lambda: 1,
    "n_samples": lambda: 8, "steps": lambda: 2, "n_networks": lambda: 2, "m": lambda: 2,
    "order": lambda: 1, "b": lambda: 0, "k": lambda: 1, "K": lambda: 2, "p": lambda: 2,
    "lr": lambda: 0.1, "raw_lr": lambda: 0.1, "gamma": lambda: 0.5, "t_max": lambda: 0.1,
    "kappa2": lambda: 1.0,
    "activation": lambda: "erf", "parametrization": lambda: "ntk",
    "generator": lambda: 0, "seed_or_generator": lambda: 0,
    "device": lambda: "cpu", "dtype": lambda: F64,
    "widths": lambda: [4, 8],
    "model": _model,
    "fn2": lambda: (lambda a, b: a * b),
    "cdf": lambda: _std_normal_cdf,
}


def _sgd_overlaps():
    return dict(Q=torch.eye(2, dtype=F64), M=torch.full((2, 1), 0.1, dtype=F64),
                P=torch.eye(1, dtype=F64))


#: Conventions that hold inside one module (they take precedence over ``CONVENTIONS``).
MODULE_CONVENTIONS: dict[str, dict[str, Callable[[], Any]]] = {
    "mfteach.sgd_odes": {
        "Q": lambda: _sgd_overlaps()["Q"], "M": lambda: _sgd_overlaps()["M"],
        "P": lambda: _sgd_overlaps()["P"], "Q0": lambda: _sgd_overlaps()["Q"],
        "M0": lambda: _sgd_overlaps()["M"], "q": lambda: torch.ones(2, dtype=F64),
        "q0": lambda: torch.ones(2, dtype=F64),
        "W": lambda: torch.randn(2, 8, generator=_g(0), dtype=F64),
        "W0": lambda: torch.randn(2, 8, generator=_g(0), dtype=F64) / 8**0.5,
        "W_star": lambda: torch.randn(1, 8, generator=_g(1), dtype=F64) / 8**0.5,
        "d": lambda: 8, "ds": lambda: [8, 16], "gammas": lambda: [0.1, 0.2],
        "t_max": lambda: 0.2,
    },
}


@functools.cache
def _result(kind: str):
    """Small results of the chapter functions, for the plots and methods that take them
    (cached: they are frozen dataclasses)."""
    fw = mfteach.finite_width
    lvm = mfteach.lazy_vs_meanfield
    so = mfteach.sgd_odes
    if kind == "cumulant_scaling":
        return fw.cumulant_scaling("erf", [4, 8, 16], n_samples=64, generator=0)
    if kind == "ensemble_vs_gp":
        return fw.ensemble_vs_gp("erf", [4, 8], n_networks=8, steps=2, n_train=3, d=2,
                                 generator=0)
    if kind == "ntk_drift":
        return fw.ntk_drift("erf", [4, 8, 16], steps=4, n_train=3, d=2, n_networks=2,
                            generator=0)
    if kind == "output_cumulants":
        return fw.output_cumulants("erf")
    if kind == "width_sweep":
        return lvm.width_sweep([4, 8, 16], "ntk", steps=4, n_networks=2, n_samples=6,
                               record_every=2, generator=0)
    if kind == "particle_trajectory":
        return lvm.particle_trajectory(6, "mf", steps=4, record_every=2, n_samples=6,
                                       generator=0)
    if kind == "replicate_sweeps":
        return lvm.replicate_sweeps([4, 8, 16], "ntk", n_datasets=2, steps=4, n_networks=2,
                                    n_samples=6, record_every=2, n_test=4, generator=0)
    if kind == "gap_decomposition":
        return lvm.gap_decomposition([4, 8, 16], n_datasets=2, steps=4, n_networks=2,
                                     n_samples=6, record_every=2, n_test=4, generator=0)
    if kind == "ode_vs_sgd":
        return so.ode_vs_sgd("erf_sqrt2", 2, 1, 8, gamma=0.5, t_max=0.2, n_runs=2, n_save=3,
                             dt=0.05, generator=0)
    if kind == "gap_scan":
        return so.gap_vs_scale("erf_sqrt2", [8, 16, 32], t_max=0.2, n_runs=2, generator=0)
    if kind == "dimension_runs":
        return so.dimension_independence("erf_sqrt2", [4, 8, 16], gamma=1.0, t_max=2.5, n_runs=2,
                                         n_replicates=2, generator=0)
    if kind == "gap_collapse":
        return so.gap_collapse("erf_sqrt2", [4, 8, 16], [0.25, 0.5, 1.0], t_max=2.5, n_runs=2,
                               n_replicates=2, generator=0)
    if kind == "noise_floor":
        return so.noise_floor([0.1, 0.2, 0.4], t_max=0.5)
    if kind == "plateau_escape":
        return so.plateau_escape(2, perturbations=[1e-2, 1e-3, 1e-4, 1e-5], gammas=[0.0])
    if kind == "plateau_from_random":
        return so.plateau_from_random(2, 20, scales=[0.03, 0.01, 3e-3, 1e-3], n_init=2)
    if kind == "mean_field_error":
        return so.mean_field_error((16, 32, 64), n_init=2, t_max=0.5, n_save=11)
    if kind == "high_d_mean_field":
        return so.high_d_mean_field(p=8, k=2, d=50, gamma=1.0, t_max=0.5, n_runs=2, n_save=3)
    if kind == "cosine_histogram":
        return so.cosine_histogram(p=50, times=(0.0, 0.1), n_runs=2)
    if kind == "noise_floor_grid":
        return so.noise_floor_grid([0.1], [0.01], [1])
    if kind == "noise_floor_sgd":
        return so.noise_floor_sgd(2, 8, gamma=0.5, delta=0.5, n_runs=2, t_burn=0.5,
                                  t_max=1.0, generator=0)
    raise AssertionError(kind)


def _tl_net(**kw):
    """A small three_layer ensemble (d=3, m1=8, m2=4, two networks)."""
    args = dict(d=3, m1=8, m2=4, n_networks=2, generator=0)
    args.update(kw)
    return mfteach.three_layer.init_three_layer(**args)


@functools.cache
def _tl_history():
    """A small three_layer run with a slice (cached: a frozen dataclass)."""
    return mfteach.three_layer.run("mf_half", m1=8, m2=4, d=3, n_train=3, n_test=2,
                                   n_networks=2, steps=8, record_every=1, n_slice=9,
                                   generator=0)


@functools.cache
def _tl_sweep(kind: str):
    """Small three_layer sweep results, for the plots and methods that take them."""
    tl = mfteach.three_layer
    if kind == "movement":
        return tl.movement_sweep([4, 8, 16], "ntk", n_seeds=2, d=3, n_train=3, n_test=2,
                                 steps=4, generator=0)
    if kind == "limit":
        return tl.neuron_limit([4, 8, 16, 32], m2=4, n_seeds=2, d=3, n_train=3, steps=4,
                               n_slice=9, generator=0)
    if kind == "generalization":
        return tl.generalization_sweep([3, 5], m1=8, m2=4, d=3, n_test=2, n_seeds=2, steps=4,
                                       generator=0)
    raise AssertionError(kind)


def _tt_W(seed: int = 0):
    """Five two_timescale particles for d = 3 with bias, shape (5, 4) (not square)."""
    return torch.randn(5, 4, generator=_g(seed + 7), dtype=F64)


@functools.cache
def _tt_history():
    """A small two_timescale run (cached: a frozen dataclass)."""
    return mfteach.two_timescale.run(d=3, n_train=10, n_test=5, n_particles=6, n_runs=2,
                                     steps=24, record_every=2, generator=0)


@functools.cache
def _tt_result(kind: str):
    """Small two_timescale results, for the plots that take them."""
    tt = mfteach.two_timescale
    if kind == "alignment":
        return tt.initial_alignment([4, 8, 16], n=20, n_particles=20, n_runs=2, generator=0)
    if kind == "kernels":
        return tt.kernel_comparison(_tt_history(), sample_sizes=[5, 10, 20], n_val=10,
                                    n_test=10, generator=1)
    if kind == "eta":
        return tt.time_discretisation([0.4, 0.2, 0.1], t_final=0.8, n=10, n_particles=8,
                                      n_runs=2, n_chains=2, generator=0)
    if kind == "mixture":
        return tt.convexity_along_mixture(_x(), _vec(4, 1), _tt_W(), _tt_W(1), lam=0.02)
    raise AssertionError(kind)


def _rn_data():
    """Five toy points on the plane and their targets, both of shape (5, 2)."""
    return mfteach.resnet.toy_data(5, generator=0)


def _rn_X():
    return _rn_data()[0]


def _rn_feats():
    """M = 8 Gaussian features on the plane for two networks."""
    return mfteach.resnet.draw_features(2, 8, bandwidth=0.5, n_networks=2, generator=1)


def _rn_net(**kw):
    """Two small RKHS ResNets on the plane (d = q = 2, M = 8 features, depth 2)."""
    args = dict(d=2, q=2, n_features=8, depth=2, bandwidth=0.5, n_networks=2, generator=1)
    args.update(kw)
    return mfteach.resnet.init_resnet(**args)


def _rn_digits_net():
    """Two small digits classifiers (q = 4, M = 4 features, depth 2)."""
    return mfteach.resnet.init_digits_net(4, 4, 2, n_networks=2, generator=0)


def _rn_images(n: int = 10):
    """n random flattened 8x8 images and their labels 0..9 (no scikit-learn needed)."""
    return torch.randn(n, 64, generator=_g(3), dtype=F64), torch.arange(n) % 10


@functools.cache
def _rn_result(kind: str):
    """Small resnet results, for the plots and functions that take them (cached: frozen
    dataclasses)."""
    rn = mfteach.resnet
    X, Y = _rn_data()
    if kind == "history":
        return rn.train(_rn_net(), X, Y, lr=5.0, steps=4, record_every=1)
    if kind == "lazy":
        return rn.lazy_prediction(_rn_net(), X, Y, lr=5.0, step=_rn_result("history").step)
    if kind == "trained":  # one trained network, for the depth limit
        return rn.train(_rn_net(n_networks=1), X, Y, lr=5.0, steps=3).final
    if kind == "spectrum":
        return rn.gram_spectrum(X, [4, 8], n_draws=2, generator=0)
    if kind == "sweep":
        return rn.width_sweep([4, 8], n_train=5, depth=2, lr=1.5, steps=4, record_every=1,
                              n_data=2, generator=0)
    if kind == "convergence":
        return rn.depth_convergence(_rn_result("trained"), X, [4, 8, 16])
    if kind == "flow":
        return rn.flow_grid(_rn_net(), X, n_lines=3, n_points=5)
    if kind == "pl_trace":
        return rn.pl_trace(_rn_net(scheme="euler"), X, Y, lr=5.0, steps=2, every=1)
    if kind == "kernel":
        return rn.train_kernel_limit(X, Y, depth=2, steps=2, record_every=1)
    if kind == "width_limit":
        return rn.width_limit(X, Y, [4, 8], depth=2, steps=2, n_seeds=2, generator=0)
    if kind == "digits":
        return rn.digits_comparison(n_train=30, n_test=20, q=4, n_features=4, depths=(2,),
                                    epochs=1, n_seeds=2, generator=0)
    raise AssertionError(kind)


#: Explicit valid calls, where the conventions cannot build one (merged over them).
VALID_CALLS: dict[str, Callable[[], dict]] = {
    # core
    "mfteach.activations.get_activation": lambda: dict(name="relu"),
    "mfteach.activations.resolve_activation": lambda: dict(activation="tanh"),
    "mfteach.activations.gaussian_moments": lambda: dict(activation="tanh", q=1.0, degree=32),
    "mfteach.activations.dual": lambda: dict(activation="tanh", degree=16),
    "mfteach.activations.dual_prime": lambda: dict(activation="tanh", degree=16),
    "mfteach.device.resolve_device": lambda: dict(device="cpu"),
    "mfteach.device.resolve_dtype": lambda: dict(dtype=F64),
    "mfteach.device.spawn_generators": lambda: dict(generator=0, n=3),
    "mfteach.gaussian.gauss_hermite_expectation": lambda: dict(degree=16),
    "mfteach.gaussian.gauss_hermite_expectation_1d": lambda: dict(fn=torch.cos, degree=16),
    "mfteach.gaussian.hermite_rule": lambda: dict(degree=8),
    "mfteach.gaussian.erf_I4": lambda: dict(C=_cov(4)),
    "mfteach.kernels.nngp": lambda: dict(x2=_x(5, 3, 1), activation="relu", depth=2),
    "mfteach.kernels.ntk": lambda: dict(x2=_x(5, 3, 1), activation="erf", depth=1),
    "mfteach.kernels.nngp_and_ntk": lambda: dict(x2=_x(5, 3, 1), activation="relu", depth=2),
    "mfteach.kernels.monte_carlo_kernels": lambda: dict(x2=_x(5, 3, 1), activation="relu",
                                                        width=4, n_samples=3),
    "mfteach.kernels.sample_network_kernels": lambda: dict(x2=_x(5, 3, 1), width=4,
                                                           n_samples=3),
    "mfteach.kernels.empirical_ntk": lambda: (lambda m: dict(
        fn=m.functional_forward, params=m.params_of(0), x1=_x(), x2=_x(5, 3, 1)))(_model()),
    "mfteach.models.TwoLayer": lambda: dict(d=3, width=4, n_networks=2, generator=0,
                                            dtype=F64),
    "mfteach.models.TwoLayer.functional_forward": lambda: dict(
        params=_model().params_of(1), x=_x()),
    "mfteach.models.TwoLayer.ntk_matrix": lambda: dict(x1=_x(), x2=_x(2, 3, 1)),
    "mfteach.models.TwoLayer.from_params": lambda: _model().params_of(0),
    "mfteach.models.teacher_data": lambda: dict(n=5, d=2, generator=0),
    "mfteach.stats.fit_loglog_slope": lambda: dict(x=[1.0, 2.0, 4.0], y=[1.0, 0.5, 0.3]),
    "mfteach.stats.normal_isf": lambda: dict(p=0.01),
    "mfteach.stats.bonferroni_z": lambda: dict(m=10),
    "mfteach.training.relative_change": lambda: dict(name="W"),
    "mfteach.training.snapshot": lambda: dict(name="a"),
    "mfteach.training.train": lambda: dict(X=_x(), y=torch.zeros(4, dtype=F64), lr=0.1,
                                           steps=2),
    # plotting
    "mfteach.plotting.histogram_with_densities": lambda: dict(
        samples=_vec(64), bins=8, densities={"N(0,1)": (
            torch.linspace(-3, 3, 7, dtype=F64),
            torch.exp(-torch.linspace(-3, 3, 7, dtype=F64)**2 / 2) / (2 * math.pi)**0.5)}),
    "mfteach.plotting.kernel_heatmap": lambda: dict(K=_cov(3)),
    "mfteach.plotting.loglog_with_fit": lambda: dict(
        x=[4.0, 8.0, 16.0], y=[0.5, 0.36, 0.25], xlabel="width", ylabel="error"),
    "mfteach.plotting.loss_curves": lambda: dict(
        steps=torch.arange(4), losses=torch.tensor([[1.0, 0.5, 0.3, 0.2]], dtype=F64).T),
    "mfteach.plotting.particles_2d": lambda: dict(W=_x(6, 2), a=_vec(6)),
    # finite_width
    "mfteach.finite_width.readout_law": lambda: dict(name="rademacher"),
    "mfteach.finite_width.sample_readout": lambda: dict(shape=(3, 2), law="gaussian"),
    "mfteach.finite_width.activation_moment": lambda: dict(activation="erf", m=2, degree=32),
    "mfteach.finite_width.cumulant_scaling": lambda: dict(
        activation="erf", widths=[4, 8, 16], n_samples=64),
    "mfteach.finite_width.fit_weighted_loglog_slope": lambda: dict(
        x=[4.0, 8.0, 16.0], y=[0.5, 0.36, 0.25], y_stderr=[0.01, 0.01, 0.01]),
    "mfteach.finite_width.fourth_cumulant_tensor": lambda: dict(x=_x(2, 3), degree=16),
    "mfteach.finite_width.joint_cumulant4": lambda: dict(samples=torch.randn(
        64, 4, generator=_g(5), dtype=F64)),
    "mfteach.finite_width.k_statistics": lambda: dict(samples=_vec(64, 3)),
    "mfteach.finite_width.output_cumulants": lambda: dict(activation="erf", degree=32),
    "mfteach.finite_width.hermite_e": lambda: dict(k=3),
    "mfteach.finite_width.ks_distance": lambda: dict(samples=_vec(64, 3)),
    "mfteach.finite_width.ensemble_vs_gp": lambda: dict(
        activation="erf", widths=[4, 8], n_networks=8, steps=2, n_train=3, d=2),
    "mfteach.finite_width.ntk_drift": lambda: dict(
        activation="erf", widths=[4, 8, 16], steps=4, n_train=3, d=2, n_networks=2),
    "mfteach.finite_width.ntk_fluctuations": lambda: dict(
        x=_x(2, 3), widths=[4, 8, 16], n_samples=16),
    "mfteach.finite_width.ntk_variance_coefficient": lambda: dict(x=_x(2, 3), degree=16),
    "mfteach.finite_width.gp_prediction": lambda: dict(lr=0.5, steps=4),
    "mfteach.finite_width.sphere_data": lambda: dict(n=4, d=3),
    "mfteach.finite_width.trained_ensemble": lambda: dict(width=8, n_networks=2, lr=0.5,
                                                          steps=2),
    "mfteach.finite_width.pushed_cumulants": lambda: dict(
        readout="gaussian", width=8, lr=0.5, steps=[0, 2], log2_points=8),
    "mfteach.finite_width.empirical_w2": lambda: dict(mean=0.0, var=1.0),
    "mfteach.finite_width.two_term_slope": lambda: dict(
        widths=[8, 16, 32, 64], values=[0.3, 0.2, 0.15, 0.1]),
    "mfteach.finite_width.trained_distance": lambda: dict(
        activation="relu", widths=[4, 8], n_networks=8, steps=2, n_train=3, d=2,
        n_datasets=2, n_floor=2),
    "mfteach.finite_width.training_cumulants": lambda: dict(
        activation="erf", widths=[4, 8], n_networks=8, steps=2, n_train=3, d=2),
    "mfteach.finite_width.plot_training_cumulants": lambda: dict(
        result=mfteach.finite_width.training_cumulants(
            "erf", [4, 8], n_networks=8, steps=2, n_train=3, d=2, generator=0)),
    "mfteach.finite_width.plot_trained_distance": lambda: dict(
        result=mfteach.finite_width.trained_distance(
            "relu", [4, 8], n_networks=8, steps=2, n_train=3, d=2, n_datasets=2, n_floor=2,
            generator=0)),
    "mfteach.finite_width.sample_ntk": lambda: dict(x=_x(2, 3), n_samples=4),
    "mfteach.finite_width.sample_outputs": lambda: dict(x=_x(2, 3), n_samples=4),
    "mfteach.finite_width.plot_cumulant_scaling": lambda: dict(
        scaling=_result("cumulant_scaling")),
    "mfteach.finite_width.plot_ensemble_vs_gp": lambda: dict(result=_result("ensemble_vs_gp")),
    "mfteach.finite_width.plot_ntk_drift": lambda: dict(drifts=[_result("ntk_drift")]),
    "mfteach.finite_width.plot_output_law": lambda: dict(
        samples=_vec(64, 3), theory=_result("output_cumulants"), width=8, bins=8),
    "mfteach.finite_width.OutputCumulants.kappa": lambda: dict(width=8),
    "mfteach.finite_width.OutputCumulants.skewness": lambda: dict(width=8),
    "mfteach.finite_width.OutputCumulants.excess_kurtosis": lambda: dict(width=8),
    "mfteach.finite_width.hidden_law_cumulants": lambda: dict(
        activation="relu", x=_vec(4), hidden="rademacher"),
    "mfteach.finite_width.ntk_drift_study": lambda: dict(
        activation="erf", widths=[4, 8, 16], n_datasets=2, n_networks=2, max_steps=4,
        n_train=3, d=2, record_every=2),
    "mfteach.finite_width.ntk_drift_dataset": lambda: dict(
        activation="erf", widths=[4, 8], n_networks=2, max_steps=4, n_train=3, d=2,
        record_every=2),
    "mfteach.finite_width.plot_drift_study": lambda: dict(
        study=mfteach.finite_width.ntk_drift_study(
            "erf", [4, 8], n_datasets=2, n_networks=2, max_steps=4, n_train=3, d=2,
            record_every=2, generator=0)),
    # lazy_vs_meanfield
    "mfteach.lazy_vs_meanfield.predicted_slope": lambda: dict(
        quantity="weights", parametrization="ntk"),
    "mfteach.lazy_vs_meanfield.output_scale": lambda: dict(width=8, parametrization="mf"),
    "mfteach.lazy_vs_meanfield.frobenius_relative_change": lambda: dict(
        after=_x(4, 3, 1), before=_x(4, 3, 0)),
    "mfteach.lazy_vs_meanfield.width_sweep": lambda: dict(
        widths=[4, 8, 16], parametrization="ntk", activation="relu", steps=4, n_networks=2,
        n_samples=6, record_every=2),
    "mfteach.lazy_vs_meanfield.particle_trajectory": lambda: dict(
        width=6, parametrization="mf", activation="relu", steps=4, record_every=2,
        n_samples=6),
    "mfteach.lazy_vs_meanfield.plot_loss_curves": lambda: dict(sweeps=[_result("width_sweep")]),
    "mfteach.lazy_vs_meanfield.plot_width_scaling": lambda: dict(
        sweeps=[_result("width_sweep")]),
    "mfteach.lazy_vs_meanfield.plot_particles": lambda: dict(
        traj=_result("particle_trajectory")),
    "mfteach.lazy_vs_meanfield.plot_training": lambda: dict(
        traj=_result("particle_trajectory")),
    "mfteach.stats.slope_spread": lambda: dict(fits=[
        mfteach.stats.SlopeFit(-1.0, 0.1, 0.0, 3), mfteach.stats.SlopeFit(-0.9, 0.1, 0.0, 3)]),
    "mfteach.stats.SlopeSpread.z_score": lambda: dict(predicted=-1.0),
    "mfteach.lazy_vs_meanfield.init_network": lambda: dict(
        d=3, width=8, parametrization="ntk", init="antisymmetric", n_networks=2),
    "mfteach.lazy_vs_meanfield.function_space_kernel": lambda: dict(
        model=mfteach.lazy_vs_meanfield.init_network(3, 8, "mf", generator=0), X=_x(4, 3, 0)),
    "mfteach.lazy_vs_meanfield.dataset_seeds": lambda: dict(n_datasets=3),
    "mfteach.lazy_vs_meanfield.replicate_sweeps": lambda: dict(
        widths=[4, 8, 16], parametrization="ntk", n_datasets=2, steps=4, n_networks=2,
        n_samples=6, record_every=2, n_test=4),
    "mfteach.lazy_vs_meanfield.gap_decomposition": lambda: dict(
        widths=[4, 8, 16], n_datasets=2, steps=4, n_networks=2, n_samples=6, record_every=2,
        n_test=4),
    "mfteach.lazy_vs_meanfield.plot_slope_spread": lambda: dict(
        replicates=[_result("replicate_sweeps")], quantity="kernel"),
    "mfteach.lazy_vs_meanfield.plot_test_loss": lambda: dict(
        decomposition=_result("gap_decomposition")),
    "mfteach.lazy_vs_meanfield.SweepReplicates.summary": lambda: dict(digits=2),
    "mfteach.lazy_vs_meanfield.GapDecomposition.parts": lambda: dict(index=-1),
    "mfteach.lazy_vs_meanfield.GapDecomposition.summary": lambda: dict(index=-1),
    "mfteach.lazy_vs_meanfield.GapDecomposition.test_loss": lambda: dict(
        parametrization="ntk", init="standard"),
    # sgd_odes
    "mfteach.sgd_odes.gap_vs_scale": lambda: dict(activation="erf_sqrt2", ds=[8, 16, 32],
                                                  t_max=0.2, n_runs=2),
    "mfteach.sgd_odes.dimension_independence": lambda: dict(
        activation="erf_sqrt2", ds=[4, 8, 16], gamma=1.0, t_max=2.5, n_runs=2, n_replicates=2),
    "mfteach.sgd_odes.gap_collapse": lambda: dict(
        activation="erf_sqrt2", ds=[4, 8, 16], gammas=[0.25, 0.5, 1.0], t_max=2.5, n_runs=2,
        n_replicates=2),
    "mfteach.sgd_odes.plot_dimension_independence": lambda: dict(
        runs=_result("dimension_runs")),
    "mfteach.sgd_odes.plot_gap_collapse": lambda: dict(collapse=_result("gap_collapse")),
    "mfteach.sgd_odes.noise_floor_theory": lambda: dict(K=2, gamma=0.1, delta=0.01),
    "mfteach.sgd_odes.plateau_rate": lambda: dict(K=2, gamma=0.1, delta=0.01),
    "mfteach.sgd_odes.mean_field_error": lambda: dict(ps=(16, 32, 64), n_init=2, t_max=0.5,
                                                      n_save=11),
    "mfteach.sgd_odes.high_d_mean_field": lambda: dict(p=8, k=2, d=50, gamma=1.0, t_max=0.5,
                                                       n_runs=2, n_save=3),
    "mfteach.sgd_odes.cosine_histogram": lambda: dict(p=50, times=(0.0, 0.1), n_runs=2),
    "mfteach.sgd_odes.cosine_density": lambda: dict(c=[0.0, 0.5], d=3),
    "mfteach.sgd_odes.plot_mean_field_error": lambda: dict(res=_result("mean_field_error")),
    "mfteach.sgd_odes.plot_high_d_mean_field": lambda: dict(res=_result("high_d_mean_field")),
    "mfteach.sgd_odes.plot_cosine_histogram": lambda: dict(res=_result("cosine_histogram")),
    "mfteach.sgd_odes.plateau_escape": lambda: dict(
        K=2, perturbations=[1e-2, 1e-3, 1e-4, 1e-5], gammas=[0.0]),
    "mfteach.sgd_odes.plateau_from_random": lambda: dict(
        K=2, d=20, scales=[0.03, 0.01, 3e-3, 1e-3], n_init=2),
    "mfteach.sgd_odes.plot_plateau_escape": lambda: dict(res=_result("plateau_escape")),
    "mfteach.sgd_odes.plot_plateau_from_random": lambda: dict(
        res=_result("plateau_from_random")),
    "mfteach.sgd_odes.linearised_floor": lambda: dict(K=2, gamma=0.1, delta=0.01,
                                                      P=torch.eye(2, dtype=torch.float64)),
    "mfteach.sgd_odes.noise_floor_grid": lambda: dict(gammas=[0.1], deltas=[0.01], Ks=[1]),
    "mfteach.sgd_odes.noise_floor_sgd": lambda: dict(K=2, d=8, gamma=0.5, delta=0.5,
                                                     n_runs=2, t_burn=0.5, t_max=1.0),
    "mfteach.sgd_odes.plot_noise_floor_theory": lambda: dict(
        grid=_result("noise_floor_grid"), sgd=[_result("noise_floor_sgd")]),
    "mfteach.sgd_odes.limits_triangle": lambda: dict(
        activation="erf_sqrt2", p=2, d=8, gamma=0.5, k=1, t_max=0.2, n_runs=2, n_save=3, dt=0.05),
    "mfteach.sgd_odes.mean_field_vs_sgd": lambda: dict(p=8, k=1, d=5, t_max=0.2, n_runs=2,
                                                       n_save=3),
    "mfteach.sgd_odes.near_plateau": lambda: dict(K=2),
    "mfteach.sgd_odes.noise_floor": lambda: dict(gammas=[0.1, 0.2, 0.4], t_max=0.5),
    "mfteach.sgd_odes.ode_vs_sgd": lambda: dict(
        activation="erf_sqrt2", p=2, k=1, d=8, gamma=0.5, t_max=0.2, n_runs=2, n_save=3, dt=0.05),
    "mfteach.sgd_odes.specialization": lambda: dict(p=2, k=1, d=8, t_max=0.2, n_save=3,
                                                    dt=0.05),
    "mfteach.sgd_odes.perpendicular_q": lambda: dict(
        o=mfteach.sgd_odes.Overlaps(**_sgd_overlaps())),
    "mfteach.sgd_odes.init_weights": lambda: dict(p=2, k=1, d=8, n_runs=2),
    "mfteach.sgd_odes.weights_from_overlaps": lambda: dict(d=8),
    "mfteach.sgd_odes.mf_rhs": lambda: dict(activation="square", d=5),
    "mfteach.sgd_odes.mf_risk": lambda: dict(activation="square", d=5),
    "mfteach.sgd_odes.psi_samples": lambda: dict(n_samples=64),
    "mfteach.sgd_odes.simulate_sgd": lambda: dict(
        W0=torch.randn(2, 2, 8, generator=_g(0), dtype=F64) / 8**0.5,
        W_star=torch.randn(2, 1, 8, generator=_g(1), dtype=F64) / 8**0.5,
        gamma=0.5, t_max=0.2, n_save=3),
    "mfteach.sgd_odes.solve_ode": lambda: dict(gamma=0.5, t_max=0.2, n_save=3, dt=0.05),
    "mfteach.sgd_odes.solve_mf_ode": lambda: dict(activation="square", d=5, t_max=0.2,
                                                  n_save=3, dt=0.05),
    "mfteach.sgd_odes.xi_quadrature": lambda: dict(d=7, k=2),
    "mfteach.sgd_odes.plateau_overlaps": lambda: dict(K=2),
    "mfteach.sgd_odes.plateau_risk": lambda: dict(K=2),
    "mfteach.sgd_odes.plot_cosines": lambda: dict(
        cos_ode=torch.rand(3, 2, 2, generator=_g(0), dtype=F64)),
    "mfteach.sgd_odes.plot_risk_curves": lambda: dict(
        sgd=_result("ode_vs_sgd")[1], curves={"ode": _result("ode_vs_sgd")[0]}),
    "mfteach.sgd_odes.plot_gap_scaling": lambda: dict(scans={"erf": _result("gap_scan")}),
    "mfteach.sgd_odes.plot_noise_floor": lambda: dict(nf=_result("noise_floor")),
    "mfteach.sgd_odes.Solver.step": lambda: dict(
        f=lambda y: tuple(-t for t in y), y=(torch.ones(2, dtype=F64),), h=0.1),
    # three_layer
    "mfteach.three_layer.Scaling.lr_c": lambda: dict(m1=16, m2=8),
    "mfteach.three_layer.Scaling.lr_z": lambda: dict(m1=16, m2=8),
    "mfteach.three_layer.get_scaling": lambda: dict(scaling="ntk"),
    "mfteach.three_layer.init_three_layer": lambda: dict(d=3, m1=8, m2=4, n_networks=2),
    "mfteach.three_layer.features": lambda: dict(
        X=torch.randn(2, 4, 3, generator=_g(0), dtype=F64),
        theta=torch.randn(2, 5, 3, generator=_g(1), dtype=F64)),
    "mfteach.three_layer.neurons": lambda: dict(net=_tl_net(), X=_x()),
    "mfteach.three_layer.network_output": lambda: dict(net=_tl_net(), X=_x()),
    "mfteach.three_layer.feature_kernel": lambda: dict(X1=_x()),
    "mfteach.three_layer.random_feature_kernel": lambda: dict(net=_tl_net(), X=_x()),
    "mfteach.three_layer.kernel_parts": lambda: dict(net=_tl_net(), X=_x()),
    "mfteach.three_layer.tangent_kernel": lambda: dict(net=_tl_net(), X=_x()),
    "mfteach.three_layer.schur_bound": lambda: dict(net=_tl_net(), X=_x()),
    "mfteach.three_layer.great_circle": lambda: dict(n_points=5, d=3),
    "mfteach.three_layer.train": lambda: dict(net=_tl_net(), X=_x(), y=_vec(4, 1), steps=2,
                                              record_every=1),
    # Small sizes: the defaults are the chapter's (about 2 s), too slow for a sweep case.
    "mfteach.three_layer.run": lambda: dict(scaling="mf_half", m1=8, m2=4, d=3, n_train=3,
                                            n_test=2, n_networks=2, steps=8, record_every=2,
                                            n_slice=9, generator=0),
    "mfteach.three_layer.slice_target": lambda: dict(history=_tl_history()),
    "mfteach.three_layer.fit_log_rate": lambda: dict(history=_tl_history()),
    "mfteach.three_layer.algebraic_r2": lambda: dict(t=torch.linspace(1, 4, 5, dtype=F64)),
    "mfteach.three_layer.movement_sweep": lambda: dict(
        widths=[4, 8, 16], scaling="ntk", n_seeds=2, d=3, n_train=3, n_test=2, steps=4),
    "mfteach.three_layer.neuron_covariance": lambda: dict(net=_tl_net(), X=_x()),
    "mfteach.three_layer.empirical_ntk": lambda: dict(net=_tl_net(), X=_x()),
    "mfteach.three_layer.neuron_limit": lambda: dict(
        m1s=[4, 8, 16, 32], m2=4, n_seeds=2, d=3, n_train=3, steps=4, n_slice=9,
        generator=0),
    "mfteach.three_layer.generalization_sweep": lambda: dict(
        n_trains=[3, 5], m1=8, m2=4, d=3, n_test=2, n_seeds=2, steps=4, generator=0),
    "mfteach.three_layer.plot_loss": lambda: dict(history=_tl_history()),
    "mfteach.three_layer.plot_kernel_eigenvalues": lambda: dict(history=_tl_history()),
    "mfteach.three_layer.plot_neurons": lambda: dict(history=_tl_history()),
    "mfteach.three_layer.plot_training": lambda: dict(history=_tl_history()),
    "mfteach.three_layer.plot_norms": lambda: dict(histories=[_tl_history()]),
    "mfteach.three_layer.plot_movement": lambda: dict(sweeps=[_tl_sweep("movement")]),
    "mfteach.three_layer.plot_neuron_limit": lambda: dict(limit=_tl_sweep("limit")),
    "mfteach.three_layer.plot_generalization": lambda: dict(
        sweep=_tl_sweep("generalization")),
    # two_timescale
    "mfteach.two_timescale.features": lambda: dict(W=_tt_W()),
    "mfteach.two_timescale.intrinsic_kernel": lambda: dict(X1=_x(), W=_tt_W()),
    "mfteach.two_timescale.ridge": lambda: dict(W=_tt_W()),
    "mfteach.two_timescale.regularized_risk": lambda: dict(W=_tt_W()),
    "mfteach.two_timescale.first_variation": lambda: dict(W=_tt_W()),
    "mfteach.two_timescale.kernel_alignment": lambda: dict(f=_vec(4, 1), W=_tt_W()),
    "mfteach.two_timescale.parameter_alignment": lambda: dict(
        W=_tt_W(), directions=torch.eye(2, 3, dtype=F64)),
    "mfteach.two_timescale.init_particles": lambda: dict(d=3, n_particles=5),
    "mfteach.two_timescale.langevin_drift": lambda: dict(W=_tt_W()),
    "mfteach.two_timescale.langevin_step": lambda: dict(
        W=_tt_W(), drift=_tt_W(1), noise=_tt_W(2), eta=0.1, lam=0.01),
    "mfteach.two_timescale.train": lambda: dict(W=_tt_W(), steps=2, record_every=1),
    # Small sizes: the defaults are the chapter's (about 1 s), too slow for a sweep case.
    "mfteach.two_timescale.run": lambda: dict(d=3, n_train=10, n_test=5, n_particles=6,
                                              n_runs=2, steps=4, record_every=2),
    "mfteach.two_timescale.fit_linear_rate": lambda: dict(history=_tt_history()),
    "mfteach.two_timescale.initial_alignment": lambda: dict(ds=[4, 8, 16], n=20,
                                                            n_particles=20, n_runs=2),
    "mfteach.two_timescale.kernel_comparison": lambda: dict(
        history=_tt_history(), sample_sizes=[5, 10, 20], n_val=10, n_test=10),
    "mfteach.two_timescale.time_discretisation": lambda: dict(
        etas=[0.4, 0.2, 0.1], t_final=0.8, n=10, n_particles=8, n_runs=2, n_chains=2),
    "mfteach.two_timescale.particle_discretisation": lambda: dict(
        particles=[2, 4, 8], n_reference=16, burn_in=1.0, t_average=1.0, n=8, n_runs=2,
        n_chains=2),
    "mfteach.two_timescale.label_noise_identity": lambda: dict(W=_tt_W(), n_samples=16),
    "mfteach.two_timescale.convexity_along_mixture": lambda: dict(
        X=_x(), y=_vec(4, 1), W1=_tt_W(), W2=_tt_W(1), lam=0.02),
    "mfteach.two_timescale.plot_training": lambda: dict(history=_tt_history()),
    "mfteach.two_timescale.plot_alignment_scaling": lambda: dict(
        scaling=_tt_result("alignment")),
    "mfteach.two_timescale.plot_kernel_comparison": lambda: dict(
        comparison=_tt_result("kernels")),
    "mfteach.two_timescale.plot_dof": lambda: dict(histories={"plain": _tt_history()}),
    "mfteach.two_timescale.plot_discretisation": lambda: dict(sweep=_tt_result("eta")),
    "mfteach.two_timescale.plot_mixture": lambda: dict(check=_tt_result("mixture")),
    # resnet
    "mfteach.resnet.draw_features": lambda: dict(dim=2, n_features=8, n_networks=2),
    "mfteach.resnet.feature_map": lambda: dict(feats=_rn_feats(), X=_rn_X()),
    "mfteach.resnet.feature_gram": lambda: dict(feats=_rn_feats(), X=_rn_X()),
    "mfteach.resnet.feature_kernel": lambda: dict(feats=_rn_feats(), X=_rn_X()),
    "mfteach.resnet.ResNet": lambda: dict(feats=_rn_feats(), U=torch.zeros(2, 2, 2, 8,
                                                                           dtype=F64),
                                          d=2, scheme="midpoint"),
    "mfteach.resnet.ResNet.block_feats": lambda: dict(layer=0),
    "mfteach.resnet.init_resnet": lambda: dict(d=2, q=2, n_features=8, depth=2,
                                               n_networks=2),
    "mfteach.resnet.lift": lambda: dict(X=_rn_X(), q=3),
    "mfteach.resnet.trajectories": lambda: dict(net=_rn_net(), X=_rn_X()),
    "mfteach.resnet.resnet_output": lambda: dict(net=_rn_net(), X=_rn_X()),
    "mfteach.resnet.toy_data": lambda: dict(n=5),
    "mfteach.resnet.train": lambda: dict(net=_rn_net(), X=_rn_data()[0], Y=_rn_data()[1],
                                         lr=5.0, steps=2, record_every=1),
    "mfteach.resnet.fit_log_rate": lambda: dict(history=_rn_result("history")),
    "mfteach.resnet.pl_lower_bound": lambda: dict(net=_rn_net(scheme="euler"), X=_rn_data()[0],
                                                  Y=_rn_data()[1]),
    "mfteach.resnet.pl_trace": lambda: dict(net=_rn_net(scheme="euler"), X=_rn_data()[0],
                                            Y=_rn_data()[1], lr=5.0, steps=2, every=1),
    "mfteach.resnet.lazy_prediction": lambda: dict(net=_rn_net(), X=_rn_data()[0],
                                                   Y=_rn_data()[1], lr=5.0, steps=4,
                                                   record_every=2),
    "mfteach.resnet.gram_spectrum": lambda: dict(X=_rn_X(), widths=[4, 8], n_draws=2),
    # lr < L = 2 <= 2 L N / lambda_max(K_M) (lambda_max <= trace <= 2 N for the cosine
    # features): stable for every bandwidth, so an absurd one trains instead of diverging.
    "mfteach.resnet.width_sweep": lambda: dict(widths=[4, 8], n_train=5, depth=2, lr=1.5,
                                               steps=4, record_every=1, n_data=2),
    "mfteach.resnet.depth_convergence": lambda: dict(net=_rn_result("trained"), X=_rn_X(),
                                                     depths=[4, 8, 16]),
    "mfteach.resnet.flow_grid": lambda: dict(net=_rn_net(), X=_rn_X(), n_lines=3,
                                             n_points=5),
    "mfteach.resnet.KernelResNet": lambda: (lambda k: dict(
        centres=k.centres.clone(), coefficients=k.coefficients.clone(), d=2,
        scheme="midpoint", bandwidth=1.0))(_rn_result("kernel").final),
    "mfteach.resnet.kernel_velocity": lambda: dict(knet=_rn_result("kernel").final,
                                                   x=_rn_X()),
    "mfteach.resnet.kernel_trajectories": lambda: dict(knet=_rn_result("kernel").final,
                                                       X=_rn_X()),
    "mfteach.resnet.kernel_resnet_output": lambda: dict(knet=_rn_result("kernel").final,
                                                        X=_rn_X()),
    "mfteach.resnet.train_kernel_limit": lambda: dict(X=_rn_data()[0], Y=_rn_data()[1],
                                                      depth=2, steps=2, record_every=1),
    "mfteach.resnet.width_limit": lambda: dict(X=_rn_data()[0], Y=_rn_data()[1],
                                               widths=[4, 8], depth=2, steps=2, n_seeds=2),
    # Small sizes: the defaults are the chapter's (about 15 s), too slow for a sweep case.
    "mfteach.resnet.digits_data": lambda: dict(n_train=30, n_test=20),
    "mfteach.resnet.init_digits_net": lambda: dict(q=4, n_features=4, depth=2, n_networks=2),
    "mfteach.resnet.digits_logits": lambda: dict(net=_rn_digits_net(), X=_rn_images()[0]),
    # With a test set: without one, test_error is NaN by design.
    "mfteach.resnet.train_digits": lambda: dict(
        net=_rn_digits_net(), X=_rn_images()[0], y=_rn_images()[1], lr=5.0, epochs=1,
        batch_size=5, X_test=_rn_images(4)[0], y_test=_rn_images(4)[1], generator=0),
    "mfteach.resnet.digits_comparison": lambda: dict(
        n_train=30, n_test=20, q=4, n_features=4, depths=(2,), epochs=1, n_seeds=2),
    "mfteach.resnet.plot_gram_spectrum": lambda: dict(spectrum=_rn_result("spectrum")),
    "mfteach.resnet.plot_width_sweep": lambda: dict(sweep=_rn_result("sweep")),
    "mfteach.resnet.plot_training": lambda: dict(history=_rn_result("history"),
                                                 lazy=_rn_result("lazy")),
    "mfteach.resnet.plot_depth_convergence": lambda: dict(conv=_rn_result("convergence")),
    "mfteach.resnet.plot_flow": lambda: dict(grid=_rn_result("flow")),
    "mfteach.resnet.plot_width_limit": lambda: dict(limit=_rn_result("width_limit")),
    "mfteach.resnet.plot_pl_trace": lambda: dict(trace=_rn_result("pl_trace")),
    "mfteach.resnet.plot_digits": lambda: dict(comparison=_rn_result("digits")),
}

#: Instances for the methods of a class (default: the class called with its valid call).
INSTANCES: dict[str, Callable[[], Any]] = {
    "mfteach.models.TwoLayer": _model,
    "mfteach.finite_width.OutputCumulants": lambda: _result("output_cumulants"),
    "mfteach.finite_width.HiddenLawCumulants":
        lambda: mfteach.finite_width.hidden_law_cumulants("relu", torch.ones(4, dtype=F64),
                                                          hidden="uniform"),
    "mfteach.lazy_vs_meanfield.WidthSweep": lambda: _result("width_sweep"),
    "mfteach.lazy_vs_meanfield.SweepReplicates": lambda: _result("replicate_sweeps"),
    "mfteach.stats.SlopeSpread": lambda: mfteach.stats.slope_spread([
        mfteach.stats.SlopeFit(-1.0, 0.1, 0.0, 3), mfteach.stats.SlopeFit(-0.9, 0.1, 0.0, 3)]),
    "mfteach.lazy_vs_meanfield.GapDecomposition": lambda: _result("gap_decomposition"),
    "mfteach.sgd_odes.Solver": lambda: mfteach.sgd_odes.SOLVERS["rk4"],
    "mfteach.finite_width.DeepCumulants": lambda: mfteach.finite_width.deep_cumulants(
        "relu", 2),
    "mfteach.three_layer.Scaling": lambda: mfteach.three_layer.get_scaling("mf_one"),
    "mfteach.three_layer.ThreeLayer": _tl_net,
    "mfteach.three_layer.MovementSweep": lambda: _tl_sweep("movement"),
    "mfteach.three_layer.NeuronLimit": lambda: _tl_sweep("limit"),
    "mfteach.three_layer.NeuronCovariance": lambda: mfteach.three_layer.neuron_covariance(
        _tl_net(), _x()),
    "mfteach.three_layer.GeneralizationSweep": lambda: _tl_sweep("generalization"),
    # resnet
    "mfteach.resnet.ResNet": _rn_net,
    "mfteach.resnet.DigitsNet": _rn_digits_net,
    "mfteach.resnet.DigitsComparison": lambda: _rn_result("digits"),
}


class NoValidCall(LookupError):
    pass


def _signature(entry: Entry) -> inspect.Signature:
    target = getattr(entry.obj, entry.method) if entry.method else entry.obj
    sig = inspect.signature(target)
    params = [p for p in sig.parameters.values()
              if p.name not in ("self", "cls")
              and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return sig.replace(parameters=params)


def _module_of(entry: Entry) -> str:
    return entry.id.rsplit(".", 2 if entry.method else 1)[0]


def valid_kwargs(entry: Entry) -> dict[str, Any]:
    """A fresh valid call for ``entry`` (fresh tensors and models: calls may mutate them)."""
    sig = _signature(entry)
    override = VALID_CALLS.get(entry.id, dict)()
    unknown = set(override) - set(sig.parameters)
    if unknown:
        raise NoValidCall(f"VALID_CALLS[{entry.id!r}] names parameters {sorted(unknown)} "
                          f"that {entry.id} does not take")
    conv = {**CONVENTIONS}
    for prefix, table in MODULE_CONVENTIONS.items():
        if entry.id.startswith(prefix + "."):
            conv.update(table)
    kwargs = {}
    for p in sig.parameters.values():
        if p.name in override:
            kwargs[p.name] = override[p.name]
        elif p.default is p.empty:
            if p.name not in conv:
                raise NoValidCall(
                    f"no valid call for {entry.id}: no convention for its required parameter "
                    f"{p.name!r}; add VALID_CALLS[{entry.id!r}] = lambda: dict(...) in "
                    f"tests/test_validation.py")
            kwargs[p.name] = conv[p.name]()
    return kwargs


def _target(entry: Entry) -> Callable:
    if entry.method is None:
        return entry.obj
    raw = vars(entry.obj)[entry.method]
    if isinstance(raw, (classmethod, staticmethod)):
        return getattr(entry.obj, entry.method)
    factory = INSTANCES.get(entry.owner)
    if factory is None:
        owner = ENTRIES_BY_ID.get(entry.owner)
        if owner is None:
            raise NoValidCall(f"no instance of {entry.owner} for {entry.id}: add "
                              f"INSTANCES[{entry.owner!r}]")
        instance = entry.obj(**valid_kwargs(owner))
    else:
        instance = factory()
    return getattr(instance, entry.method)


def call(entry: Entry, kwargs: dict[str, Any]):
    fn = _target(entry)
    sig = _signature(entry)
    args = [kwargs.pop(p.name) for p in sig.parameters.values()
            if p.kind == p.POSITIONAL_ONLY and p.name in kwargs]
    return fn(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# 3. Bad inputs, generated from the kind of each valid value
# ---------------------------------------------------------------------------------------------

GENERATOR_NAMES = {"generator", "seed_or_generator"}
#: Free text (labels, titles, the caller's name for messages): no bad values.
FREE_TEXT = {"xlabel", "ylabel", "title", "label", "fn", "formula", "description", "cmap"}
#: Floats that must be > 0 / >= 0 (otherwise any finite real; NaN and inf are always bad).
#: (Variances c11, c22, q may be 0: a degenerate Gaussian; the SGD learning rate gamma may be 0:
#: gradient flow; a perturbation has a sign.)
POSITIVE = {"lr", "raw_lr", "t_max", "dt", "weight_var", "kappa2", "family_rate",
            "divergence_factor", "lim", "h", "y_stderr"}
NONNEG = {"delta", "noise", "bias_var", "c11", "c22", "q", "gamma"}
#: Learning-rate-like floats: also an absurd value that overflows float32.
RATES = {"lr", "raw_lr", "gamma"}
#: Ints for which 0 is a valid value (sizes are >= 1 otherwise).
ZERO_OK = {"depth", "steps", "dim", "b", "order"}
#: Ints whose minimum is above 1: (callable id, parameter) -> minimum.
INT_MIN = {
    ("mfteach.kernels.monte_carlo_kernels", "n_samples"): 2,  # a standard error needs two
}
#: Sequences whose elements must be positive.
POSITIVE_SEQ = {"widths", "ds", "gammas", "x", "y", "y_stderr", "shape"}

#: (callable id, parameter) -> the name its messages use, where the two differ by design.
PARAM_ALIASES = {
    # as_generator is the helper behind every `generator=` argument, so it names that.
    ("mfteach.device.as_generator", "seed_or_generator"): "generator",
}

#: Legitimately accepted "bad" inputs: (callable id, parameter, label) -> reason. These cases
#: must then succeed with a finite result.
ALLOWED: dict[tuple[str, str, str], str] = {
    # dim=-1 is the last axis, as everywhere in torch.
    ("mfteach.stats.mc_estimate", "dim", "negative"): "dim=-1 is the last axis",
    ("mfteach.finite_width.k_statistics", "dim", "negative"): "dim=-1 is the last axis",
    # Bonferroni over 10**12 comparisons is a well-defined (large) z.
    ("mfteach.stats.bonferroni_z", "m", "huge"): "z for 1e12 comparisons is finite",
    # A closed-form scalar: a huge width gives a tiny, finite excess kurtosis.
    ("mfteach.finite_width.DeepCumulants.excess_kurtosis", "width", "huge"):
        "gamma_2 / n at a huge n is a small finite number",
    # Hermite polynomial He_0 = 1.
    ("mfteach.finite_width.hermite_e", "k", "zero"): "He_0 = 1",
    # He_k is elementwise: a 0-d tensor is one point (the docstring's own example).
    ("mfteach.finite_width.hermite_e", "v", "rank"): "elementwise, 0-d is one point",
    # The zeroth moment E[phi^0] = 1.
    ("mfteach.finite_width.activation_moment", "m", "zero"): "E[phi(z)^0] = 1",
    # Recording less often than the number of steps records the first and last step only.
    ("mfteach.training.train", "record_every", "huge"): "records steps 0 and `steps` only",
    ("mfteach.finite_width.ntk_drift", "record_every", "huge"): "records first and last",
    ("mfteach.finite_width.pushed_cumulants", "width", "huge"): "closed form in n",
    ("mfteach.sgd_odes.noise_floor_theory", "K", "huge"): "closed form in K",
    ("mfteach.sgd_odes.plateau_escape", "gammas", "zero element"): "gamma = 0 is gradient flow",
    ("mfteach.finite_width.trained_distance", "fit_min_width", "huge"): "no fit (None)",
    ("mfteach.finite_width.two_term_slope", "widths", "huge element"): "a number to fit",
    ("mfteach.finite_width.ntk_drift_study", "record_every", "huge"):
        "one chunk of max_steps: records first and last",
    ("mfteach.finite_width.ntk_drift_dataset", "record_every", "huge"):
        "one chunk of max_steps: records first and last",
    ("mfteach.lazy_vs_meanfield.width_sweep", "record_every", "huge"): "records first, last",
    ("mfteach.lazy_vs_meanfield.replicate_sweeps", "record_every", "huge"):
        "records first, last",
    ("mfteach.lazy_vs_meanfield.gap_decomposition", "record_every", "huge"):
        "records first, last",
    # A width index counts from the end when negative, like a sequence index.
    ("mfteach.lazy_vs_meanfield.GapDecomposition.parts", "index", "zero"): "the first width",
    ("mfteach.lazy_vs_meanfield.GapDecomposition.parts", "index", "negative"):
        "counts from the end",
    ("mfteach.lazy_vs_meanfield.GapDecomposition.summary", "index", "zero"):
        "the first width",
    ("mfteach.lazy_vs_meanfield.GapDecomposition.summary", "index", "negative"):
        "counts from the end",
    ("mfteach.lazy_vs_meanfield.particle_trajectory", "record_every", "huge"):
        "records first and last",
    ("mfteach.three_layer.train", "record_every", "huge"): "records steps 0 and `steps` only",
    ("mfteach.three_layer.run", "record_every", "huge"): "records steps 0 and `steps` only",
    ("mfteach.three_layer.movement_sweep", "record_every", "huge"): "records first and last",
    # Network 0 is the first network of the ensemble; more networks than exist draws all.
    ("mfteach.three_layer.plot_kernel_eigenvalues", "network", "zero"): "the first network",
    ("mfteach.three_layer.plot_neurons", "network", "zero"): "the first network",
    ("mfteach.three_layer.plot_loss", "max_networks", "huge"): "draws every network",
    ("mfteach.two_timescale.plot_training", "run", "zero"): "the first run",
    # The scaling's learning rates are closed forms in the widths: nothing is allocated.
    ("mfteach.three_layer.Scaling.lr_c", "m1", "huge"): "eta_c = m2^(2 beta - 1)",
    ("mfteach.three_layer.Scaling.lr_c", "m2", "huge"): "eta_c = m2^(2 beta - 1)",
    ("mfteach.three_layer.Scaling.lr_z", "m1", "huge"): "eta_z = m2^(2b-1) m1^(2a-1)",
    ("mfteach.three_layer.Scaling.lr_z", "m2", "huge"): "eta_z = m2^(2b-1) m1^(2a-1)",
    # One chunk larger than the whole sample is one chunk.
    ("mfteach.finite_width.sample_ntk", "chunk_size", "huge"): "a single chunk",
    ("mfteach.finite_width.sample_outputs", "chunk_size", "huge"): "a single chunk",
    ("mfteach.kernels.sample_network_kernels", "batch_size", "huge"): "a single batch",
    ("mfteach.kernels.monte_carlo_kernels", "batch_size", "huge"): "a single batch",
    ("mfteach.sgd_odes.simulate_sgd", "block_size", "huge"): "a single block",
    # The Edgeworth expansion is defined on the extended line (density 0, cdf 0 / 1 at -inf /
    # +inf), and the library documents +-inf as allowed.
    ("mfteach.finite_width.edgeworth_cdf", "u", "inf"): "cdf(+inf) = 1",
    ("mfteach.finite_width.edgeworth_density", "u", "inf"): "density(+inf) = 0",
    # terms=0 is documented: the Gaussian term alone.
    ("mfteach.finite_width.edgeworth_cdf", "terms", "zero"): "terms in {0, 1, 2}",
    ("mfteach.finite_width.edgeworth_density", "terms", "zero"): "terms in {0, 1, 2}",
    # Closed forms in the width / number of units: finite for any size, nothing allocated.
    ("mfteach.lazy_vs_meanfield.output_scale", "width", "huge"): "1/sqrt(N) or 1/N",
    ("mfteach.finite_width.OutputCumulants.kappa", "width", "huge"): "kappa_r ~ N^(1-r/2)",
    ("mfteach.finite_width.OutputCumulants.skewness", "width", "huge"): "closed form in N",
    ("mfteach.finite_width.OutputCumulants.excess_kurtosis", "width", "huge"):
        "closed form in N",
    ("mfteach.finite_width.plot_output_law", "width", "huge"): "the Gaussian limit's curve",
    ("mfteach.sgd_odes.plateau_risk", "K", "huge"): "closed form in K",
    ("mfteach.finite_width.gp_prediction", "steps", "huge"): "closed-form linear flow",
    # The mean-field ODE's finite-d correction: d = 10**12 is (almost) the d -> infinity limit.
    ("mfteach.sgd_odes.mf_rhs", "d", "huge"): "finite-d correction ~ 1/d",
    ("mfteach.sgd_odes.mf_risk", "d", "huge"): "finite-d correction ~ 1/d",
    ("mfteach.sgd_odes.solve_mf_ode", "d", "huge"): "finite-d correction ~ 1/d",
    ("mfteach.sgd_odes.xi_quadrature", "d", "huge"): "E xi^2 = 1/(d - k), a few nodes",
    # W of shape (N, d - 1) with a of shape (N,) is a valid model with input dimension d - 1.
    ("mfteach.models.TwoLayer.from_params", "W", "shape"): "d is read from W",
    # An empty list of reference slopes draws no reference line.
    ("mfteach.plotting.loglog_with_fit", "reference_slopes", "empty"): "no reference lines",
    # A single input of shape (d,) is documented (k = 1) for sample_outputs.
    ("mfteach.finite_width.sample_outputs", "x", "rank"): "x of shape (k, d) or (d,)",
    # Leading batch axes of W0 / W_star broadcast (one initialisation for every run).
    ("mfteach.sgd_odes.simulate_sgd", "W0", "rank"): "batch axes broadcast",
    ("mfteach.sgd_odes.simulate_sgd", "W_star", "rank"): "batch axes broadcast",
    # resnet
    ("mfteach.resnet.ResNet.block_feats", "layer", "zero"): "the first block",
    ("mfteach.resnet.flow_grid", "network", "zero"): "the first network",
    ("mfteach.resnet.plot_training", "network", "zero"): "the first network",
    ("mfteach.resnet.plot_training", "bound_step", "zero"): "the bound at initialisation",
    ("mfteach.resnet.train", "record_every", "huge"): "records steps 0 and `steps` only",
    ("mfteach.resnet.lazy_prediction", "record_every", "huge"): "records first and last",
    ("mfteach.resnet.train_kernel_limit", "record_every", "huge"): "records first and last",
    # lift and project act on the last axis: a single point of shape (d,) or (q,) is one.
    ("mfteach.resnet.lift", "X", "rank"): "X of shape (..., d)",
    ("mfteach.resnet.project", "x", "rank"): "x of shape (..., q)",
    # Class labels are int64 tensors already (the generated int64 case is the valid value).
    ("mfteach.resnet.train_digits", "y", "int64"): "labels are int64",
    ("mfteach.resnet.train_digits", "y_test", "int64"): "labels are int64",
    # epochs=0 evaluates the initial networks; a batch larger than the set is full-batch.
    ("mfteach.resnet.train_digits", "epochs", "zero"): "records the initial networks",
    ("mfteach.resnet.digits_comparison", "epochs", "zero"): "records the initial networks",
    ("mfteach.resnet.train_digits", "batch_size", "huge"): "a single (full) batch",
    ("mfteach.resnet.digits_comparison", "batch_size", "huge"): "a single (full) batch",
}

#: Cases whose generic expectation is "safe" but which must be refused here.
STRICT: set[tuple[str, str, str]] = {
    # A log-log slope with a standard error needs at least 3 points.
    ("mfteach.stats.fit_loglog_slope", "x", "too short"),
    ("mfteach.stats.fit_loglog_slope", "y", "too short"),
    ("mfteach.finite_width.ntk_fluctuations", "widths", "too short"),
    ("mfteach.finite_width.ntk_drift", "widths", "too short"),
    ("mfteach.lazy_vs_meanfield.width_sweep", "widths", "too short"),
    ("mfteach.sgd_odes.gap_vs_scale", "ds", "too short"),
    ("mfteach.sgd_odes.dimension_independence", "ds", "too short"),
    ("mfteach.sgd_odes.gap_collapse", "ds", "too short"),
    ("mfteach.sgd_odes.gap_collapse", "gammas", "too short"),
    ("mfteach.sgd_odes.noise_floor", "gammas", "too short"),
}

#: Parameters not fuzzed, with the reason.
NOT_FUZZED: dict[tuple[str, str], str] = {
    ("mfteach.device.resolve_dtype", "default"): "the calling library function's own "
                                                 "fallback dtype, never user input",
}


@dataclasses.dataclass
class Bad:
    value: Any
    expect: str                      # "reject", "accept" or "safe"
    extra: dict = dataclasses.field(default_factory=dict)  # other kwargs changed with it
    huge: bool = False               # run under the address-space cap


def _nan_at0(t: torch.Tensor, fill: float) -> torch.Tensor:
    out = t.clone()
    out.view(-1)[0] = fill
    return out


def _kind(entry: Entry, name: str, param: inspect.Parameter, value: Any) -> str | None:
    ann = param.annotation if isinstance(param.annotation, str) else str(param.annotation)
    if name in GENERATOR_NAMES:
        return "generator"
    if name == "device" or (value is None and "device" in ann):
        return "device"
    if name == "dtype" or "dtype" in ann:
        return "dtype"
    if name == "ax":
        return "axes"
    if value is None:  # an optional argument left at None: from its annotation
        if ann.startswith("int"):
            return "int"
        if ann.startswith("float"):
            return "float"
        if ann.startswith("dict"):
            return "object"
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, numbers.Integral):
        return "int"
    if isinstance(value, numbers.Real):
        return "float"
    if isinstance(value, str):
        return None if name in FREE_TEXT else "choice"
    if isinstance(value, torch.Tensor):
        return "tensor" if "Tensor" in ann and "Sequence" not in ann else "array"
    if isinstance(value, np.ndarray):
        return "array"
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        return "int_seq" if all(isinstance(v, numbers.Integral) for v in value) else "float_seq"
    if callable(value) and not isinstance(value, (type, torch.nn.Module)):
        return "callable"
    return "object"


def bad_inputs(entry: Entry, name: str, kwargs: dict[str, Any]) -> dict[str, Bad]:
    """label -> Bad for parameter ``name`` of ``entry``, given a valid call ``kwargs``."""
    if (entry.id, name) in NOT_FUZZED:
        return {}
    param = _signature(entry).parameters[name]
    value = kwargs.get(name, None if param.default is param.empty else param.default)
    kind = _kind(entry, name, param, value)
    out: dict[str, Bad] = {}
    R, A, S = "reject", "accept", "safe"
    if kind == "generator":
        out = {"negative": Bad(-1, R), "2**64": Bad(2**64, R), "string": Bad("seed", R),
               "float": Bad(0.5, R), "bool": Bad(True, R),
               "Generator": Bad(torch.Generator().manual_seed(0), A),
               "max seed": Bad(2**64 - 1, A)}
    elif kind == "device":
        out = {"unknown": Bad("no-such-device", R), "unavailable": Bad("cuda:99", R),
               "not a device": Bad(3.5, R), "torch.device": Bad(torch.device("cpu"), A)}
    elif kind == "dtype":
        out = {"float16": Bad(torch.float16, R), "int64": Bad(torch.int64, R),
               "string": Bad("float64", R), "float32": Bad(F32, A)}
    elif kind == "axes":
        out = {"not an axes": Bad("not-an-axes", R)}
    elif kind == "bool":
        out = {"string": Bad("yes", R), "int": Bad(1, R)}
    elif kind == "choice":
        out = {"unknown": Bad("no-such-option", R), "not a string": Bad(3, R)}
    elif kind == "int":
        v = 1 if value is None else int(value)
        out = {"bool": Bad(True, R), "float": Bad(v + 0.5, R), "string": Bad(str(v), R),
               "negative": Bad(-1, R), "huge": Bad(HUGE, R, huge=True)}
        if name not in ZERO_OK:
            out["zero"] = Bad(0, R)
        lo = INT_MIN.get((entry.id, name), 1)
        if lo > 1:
            out["too small"] = Bad(lo - 1, R)
    elif kind == "float":
        v = 1.0 if value is None else float(value)
        out = {"nan": Bad(math.nan, R), "inf": Bad(math.inf, R), "string": Bad(str(v), R),
               "huge": Bad(1e300, S, huge=True)}
        if name in POSITIVE:
            out.update(zero=Bad(0.0, R), negative=Bad(-1.0, R))
        elif name in NONNEG:
            out.update(negative=Bad(-0.5, R))
        if name in RATES:
            extra = {"dtype": F32} if "dtype" in _signature(entry).parameters else {}
            out["huge float32"] = Bad(1e40, S, extra=extra, huge=True)
    elif kind in ("tensor", "array"):
        t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        strict = kind == "tensor"
        if t.dtype.is_floating_point:
            out = {"nan": Bad(_nan_at0(t, math.nan), R), "inf": Bad(_nan_at0(t, math.inf), R),
                   "float16": Bad(t.to(torch.float16), R)}
        if t.dtype.is_floating_point and not strict:
            # An array-like input may convert half precision losslessly (a plot) or refuse it.
            out["float16"].expect = S
        out["string"] = Bad("not-a-tensor", R)
        # An unannotated array argument may take lists and numpy arrays, or refuse them
        # clearly; a Tensor-annotated one refuses them (no silent conversion).
        out["list"] = Bad(t.tolist(), R if strict else S)
        out["numpy"] = Bad(t.numpy().copy(), R if strict else S)
        if strict:
            out["int64"] = Bad(t.round().to(torch.int64), R)
            if t.ndim >= 1:
                out["rank"] = Bad(t[0].clone(), R)
            others = [k for k, v in kwargs.items()
                      if k != name and isinstance(v, torch.Tensor) and v.is_floating_point()]
            square = t.ndim >= 2 and t.shape[-1] == t.shape[-2]
            if t.ndim >= 2 and t.shape[-1] > 1 and (others or square):
                out["shape"] = Bad(t[..., :-1].clone(), R)
            if square and t.shape[-1] > 1 and t.dtype.is_floating_point:
                # square matrices of the API are covariances / Gram matrices
                out["asymmetric"] = Bad(t + torch.triu(torch.ones_like(t), 1), R)
            if others and t.dtype == F64:
                out["dtype mismatch"] = Bad(t.to(F32), R)
            if others:
                out["other device"] = Bad(t.to("meta"), R)
    elif kind in ("int_seq", "float_seq"):
        seq = list(value)
        out = {"empty": Bad([], R), "string": Bad("abc", R)}
        if len(seq) >= 2:  # too few points for a fit is refused; elsewhere one may be fine
            out["too short"] = Bad(seq[:1], S)
        if kind == "int_seq":
            out.update({"bool element": Bad([True] + seq[1:], R),
                        "float element": Bad([seq[0] + 0.5] + seq[1:], R),
                        "huge element": Bad([HUGE] + seq[1:], R, huge=True),
                        "negative element": Bad([-1] + seq[1:], R)})
            if name in POSITIVE_SEQ:
                out["zero element"] = Bad([0] + seq[1:], R)
        else:
            out.update({"nan element": Bad([math.nan] + seq[1:], R),
                        "inf element": Bad([math.inf] + seq[1:], R)})
            if name in POSITIVE_SEQ:
                out.update({"zero element": Bad([0.0] + seq[1:], R),
                            "negative element": Bad([-1.0] + seq[1:], R)})
    elif kind == "callable":
        out = {"not callable": Bad("not-callable", R)}
    elif kind == "object":
        out = {"wrong type": Bad("not-a-" + type(value).__name__, R)}
    for label, bad in out.items():
        if (entry.id, name, label) in ALLOWED:
            bad.expect = A
        elif (entry.id, name, label) in STRICT:
            bad.expect = R
    return out


# ---------------------------------------------------------------------------------------------
# Running one call: time limit, address-space cap, non-finite results
# ---------------------------------------------------------------------------------------------

class CallTimeout(BaseException):
    """Raised by the alarm: a BaseException, so that `except Exception` does not eat it."""


def _on_alarm(signum, frame):
    raise CallTimeout()


@contextlib.contextmanager
def time_limit(seconds: float):
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _vm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def address_space_cap(extra: int):
    """Let the process map at most ``extra`` more bytes (an unguarded huge allocation then
    fails at once instead of taking the machine's memory)."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = _vm_bytes() + extra
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError):  # not on Linux: no cap
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def nonfinite(obj, path: str = "result", depth: int = 0) -> str | None:
    """The path of the first NaN/inf in a returned tree of tensors, arrays, numbers,
    dataclasses, dicts and sequences (other objects, e.g. figures, are not looked into)."""
    if depth > 6:
        return None
    if isinstance(obj, torch.Tensor):
        if obj.device.type == "meta" or not (obj.is_floating_point() or obj.is_complex()):
            return None
        return None if bool(torch.isfinite(obj).all()) else path
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "fc":
            return None
        return None if bool(np.isfinite(obj).all()) else path
    if isinstance(obj, bool):
        return None
    if isinstance(obj, numbers.Real):
        return None if math.isfinite(float(obj)) else path
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            bad = nonfinite(getattr(obj, f.name), f"{path}.{f.name}", depth + 1)
            if bad:
                return bad
        return None
    if isinstance(obj, dict):
        for k, v in obj.items():
            bad = nonfinite(v, f"{path}[{k!r}]", depth + 1)
            if bad:
                return bad
        return None
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj[:64]):
            bad = nonfinite(v, f"{path}[{i}]", depth + 1)
            if bad:
                return bad
    return None


def run(entry: Entry, kwargs: dict, *, limit: float, huge: bool = False):
    """("ok", result) | ("raised", exception) | ("timeout", None)."""
    cap = address_space_cap(HUGE_CASE_EXTRA_BYTES) if huge else contextlib.nullcontext()
    try:
        with cap, time_limit(limit):
            return "ok", call(entry, kwargs)
    except CallTimeout:
        return "timeout", None
    except Exception as exc:  # noqa: BLE001 (classified by the caller)
        return "raised", exc


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]


# ---------------------------------------------------------------------------------------------
# The parametrization, computed once at collection
# ---------------------------------------------------------------------------------------------

ENTRIES, AUTO_EXCLUDED = collect_api()
ENTRIES_BY_ID = {e.id: e for e in ENTRIES}
_COLLECTION_ERRORS: dict[str, str] = {}


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for entry in ENTRIES:
        try:
            with time_limit(VALID_CALL_LIMIT_S):
                kwargs = valid_kwargs(entry)
                for name in _signature(entry).parameters:
                    for label in bad_inputs(entry, name, kwargs):
                        cases.append((entry.id, name, label))
        except (Exception, CallTimeout) as exc:  # reported by test_valid_call_succeeds
            _COLLECTION_ERRORS[entry.id] = _one_line(exc)
    return cases


CASES = _cases()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

def test_collection_covers_the_chapter_modules():
    modules = {_module_of(e) for e in ENTRIES}
    for name in ("mfteach.gaussian", "mfteach.activations", "mfteach.kernels",
                 "mfteach.models", "mfteach.training", "mfteach.plotting", "mfteach.stats",
                 "mfteach.device", "mfteach.finite_width", "mfteach.sgd_odes",
                 "mfteach.lazy_vs_meanfield"):
        assert name in modules, f"{name} contributed no public callable to the sweep"
    assert not any(m.startswith("mfteach.widgets") for m in modules)


def test_exclusions_are_current():
    ids = {e.id for e in ENTRIES} | set(AUTO_EXCLUDED)
    stale = [k for k in EXCLUDED if k not in ids]
    assert not stale, f"EXCLUDED lists names that are not public callables: {stale}"
    generated = set(CASES)
    stale = [k for k in ALLOWED if k[0] not in _COLLECTION_ERRORS and k not in generated]
    assert not stale, f"ALLOWED lists cases that the sweep does not generate: {stale}"
    stale = [k for k in STRICT if k[0] not in _COLLECTION_ERRORS and k not in generated]
    assert not stale, f"STRICT lists cases that the sweep does not generate: {stale}"
    stale = [k for k in NOT_FUZZED if k[0] not in ENTRIES_BY_ID
             or k[1] not in _signature(ENTRIES_BY_ID[k[0]]).parameters]
    assert not stale, f"NOT_FUZZED lists parameters that do not exist: {stale}"
    stale = [k for k in VALID_CALLS if k not in ENTRIES_BY_ID]
    assert not stale, f"VALID_CALLS lists callables that are not swept: {stale}"


@pytest.mark.parametrize("fn_id", [e.id for e in ENTRIES],
                         ids=[e.short for e in ENTRIES])
def test_valid_call_succeeds(fn_id):
    """Every public callable has a valid call, it succeeds, and its result is finite."""
    assert fn_id not in _COLLECTION_ERRORS, _COLLECTION_ERRORS[fn_id]
    entry = ENTRIES_BY_ID[fn_id]
    status, out = run(entry, valid_kwargs(entry), limit=VALID_CALL_LIMIT_S)
    assert status != "timeout", f"the valid call of {fn_id} ran over {VALID_CALL_LIMIT_S} s"
    assert status == "ok", f"the valid call of {fn_id} raised {_one_line(out)}"
    where = nonfinite(out)
    assert where is None, f"the valid call of {fn_id} returned a non-finite value at {where}"


#: Labels where the bad value disagrees with another tensor: the message may name the pair, the
#: other one quoted and this one as a plain word ("... the same shape as before (4, 2)").
PAIR_LABELS = {"shape", "dtype mismatch", "other device"}


def _names_param(msg: str, entry: Entry, name: str, label: str) -> bool:
    alias = PARAM_ALIASES.get((entry.id, name), name)
    if f"'{name}'" in msg or f"'{alias}'" in msg:
        return True
    return (label in PAIR_LABELS and len(name) > 1
            and re.search(rf"(?<![\w']){re.escape(name)}(?![\w'])", msg) is not None)


def _check_clear_error(exc: BaseException, entry: Entry, name: str, label: str = "") -> None:
    msg = str(exc)
    assert _names_param(msg, entry, name, label), (
        f"message does not name {name!r}: {_one_line(exc)}")
    assert "\n" not in msg.strip(), f"message is not one line: {_one_line(exc)}"
    assert len(msg) < 400, f"message too long ({len(msg)} chars): {_one_line(exc)}"


@pytest.mark.parametrize("fn_id, name, label", CASES,
                         ids=[f"{i.removeprefix('mfteach.')}-{n}-{lab}" for i, n, lab in CASES])
def test_bad_input(fn_id, name, label):
    entry = ENTRIES_BY_ID[fn_id]
    kwargs = valid_kwargs(entry)
    bad = bad_inputs(entry, name, kwargs)[label]
    kwargs.update(bad.extra)
    kwargs[name] = bad.value
    status, out = run(entry, kwargs, limit=BAD_CALL_LIMIT_S, huge=bad.huge)
    assert status != "timeout", f"ran over {BAD_CALL_LIMIT_S} s instead of refusing quickly"
    if bad.expect == "accept":
        assert status == "ok", f"must be accepted; raised {_one_line(out)}"
    elif bad.expect == "reject":
        assert status == "raised", f"accepted silently (returned {type(out).__name__})"
        assert isinstance(out, (ValueError, TypeError)), (
            f"raised another exception type: {_one_line(out)}")
        _check_clear_error(out, entry, name, label)
    else:  # "safe": a clear error, a DivergenceError, or a finite result
        if status == "raised":
            if isinstance(out, DivergenceError):
                assert "\n" not in str(out).strip(), f"not one line: {_one_line(out)}"
                return
            assert isinstance(out, (ValueError, TypeError)), (
                f"raised another exception type: {_one_line(out)}")
            _check_clear_error(out, entry, name, label)
    if status == "ok":
        where = nonfinite(out)
        assert where is None, f"returned a non-finite value at {where}"


def test_divergence_is_a_clear_error_not_nan():
    model = _model(parametrization="ntk", width=16)
    X = _x(8, 3) * 10
    with pytest.raises(DivergenceError, match="lr"):
        mfteach.training.train(model, X, torch.ones(8, dtype=F64), lr=1e6, steps=50)


def test_absurd_lr_on_a_float32_model_is_refused_or_diverges():
    model = _model(dtype=F32)
    X, y = _x().float(), torch.zeros(4)
    entry = ENTRIES_BY_ID["mfteach.training.train"]
    status, out = run(entry, dict(model=model, X=X, y=y, lr=1e40, steps=5),
                      limit=BAD_CALL_LIMIT_S)
    assert status != "timeout"
    if status == "raised":
        assert isinstance(out, (DivergenceError, ValueError, TypeError)), _one_line(out)
        assert "'lr'" in str(out) or isinstance(out, DivergenceError), _one_line(out)
        return
    hist = out
    assert nonfinite(hist) is None, "train returned a non-finite history for lr=1e40"
