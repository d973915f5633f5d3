"""Tests of mfteach.models: output scaling at init, the closed-form NTK, ensembles, data."""

from __future__ import annotations

import math

import pytest
import torch

from mfteach.models import PARAMETRIZATIONS, TEACHER_KINDS, TwoLayer, teacher_data
from mfteach.stats import fit_loglog_slope
from mfteach.testing import assert_mc_close, assert_slope_close
from tests.conftest import TOL

F64 = torch.float64


def _gaussian_second_moment(activation: str, q: torch.Tensor) -> torch.Tensor:
    """E[sigma(z)^2] for z ~ N(0, q), derived by hand (independent of mfteach.activations)."""
    return {"relu": q / 2, "linear": q, "square": 3 * q**2}[activation]


# Output scaling at initialisation ---------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "linear", "square"])
@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_init_output_second_moment_matches_closed_form(parametrization, activation, generator):
    # E f(x)^2 = N s_N^2 E[a^2] E[sigma(z)^2], z ~ N(0, |x|^2/d): exact for every N since the
    # neurons are independent and E a = 0. N s^2 E a^2 = 1 (ntk, standard) or 1/N (mf).
    d, N, B = 3, 16, 20_000
    model = TwoLayer(d, N, activation=activation, parametrization=parametrization,
                     n_networks=B, generator=generator, dtype=F64)
    x = torch.tensor([[1.0, 0.0, 0.0], [0.5, -1.0, 2.0], [0.3, 0.3, 0.3]], dtype=F64)
    f = model(x)  # (B, 3)
    q = (x**2).sum(1) / d
    expected = _gaussian_second_moment(activation, q)
    if parametrization == "mf":
        expected = expected / N
    assert_mc_close(f**2, expected)


def test_mf_output_variance_falls_like_one_over_width(generator):
    widths = [8, 32, 128, 512]
    x = torch.tensor([[1.0, -0.5, 0.25]], dtype=F64)
    var = []
    for N in widths:
        model = TwoLayer(3, N, parametrization="mf", n_networks=3000, generator=generator,
                         dtype=F64)
        with torch.no_grad():
            var.append(float((model(x) ** 2).mean()))
    fit = fit_loglog_slope(widths, var)
    assert_slope_close(fit, -1.0)
    # the same measurement under "ntk" has slope 0: the test separates the two scalings
    assert abs(fit.slope) > 0.5


def test_ntk_and_standard_agree_in_law_but_not_in_weights(generator):
    ntk = TwoLayer(2, 50, parametrization="ntk", generator=0, dtype=F64)
    std = TwoLayer(2, 50, parametrization="standard", generator=0, dtype=F64)
    x = torch.randn(5, 2, generator=generator, dtype=F64)
    # Two roundings of the same 50-term product (a or a / sqrt(50) as the operand): within
    # 2 gamma_50 sum_j |a_j phi_j| / sqrt(50) ~ 1e-14 of O(1) outputs; the weights differ by
    # one multiplication and one division (2 ulps). Loose by 100x, not bit-identity.
    torch.testing.assert_close(ntk(x), std(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(std.a * math.sqrt(50), ntk.a, rtol=1e-12, atol=0)


@pytest.mark.parametrize("parametrization,scale,lr_scale", [
    ("ntk", 1 / 8, 1.0), ("standard", 1.0, 1.0), ("mf", 1 / 64, 64.0)])
def test_scale_and_lr_scale(parametrization, scale, lr_scale):
    model = TwoLayer(2, 64, parametrization=parametrization, generator=0)
    assert model.scale == pytest.approx(scale, rel=1e-15)  # scalar 1/sqrt(64), 1/64: exact
    assert model.lr_scale == lr_scale


# Closed-form NTK versus the autograd Jacobian ---------------------------------------------
def _jacobian_ntk(model: TwoLayer, b: int, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    params = model.params_of(b)
    j1 = torch.func.jacrev(model.functional_forward)(params, x1)
    j2 = torch.func.jacrev(model.functional_forward)(params, x2)
    return sum(j1[k].reshape(x1.shape[0], -1) @ j2[k].reshape(x2.shape[0], -1).T for k in j1)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "erf_sqrt2", "square",
                                        "linear"])
@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_ntk_matrix_matches_autograd_jacobian(parametrization, activation, generator):
    model = TwoLayer(3, 40, activation=activation, parametrization=parametrization,
                     n_networks=3, generator=generator, dtype=F64)
    x1 = torch.randn(5, 3, generator=generator, dtype=F64)
    x2 = torch.randn(4, 3, generator=generator, dtype=F64)
    K = model.ntk_matrix(x1, x2)
    assert K.shape == (3, 5, 4)
    # A Gram matrix of Jacobians computed two ways: |error| <= (P + d + 3) eps sqrt(K_ii K_jj)
    # (Cauchy-Schwarz bounds the absolute sums by the norms), P = 4N = 160 terms, i.e.
    # ~4e-14 of the scale; rtol 1e-10 / atol 1e-12 hold that with room, on any BLAS.
    for b in range(3):
        torch.testing.assert_close(K[b], _jacobian_ntk(model, b, x1, x2), rtol=1e-10,
                                   atol=1e-12)


def test_ntk_matrix_matches_kernels_empirical_ntk(generator):
    kernels = pytest.importorskip("mfteach.kernels")
    if not hasattr(kernels, "empirical_ntk"):
        pytest.skip("mfteach.kernels.empirical_ntk not available")
    model = TwoLayer(3, 30, activation="tanh", n_networks=2, generator=generator, dtype=F64)
    x1 = torch.randn(6, 3, generator=generator, dtype=F64)
    x2 = torch.randn(2, 3, generator=generator, dtype=F64)
    K = model.ntk_matrix(x1, x2)
    for b in range(2):
        ref = kernels.empirical_ntk(model.functional_forward, model.params_of(b), x1, x2)
        torch.testing.assert_close(K[b], ref, rtol=1e-10, atol=1e-12)


def test_ntk_matrix_symmetric_psd_and_per_network_inputs(generator):
    model = TwoLayer(2, 25, activation="erf", n_networks=2, generator=generator, dtype=F64)
    x = torch.randn(2, 6, 2, generator=generator, dtype=F64)  # one input batch per network
    K = model.ntk_matrix(x)
    # Not bit-symmetric by construction (a BLAS product A A^T need not be): each entry is
    # within (N + d + 3) eps sqrt(K_ii K_jj) of the exact symmetric value (Cauchy-Schwarz
    # bounds the absolute sums of the two Gram terms), so K - K^T within twice that; the
    # eigenvalues of the PSD exact K move by at most n eps ||K|| plus that perturbation.
    diag = torch.diagonal(K, dim1=1, dim2=2)
    scale = (diag[:, :, None] * diag[:, None, :]).sqrt()
    eps = torch.finfo(F64).eps
    assert bool(((K - K.transpose(1, 2)).abs() <= 2 * (25 + 2 + 3) * eps * scale).all())
    ev = torch.linalg.eigvalsh(K)
    assert bool((ev.min(-1).values >= -(6 + 2 * 30 * 6) * eps * ev.max(-1).values).all())
    for b in range(2):
        torch.testing.assert_close(K[b], _jacobian_ntk(model, b, x[b], x[b]), rtol=1e-10,
                                   atol=1e-12)


# Ensembles --------------------------------------------------------------------------------
def test_ensemble_forward_equals_per_network_forward(generator):
    model = TwoLayer(4, 32, activation="tanh", n_networks=5, generator=generator, dtype=F64)
    x = torch.randn(7, 4, generator=generator, dtype=F64)
    xb = torch.randn(5, 7, 4, generator=generator, dtype=F64)
    f, fb = model(x), model(xb)
    assert f.shape == fb.shape == (5, 7)
    # Batched and single products of length d = 4 and N = 32: each output within
    # 2 (N + d + 2) eps scale sum_j |a_j tanh(h_j)| of the other (tanh is 1-Lipschitz and
    # |tanh| <= 1 bounds what the pre-activations' rounding moves).
    eps = torch.finfo(F64).eps

    def bound(p, z):
        return 2 * (32 + 4 + 2) * eps * model.scale * (
            p["a"].abs() * (torch.tanh(z @ p["W"].T / 2.0).abs() + z.abs() @ p["W"].abs().T
                            / 2.0)).sum(1)

    for b in range(5):
        p = model.params_of(b)
        torch.testing.assert_close(f[b], model.functional_forward(p, x), rtol=0,
                                   atol=float(bound(p, x).max()))
        torch.testing.assert_close(fb[b], model.functional_forward(p, xb[b]), rtol=0,
                                   atol=float(bound(p, xb[b]).max()))
        # and the formula of the docstring, written out
        want = model.scale * (p["a"] * torch.tanh(x @ p["W"].T / 2.0)).sum(1)
        torch.testing.assert_close(f[b], want, rtol=0, atol=float(bound(p, x).max()))


def test_network_b_does_not_depend_on_ensemble_size():
    small = TwoLayer(3, 10, n_networks=2, generator=7)
    big = TwoLayer(3, 10, n_networks=5, generator=7)
    # Same seed and draws in the same order: identical bits by construction.
    assert torch.equal(small.W, big.W[:2]) and torch.equal(small.a, big.a[:2])


def test_same_seed_same_model_and_generator_continues():
    assert torch.equal(TwoLayer(2, 5, generator=3).W, TwoLayer(2, 5, generator=3).W)
    g = torch.Generator().manual_seed(3)
    first, second = TwoLayer(2, 5, generator=g), TwoLayer(2, 5, generator=g)
    assert not torch.equal(first.W, second.W)


def test_from_params_and_params_of_roundtrip(generator):
    model = TwoLayer(2, 6, activation="erf", parametrization="mf", n_networks=3,
                     generator=generator, dtype=F64)
    copy = TwoLayer.from_params(model.W, model.a, activation="erf", parametrization="mf")
    x = torch.randn(4, 2, generator=generator, dtype=F64)
    assert torch.equal(copy(x), model(x))
    copy.W.data.zero_()  # a copy, not a view
    assert not torch.equal(copy.W, model.W)
    p = model.params_of(2)
    p["W"].zero_()
    assert not torch.equal(model.W[2], p["W"])


def test_parameters_live_on_device_and_dtype(device, dtype):
    model = TwoLayer(3, 8, n_networks=2, generator=0, device=device, dtype=dtype)
    assert model.W.device.type == device and model.W.dtype == dtype
    x = torch.ones(4, 3, device=device, dtype=dtype)
    out = model(x)
    assert out.device.type == device and out.dtype == dtype
    K = model.ntk_matrix(x)
    assert K.device.type == device and K.dtype == dtype


def test_default_dtype_is_float32_on_cpu():
    model = TwoLayer(2, 4, generator=0)
    assert model.W.dtype == torch.float32 and model.W.device.type == "cpu"


@pytest.mark.gpu
def test_cuda_matches_cpu(dtype):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    cpu = TwoLayer(5, 64, activation="tanh", n_networks=3, generator=11, dtype=dtype)
    gpu = TwoLayer(5, 64, activation="tanh", n_networks=3, generator=11, dtype=dtype,
                   device="cuda")
    assert torch.equal(cpu.W, gpu.W.cpu())  # an int seed draws on the CPU
    x = torch.randn(9, 5, generator=torch.Generator().manual_seed(1), dtype=dtype)
    tol = TOL[dtype]
    torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), rtol=tol, atol=tol)
    torch.testing.assert_close(gpu.ntk_matrix(x.cuda()).cpu(), cpu.ntk_matrix(x), rtol=tol,
                               atol=tol)


# teacher_data -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", TEACHER_KINDS)
def test_teacher_data_labels_follow_the_documented_teacher(kind):
    X, y = teacher_data(50, 2, kind=kind, generator=0, dtype=F64)
    assert X.shape == (50, 2) and y.shape == (50,) and X.dtype == F64
    want = {"single_index": torch.tanh(2 * X[:, 0]),
            "two_index": torch.relu(X[:, 0]) - torch.relu(X[:, 1]),
            "linear": X[:, 0]}[kind]
    # The same elementwise expression as teacher_data's (noise 0 adds exact zeros).
    torch.testing.assert_close(y, want, rtol=0, atol=0)


def test_teacher_data_inputs_are_standard_gaussian_and_noise_has_its_variance():
    n, d, noise = 20_000, 3, 0.3
    X, y = teacher_data(n, d, noise=noise, generator=1, dtype=F64)
    assert_mc_close(X, torch.zeros(d))
    assert_mc_close(X**2, torch.ones(d))
    assert_mc_close((y - torch.tanh(2 * X[:, 0])) ** 2, noise**2)


def test_teacher_data_device_and_seed(device):
    X1, y1 = teacher_data(10, 2, generator=5, device=device)
    X2, _ = teacher_data(10, 2, generator=5)
    assert X1.device.type == device and y1.device.type == device
    # An int seed draws on the CPU and moves the draws: identical bits by construction.
    torch.testing.assert_close(X1.cpu(), X2, rtol=0, atol=0)


# Validation -------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,exc,match", [
    ({"d": 0}, ValueError, "'d' parameter of mfteach.models.TwoLayer"),
    ({"d": 2.0}, TypeError, "'d' parameter"),
    ({"width": 0}, ValueError, "'width' parameter .* int >= 1. Got 0"),
    ({"width": "8"}, TypeError, "'width' parameter"),
    ({"n_networks": 0}, ValueError, "'n_networks' parameter"),
    ({"activation": "sigmoid"}, ValueError, "'activation' parameter .* 'relu'"),
    ({"activation": None}, TypeError, "'activation' parameter"),
    ({"parametrization": "mup"}, ValueError, "'parametrization' parameter .* 'mf'"),
    ({"generator": None}, TypeError, "'generator' parameter"),
    ({"generator": -1}, ValueError, "'generator' parameter"),
    ({"dtype": torch.int64}, TypeError, "'dtype' parameter"),
    ({"device": "tpu"}, ValueError, "'device' parameter"),
])
def test_twolayer_rejects_bad_arguments(kwargs, exc, match):
    args = {"d": 2, "width": 8, "generator": 0} | kwargs
    with pytest.raises(exc, match=match):
        TwoLayer(args.pop("d"), args.pop("width"), **args)


@pytest.mark.parametrize("x,exc,match", [
    (torch.ones(4, 3), ValueError, "'x' parameter .* last axis .* d=2"),
    (torch.ones(4), ValueError, "'x' parameter .* 2 or 3 dimensions"),
    (torch.ones(3, 4, 2), ValueError, r"'x' parameter .* \(2, n, 2\)"),
    (torch.ones(4, 2, dtype=F64), TypeError, "'x' parameter .* same dtype"),
    (torch.ones(4, 2, dtype=torch.int64), TypeError, "'x' parameter .* floating"),
    (torch.full((4, 2), float("nan")), ValueError, "'x' parameter .* finite"),
    ([[1.0, 2.0]], TypeError, "'x' parameter .* torch.Tensor"),
])
def test_forward_rejects_bad_inputs(x, exc, match):
    model = TwoLayer(2, 8, n_networks=2, generator=0)
    with pytest.raises(exc, match=match):
        model(x)


def test_other_methods_reject_bad_arguments():
    model = TwoLayer(2, 8, n_networks=2, generator=0)
    with pytest.raises(ValueError, match="'b' parameter .* <= 1"):
        model.params_of(2)
    with pytest.raises(ValueError, match="'x2' parameter"):
        model.ntk_matrix(torch.ones(3, 2), torch.ones(3, 5))
    with pytest.raises(TypeError, match="'params' parameter"):
        model.functional_forward({"W": torch.ones(8, 2)}, torch.ones(3, 2))
    with pytest.raises(ValueError, match="'params' parameter"):
        model.functional_forward({"W": torch.ones(8, 3), "a": torch.ones(8)}, torch.ones(3, 2))
    with pytest.raises(ValueError, match="'a' parameter .* shape"):
        TwoLayer.from_params(torch.ones(2, 8, 2), torch.ones(2, 7))
    with pytest.raises(TypeError, match="'a' parameter .* same dtype"):
        TwoLayer.from_params(torch.ones(8, 2), torch.ones(8, dtype=F64))


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"n": 0}, ValueError, "'n' parameter of mfteach.models.teacher_data"),
    ({"kind": "xor"}, ValueError, "'kind' parameter .* 'single_index'"),
    ({"kind": "two_index", "d": 1}, ValueError, "'d' parameter .* >= 2"),
    ({"noise": -0.1}, ValueError, "'noise' parameter"),
    ({"generator": None}, TypeError, "'generator' parameter"),
])
def test_teacher_data_rejects_bad_arguments(kwargs, exc, match):
    args = {"n": 5, "d": 2, "generator": 0} | kwargs
    with pytest.raises(exc, match=match):
        teacher_data(args.pop("n"), args.pop("d"), **args)


def test_ntk_matrix_splits_into_output_and_input_layer_parts(generator):
    model = TwoLayer(3, 20, activation="erf", n_networks=2, generator=generator, dtype=F64)
    x = torch.randn(4, 3, generator=generator, dtype=F64)
    K_a, K_W = model.ntk_matrix(x, wrt=("a",)), model.ntk_matrix(x, wrt=("W",))
    # The same products on the same operands (identical bits); only the sum and the scaling
    # are rounded in another order: within 2 eps (|K_a| + |K_W|).
    torch.testing.assert_close(K_a + K_W, model.ntk_matrix(x), rtol=0,
                               atol=4 * torch.finfo(F64).eps
                               * float((K_a.abs() + K_W.abs()).max()))
    for b in range(2):
        j = torch.func.jacrev(model.functional_forward)(model.params_of(b), x)
        torch.testing.assert_close(K_a[b], j["a"] @ j["a"].T, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="'wrt' parameter"):
        model.ntk_matrix(x, wrt=("b",))


# Nothing silent: sizes, seeds and inputs refused at the boundary -----------------------
@pytest.mark.parametrize("kwargs, name", [
    ({"d": 3, "width": 10**12}, "width"),
    ({"d": 10**12, "width": 4}, "d"),
    ({"d": 3, "width": 4, "n_networks": 10**12}, "n_networks"),
])
def test_twolayer_refuses_terabyte_sizes_naming_the_argument(kwargs, name):
    # These used to attempt the allocation (a RuntimeError from the allocator, or swapping).
    with pytest.raises(ValueError, match=f"'{name}' parameter .* memory limit .* TiB"):
        TwoLayer(generator=0, **kwargs)


def test_teacher_data_refuses_huge_sizes_and_overflowing_noise():
    with pytest.raises(ValueError, match="'n' parameter .* memory limit"):
        teacher_data(10**12, 2, generator=0)
    with pytest.raises(ValueError, match="'d' parameter .* memory limit"):
        teacher_data(4, 10**12, generator=0)
    with pytest.raises(ValueError, match="'noise' parameter"):
        teacher_data(4, 2, noise=1e307, generator=0, dtype=F64)  # labels would be inf
    with pytest.raises(ValueError, match="'noise' parameter"):
        teacher_data(4, 2, noise=1e37, generator=0)  # float32
    X, y = teacher_data(4, 2, noise=1e30, generator=0, dtype=F64)
    assert bool(torch.isfinite(y).all())


@pytest.mark.parametrize("make", [lambda: 2**64 - 1, lambda: torch.Generator().manual_seed(3)])
def test_any_64_bit_seed_or_a_generator_is_accepted(make):
    a = TwoLayer(2, 4, generator=make(), dtype=F64)
    b = TwoLayer(2, 4, generator=make(), dtype=F64)
    assert torch.equal(a.W, b.W) and bool(torch.isfinite(a.W).all())
    Xa, _ = teacher_data(3, 2, generator=make())
    Xb, _ = teacher_data(3, 2, generator=make())
    assert torch.equal(Xa, Xb)
    with pytest.raises(ValueError, match="'generator' parameter .* 2\\*\\*64 - 1"):
        TwoLayer(2, 4, generator=2**64)


def test_from_params_functional_forward_and_ntk_matrix_refuse_bad_inputs():
    with pytest.raises(ValueError, match="'W' parameter .* N, d >= 1"):
        TwoLayer.from_params(torch.ones(0, 2), torch.ones(0))  # no neuron: no scale 1/N
    model = TwoLayer(2, 4, generator=0, dtype=F64)
    params = model.params_of(0)
    with pytest.raises(ValueError, match="'x' parameter .* finite"):
        model.functional_forward(params, torch.full((3, 2), math.nan, dtype=F64))
    with pytest.raises(TypeError, match="'x' parameter .* torch.Tensor"):
        model.functional_forward(params, torch.ones(3, 2, dtype=F64).numpy())
    with pytest.raises(TypeError, match="'params' parameter"):
        model.functional_forward({"W": params["W"].numpy(), "a": params["a"]},
                                 torch.ones(3, 2, dtype=F64))
    # (B, n, n) kernels for n = 1e6 would need terabytes.
    with pytest.raises(ValueError, match="'x1' parameter .* memory limit"):
        model.ntk_matrix(torch.zeros(10**6, 2, dtype=F64))


def test_functional_forward_still_runs_under_torch_func_transforms():
    # The value check is skipped on transformed (batched) tensors, where it cannot run.
    model = TwoLayer(2, 4, generator=0, dtype=F64)
    params = model.params_of(0)
    x = torch.randn(5, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    out = torch.func.vmap(lambda xi: model.functional_forward(params, xi[None])[0])(x)
    # Batched vs unbatched products of length d = 2 and N = 4: within 2 (N + d + 2) eps of
    # the absolute sums (the activation's slope <= 1 carries the pre-activations' rounding).
    h_abs = x.abs() @ params["W"].abs().T / math.sqrt(2)
    abs_sum = model.scale * (params["a"].abs() * (model._act.fn(x @ params["W"].T
                                                               / math.sqrt(2)).abs()
                                                  + h_abs)).sum(1)
    torch.testing.assert_close(out, model.functional_forward(params, x), rtol=0,
                               atol=2 * 8 * torch.finfo(F64).eps * float(abs_sum.max()))
