"""Tests of mfteach.kernels: the NNGP/NTK recursion against closed forms, an independent
recursion, Monte Carlo over random networks, the empirical NTK, and a width-scaling rate."""

from __future__ import annotations

import math

import pytest
import torch

from mfteach.activations import Activation, dual, dual_prime, get_activation
from mfteach.gaussian import arccos_kernel, erf_dual, erf_dual_prime
from mfteach.kernels import (
    _init_mlp,
    _mlp_forward,
    _mlp_kernels,
    empirical_ntk,
    monte_carlo_kernels,
    nngp,
    nngp_and_ntk,
    ntk,
    sample_network_kernels,
)
from mfteach.stats import SlopeFit, bonferroni_z, fit_loglog_slope, mc_estimate
from mfteach.testing import assert_mc_close, assert_slope_close
from tests.conftest import TOL

F64 = torch.float64


def _inputs(n: int, d: int, generator, *, dtype=F64, device="cpu", radius=None):
    x = torch.randn(n, d, generator=generator, dtype=F64)
    if radius is not None:  # put the inputs on the sphere |x|^2 = radius^2 d (unit variance)
        x = x / x.norm(dim=1, keepdim=True) * radius * math.sqrt(d)
    return x.to(device=device, dtype=dtype)


def _naive(x1, x2, act, depth, wv, bv):
    """Entry-by-entry recursion through the public duals of mfteach.activations: an
    independent route to the same kernels (no blocking, no fusion, no symmetry)."""
    d = x1.shape[1]
    q1 = wv * (x1 * x1).sum(1) / d + bv
    q2 = wv * (x2 * x2).sum(1) / d + bv
    K = wv * x1 @ x2.T / d + bv
    T = K.clone()
    for _ in range(depth):
        c11, c22 = q1[:, None].expand_as(K), q2[None, :].expand_as(K)
        K_next = wv * dual(act, c11, K, c22) + bv
        T = K_next + wv * dual_prime(act, c11, K, c22) * T
        q1 = wv * dual(act, q1, q1, q1) + bv
        q2 = wv * dual(act, q2, q2, q2) + bv
        K = K_next
    return K, T


# ------------------------------------------------------------------------------------------
# Closed forms and an independent route
# ------------------------------------------------------------------------------------------

def test_depth1_relu_and_erf_match_gaussian_closed_forms(generator):
    """One hidden layer: K^2 = wv E[phi phi] + bv, Theta^2 = K^2 + wv E[phi' phi'] K^1, with
    the expectations from mfteach.gaussian (an independent implementation)."""
    x, y = _inputs(7, 5, generator), _inputs(6, 5, generator)
    wv, bv = 1.7, 0.3
    K1 = wv * x @ y.T / 5 + bv
    c11 = (wv * (x * x).sum(1) / 5 + bv)[:, None].expand_as(K1)
    c22 = (wv * (y * y).sum(1) / 5 + bv)[None, :].expand_as(K1)
    for act, e, e_prime in (("relu", lambda *c: arccos_kernel(1, *c),
                             lambda *c: arccos_kernel(0, *c)),
                            ("erf", erf_dual, erf_dual_prime)):
        K2 = wv * e(c11, K1, c22) + bv
        T2 = K2 + wv * e_prime(c11, K1, c22) * K1
        K, T = nngp_and_ntk(x, y, activation=act, depth=1, weight_var=wv, bias_var=bv)
        torch.testing.assert_close(K, K2, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(T, T2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "erf_sqrt2", "square", "linear"])
@pytest.mark.parametrize("wv, bv", [(1.0, 0.0), (2.0, 0.3)], ids=["plain", "bias"])
def test_deep_recursion_matches_naive_recursion(activation, wv, bv, generator):
    """Depth 3 (fused, blocked, symmetric path and x2 path) vs the naive entrywise recursion."""
    x, y = _inputs(7, 4, generator, radius=1.0), _inputs(4, 4, generator, radius=1.0)
    # tanh goes through the same 2-D Gauss-Hermite rule on both routes; the rule is not
    # exactly symmetric in (u, v), and with x2=None the kernel keeps the orientation of the
    # upper triangle (mirrored), so compare that triangle. Agreement to rounding.
    tol = 1e-12
    for x2 in (y, None):
        ref_y = x if x2 is None else y
        K, T = nngp_and_ntk(x, x2, activation=activation, depth=3, weight_var=wv, bias_var=bv)
        K0, T0 = _naive(x, ref_y, activation, 3, wv, bv)
        if x2 is None:
            K, T, K0, T0 = (torch.triu(M) for M in (K, T, K0, T0))
        torch.testing.assert_close(K, K0, rtol=tol, atol=tol * float(K0.abs().max()))
        torch.testing.assert_close(T, T0, rtol=tol, atol=tol * float(T0.abs().max()))


def test_quadrature_route_matches_fused_erf(generator):
    """A custom Activation (not the registered erf) takes the Gauss-Hermite route. The
    integrands are entire (erf, Gaussian), so the rule converges geometrically: at degree 128
    it is exact to rounding for these variances (< 2); at degree 32 it is visibly not."""
    x = _inputs(6, 3, generator, radius=1.0)
    erf = get_activation("erf")
    custom = Activation("my_erf", erf.fn, erf.deriv)
    K, T = nngp_and_ntk(x, activation="erf", depth=2, weight_var=1.5, bias_var=0.2)
    Kq, Tq = nngp_and_ntk(x, activation=custom, depth=2, weight_var=1.5, bias_var=0.2,
                          quadrature_degree=128)
    torch.testing.assert_close(Kq, K, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(Tq, T, rtol=1e-12, atol=1e-12)
    Tc = ntk(x, activation=custom, depth=2, weight_var=1.5, bias_var=0.2, quadrature_degree=32)
    assert float((Tc - T).abs().max()) > 1e-8


@pytest.mark.parametrize("wv, bv", [(1.0, 0.0), (2.0, 0.5)])
def test_relu_diagonal_closed_form(wv, bv, generator):
    x = _inputs(5, 3, generator)
    q1 = wv * (x * x).sum(1) / 3 + bv
    K2 = wv * q1 / 2 + bv  # E[relu(u)^2] = q/2
    T2 = K2 + wv * 0.5 * q1  # E[step(u)^2] = 1/2
    K, T = nngp_and_ntk(x, activation="relu", depth=1, weight_var=wv, bias_var=bv)
    torch.testing.assert_close(K.diagonal(), K2, rtol=1e-14, atol=0)
    torch.testing.assert_close(T.diagonal(), T2, rtol=1e-14, atol=0)
    torch.testing.assert_close(nngp(x, activation="relu", depth=1, weight_var=wv, bias_var=bv),
                               K, rtol=0, atol=0)
    torch.testing.assert_close(ntk(x, activation="relu", depth=1, weight_var=wv, bias_var=bv),
                               T, rtol=0, atol=0)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
def test_depth0_is_the_linear_kernel(activation, generator):
    x, y = _inputs(4, 3, generator), _inputs(3, 3, generator)
    lin = 1.3 * x @ y.T / 3 + 0.4
    K, T = nngp_and_ntk(x, y, activation=activation, depth=0, weight_var=1.3, bias_var=0.4)
    torch.testing.assert_close(K, lin, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(T, lin, rtol=1e-14, atol=1e-15)


# ------------------------------------------------------------------------------------------
# Structure: symmetry, PSD, dtype, x2 = x, blocking
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
def test_symmetric_and_psd(activation, dtype, generator):
    n = 40
    x = _inputs(n, 6, generator, dtype=dtype)
    # A coarse rule for tanh keeps this structural test fast (accuracy is not tested here).
    for M in nngp_and_ntk(x, activation=activation, depth=3, weight_var=1.5, bias_var=0.1,
                          quadrature_degree=16):
        assert M.dtype == dtype
        assert torch.equal(M, M.T)
        ev = torch.linalg.eigvalsh(M.double())
        # Eigenvalues of a PSD matrix computed in `dtype`: rounding ~ n * eps * |M|.
        assert float(ev.min()) >= -n * torch.finfo(dtype).eps * float(ev.max())


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_float32_float64_and_x2_equal_x(activation, dtype, generator):
    x = _inputs(30, 5, generator)
    ref = nngp_and_ntk(x, activation=activation, depth=3, bias_var=0.2)
    got_sym = nngp_and_ntk(x.to(dtype), activation=activation, depth=3, bias_var=0.2)
    got_x2 = nngp_and_ntk(x.to(dtype), x.to(dtype), activation=activation, depth=3,
                          bias_var=0.2)
    for r, a, b in zip(ref, got_sym, got_x2):
        assert a.dtype == dtype and b.dtype == dtype
        torch.testing.assert_close(a.double(), r, rtol=TOL[dtype], atol=TOL[dtype])
        torch.testing.assert_close(b.double(), r, rtol=TOL[dtype], atol=TOL[dtype])


def test_blocking_does_not_change_the_result(generator, monkeypatch):
    """Tiny blocks (many row blocks, partial last block) give the same kernels."""
    import mfteach.kernels as mk

    x, y = _inputs(23, 4, generator), _inputs(11, 4, generator)
    for act in ("relu", "erf", "tanh"):
        kw = dict(activation=act, depth=2, bias_var=0.1, quadrature_degree=16)
        ref = [nngp_and_ntk(x, x2, **kw) for x2 in (None, y)]
        monkeypatch.setattr(mk, "_BLOCK", 40)
        got = [nngp_and_ntk(x, x2, **kw) for x2 in (None, y)]
        monkeypatch.undo()
        for (a, b), (c, e) in zip(ref, got):
            torch.testing.assert_close(c, a, rtol=1e-13, atol=1e-13)
            torch.testing.assert_close(e, b, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_several_blocks_and_workers_match_naive(activation, generator, monkeypatch):
    """Enough inputs for several default-size blocks shared by two worker threads."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    x = _inputs(300, 4, generator)
    K, T = nngp_and_ntk(x, activation=activation, depth=2, bias_var=0.1)
    K0, T0 = _naive(x, x, activation, 2, 1.0, 0.1)
    # Off the diagonal: agreement to rounding. On it the naive route feeds K_ii (a matmul)
    # against q_i (a sum of squares): they differ by rounding, and the angle
    # theta ~ sqrt(eps) ~ 1e-8 enters the step kernel (pi - theta)/(2 pi) linearly; the
    # fused route uses theta = 0 there exactly.
    off = ~torch.eye(300, dtype=torch.bool)
    for M, M0 in ((K, K0), (T, T0)):
        torch.testing.assert_close(M[off], M0[off], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(M.diagonal(), M0.diagonal(), rtol=1e-7, atol=0)
        assert torch.equal(M, M.T)


def test_zero_input_and_empty_batch(generator):
    x = torch.zeros(2, 3, dtype=F64)
    x[1, 0] = 1.0
    K, T = nngp_and_ntk(x, activation="relu", depth=2)
    assert torch.isfinite(K).all() and torch.isfinite(T).all()
    assert float(K[0, 0]) == 0.0 and float(T[0, 1]) == 0.0
    K, T = nngp_and_ntk(x[:0], x, activation="erf", depth=2)
    assert K.shape == (0, 2) and T.shape == (0, 2)


# ------------------------------------------------------------------------------------------
# Empirical NTK
# ------------------------------------------------------------------------------------------

def _jacobian_by_loop(model, x):
    rows = []
    for i in range(x.shape[0]):
        grads = torch.autograd.grad(model(x[i:i + 1]).squeeze(), list(model.parameters()))
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def test_empirical_ntk_matches_hand_written_jacobian(generator):
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4),
                                torch.nn.ReLU(), torch.nn.Linear(4, 1)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=F64))
    x, y = _inputs(6, 3, generator), _inputs(4, 3, generator)
    params = dict(model.named_parameters())

    def f(p, z):
        return torch.func.functional_call(model, p, (z,)).squeeze(-1)

    J1, J2 = _jacobian_by_loop(model, x), _jacobian_by_loop(model, y)
    torch.testing.assert_close(empirical_ntk(f, params, x, y), J1 @ J2.T, rtol=1e-13,
                               atol=1e-13)
    got = empirical_ntk(f, params, x)
    torch.testing.assert_close(got, J1 @ J1.T, rtol=1e-13, atol=1e-13)
    assert not got.requires_grad


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
@pytest.mark.parametrize("depth", [0, 1, 3])
def test_batched_network_kernels_match_autograd(activation, depth, generator):
    """The explicit backpropagation of the Monte-Carlo sampler equals empirical_ntk (autograd)
    of each network, and its 'nngp' samples are the products of the network's outputs."""
    act = get_activation(activation)
    x, y = _inputs(4, 3, generator), _inputs(3, 3, generator)
    params = _init_mlp(2, 3, 7, depth, generator=generator, device="cpu", dtype=F64)
    got = _mlp_kernels(params, x, y, act, depth, 1.7, 0.2)
    for s in range(2):
        p = {k: v[s] for k, v in params.items()}

        def f(q, z):
            return _mlp_forward(q, z, activation=act, depth=depth, weight_var=1.7, bias_var=0.2)

        torch.testing.assert_close(got["ntk"][s], empirical_ntk(f, p, x, y), rtol=1e-12,
                                   atol=1e-12)
        torch.testing.assert_close(got["nngp"][s], f(p, x)[:, None] * f(p, y)[None, :],
                                   rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------
# Analytic vs Monte Carlo over random networks
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
def test_depth1_kernels_vs_monte_carlo(activation, generator):
    """With one hidden layer the expectations are exact at any width: the hidden
    pre-activations are exactly Gaussian with covariance K^1, and the NNGP/NTK are averages
    over i.i.d. neurons. So a z-test with no bias allowance, Bonferroni over all entries of
    the three estimators."""
    x = _inputs(4, 3, generator, radius=1.0)
    wv, bv = 1.5, 0.2
    K, T = nngp_and_ntk(x, activation=activation, depth=1, weight_var=wv, bias_var=bv)
    s = sample_network_kernels(x, activation=activation, depth=1, width=16, n_samples=20_000,
                               generator=generator, weight_var=wv, bias_var=bv)
    z = bonferroni_z(3 * K.numel())
    assert_mc_close(s["nngp"], K, z=z)
    assert_mc_close(s["nngp_features"], K, z=z)
    assert_mc_close(s["ntk"], T, z=z)
    # Power: a 10% error in the convention (weight_var) is detected by the same test.
    T_wrong = ntk(x, activation=activation, depth=1, weight_var=1.1 * wv, bias_var=bv)
    with pytest.raises(AssertionError):
        assert_mc_close(s["ntk"], T_wrong, z=z)


def _richardson_test(activation, generator, n_samples):
    """Depth 2: the finite-width mean is K + c1/N + O(1/N^2), so the Richardson combination
    2 m(2N) - m(N) has bias O(1/N^2) ~ 1e-4 relative at N = 32, far below its standard error
    (~5e-3); it is z-tested with no bias allowance. The plain mean at N is biased."""
    x = _inputs(4, 3, generator, radius=1.0)
    wv, bv, N = 1.5, 0.1, 32
    K, T = nngp_and_ntk(x, activation=activation, depth=2, weight_var=wv, bias_var=bv)
    est = [monte_carlo_kernels(x, activation=activation, depth=2, width=w, n_samples=n_samples,
                               generator=generator, weight_var=wv, bias_var=bv)
           for w in (N, 2 * N)]
    z = bonferroni_z(2 * K.numel())
    for key, ref in (("nngp_features", K), ("ntk", T)):
        a, b = est[0][key], est[1][key]
        extrapolated = 2 * b.mean - a.mean
        stderr = (4 * b.stderr**2 + a.stderr**2).sqrt()
        err = (extrapolated - ref).abs()
        assert bool((err <= z * stderr).all()), (key, (err / stderr).max())


def test_depth2_kernels_vs_monte_carlo_richardson(generator):
    _richardson_test("relu", generator, 3000)


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["erf", "tanh"])
def test_depth2_kernels_vs_monte_carlo_richardson_slow(activation, generator):
    _richardson_test(activation, generator, 3000)


def _ntk_rate_test(activation, generator, depth=2):
    """Root-mean-square relative Frobenius error of the empirical NTK of single networks
    against the analytic NTK falls like N^{-1/2}.

    Tolerance: z = bonferroni_z(1) standard errors of the slope, the larger of the fit's
    residual stderr and the sampling stderr (delta method: se(log rms) = std(e) / (2 mean(e)
    sqrt(S)) per width, propagated through least squares), plus an allowance for the O(1/N)
    bias of the mean NTK: MSE = v/N + b^2/N^2 shifts the local rms slope by at most
    (b^2/N) / (2 (v + b^2/N)) <= ratio/2, ratio = |mean error|^2 / MSE at the smallest width.
    """
    x = _inputs(4, 3, generator, radius=1.0)
    wv, bv, S = 1.5, 0.1, 64
    T = ntk(x, activation=activation, depth=depth, weight_var=wv, bias_var=bv)
    widths = [32, 64, 128, 256, 512]
    rms, se_log, ratios = [], [], []
    for N in widths:
        s = sample_network_kernels(x, activation=activation, depth=depth, width=N,
                                   n_samples=S, generator=generator, weight_var=wv,
                                   bias_var=bv)["ntk"]
        e = ((s - T) ** 2).sum((1, 2)) / (T**2).sum()  # (S,) squared relative errors
        rms.append(float(e.mean().sqrt()))
        se_log.append(float(e.std() / (2 * e.mean() * math.sqrt(S))))
        ratios.append(float(((s.mean(0) - T) ** 2).sum() / (T**2).sum() / e.mean()))
    fit = fit_loglog_slope(widths, rms)
    lx = torch.log(torch.tensor(widths, dtype=F64))
    w = (lx - lx.mean()) / ((lx - lx.mean()) ** 2).sum()  # slope = sum w_k log(rms_k)
    se_sampling = float((w**2 * torch.tensor(se_log, dtype=F64) ** 2).sum().sqrt())
    fit = SlopeFit(fit.slope, max(fit.stderr, se_sampling), fit.intercept, fit.n_points)
    assert_slope_close(fit, -0.5, z=bonferroni_z(1), atol=ratios[0] / 2)
    # Power: the rate of the bias alone (-1) or no decay (0) is excluded.
    for wrong in (-1.0, 0.0):
        with pytest.raises(AssertionError):
            assert_slope_close(fit, wrong, z=bonferroni_z(1), atol=ratios[0] / 2)


def test_empirical_ntk_error_rate_in_width(generator):
    _ntk_rate_test("relu", generator)


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["erf", "tanh"])
def test_empirical_ntk_error_rate_in_width_slow(activation, generator):
    _ntk_rate_test(activation, generator)


def test_monte_carlo_kernels_streams_the_samples(generator):
    """Batch-wise merging of means and variances equals the direct estimate."""
    x = _inputs(3, 2, generator)
    kw = dict(activation="erf", depth=2, width=5, n_samples=10, bias_var=0.1, batch_size=3)
    est = monte_carlo_kernels(x, generator=7, **kw)
    samples = sample_network_kernels(x, generator=7, **kw)
    for key, s in samples.items():
        assert s.shape == (10, 3, 3)
        direct = mc_estimate(s)
        torch.testing.assert_close(est[key].mean, direct.mean, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(est[key].stderr, direct.stderr, rtol=1e-12, atol=1e-14)
        assert est[key].n_samples == 10
    again = sample_network_kernels(x, generator=7, **kw)
    assert all(torch.equal(again[k], samples[k]) for k in samples)


# ------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------

X = torch.ones(3, 2, dtype=F64)
_BASE = {"activation": "relu", "depth": 1}
_MC = {"width": 4, "n_samples": 2, "generator": 0}
_BAD_COMMON = [
    ({"x1": torch.ones(3, dtype=F64)}, ValueError, "'x1' parameter"),
    ({"x1": torch.ones(3, 2, dtype=torch.int64)}, TypeError, "'x1' parameter"),
    ({"x1": [[1.0, 2.0]]}, TypeError, "'x1' parameter"),
    ({"x1": torch.ones(3, 0, dtype=F64)}, ValueError, "'x1' parameter"),
    ({"x1": torch.full((3, 2), float("nan"), dtype=F64)}, ValueError, "'x1' parameter"),
    ({"x2": torch.ones(2, 3, dtype=F64)}, ValueError, "'x2' parameter"),
    ({"x2": torch.ones(2, 2, dtype=torch.float32)}, TypeError, "'x2' parameter"),
    ({"depth": -1}, ValueError, "'depth' parameter"),
    ({"depth": 1.5}, TypeError, "'depth' parameter"),
    ({"weight_var": 0.0}, ValueError, "'weight_var' parameter"),
    ({"weight_var": "1"}, TypeError, "'weight_var' parameter"),
    ({"bias_var": -0.1}, ValueError, "'bias_var' parameter"),
    ({"activation": "sigmoid"}, ValueError, "'activation' parameter"),
    ({"activation": 3}, TypeError, "'activation' parameter"),
]
_BAD_RECURSION = _BAD_COMMON + [
    ({"quadrature_degree": 0}, ValueError, "'quadrature_degree' parameter"),
    ({"quadrature_degree": 10_000}, ValueError, "'quadrature_degree' parameter"),
]
_BAD_MC = _BAD_COMMON + [
    ({"width": 0}, ValueError, "'width' parameter"),
    ({"n_samples": 1}, ValueError, "'n_samples' parameter"),
    ({"generator": "seed"}, TypeError, "'generator' parameter"),
    ({"generator": -1}, ValueError, "'generator' parameter"),
    ({"batch_size": 0}, ValueError, "'batch_size' parameter"),
]


def _call(func, extra, bad):
    kw = {"x1": X, **_BASE, **extra, **bad}
    x1 = kw.pop("x1")
    x2 = kw.pop("x2", None)
    return func(x1, x2, **kw)


@pytest.mark.parametrize("func", [nngp, ntk, nngp_and_ntk])
@pytest.mark.parametrize("bad, exc, match", _BAD_RECURSION)
def test_recursion_validation(func, bad, exc, match):
    with pytest.raises(exc, match=match):
        _call(func, {}, bad)


@pytest.mark.parametrize("func", [sample_network_kernels, monte_carlo_kernels])
@pytest.mark.parametrize("bad, exc, match", _BAD_MC)
def test_monte_carlo_validation(func, bad, exc, match):
    with pytest.raises(exc, match=match):
        _call(func, _MC, bad)


def _linear_fn(p, x):
    return x @ p["w"]


_P = {"w": torch.ones(2, dtype=F64)}


@pytest.mark.parametrize("args, exc, match", [
    ((None, _P, X), TypeError, "'fn' parameter"),
    ((_linear_fn, [1.0], X), TypeError, "'params' parameter"),
    ((_linear_fn, {}, X), ValueError, "'params' parameter"),
    ((_linear_fn, {"w": torch.ones(2, dtype=torch.int64)}, X), TypeError, "'params' parameter"),
    ((_linear_fn, {"w": torch.ones(2)}, X), TypeError, "'params' parameter"),
    ((_linear_fn, _P, torch.ones(3, 2)), TypeError, "'params' parameter"),
    ((_linear_fn, _P, torch.tensor(1.0, dtype=F64)), ValueError, "'x1' parameter"),
    ((_linear_fn, _P, X.long()), TypeError, "'x1' parameter"),
    ((_linear_fn, _P, X, torch.ones(2, 3, dtype=F64)), ValueError, "'x2' parameter"),
    ((_linear_fn, _P, X, X.float()), TypeError, "'x2' parameter"),
    ((lambda p, x: x * p["w"], _P, X), ValueError, "'fn' parameter"),
])
def test_empirical_ntk_validation(args, exc, match):
    with pytest.raises(exc, match=match):
        empirical_ntk(*args)


# ------------------------------------------------------------------------------------------
# CUDA
# ------------------------------------------------------------------------------------------

@pytest.mark.gpu
def test_cuda_matches_cpu(device, generator):
    x = _inputs(300, 8, generator)
    for act in ("relu", "erf", "tanh"):
        n = 300 if act != "tanh" else 40
        ref = nngp_and_ntk(x[:n], activation=act, depth=3, bias_var=0.1)
        got = nngp_and_ntk(x[:n].to(device), activation=act, depth=3, bias_var=0.1)
        for r, g in zip(ref, got):
            assert g.device.type == torch.device(device).type
            torch.testing.assert_close(g.cpu(), r, rtol=1e-10, atol=1e-10)
    xd = x[:4].to(device)
    est = monte_carlo_kernels(xd, activation="relu", depth=1, width=64, n_samples=4000,
                              generator=torch.Generator(device=device).manual_seed(0))
    K, T = nngp_and_ntk(xd, activation="relu", depth=1)
    for key, ref in (("nngp_features", K), ("ntk", T)):
        assert est[key].mean.device.type == torch.device(device).type
        err = (est[key].mean - ref).abs()
        assert bool((err <= bonferroni_z(2 * K.numel()) * est[key].stderr).all())
    params = {"w": torch.ones(8, dtype=F64, device=device)}
    torch.testing.assert_close(empirical_ntk(_linear_fn, params, xd).cpu(),
                               x[:4] @ x[:4].T, rtol=1e-12, atol=1e-12)


@pytest.mark.gpu
def test_mixed_devices_are_rejected(device):
    if device == "cpu":
        pytest.skip("needs two devices")
    with pytest.raises(ValueError, match="'x2' parameter"):
        nngp(X, X.to(device), activation="relu", depth=1)
    with pytest.raises(ValueError, match="'params' parameter"):
        empirical_ntk(_linear_fn, {"w": torch.ones(2, dtype=F64, device=device)}, X)
