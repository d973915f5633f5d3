"""Tests of mfteach.finite_width: closed forms against Monte Carlo with derived tolerances."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import mfteach.finite_width as fw
from mfteach.kernels import nngp, ntk
from mfteach.stats import bonferroni_z
from mfteach.testing import assert_mc_close, assert_slope_close

EPS = torch.finfo(torch.float64).eps

# Inputs with |x|^2 = d = 3 (unit pre-activation variance) at varied angles.
X3 = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8]],
                  dtype=torch.float64) * math.sqrt(3)


def _z_close(est, se, expected, z):
    est, se = float(est), float(se)
    assert abs(est - expected) <= z * se, f"{est:.5g} ± {se:.3g} vs theory {expected:.5g}"


# ------------------------------------------------------------------------------------------
# Sampling and readout laws
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("law", fw.READOUTS)
def test_readout_moments(law, generator):
    a = fw.sample_readout((200_000,), law, generator=generator)
    moments = torch.stack([a**m for m in range(1, 4)], 1)  # 4th moment: heavy-tailed for exp
    assert_mc_close(moments, torch.tensor(fw.readout_law(law).moments[:3]), z=bonferroni_z(3))


def test_sampling_is_reproducible_and_shaped():
    x = X3[:2]
    f1 = fw.sample_outputs(x, activation="tanh", width=5, n_samples=50, generator=3)
    f2 = fw.sample_outputs(x, activation="tanh", width=5, n_samples=50, generator=3)
    assert f1.shape == (50, 2) and torch.equal(f1, f2)
    assert fw.sample_outputs(x[0], activation="relu", width=3, n_samples=7,
                             generator=0).shape == (7, 1)


def test_output_variance_is_the_nngp(generator):
    f = fw.sample_outputs(X3, activation="erf", width=3, n_samples=100_000,
                          generator=generator)
    prods = torch.stack([f[:, 0] ** 2, f[:, 0] * f[:, 1], f[:, 1] * f[:, 2]], 1)
    K = nngp(X3, activation="erf", depth=1)
    assert_mc_close(prods, torch.stack([K[0, 0], K[0, 1], K[1, 2]]))


def test_deep_relu_output_variance_is_the_nngp(generator):
    # For ReLU, E[phi(sqrt(V) z)^2] = V/2 is linear in V, so E f^2 = K^{L+1} at any width.
    f = fw.sample_outputs(X3[:1], activation="relu", width=6, depth=2, n_samples=60_000,
                          generator=generator)
    assert_mc_close(f[:, 0] ** 2, nngp(X3[:1], activation="relu", depth=2)[0, 0])


# ------------------------------------------------------------------------------------------
# k-statistics
# ------------------------------------------------------------------------------------------

def test_k_statistics_are_unbiased_at_small_sample_size(generator):
    # Exp(1): kappa_r = (r-1)!. With S = 8 per batch a plug-in estimator is visibly biased.
    x = torch.empty(8, 100_000, dtype=torch.float64).exponential_(generator=generator)
    c = fw.k_statistics(x, dim=0)
    assert_mc_close(c.kappa.T, torch.tensor([1.0, 1.0, 2.0, 6.0]), z=bonferroni_z(4))
    plug_in_k2 = c.kappa[1] * 7 / 8
    with pytest.raises(AssertionError):
        assert_mc_close(plug_in_k2, 1.0)


def test_k_statistic_stderr_is_calibrated(generator):
    # Gaussian: sd(excess kurtosis) = sqrt(24/S) to leading order; the spread over batches
    # of the estimate matches the reported standard error.
    S = 2000
    x = torch.randn(S, 400, generator=generator, dtype=torch.float64)
    c = fw.k_statistics(x)
    assert abs(float(c.excess_kurtosis_stderr.mean()) / math.sqrt(24 / S) - 1) < 0.1
    spread = float(c.excess_kurtosis.std())
    ratio = spread / float(c.excess_kurtosis_stderr.mean())
    assert abs(ratio - 1) < 5 / math.sqrt(2 * 400)  # sd of a sample sd is ~ 1/sqrt(2m)


# ------------------------------------------------------------------------------------------
# Closed-form cumulants versus ensembles
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation,readout,kurt", [
    ("relu", "gaussian", 15.0), ("relu", "rademacher", 3.0),
    ("erf_sqrt2", "gaussian", 12 / 5), ("erf_sqrt2", "rademacher", -6 / 5),
])
def test_known_kurtosis_coefficients(activation, readout, kurt):
    assert fw.output_cumulants(activation, readout=readout).kurtosis_coef == pytest.approx(
        kurt, rel=1e-10)


def test_activation_moment_closed_forms_vs_integration():
    scipy_integrate = pytest.importorskip("scipy.integrate")
    for m in range(1, 7):
        def dens(u, m=m):
            return max(u, 0.0) ** m * math.exp(-u * u / 4) / math.sqrt(4 * math.pi)
        want = scipy_integrate.quad(dens, 0, 60)[0]
        assert fw.activation_moment("relu", m, 2.0) == pytest.approx(want, rel=1e-9)
    tanh4 = scipy_integrate.quad(lambda u: math.tanh(u) ** 4 * math.exp(-u * u / 2)
                                 / math.sqrt(2 * math.pi), -40, 40)[0]
    assert fw.activation_moment("tanh", 4) == pytest.approx(tanh4, rel=1e-10)


CASES = [("relu", "gaussian"), ("relu", "rademacher"), ("relu", "exponential"),
         ("erf", "gaussian"), ("erf", "rademacher"), ("tanh", "gaussian"),
         ("tanh", "exponential")]


@pytest.mark.parametrize("activation,readout", CASES)
def test_cumulants_vs_ensemble(activation, readout, generator):
    n, S = 4, 100_000
    f = fw.sample_outputs(X3[:1], activation=activation, width=n, n_samples=S,
                          generator=generator, readout=readout)[:, 0]
    c = fw.k_statistics(f)
    th = fw.output_cumulants(activation, readout=readout)
    z = bonferroni_z(2 * len(CASES) * 2)
    kap = th.kappa(n)
    for r in (2, 3, 4):
        _z_close(c.kappa[r - 1], c.stderr[r - 1], kap[r - 1], z)
    _z_close(c.excess_kurtosis, c.excess_kurtosis_stderr, th.excess_kurtosis(n), z)
    _z_close(c.skewness, c.skewness_stderr, th.skewness(n), z)


def test_cumulant_slopes(generator):
    widths = [1, 2, 4, 8, 16]
    skewed = fw.cumulant_scaling("relu", widths, n_samples=60_000, generator=generator,
                                 readout="exponential")
    assert_slope_close(skewed.fit_kappa3, -0.5, z=4.5)
    sym = fw.cumulant_scaling("tanh", widths, n_samples=60_000, generator=generator,
                              readout="rademacher")
    assert sym.fit_kappa3 is None  # kappa_3 = 0 for a symmetric readout: nothing to fit
    assert_slope_close(sym.fit_kappa4, -1.0, z=4.5)
    with pytest.raises(AssertionError):  # the test can fail: -1/2 is rejected for kappa_4
        assert_slope_close(sym.fit_kappa4, -0.5, z=4.5)


def test_fourth_cumulant_tensor_single_input_matches_closed_form():
    for act in ("relu", "tanh", "erf"):
        T = fw.fourth_cumulant_tensor(X3[:1], activation=act, readout="rademacher")
        want = fw.output_cumulants(act, readout="rademacher").kappa_neuron[3]
        assert float(T[0, 0, 0, 0]) == pytest.approx(want, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_fourth_cumulant_tensor_vs_ensemble(activation, generator):
    n = 2
    T = fw.fourth_cumulant_tensor(X3, activation=activation)
    f = fw.sample_outputs(X3, activation=activation, width=n, n_samples=100_000,
                          generator=generator)
    kap, se = fw.joint_cumulant4(f)
    z = bonferroni_z(15)  # distinct entries of a symmetric 3x3x3x3 tensor
    bad = (n * kap - T).abs() > z * n * se
    assert not bool(bad.any()), f"{(n * kap - T)[bad]} vs stderr {(n * se)[bad]}"


def test_relu_outputs_at_orthogonal_inputs_are_correlated_and_jointly_non_gaussian(generator):
    """The chapter's exercise: at orthogonal inputs (|x|^2 = d) a ReLU network's outputs have
    covariance E relu(u1) E relu(u2) = 1/(2 pi) (the degree-1 arc-cosine kernel at 90 degrees,
    not 0), and n kappa(f1, f2, f1, f2) = 3/4 - (1/4 + 2/(2 pi)^2) for a Gaussian readout. The
    kernel against the closed form; the tensor against it within its quadrature error
    (estimated from two degrees); both against an ensemble (z from the sample size)."""
    X = torch.eye(2, dtype=torch.float64) * math.sqrt(2)
    cov = 1 / (2 * math.pi)
    torch.testing.assert_close(nngp(X, activation="relu", depth=1)[0, 1],
                               torch.tensor(cov, dtype=torch.float64), rtol=64 * EPS,
                               atol=0)  # an arccos, a sqrt and a few products
    want = 0.75 - (0.25 + 2 * cov**2)
    # The quadrature converges like 1/degree for the kink, so the error at degree 200 is
    # about the change from 100 to 200 (allowance 1.5 for the next order).
    t1, t2 = (float(fw.fourth_cumulant_tensor(X, activation="relu", degree=k)[0, 1, 0, 1])
              for k in (100, 200))
    assert abs(t2 - want) <= 1.5 * abs(t1 - t2) and abs(t2 - want) < 1e-3 * want
    n, S = 2, 200_000
    f = fw.sample_outputs(X, activation="relu", width=n, n_samples=S, generator=generator)
    prod = f[:, 0] * f[:, 1]
    _z_close(prod.mean(), prod.std() / math.sqrt(S), cov, bonferroni_z(2))
    kap, se = fw.joint_cumulant4(f)
    _z_close(n * kap[0, 1, 0, 1], n * se[0, 1, 0, 1], want, bonferroni_z(2))


def test_deep_relu_excess_kurtosis_is_fifteen_times_depth_over_width():
    """The recursion's closed form for ReLU with a Gaussian readout: V_l / K_l^2 = 5 (l - 1)
    and n kappa_4 / kappa_2^2 = 15 L (algebra in the module docstring); depth 1 equals the
    one-layer coefficient of output_cumulants for every activation and readout."""
    for L in range(1, 7):
        c = fw.deep_cumulants("relu", L, q=2.0)
        # closed-form moments, ~10 roundings per layer
        assert c.n_excess_kurtosis == pytest.approx(15 * L, rel=16 * L * EPS)
        assert c.vertex[-1] / c.kernel[L - 1] ** 2 == pytest.approx(5 * (L - 1),
                                                                    abs=16 * L * 5 * L * EPS)
    for act in ("relu", "tanh", "erf"):
        for readout in fw.READOUTS:
            one = fw.output_cumulants(act, readout=readout).kappa_neuron
            c = fw.deep_cumulants(act, 1, readout=readout)
            assert c.n_kappa4 == pytest.approx(one[3], rel=1e-9, abs=1e-12)
            assert c.sqrt_n_kappa3 == pytest.approx(one[2], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("activation, depth", [("relu", 2), ("relu", 3), ("tanh", 2)])
def test_deep_network_fourth_cumulant_matches_the_recursion(activation, depth, generator):
    """n kappa_4 of sampled depth-L networks at widths 16, 32, 64 (k-statistics of 100 000
    networks each), fitted as c + b/n by weighted least squares: the intercept c (the 1/n
    coefficient) against deep_cumulants within 4 of its standard errors."""
    x = torch.ones(1, 3, dtype=torch.float64)
    widths = [16, 32, 64]
    y, w = [], []
    for n in widths:
        f = fw.sample_outputs(x, activation=activation, width=n, n_samples=100_000,
                              generator=generator, depth=depth)[:, 0]
        k = fw.k_statistics(f)
        y.append(n * float(k.kappa[3]))
        w.append(1 / (n * float(k.stderr[3])) ** 2)
    A = np.stack([np.ones(len(widths)), 1 / np.asarray(widths, float)], 1)
    W = np.diag(w)
    cov = np.linalg.inv(A.T @ W @ A)
    c, b = cov @ A.T @ W @ np.asarray(y)
    want = fw.deep_cumulants(activation, depth).n_kappa4
    print(f"{activation} L={depth}: n kappa_4 -> {c:.4f} ± {cov[0, 0] ** 0.5:.4f} (+ {b:.2f}/n);"
          f" recursion {want:.4f}")
    assert abs(c - want) <= 4 * cov[0, 0] ** 0.5


def test_relu_output_law_has_an_atom_of_mass_two_to_minus_width_at_zero(generator):
    """All n ReLU units are off with probability 2^-n, and then f(x) = 0 exactly: the spike of
    the chapter's width-4 histogram. Binomial count, z from the sample size (Bonferroni over
    the three widths)."""
    x = torch.ones(1, 3, dtype=torch.float64)
    S = 200_000
    for n in (2, 4, 6):
        f = fw.sample_outputs(x, activation="relu", width=n, n_samples=S, generator=generator)
        p = 2.0 ** -n
        _z_close((f == 0).double().mean(), math.sqrt(p * (1 - p) / S), p, bonferroni_z(3))


# ------------------------------------------------------------------------------------------
# Edgeworth densities
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("terms", [0, 1, 2])
def test_edgeworth_density_integrates_to_one_and_matches_its_cdf(terms):
    kw = dict(kappa1=0.3, kappa2=2.0, kappa3=0.8, kappa4=1.5, terms=terms)
    u = torch.linspace(-25, 25, 20_001, dtype=torch.float64)
    p = fw.edgeworth_density(u, **kw)
    assert float(torch.trapezoid(p, u)) == pytest.approx(1.0, abs=1e-10)
    F = fw.edgeworth_cdf(u, **kw)
    dF = torch.gradient(F, spacing=(u,))[0]
    assert float((dF - p).abs().max()) < 1e-5
    assert float(F[0]) == pytest.approx(0.0, abs=1e-12)


def test_edgeworth_fits_small_width_better_than_gaussian(generator):
    S = 200_000
    for readout, n in (("gaussian", 16), ("exponential", 16)):
        f = fw.sample_outputs(X3[:1], activation="relu", width=n, n_samples=S,
                              generator=generator, readout=readout)[:, 0]
        k = fw.output_cumulants("relu", readout=readout).kappa(n)
        ks = [fw.ks_distance(f, lambda u, t=t, k=k: fw.edgeworth_cdf(
            u, kappa2=k[1], kappa3=k[2], kappa4=k[3], terms=t)) for t in (0, 1, 2)]
        noise = 1.36 / math.sqrt(S)  # 95% quantile of the KS distance under the model
        assert ks[0] > 3 * noise, ks
        assert ks[2] < ks[0] / 2, ks
        if readout == "exponential":  # the n^{-1/2} skewness term alone already helps
            assert ks[1] < 0.8 * ks[0], ks


# ------------------------------------------------------------------------------------------
# The tangent kernel at initialisation
# ------------------------------------------------------------------------------------------

def test_ntk_variance_coefficient_relu_diagonal_is_three():
    v = fw.ntk_variance_coefficient(X3, activation="relu")
    assert torch.allclose(v.diagonal(), torch.full((3,), 3.0, dtype=torch.float64), atol=1e-3)


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_empirical_ntk_mean_and_variance(activation, generator):
    n, S = 16, 40_000
    K = fw.sample_ntk(X3, activation=activation, width=n, n_samples=S, generator=generator)
    theta = ntk(X3, activation=activation, depth=1)
    assert_mc_close(K, theta)
    v = fw.ntk_variance_coefficient(X3, activation=activation)
    assert_mc_close(n * (K - theta) ** 2, v)


def test_ntk_variance_falls_like_one_over_width(generator):
    fl = fw.ntk_fluctuations(X3[:2], activation="relu", widths=[4, 16, 64, 256],
                             n_samples=10_000, generator=generator)
    assert_slope_close(fl.fit, -1.0, z=4.5)
    assert torch.allclose(fl.theory_mean, ntk(X3[:2], activation="relu", depth=1))


# ------------------------------------------------------------------------------------------
# Training: drift of the kernel, the linear flow, the trained ensemble
# ------------------------------------------------------------------------------------------

def test_ntk_drift_shrinks_faster_than_clt_for_tanh():
    dr = fw.ntk_drift("tanh", [32, 128, 512], lr=0.5, steps=60, n_train=10, d=3,
                      n_networks=3, generator=0)
    assert dr.drift.shape == (2, 3, 3)
    assert bool((dr.drift[0] == 0).all())
    assert dr.fit.slope < -0.75, dr.fit  # CLT-size drift would give -1/2


@pytest.mark.slow
def test_ntk_drift_slopes_full_size():
    tanh = fw.ntk_drift("tanh", [64, 256, 1024, 4096], steps=500, generator=0)
    relu = fw.ntk_drift("relu", [64, 256, 1024, 4096], steps=500, generator=0)
    assert -1.15 < tanh.fit.slope < -0.85, tanh.fit
    assert -0.9 < relu.fit.slope < -0.55, relu.fit


def test_gp_prediction_equals_iterated_linear_flow():
    X, y = fw.sphere_data(6, 3, generator=0, dtype=torch.float64)
    xs = fw.sphere_data(2, 3, generator=1, dtype=torch.float64)[0]
    lr, steps = 0.7, 40
    p = fw.gp_prediction(X, y, xs, activation="tanh", lr=lr, steps=steps)
    Xa = torch.cat([X, xs])
    T = ntk(Xa, activation="tanh", depth=1)
    K = nngp(Xa, activation="tanh", depth=1)
    N, m = 6, 8
    A = torch.eye(m, dtype=torch.float64)  # f_k = A f_0 + c
    c = torch.zeros(m, dtype=torch.float64)
    for _ in range(steps):
        A = A - lr / N * T[:, :N] @ A[:N]
        c = c - lr / N * T[:, :N] @ (c[:N] - y)
    cov = A @ K @ A.T
    assert torch.allclose(p.mean, c[N:], atol=1e-10)
    assert torch.allclose(p.cov, cov[N:, N:], atol=1e-10)


def test_trained_ensemble_approaches_gp_with_width():
    r = fw.ensemble_vs_gp("erf", [2, 32], n_networks=300, steps=60, generator=0)
    assert float(r.w2[0]) > float(r.w2[1]) + 4 * r.w2_floor, (r.w2, r.w2_floor)
    assert float(r.ks[0]) > float(r.ks[1])
    assert float(r.w2[1]) < 5 * r.w2_floor


# ------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(width=0), ValueError, "'width' parameter"),
    (dict(readout="cauchy"), ValueError, "'readout' parameter"),
    (dict(activation="softplus"), ValueError, "'activation' parameter"),
    (dict(n_samples=2.5), TypeError, "'n_samples' parameter"),
    (dict(depth=0), ValueError, "'depth' parameter"),
    (dict(generator="seed"), TypeError, "'generator' parameter"),
])
def test_sample_outputs_validation(kwargs, exc, match):
    args = dict(activation="relu", width=4, n_samples=10, generator=0) | kwargs
    with pytest.raises(exc, match=match):
        fw.sample_outputs(X3, **args)


def test_other_validation():
    with pytest.raises(ValueError, match="'kappa2' parameter"):
        fw.edgeworth_density(torch.zeros(3), kappa2=0.0)
    with pytest.raises(ValueError, match="'terms' parameter"):
        fw.edgeworth_cdf(torch.zeros(3), kappa2=1.0, terms=3)
    with pytest.raises(ValueError, match="'widths' parameter"):
        fw.cumulant_scaling("relu", [4, 4], n_samples=10, generator=0)
    with pytest.raises(ValueError, match="'samples' parameter"):
        fw.k_statistics(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="'lr' parameter"):
        X, y = fw.sphere_data(4, 3, generator=0, dtype=torch.float64)
        fw.gp_prediction(X, y, X, activation="relu", lr=100.0, steps=3)
    with pytest.raises(ValueError, match="'q' parameter"):
        fw.output_cumulants("relu", q=0.0)
    with pytest.raises(TypeError, match="'cdf' parameter"):
        fw.ks_distance(torch.zeros(3), cdf=None)


# ------------------------------------------------------------------------------------------
# CPU and CUDA
# ------------------------------------------------------------------------------------------

@pytest.mark.gpu
def test_cuda_matches_cpu_and_theory():
    f = fw.sample_outputs(X3[:1], activation="relu", width=4, n_samples=400_000,
                          generator=0, device="cuda")
    assert f.device.type == "cuda"
    c = fw.k_statistics(f[:, 0])
    th = fw.output_cumulants("relu")
    _z_close(c.excess_kurtosis.cpu(), c.excess_kurtosis_stderr.cpu(), th.excess_kurtosis(4),
             bonferroni_z(2))
    f32 = fw.sample_outputs(X3[:1], activation="tanh", width=8, n_samples=400_000,
                            generator=0, device="cuda", dtype=torch.float32)
    c32 = fw.k_statistics(f32[:, 0])
    _z_close(c32.kappa[1].cpu(), c32.stderr[1].cpu(),
             fw.output_cumulants("tanh").kappa(8)[1], bonferroni_z(2))
    T_cpu = fw.fourth_cumulant_tensor(X3, activation="tanh")
    T_gpu = fw.fourth_cumulant_tensor(X3.cuda(), activation="tanh")
    assert torch.allclose(T_gpu.cpu(), T_cpu, atol=1e-10)
    K = fw.sample_ntk(X3.cuda(), activation="erf", width=16, n_samples=20_000, generator=0,
                      device="cuda")
    assert_mc_close(K.cpu(), ntk(X3, activation="erf", depth=1))


# ------------------------------------------------------------------------------------------
# Nothing silent: constants, extreme magnitudes, sizes, composite names, plots
# ------------------------------------------------------------------------------------------

def test_k_statistics_of_constant_samples_are_exact_zeros_and_skewness_is_refused():
    # kappa_r of a constant is 0 for r >= 2; skewness and kurtosis divide by k_2 = 0. The
    # value 0.1 is not a float sum-exact mean: the old code returned rounding noise or NaN.
    for dtype in (torch.float32, torch.float64):
        c = fw.k_statistics(torch.full((7,), 0.1, dtype=dtype))
        assert c.kappa.tolist() == [float(torch.tensor(0.1, dtype=dtype)), 0.0, 0.0, 0.0]
        assert c.stderr.tolist() == [0.0] * 4
        for name in ("skewness", "skewness_stderr", "excess_kurtosis",
                     "excess_kurtosis_stderr"):
            with pytest.raises(ValueError, match="'samples' parameter .* non-zero spread"):
                getattr(c, name)


def test_k_statistics_scale_exactly_with_powers_of_two_at_any_magnitude(generator):
    # k_r(s x) = s^r k_r(x). For s = 2^250 the eighth powers in the standard errors (2^2000)
    # overflowed, and for s = 2^-250 they underflowed; a power of 2 rescales exactly.
    # Tolerance: multiplying by a power of 2 changes only exponents, so every product, sum
    # and quotient on the same path rounds to the same mantissa; the two runs differ by
    # nothing but the scale (no BLAS, same reduction order in one process). 1e-14 only
    # leaves room for the final exp2 products, each exact as well.
    x = torch.randn(50, generator=generator, dtype=torch.float64) ** 3
    ref = fw.k_statistics(x)
    r = torch.arange(1, 5, dtype=torch.float64)
    for e in (-250, 250):
        c = fw.k_statistics(x * 2.0**e)
        torch.testing.assert_close(c.kappa, ref.kappa * torch.exp2(r * e), rtol=1e-14, atol=0)
        torch.testing.assert_close(c.stderr, ref.stderr * torch.exp2(r * e), rtol=1e-14,
                                   atol=0)
        torch.testing.assert_close(c.skewness, ref.skewness, rtol=1e-12, atol=0)
        torch.testing.assert_close(c.excess_kurtosis, ref.excess_kurtosis, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="'samples' parameter .* fourth cumulant"):
        fw.k_statistics(x * 2.0**300)  # k_4 ~ 2^1200: not representable in float64
    with pytest.raises(ValueError, match="'samples' parameter .* at least one dimension"):
        fw.k_statistics(torch.tensor(1.0, dtype=torch.float64))


def test_joint_cumulant4_survives_huge_magnitudes(generator):
    x = torch.randn(200, 2, generator=generator, dtype=torch.float64)
    kap, se = fw.joint_cumulant4(x)
    kap_big, se_big = fw.joint_cumulant4(x * 2.0**200)
    # A power-of-2 rescaling is exact (only exponents change; same code path in one process),
    # so the scaled run is the unscaled one times 2^800 up to the final products' rounding.
    torch.testing.assert_close(kap_big, kap * 2.0**800, rtol=1e-12, atol=0)
    torch.testing.assert_close(se_big, se * 2.0**800, rtol=1e-12, atol=0)


def test_closed_forms_refuse_overflow_instead_of_raising_raw_errors():
    with pytest.raises(ValueError, match="'m' parameter .* finite"):
        fw.activation_moment("relu", 10**6)  # was OverflowError from math.gamma
    with pytest.raises(ValueError, match="'q' parameter .* finite"):
        fw.activation_moment("relu", 4, 1e300)
    with pytest.raises(ValueError, match="'q' parameter"):
        fw.activation_moment("relu", 4, 0.0)
    # E u^100 = 99!! (about 2.7e78), now summed in logarithms
    assert fw.activation_moment("linear", 100, 1.0) == pytest.approx(
        float(math.prod(range(99, 0, -2))), rel=1e-12)
    with pytest.raises(ValueError, match="'m' parameter"):
        fw.activation_moment("linear", 400, 1.0)  # 399!! ~ 1e433 > float64
    with pytest.raises(ValueError, match="'q' parameter of mfteach.finite_width.output_cum"):
        fw.output_cumulants("tanh", q=1e-300)  # was ZeroDivisionError
    with pytest.raises(ValueError, match="'q' parameter"):
        fw.output_cumulants("relu", q=1e300)  # was OverflowError


def test_edgeworth_limits_at_infinity_and_huge_cumulants():
    u = torch.tensor([-math.inf, -1e300, 0.0, 1e300, math.inf], dtype=torch.float64)
    p = fw.edgeworth_density(u, kappa2=1.0, kappa3=0.5, kappa4=1.0)
    F = fw.edgeworth_cdf(u, kappa2=1.0, kappa3=0.5, kappa4=1.0)
    assert p[[0, 1, 3, 4]].tolist() == [0.0] * 4 and float(p[2]) > 0
    assert F[[0, 1, 3, 4]].tolist() == [0.0, 0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="'u' parameter .* NaN"):
        fw.edgeworth_cdf(torch.tensor([math.nan], dtype=torch.float64), kappa2=1.0)
    with pytest.raises(ValueError, match="'kappa3' parameter"):
        fw.edgeworth_density(u, kappa2=1e-300, kappa3=1.0)
    with pytest.raises(TypeError, match="'u' parameter"):
        fw.edgeworth_density("abc", kappa2=1.0)
    # kappa2 = 1e300 used to overflow in kappa2**2 (OverflowError)
    assert bool(torch.isfinite(fw.edgeworth_density(u, kappa2=1e300, kappa4=1e300)).all())


def test_ks_distance_and_hermite_refuse_bad_callables_and_inputs():
    x = torch.randn(20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ValueError, match="'cdf' parameter .* finite"):
        fw.ks_distance(x, lambda u: u * math.nan)
    with pytest.raises(TypeError, match="'cdf' parameter .* shape"):
        fw.ks_distance(x, lambda u: u[:3])
    with pytest.raises(TypeError, match="'v' parameter"):
        fw.hermite_e(3, [1.0, 2.0])
    with pytest.raises(ValueError, match="'k' parameter"):
        fw.hermite_e(10**9, torch.ones(1))


@pytest.mark.parametrize("call, name", [
    (lambda: fw.cumulant_scaling("relu", [2, 8], n_samples=2, generator=0), "n_samples"),
    (lambda: fw.cumulant_scaling("nope", [2, 8], n_samples=8, generator=0), "activation"),
    (lambda: fw.cumulant_scaling("relu", [2, 8], n_samples=8, generator=0,
                                 dtype=torch.float16), "dtype"),
    (lambda: fw.ensemble_vs_gp("erf", [4, 8], n_networks=8, lr=1e3, steps=2, generator=0),
     "lr"),
    (lambda: fw.ensemble_vs_gp("erf", [4, 8], n_networks=8, d=0, generator=0), "d"),
    (lambda: fw.ntk_drift("tanh", [8, 16], lr=1e39, steps=2, n_networks=2, generator=0),
     "lr"),
    (lambda: fw.trained_ensemble(torch.ones(2, 2), np.ones(2), torch.ones(1, 2),
                                 activation="relu", width=4, n_networks=2, lr=0.1, steps=2,
                                 generator=0), "y"),
    (lambda: fw.trained_ensemble(torch.ones(2, 2), torch.ones(2), torch.ones(1, 2),
                                 activation="relu", width=0, n_networks=2, lr=0.1, steps=2,
                                 generator=0), "width"),
    (lambda: fw.ntk_variance_coefficient(torch.ones(1, 2, dtype=torch.float64) * 1e200,
                                         activation="relu"), "x"),
    (lambda: fw.sphere_data(0, 2, generator=0), "n"),
])
def test_composite_functions_name_their_own_parameters(call, name):
    # Each used to name a helper's parameter (sample_outputs, k_statistics, gp_prediction,
    # teacher_data, train, TwoLayer, gauss_hermite_expectation).
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    msg = str(info.value)
    fn = msg.split(" parameter of ")[1].split(" ")[0]
    assert msg.startswith(f"The '{name}' parameter of "), msg
    assert fn.rsplit(".", 1)[1] in {"cumulant_scaling", "ensemble_vs_gp", "ntk_drift",
                                    "trained_ensemble", "ntk_variance_coefficient",
                                    "sphere_data"}, msg


@pytest.mark.parametrize("call, name", [
    (lambda: fw.sample_outputs(torch.ones(1, 2), activation="relu", width=10**12,
                               n_samples=2, generator=0), "width"),
    (lambda: fw.sample_outputs(torch.ones(1, 2), activation="relu", width=2,
                               n_samples=10**12, generator=0), "n_samples"),
    (lambda: fw.sample_outputs(torch.ones(1, 2), activation="relu", width=2, n_samples=2,
                               depth=10**12, generator=0), "depth"),
    (lambda: fw.sample_ntk(torch.ones(2, 2), activation="relu", width=10**12, n_samples=2,
                           generator=0), "width"),
    (lambda: fw.sample_readout((10**12,), generator=0), "shape"),
    (lambda: fw.cumulant_scaling("relu", [2, 10**12], n_samples=8, generator=0), "widths"),
    (lambda: fw.ntk_drift("tanh", [8, 10**12], steps=2, n_networks=2, generator=0),
     "widths"),
    (lambda: fw.ntk_drift("tanh", [8, 16], steps=10**12, n_networks=2, generator=0),
     "steps"),
    (lambda: fw.ensemble_vs_gp("erf", [4, 8], n_networks=10**12, steps=2, generator=0),
     "n_networks"),
    (lambda: fw.gp_prediction(torch.zeros(10**5, 2, dtype=torch.float64),
                              torch.zeros(10**5, dtype=torch.float64),
                              torch.ones(1, 2, dtype=torch.float64), activation="relu",
                              lr=0.1, steps=2), "X"),
])
def test_huge_sizes_are_refused_at_once_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=f"'{name}' parameter .* (memory|steps)"):
        call()


@pytest.mark.parametrize("make", [lambda: 2**64 - 1, lambda: torch.Generator().manual_seed(4)])
def test_chapter_functions_accept_any_seed_or_a_generator(make):
    a = fw.ntk_drift("tanh", [8, 16], steps=2, n_networks=2, generator=make())
    b = fw.ntk_drift("tanh", [8, 16], steps=2, n_networks=2, generator=make())
    assert torch.equal(a.drift, b.drift)
    r = fw.ensemble_vs_gp("erf", [4, 8], n_networks=8, steps=2, generator=make())
    assert bool(torch.isfinite(r.outputs).all())


def test_gp_prediction_long_time_limit_and_mismatched_inputs():
    X = torch.eye(2, dtype=torch.float64) * 2**0.5
    y = torch.tensor([1.0, -1.0], dtype=torch.float64)
    p = fw.gp_prediction(X, y, X, activation="relu", lr=1.0, steps=10**400)  # was Overflow
    torch.testing.assert_close(p.mean, y, rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="'x_test' parameter .* same dtype as 'X'"):
        fw.gp_prediction(X, y, X.float(), activation="relu", lr=1.0, steps=2)
    with pytest.raises(ValueError, match="'x_test' parameter .* columns as 'X'"):
        fw.gp_prediction(X, y, torch.ones(1, 3, dtype=torch.float64), activation="relu",
                         lr=1.0, steps=2)


def test_chapter_plots_refuse_non_finite_results():
    th = fw.output_cumulants("relu")
    with pytest.raises(ValueError, match="'samples' parameter .* finite"):
        fw.plot_output_law(torch.tensor([0.0, math.nan, 1.0], dtype=torch.float64), th, 4)
    with pytest.raises(TypeError, match="'samples' parameter"):
        fw.plot_output_law(np.zeros(5), th, 4)
    sc = fw.cumulant_scaling("erf", [4, 8, 16], n_samples=64, generator=0)
    bad = dataclasses.replace(sc, skewness=sc.skewness * math.nan)
    with pytest.raises(ValueError, match="'scaling' parameter .* finite"):
        fw.plot_cumulant_scaling(bad)
    with pytest.raises(ValueError, match="'mark' parameter"):
        fw.plot_cumulant_scaling(sc, mark=10**12)
    dr = fw.ntk_drift("erf", [4, 8, 16], steps=4, n_train=3, d=2, n_networks=2, generator=0)
    with pytest.raises(ValueError, match="'drifts' parameter .* positive"):
        fw.plot_ntk_drift([dataclasses.replace(dr, final=dr.final * math.nan)])
    res = fw.ensemble_vs_gp("erf", [4, 8], n_networks=8, steps=2, n_train=3, d=2,
                            generator=0)
    with pytest.raises(ValueError, match="'result' parameter"):
        fw.plot_ensemble_vs_gp(dataclasses.replace(res, gp_var=math.nan))
