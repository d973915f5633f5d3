"""The validation sweep: every public function, fed a bad shape, dtype, device or value, raises
a ``ValueError``/``TypeError`` whose one-line message names the argument (never a traceback from
deep inside torch).

Each row of ``CASES`` gives a valid call and the kind of each argument; the bad inputs are
generated from the kind, so adding a function is one row. A tensor on the ``meta`` device stands
in for "another device" on machines without CUDA.
"""

from __future__ import annotations

import pytest
import torch

from mfteach import activations as acts
from mfteach import gaussian, kernels, models, stats, training
from mfteach.device import as_generator

F64 = torch.float64


def _x(n=4, d=3, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _cov(k):
    A = torch.randn(k, k, generator=torch.Generator().manual_seed(k), dtype=F64)
    return A @ A.T / k + torch.eye(k, dtype=F64)


def _bad_values(kind, good):
    """(label, bad value) pairs for an argument of the given kind."""
    if kind == "scalar_tensor":   # a variance-like scalar: tensor or float accepted
        return [("nan", float("nan")), ("string", "1.0")]
    if kind == "variance":
        return [("negative", -1.0), ("nan", float("nan")), ("string", "1.0")]
    if kind.startswith("matrix"):
        bad = [("rank", good[0]), ("int dtype", good.to(torch.int64)),
               ("nan", torch.where(torch.arange(good.numel()).reshape(good.shape) == 0,
                                   torch.tensor(float("nan"), dtype=good.dtype), good)),
               ("not a tensor", good.tolist())]
        if kind == "matrix_other":   # the second of two tensors: also device and dtype mismatch
            bad += [("device", good.to("meta")), ("dtype mismatch", good.to(torch.float32))]
        return bad
    if kind == "square":
        return [("shape", good[:-1]), ("asymmetric", good + torch.triu(torch.ones_like(good), 1))]
    if kind.startswith("int>="):
        lo = int(kind[5:])
        return [("too small", lo - 1), ("float", lo + 0.5), ("bool", True)]
    if kind == "positive":
        return [("zero", 0.0), ("negative", -1.0), ("nan", float("nan")), ("string", "1")]
    if kind == "nonneg":
        return [("negative", -0.5), ("inf", float("inf"))]
    if kind == "activation":
        return [("unknown", "softmaxish"), ("not a string", 3)]
    if kind == "parametrization":
        return [("unknown", "mup-ish"), ("not a string", 1)]
    if kind == "generator":
        return [("negative seed", -1), ("string", "seed"), ("float", 0.5)]
    if kind == "positive_array":
        return [("non-positive", [1.0, 0.0, 2.0]), ("too short", [1.0])]
    raise AssertionError(f"unknown kind {kind}")


def _model(**kw):
    args = dict(d=3, width=8, n_networks=2, generator=0, dtype=F64)
    args.update(kw)
    return models.TwoLayer(**args)


CASES = {
    "gaussian.arccos_kernel": (
        lambda **kw: gaussian.arccos_kernel(**kw),
        lambda: dict(order=1, c11=torch.tensor(1.0, dtype=F64), c12=torch.tensor(0.3, dtype=F64),
                     c22=torch.tensor(1.0, dtype=F64)),
        {"order": "int>=0", "c11": "variance", "c22": "variance"}),
    "gaussian.erf_dual": (
        lambda **kw: gaussian.erf_dual(**kw),
        lambda: dict(c11=1.0, c12=0.3, c22=1.2), {"c11": "variance", "c22": "variance",
                                                 "c12": "scalar_tensor"}),
    "gaussian.erf_I2_noise": (
        lambda **kw: gaussian.erf_I2_noise(**kw),
        lambda: dict(c11=1.0, c12=0.3, c22=1.2), {"c11": "variance", "c22": "variance"}),
    "gaussian.erf_I3": (lambda **kw: gaussian.erf_I3(**kw), lambda: dict(C=_cov(3)),
                        {"C": "square"}),
    "gaussian.erf_I4": (lambda **kw: gaussian.erf_I4(**kw), lambda: dict(C=_cov(4)),
                        {"C": "square"}),
    "activations.get_activation": (lambda **kw: acts.get_activation(**kw),
                                   lambda: dict(name="relu"), {"name": "activation"}),
    "activations.gaussian_moments": (
        lambda **kw: acts.gaussian_moments(**kw), lambda: dict(activation="tanh", q=1.0),
        {"activation": "activation", "q": "variance"}),
    "kernels.nngp_and_ntk": (
        lambda **kw: kernels.nngp_and_ntk(**kw),
        lambda: dict(x1=_x(), x2=_x(5, 3, 1), activation="relu", depth=2),
        {"x1": "matrix", "x2": "matrix_other", "activation": "activation", "depth": "int>=0",
         "weight_var": "positive", "bias_var": "nonneg"}),
    "kernels.ntk": (
        lambda **kw: kernels.ntk(**kw), lambda: dict(x1=_x(), activation="erf", depth=1),
        {"x1": "matrix", "depth": "int>=0"}),
    "kernels.monte_carlo_kernels": (
        lambda **kw: kernels.monte_carlo_kernels(**kw),
        lambda: dict(x1=_x(), activation="relu", depth=1, width=4, n_samples=3, generator=0),
        {"x1": "matrix", "width": "int>=1", "n_samples": "int>=2", "generator": "generator",
         "activation": "activation"}),
    "models.TwoLayer": (
        lambda **kw: models.TwoLayer(**kw), lambda: dict(d=3, width=4, generator=0),
        {"d": "int>=1", "width": "int>=1", "n_networks": "int>=1",
         "parametrization": "parametrization", "activation": "activation",
         "generator": "generator"}),
    "models.TwoLayer.forward": (
        lambda **kw: _model()(**kw), lambda: dict(x=_x()), {"x": "matrix"}),
    "models.TwoLayer.ntk_matrix": (
        lambda **kw: _model().ntk_matrix(**kw), lambda: dict(x1=_x(), x2=_x(2, 3, 1)),
        {"x1": "matrix", "x2": "matrix_other"}),
    "models.teacher_data": (
        lambda **kw: models.teacher_data(**kw), lambda: dict(n=5, d=2, generator=0),
        {"n": "int>=1", "d": "int>=1", "generator": "generator"}),
    "training.train": (
        lambda **kw: training.train(_model(), **kw),
        lambda: dict(X=_x(), y=torch.zeros(4, dtype=F64), lr=0.1, steps=2),
        {"X": "matrix", "lr": "positive", "steps": "int>=0"}),
    "stats.fit_loglog_slope": (
        lambda **kw: stats.fit_loglog_slope(**kw), lambda: dict(x=[1.0, 2.0, 4.0],
                                                                y=[1.0, 0.5, 0.3]),
        {"x": "positive_array", "y": "positive_array"}),
    "device.as_generator": (lambda generator: as_generator(generator),
                            lambda: dict(generator=0), {"generator": "generator"}),
}

PARAMS = [(name, arg, label) for name, (_, good, kinds) in CASES.items()
          for arg, kind in kinds.items() for label, _ in _bad_values(kind, good().get(arg))]


@pytest.mark.parametrize("name", sorted(CASES))
def test_valid_call_succeeds(name):
    call, good, _ = CASES[name]
    call(**good())


@pytest.mark.parametrize("name, arg, label", PARAMS,
                         ids=[f"{n}-{a}-{lab}" for n, a, lab in PARAMS])
def test_bad_input_gives_one_clear_error(name, arg, label):
    call, good, kinds = CASES[name]
    kwargs = good()
    bad = dict(_bad_values(kinds[arg], kwargs.get(arg)))[label]
    kwargs[arg] = bad
    with pytest.raises((ValueError, TypeError)) as info:
        call(**kwargs)
    msg = str(info.value)
    # The argument is named (the generic template), or for a pair of tensors, both are named.
    named = f"'{arg}' parameter" in msg or (f"'{arg}'" in msg and "parameter" in msg)
    assert named, f"message does not name {arg!r}: {msg}"
    assert "\n" not in msg.strip(), f"message is not one line: {msg}"
    assert len(msg) < 400, f"message too long: {msg}"


def test_divergence_is_a_clear_error_not_nan():
    model = _model(parametrization="ntk", width=16)
    X = _x(8, 3) * 10
    with pytest.raises(training.DivergenceError, match="lr"):
        training.train(model, X, torch.ones(8, dtype=F64), lr=1e6, steps=50)
