"""Tests for mfteach.gaussian: closed forms vs independent quadrature, Monte Carlo, references.

The quadrature references here are written in NumPy, independently of the library:

* smooth integrands (erf family): tensor-product Gauss-Hermite (``hermegauss``) after a
  Cholesky factorisation of the covariance;
* the 3- and 4-variable integrals are first reduced to 2-D analytically by Gaussian
  conditioning (linear regression for I3; the Gaussian factor g'(z1) g'(z2) integrated over
  (z1, z2) given (z3, z4) for I4), then integrated by 2-D Gauss-Hermite;
* kinked integrands (ReLU, step) converge only algebraically under Gauss-Hermite, so their
  reference integrates the smooth conditional expectation over the half-line x > 0 with
  Gauss-Legendre.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss
from scipy.special import erf as np_erf
from scipy.special import ndtr

from mfteach import gaussian as G
from mfteach.gaussian import (
    arccos_kernel,
    erf_dual,
    erf_dual_prime,
    erf_I2,
    erf_I2_noise,
    erf_I3,
    erf_I4,
    gauss_hermite_expectation,
    gauss_hermite_expectation_1d,
    hermite_rule,
)
from mfteach.testing import assert_mc_close
from tests.conftest import TOL

F64 = torch.float64
EPS = torch.finfo(F64).eps
QUAD_TOL = 1e-10

# Reference values of the integrals (closed forms evaluated independently, 7 decimals).
C_REF = [[1, .3, .2, .1], [.3, 1.2, .25, .15], [.2, .25, .9, .6], [.1, .15, .6, 1.1]]
REF = {"I2": 0.0913623, "I2_noise": 0.3066490, "I3": 0.0722285, "I4": 0.0579870}


# --------------------------------------------------------------------------------------------
# Independent NumPy references
# --------------------------------------------------------------------------------------------

def _g(u):
    return np_erf(u / math.sqrt(2))


def _gp(u):
    return math.sqrt(2 / math.pi) * np.exp(-u * u / 2)


def _gh2(f, C, deg=150):
    """E f(u, v) for (u, v) ~ N(0, C), C a positive-definite 2x2 array."""
    x, w = hermegauss(deg)
    w = w / math.sqrt(2 * math.pi)
    L = np.linalg.cholesky(np.asarray(C, dtype=float))
    X, Y = np.meshgrid(x, x, indexing="ij")
    return float((f(L[0, 0] * X, L[1, 0] * X + L[1, 1] * Y) * np.outer(w, w)).sum())


def _halfline_relu(c11, c12, c22, order, deg=200, top=14.0):
    """E[s(u) s(v)] for s = step (order 0) or relu (order 1): u = sqrt(c11) x, x > 0 only.

    Given x, v ~ N(mu x, s2); E relu(m + s y) = m Phi(m/s) + s phi(m/s), E step = Phi(m/s).
    """
    t, w = leggauss(deg)
    x = (t + 1) * top / 2
    w = w * top / 2
    mu = c12 / math.sqrt(c11)
    s = math.sqrt(c22 - c12 * c12 / c11)
    m = mu * x
    dens = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    if order == 0:
        inner = ndtr(m / s)
        return float((w * dens * inner).sum())
    inner = m * ndtr(m / s) + s * np.exp(-(m / s) ** 2 / 2) / math.sqrt(2 * math.pi)
    return float((w * dens * math.sqrt(c11) * x * inner).sum())


def _ref_I3(C):
    """E[g'(z1) z2 g(z3)]: replace z2 by its regression on (z1, z3), then 2-D quadrature."""
    C = np.asarray(C, dtype=float)
    idx = [0, 2]
    S = C[np.ix_(idx, idx)]
    beta = np.linalg.solve(S, C[1, idx])
    return _gh2(lambda a, b: _gp(a) * (beta[0] * a + beta[1] * b) * _g(b), S)


def _ref_I4(C):
    """E[g'(z1) g'(z2) g(z3) g(z4)]: integrate the Gaussian factor over (z1, z2) given (z3, z4).

    With (z1, z2) | (z3, z4) ~ N(m, S), m = B D^{-1} (z3, z4), S = A - B D^{-1} B^T, and
    E exp(-|x|^2 / 2) = det(I + S)^{-1/2} exp(-m^T (I + S)^{-1} m / 2) for x ~ N(m, S).
    """
    C = np.asarray(C, dtype=float)
    A, B, D = C[:2, :2], C[:2, 2:], C[2:, 2:]
    K = np.linalg.solve(D, B.T).T  # B D^{-1}, (2, 2)
    S = A - K @ B.T
    M = np.linalg.inv(np.eye(2) + S)
    pref = (2 / math.pi) / math.sqrt(np.linalg.det(np.eye(2) + S))

    def f(a, b):
        m0 = K[0, 0] * a + K[0, 1] * b
        m1 = K[1, 0] * a + K[1, 1] * b
        quad = M[0, 0] * m0 * m0 + 2 * M[0, 1] * m0 * m1 + M[1, 1] * m1 * m1
        return _g(a) * _g(b) * pref * np.exp(-quad / 2)

    return _gh2(f, D)


def _random_cov(k, generator, n=1, scale=1.0):
    """n random positive-definite k x k covariances (float64), seeded by the fixture."""
    A = torch.randn(n, k, k, generator=generator, dtype=F64)
    return scale * (A @ A.mT / k + 0.2 * torch.eye(k, dtype=F64))


def _t(*xs, dtype=F64, device="cpu"):
    return [torch.tensor(float(x), dtype=dtype, device=device) for x in xs]


COV2 = [(1.0, 0.5, 1.0), (1.0, 0.0, 1.0), (0.7, -0.4, 1.3), (1.5, 1.2, 1.1), (0.3, 0.1, 0.8),
        (1.0, 0.99, 1.0)]


# --------------------------------------------------------------------------------------------
# Closed forms vs quadrature (tight, deterministic)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("c", COV2)
@pytest.mark.parametrize("order", [0, 1])
def test_arccos_kernel_matches_halfline_quadrature(order, c):
    got = float(arccos_kernel(order, *_t(*c)))
    assert abs(got - _halfline_relu(*c, order)) < QUAD_TOL


@pytest.mark.parametrize("c", COV2)
def test_erf_duals_match_gauss_hermite(c):
    C = [[c[0], c[1]], [c[1], c[2]]]
    want = _gh2(lambda u, v: np_erf(u) * np_erf(v), C)
    want_p = _gh2(lambda u, v: 4 / math.pi * np.exp(-u * u - v * v), C)
    assert abs(float(erf_dual(*_t(*c))) - want) < QUAD_TOL
    assert abs(float(erf_dual_prime(*_t(*c))) - want_p) < QUAD_TOL


@pytest.mark.parametrize("c", COV2)
def test_erf_I2_and_noise_match_gauss_hermite(c):
    C = [[c[0], c[1]], [c[1], c[2]]]
    assert abs(float(erf_I2(*_t(*c))) - _gh2(lambda u, v: _g(u) * _g(v), C)) < QUAD_TOL
    want = _gh2(lambda u, v: _gp(u) * _gp(v), C)
    assert abs(float(erf_I2_noise(*_t(*c))) - want) < QUAD_TOL


def _cov_cases(k, generator):
    fixed = torch.tensor(C_REF, dtype=F64)[:k, :k]
    strong = 0.9 * torch.ones(k, k, dtype=F64) + torch.diag(torch.linspace(0.1, 0.6, k,
                                                                          dtype=F64))
    return [fixed, strong, *_random_cov(k, generator, n=3)]


@pytest.mark.parametrize("k,closed,ref", [(3, erf_I3, _ref_I3), (4, erf_I4, _ref_I4)],
                         ids=["I3", "I4"])
def test_erf_I3_I4_match_reduced_quadrature(k, closed, ref, generator):
    for C in _cov_cases(k, generator):
        got, want = float(closed(C)), ref(C.numpy())
        assert abs(got - want) < QUAD_TOL, (C, got, want)


def test_reference_values_from_papers():
    C = torch.tensor(C_REF, dtype=F64)
    got = {
        "I2": erf_I2(C[0, 0], C[0, 1], C[1, 1]),
        "I2_noise": erf_I2_noise(C[0, 0], C[0, 1], C[1, 1]),
        "I3": erf_I3(C[:3, :3]),
        "I4": erf_I4(C),
    }
    for name, value in got.items():
        assert abs(float(value) - REF[name]) < 1e-6, name


def test_I2_is_erf_dual_at_half_covariance():
    c = torch.tensor([0.8, 0.3, 1.4], dtype=F64)
    # Elementwise, and halving is exact: the same arithmetic up to the order of two
    # roundings (an ulp or two of values < 1).
    torch.testing.assert_close(erf_I2(*c), erf_dual(*(c / 2)), rtol=0, atol=1e-15)


# --------------------------------------------------------------------------------------------
# Special values
# --------------------------------------------------------------------------------------------

def test_special_values():
    one, zero = torch.tensor(1.0, dtype=F64), torch.tensor(0.0, dtype=F64)
    # Closed forms evaluated elementwise (no matrix product): within an ulp or two of the
    # exact values (1e-15 is 4.5 ulps of 1); at c12 = -sqrt(c11 c22) the determinant and the
    # complementary angle are exactly 0, hence the exact zeros.
    # g(z) = erf(z / sqrt 2) is uniform on (-1, 1): E g^2 = 1/3 (not 1/6: no factor-2 trap).
    assert abs(float(erf_I2(one, one, one)) - 1 / 3) < 1e-15
    assert abs(float(arccos_kernel(1, one, zero, one)) - 1 / (2 * math.pi)) < 1e-15
    assert abs(float(arccos_kernel(0, one, zero, one)) - 0.25) < 1e-15
    assert abs(float(arccos_kernel(1, one, one, one)) - 0.5) < 1e-15
    assert abs(float(arccos_kernel(0, one, one, one)) - 0.5) < 1e-15
    assert float(arccos_kernel(1, one, -one, one)) == 0.0
    assert float(arccos_kernel(0, one, -one, one)) == 0.0
    # Plain erf at [[1, .5], [.5, 1]] -> (2/pi) arcsin(1/3) = 0.216347.
    assert abs(float(erf_dual(one, 0.5 * one, one)) - 0.216347) < 5e-7
    assert abs(float(erf_dual_prime(zero, zero, zero)) - 4 / math.pi) < 1e-15


@pytest.mark.parametrize("order", [0, 1])
def test_arccos_degenerate_variance_is_zero_without_nan(order):
    c11 = torch.tensor([0.0, 2.0, 0.0, 0.0], dtype=F64, requires_grad=True)
    c22 = torch.tensor([3.0, 0.0, 0.0, 1.0], dtype=F64, requires_grad=True)
    c12 = torch.zeros(4, dtype=F64, requires_grad=True)
    k = arccos_kernel(order, c11, c12, c22)
    assert torch.equal(k, torch.zeros(4, dtype=F64))  # exact: products with 0 (or the mask)
    k.sum().backward()
    for t in (c11, c12, c22):
        assert torch.isfinite(t.grad).all()


def test_arccos_scales_with_variances():
    # Homogeneity: k1(a c11, sqrt(ab) c12, b c22) = sqrt(ab) k1(...); k0 is scale-free.
    c = torch.tensor([0.7, -0.2, 1.3], dtype=F64)
    a, b = 2.5, 0.4
    scaled = (a * c[0], math.sqrt(a * b) * c[1], b * c[2])
    # Elementwise; the scaling rounds each entry once, and the angle is well-conditioned
    # here (sin(theta) = 0.98): a few ulps, 1e-14 is 45.
    torch.testing.assert_close(arccos_kernel(1, *scaled), math.sqrt(a * b) * arccos_kernel(1, *c),
                               rtol=1e-14, atol=0)
    torch.testing.assert_close(arccos_kernel(0, *scaled), arccos_kernel(0, *c), rtol=1e-14,
                               atol=0)


def _arccos_reference(order, c11, c12, c22):
    """The arc-cosine kernel in 50-digit arithmetic (mpmath, which torch requires through
    sympy), the float64 inputs taken as exact."""
    import mpmath

    with mpmath.workdps(50):
        c11, c12, c22 = (mpmath.mpf(float(c)) for c in (c11, c12, c22))
        s = mpmath.sqrt(c11 * c22)
        theta = mpmath.acos(max(-1, min(1, c12 / s)))
        if order == 0:
            return float((mpmath.pi - theta) / (2 * mpmath.pi))
        return float(s * (mpmath.sin(theta) + (mpmath.pi - theta) * mpmath.cos(theta))
                     / (2 * mpmath.pi))


@pytest.mark.parametrize("order", [0, 1])
def test_arccos_kernel_is_accurate_near_0_and_pi(order):
    """Near the degenerate covariance (angle -> 0 or pi) the kernels keep full relative
    accuracy for their (exact) inputs: the determinant c11 c22 - c12^2 from exact product
    splittings, pi - theta from atan2 of accurate sides, and sin(u) - u cos(u) by its series
    near pi. Tolerance: a dozen roundings of at most an ulp each (SLEEF's atan2 is
    1-ulp accurate), so 16 eps relative; the naive determinant lost up to 12 digits here."""
    eps = torch.finfo(F64).eps
    for c11, c22 in ((1.0, 1.0), (1.0, 2.0), (0.3, 7.0)):
        for theta in (1e-7, 1e-5, 1e-3, 0.5, math.pi - 0.5, math.pi - 1e-3, math.pi - 1e-5,
                      math.pi - 1e-7):
            c = _t(c11, math.sqrt(c11 * c22) * math.cos(theta), c22)
            got = float(arccos_kernel(order, *c))
            want = _arccos_reference(order, *c)
            assert abs(got - want) <= 16 * eps * abs(want), (c11, c22, theta, got, want)


# --------------------------------------------------------------------------------------------
# Monte Carlo, tolerance z * s / sqrt(n)
# --------------------------------------------------------------------------------------------

def _sample(C, n, generator):
    L = torch.linalg.cholesky(C)
    return torch.randn(n, C.shape[0], generator=generator, dtype=F64) @ L.mT


def test_all_closed_forms_vs_monte_carlo(generator):
    C = torch.tensor(C_REF, dtype=F64)
    z = _sample(C, 200_000, generator)
    z1, z2, z3, z4 = z.unbind(-1)

    def g(u):
        return torch.erf(u / math.sqrt(2))

    def gp(u):
        return math.sqrt(2 / math.pi) * torch.exp(-u * u / 2)

    pair = (C[0, 0], C[0, 1], C[1, 1])
    samples = torch.stack([
        torch.relu(z1) * torch.relu(z2),
        ((z1 > 0) & (z2 > 0)).to(F64),
        torch.erf(z1) * torch.erf(z2),
        4 / math.pi * torch.exp(-z1 * z1 - z2 * z2),
        g(z1) * g(z2),
        gp(z1) * gp(z2),
        gp(z1) * z2 * g(z3),
        gp(z1) * gp(z2) * g(z3) * g(z4),
    ], dim=-1)  # (n, 8)
    expected = torch.stack([
        arccos_kernel(1, *pair), arccos_kernel(0, *pair), erf_dual(*pair),
        erf_dual_prime(*pair), erf_I2(*pair), erf_I2_noise(*pair), erf_I3(C[:3, :3]),
        erf_I4(C),
    ])
    assert_mc_close(samples, expected)


def test_monte_carlo_check_can_fail(generator):
    """The factor-2 convention (I2 = arcsin / pi) is detected by the same MC check."""
    C = torch.tensor(C_REF, dtype=F64)[:2, :2]
    z = _sample(C, 200_000, generator)
    samples = torch.erf(z[:, 0] / math.sqrt(2)) * torch.erf(z[:, 1] / math.sqrt(2))
    halved = erf_I2(C[0, 0], C[0, 1], C[1, 1]) / 2
    with pytest.raises(AssertionError):
        assert_mc_close(samples, halved)


# --------------------------------------------------------------------------------------------
# Price's theorem and autograd
# --------------------------------------------------------------------------------------------

def _grad_c12(f, c):
    c11, c12, c22 = (torch.tensor(x, dtype=F64, requires_grad=True) for x in c)
    (grad,) = torch.autograd.grad(f(c11, c12, c22), c12)
    return grad


@pytest.mark.parametrize("c", [(1.0, 0.5, 1.0), (0.7, -0.4, 1.3), (2.0, 2.0, 2.0)])
def test_price_theorem_links_duals_and_derivative_duals(c):
    # d/dc12 E[f(u) f(v)] = E[f'(u) f'(v)]. Elementwise autograd; for the ReLU kernel the
    # derivative sums two terms +-c12/s that cancel (|c12|/s <= 0.6 here, 0 on the
    # degenerate third case), so a few ulps: 1e-12 leaves ample room.
    torch.testing.assert_close(_grad_c12(lambda *a: arccos_kernel(1, *a), c),
                               arccos_kernel(0, *_t(*c)), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(_grad_c12(erf_dual, c), erf_dual_prime(*_t(*c)), rtol=1e-12,
                               atol=0)
    torch.testing.assert_close(_grad_c12(erf_I2, c), erf_I2_noise(*_t(*c)), rtol=1e-12,
                               atol=0)


def test_gradcheck_I3_I4(generator):
    for k, f in ((3, erf_I3), (4, erf_I4)):
        C = _random_cov(k, generator, n=2).requires_grad_(True)
        # gradcheck perturbs one entry at a time: symmetrise inside the function.
        assert torch.autograd.gradcheck(lambda X, f=f: f((X + X.mT) / 2), (C,))


# --------------------------------------------------------------------------------------------
# Batching, dtype, device
# --------------------------------------------------------------------------------------------

def test_batching_over_leading_axes_equals_loop(generator):
    for k, f in ((3, erf_I3), (4, erf_I4)):
        C = _random_cov(k, generator, n=6).reshape(2, 3, k, k)
        out = f(C)
        assert out.shape == (2, 3)
        loop = torch.stack([f(C[i, j]) for i in range(2) for j in range(3)]).reshape(2, 3)
        # The same elementwise formulas (no matrix product); batching only decides whether
        # a vectorised or a scalar loop evaluates an entry, an ulp apart per operation.
        torch.testing.assert_close(out, loop, rtol=0, atol=16 * EPS * float(loop.abs().max()))
    c11 = torch.tensor([[0.5], [1.0], [2.0]], dtype=F64)  # (3, 1)
    c22 = torch.tensor([0.8, 1.2, 1.6, 0.4], dtype=F64)  # (4,)
    c12 = 0.3 * (c11 * c22).sqrt()  # (3, 4)
    fns = [lambda *a: arccos_kernel(0, *a), lambda *a: arccos_kernel(1, *a), erf_dual,
           erf_dual_prime, erf_I2, erf_I2_noise]
    for f in fns:
        out = f(c11, c12, c22)
        assert out.shape == (3, 4)
        loop = torch.stack([f(c11[i, 0], c12[i, j], c22[j]) for i in range(3)
                            for j in range(4)]).reshape(3, 4)
        torch.testing.assert_close(out, loop, rtol=0, atol=16 * EPS * float(loop.abs().max()))


def _all_values(dtype, device):
    C = torch.tensor(C_REF, dtype=dtype, device=device)
    pair = (C[0, 0], C[0, 1], C[1, 1])
    return torch.stack([
        arccos_kernel(0, *pair), arccos_kernel(1, *pair), erf_dual(*pair),
        erf_dual_prime(*pair), erf_I2(*pair), erf_I2_noise(*pair), erf_I3(C[:3, :3]),
        erf_I4(C), gauss_hermite_expectation(lambda u, v: torch.tanh(u) * torch.tanh(v),
                                             *pair, degree=32),
        gauss_hermite_expectation_1d(torch.cos, C[0, 0], degree=32),
    ])


def test_dtype_is_kept(dtype):
    out = _all_values(dtype, "cpu")
    assert out.dtype == dtype
    torch.testing.assert_close(out.to(F64), _all_values(F64, "cpu"), rtol=TOL[dtype],
                               atol=TOL[dtype])


def test_python_numbers_give_float64():
    assert erf_I2(1.0, 0.5, 1).dtype == F64
    assert erf_I2(torch.tensor(1.0), 0.5, 1.0).dtype == torch.float32


def test_cpu_and_device_agree(device):
    out = _all_values(F64, device)
    assert out.device.type == torch.device(device).type
    # Elementwise formulas and 32-node sums: CUDA's and the CPU's libm agree within 2 ulps
    # per call and the sums' orders differ (<= 2 log2(32^2) eps): 1e-12 (4500 ulps of 1)
    # is a loose bound on that, not a hope.
    torch.testing.assert_close(out.cpu(), _all_values(F64, "cpu"), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------
# The Gauss-Hermite fallback itself
# --------------------------------------------------------------------------------------------

def test_hermite_rule_integrates_polynomials_exactly():
    x, w = hermite_rule(10)
    moments = [float((w * x**k).sum()) for k in range(8)]
    # 10-term sums of w x^k within (10 + k) eps E|z|^k <= 17 eps 38 = 1.4e-13 (E|z|^7 = 38).
    assert moments == pytest.approx([1, 0, 1, 0, 3, 0, 15, 0], abs=1e-12)


@pytest.mark.parametrize("c", COV2[:5])
def test_gauss_hermite_expectation_matches_closed_forms(c):
    got = gauss_hermite_expectation(lambda u, v: torch.erf(u) * torch.erf(v), *_t(*c),
                                    degree=100)
    assert abs(float(got - erf_dual(*_t(*c)))) < QUAD_TOL
    # A polynomial is integrated exactly: E[u^2 v^2] = c11 c22 + 2 c12^2 (Isserlis); the
    # 9-node sum of terms of size <= E|u^2 v^2| < 5 rounds within ~20 eps 5 = 2e-14.
    got = gauss_hermite_expectation(lambda u, v: u * u * v * v, *_t(*c), degree=3)
    assert abs(float(got) - (c[0] * c[2] + 2 * c[1] ** 2)) < 1e-13


def test_gauss_hermite_expectation_degenerate_and_chunked(monkeypatch):
    # c11 = 0: u == 0, so E[cos(u) v^2] = c22 (a 16-node sum, within ~20 eps of it).
    got = gauss_hermite_expectation(lambda u, v: torch.cos(u) * v * v, 0.0, 0.0, 2.0, degree=4)
    assert abs(float(got) - 2.0) < 1e-13
    c11 = torch.linspace(0.2, 2.0, 7, dtype=F64)
    args = (c11, 0.5 * c11, torch.ones(7, dtype=F64))
    whole = gauss_hermite_expectation(lambda u, v: torch.tanh(u) * torch.tanh(v), *args,
                                      degree=20)
    monkeypatch.setattr(G, "_CHUNK_NODES", 2 * 20 * 20)  # chunks of 2 entries
    chunked = gauss_hermite_expectation(lambda u, v: torch.tanh(u) * torch.tanh(v), *args,
                                        degree=20)
    # Chunking changes no entry's operations (each is its own node sum): at most the
    # vectorised-vs-scalar ulp of tanh per node, i.e. an ulp of the values (<= 1).
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-15)


def test_gauss_hermite_1d_matches_moments():
    q = torch.tensor([0.5, 1.0, 2.0], dtype=F64)
    got = gauss_hermite_expectation_1d(lambda z: z**6, q, degree=4)  # exact; 4-term sums
    torch.testing.assert_close(got, 15 * q**3, rtol=1e-13, atol=0)


# --------------------------------------------------------------------------------------------
# Validation: every check names the argument
# --------------------------------------------------------------------------------------------

PAIR_FNS = [erf_dual, erf_dual_prime, erf_I2, erf_I2_noise,
            lambda *a, **k: arccos_kernel(1, *a, **k),
            lambda *a, **k: gauss_hermite_expectation(lambda u, v: u * v, *a, **k)]


@pytest.mark.parametrize("f", PAIR_FNS)
def test_pair_validation(f):
    with pytest.raises(ValueError, match="'c11' parameter"):
        f(-1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="'c22' parameter"):
        f(1.0, 0.0, torch.tensor([1.0, -0.5], dtype=F64))
    with pytest.raises(ValueError, match="'c12' parameter"):
        f(1.0, 1.5, 1.0)
    with pytest.raises(ValueError, match="'c12' parameter"):
        f(1.0, float("nan"), 1.0)
    with pytest.raises(TypeError, match="'c11' parameter"):
        f(torch.tensor(1), 0.0, 1.0)
    with pytest.raises(TypeError, match="'c11' parameter"):
        f("1", 0.0, 1.0)
    with pytest.raises(TypeError, match="'c12' parameter"):
        f(torch.tensor(1.0, dtype=F64), torch.tensor(0.0), 1.0)
    with pytest.raises(ValueError, match="'c11' parameter"):
        f(torch.ones(3, dtype=F64), torch.zeros(2, dtype=F64), 1.0)
    with pytest.raises(TypeError, match="'validate' parameter"):
        f(1.0, 0.0, 1.0, validate=1)
    # Rounding-level Cauchy-Schwarz violations pass; validate=False skips the checks.
    assert torch.isfinite(f(1.0, 1.0 + 1e-12, 1.0))
    f(1.0, 0.0, -1e-3, validate=False)


@pytest.mark.parametrize("k,f", [(3, erf_I3), (4, erf_I4)], ids=["I3", "I4"])
def test_matrix_validation(k, f):
    good = torch.eye(k, dtype=F64)
    with pytest.raises(ValueError, match="'C' parameter"):
        f(torch.eye(k + 1, dtype=F64))
    with pytest.raises(ValueError, match="'C' parameter"):
        f(torch.ones(k, dtype=F64))
    with pytest.raises(ValueError, match="'C' parameter"):
        f(torch.ones(k, k + 1, dtype=F64))
    asym = good.clone()
    asym[0, 1] = 0.3
    with pytest.raises(ValueError, match="'C' parameter.*symmetric"):
        f(asym)
    neg = good.clone()
    neg[1, 1] = -0.1
    with pytest.raises(ValueError, match="'C' parameter.*diagonal"):
        f(neg)
    with pytest.raises(TypeError, match="'C' parameter"):
        f(good.numpy())
    with pytest.raises(TypeError, match="'C' parameter"):
        f(torch.eye(k, dtype=torch.int64))
    nan = good.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="'C' parameter"):
        f(nan)
    sym_eps = good.clone()
    sym_eps[0, 1] = 1e-12  # rounding-level asymmetry is accepted
    assert torch.isfinite(f(sym_eps))
    f(asym, validate=False)


def test_other_argument_validation():
    with pytest.raises(ValueError, match="'order' parameter"):
        arccos_kernel(2, 1.0, 0.0, 1.0)
    with pytest.raises(TypeError, match="'order' parameter"):
        arccos_kernel(1.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="'degree' parameter"):
        gauss_hermite_expectation(lambda u, v: u * v, 1.0, 0.0, 1.0, degree=0)
    with pytest.raises(ValueError, match="'degree' parameter"):
        hermite_rule(G.MAX_DEGREE + 1)
    with pytest.raises(TypeError, match="'fn2' parameter"):
        gauss_hermite_expectation("tanh", 1.0, 0.0, 1.0)
    with pytest.raises(TypeError, match="'fn' parameter"):
        gauss_hermite_expectation_1d(None, 1.0)
    with pytest.raises(ValueError, match="'q' parameter"):
        gauss_hermite_expectation_1d(torch.tanh, -1.0)
