"""Tests for mfteach.activations: definitions, derivatives, Gaussian moments and duals.

Closed-form moments are checked against independent NumPy quadrature (Gauss-Hermite for
smooth activations, Gauss-Legendre on the half-line for ReLU, SciPy's adaptive ``quad`` for
tanh) and against Monte Carlo with the z * s / sqrt(n) rule.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from numpy.polynomial.hermite_e import hermegauss
from scipy.integrate import quad
from scipy.special import erf as np_erf
from scipy.special import ndtr

from mfteach.activations import (
    ACTIVATIONS,
    Activation,
    dual,
    dual_prime,
    gaussian_moments,
    get_activation,
)
from mfteach.gaussian import arccos_kernel, erf_dual, erf_I2
from mfteach.testing import assert_mc_close
from tests.conftest import TOL

F64 = torch.float64
QUAD_TOL = 1e-10
QS = [0.1, 0.5, 1.0, 2.0]

# NumPy twins of each activation and derivative (independent of torch).
NP = {
    "relu": (lambda u: np.maximum(u, 0), lambda u: (u > 0).astype(float)),
    "erf": (np_erf, lambda u: 2 / math.sqrt(math.pi) * np.exp(-u * u)),
    "tanh": (np.tanh, lambda u: 1 / np.cosh(u) ** 2),
    "erf_sqrt2": (lambda u: 2 * ndtr(u) - 1,
                  lambda u: np.exp(-u * u / 2) * math.sqrt(2 / math.pi)),
    "square": (lambda u: u * u, lambda u: 2 * u),
    "linear": (lambda u: u, lambda u: np.ones_like(u)),
}


def _np_moments(name, q):
    """(E phi, E phi^2, E phi'^2) for z ~ N(0, q) by an independent NumPy route."""
    f, fp = NP[name]
    if name == "relu":  # kinked: E relu(z)^k over z > 0 in closed form via the half-normal
        return math.sqrt(q / (2 * math.pi)), q / 2, 0.5
    if name == "tanh":  # poles at +-i pi/2: adaptive quadrature on the real line
        dens = lambda u: math.exp(-u * u / (2 * q)) / math.sqrt(2 * math.pi * q)  # noqa: E731
        lim = 40 * math.sqrt(q)
        return tuple(quad(lambda u, h=h: h(u) * dens(u), -lim, lim, epsabs=1e-14,
                          epsrel=1e-13, limit=200)[0]
                     for h in (f, lambda u: f(u) ** 2, lambda u: fp(u) ** 2))
    x, w = hermegauss(150)
    w = w / math.sqrt(2 * math.pi)
    z = math.sqrt(q) * x
    return float(w @ f(z)), float(w @ f(z) ** 2), float(w @ fp(z) ** 2)


# --------------------------------------------------------------------------------------------
# Registry and definitions
# --------------------------------------------------------------------------------------------

def test_registry_names():
    assert ACTIVATIONS == ("relu", "erf", "tanh", "erf_sqrt2", "square", "linear")
    for name in ACTIVATIONS:
        act = get_activation(name)
        assert isinstance(act, Activation) and act.name == name and act.formula
        assert get_activation(act) is act
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_activation("relu").name = "tanh"


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="'name' parameter.*'relu'.*'linear'"):
        get_activation("sigmoid")
    with pytest.raises(TypeError, match="'name' parameter"):
        get_activation(3)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_fn_and_deriv_match_numpy_definitions(name, generator):
    u = 3 * torch.randn(200, generator=generator, dtype=F64)
    act = get_activation(name)
    f, fp = NP[name]
    # Elementwise, no matrix product: torch's and NumPy/SciPy's implementations of the same
    # functions, each within a few ulps (1e-13 is 450 ulps; atol for outputs near 0).
    np.testing.assert_allclose(act(u).numpy(), f(u.numpy()), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(act.deriv(u).numpy(), fp(u.numpy()), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_deriv_matches_autograd(name, generator):
    u = 3 * torch.randn(200, generator=generator, dtype=F64)
    u = u[u.abs() > 1e-3].requires_grad_(True)  # away from ReLU's kink
    act = get_activation(name)
    (grad,) = torch.autograd.grad(act(u).sum(), u)
    # Elementwise: autograd's derivative formula vs the hand-written one, a few ulps apart.
    torch.testing.assert_close(act.deriv(u.detach()), grad, rtol=1e-13, atol=1e-15)


def test_erf_sqrt2_is_uniform_on_minus_one_one(generator):
    # g(z) = 2 Phi(z) - 1 ~ U(-1, 1): E g^2 = 1/3, E g^4 = 1/5.
    g = get_activation("erf_sqrt2")(torch.randn(200_000, generator=generator, dtype=F64))
    assert_mc_close(torch.stack([g * g, g**4], dim=-1), torch.tensor([1 / 3, 1 / 5]))


# --------------------------------------------------------------------------------------------
# Gaussian moments
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_moments_match_independent_quadrature(name, q):
    m = gaussian_moments(name, q)
    got = (float(m.mean), float(m.second), float(m.deriv_second))
    assert got == pytest.approx(_np_moments(name, q), abs=QUAD_TOL, rel=0)
    assert m.method == ("quadrature" if name == "tanh" else "closed form")


def test_moments_vs_monte_carlo(generator):
    q = 1.7
    z = math.sqrt(q) * torch.randn(200_000, generator=generator, dtype=F64)
    samples, expected = [], []
    for name in ACTIVATIONS:
        act, m = get_activation(name), gaussian_moments(name, q)
        samples += [act(z), act(z) ** 2, act.deriv(z) ** 2]
        expected += [m.mean, m.second, m.deriv_second]
    assert_mc_close(torch.stack(samples, dim=-1), torch.stack(expected))


def test_moment_special_values():
    # Closed forms, elementwise: within an ulp or two of the exact values (1e-15 is 4.5 ulps
    # of 1); q/2 and 3 q^2 at q = 2 are exact in binary, so exact equality holds.
    assert float(gaussian_moments("erf_sqrt2", 1.0).second) == pytest.approx(1 / 3, abs=1e-15)
    assert float(gaussian_moments("relu", 2.0).second) == 1.0
    assert float(gaussian_moments("square", 2.0).second) == 12.0  # E z^4 = 3 q^2
    erf = gaussian_moments("erf", 0.5)
    assert float(erf.second) == pytest.approx(2 / math.pi * math.asin(0.5), abs=1e-15)
    # q = 0: phi(0) for every activation; ReLU's phi'(0) = 0; no NaN.
    for name in ACTIVATIONS:
        m = gaussian_moments(name, 0.0)
        act = get_activation(name)
        zero = torch.zeros((), dtype=F64)
        assert float(m.second) == pytest.approx(float(act(zero)) ** 2, abs=1e-15)
        assert float(m.deriv_second) == pytest.approx(float(act.deriv(zero)) ** 2, abs=1e-15)


def test_moments_are_diagonal_of_duals():
    for name in ACTIVATIONS:
        m = gaussian_moments(name, 1.3)
        # degree 300 in 2-D too: at rho = 1 the 2-D rule is the 1-D rule on the diagonal.
        torch.testing.assert_close(dual(name, 1.3, 1.3, 1.3, degree=300), m.second,
                                   rtol=1e-10, atol=0)
        torch.testing.assert_close(dual_prime(name, 1.3, 1.3, 1.3, degree=300),
                                   m.deriv_second, rtol=1e-10, atol=0)


def test_moments_shape_dtype_device(dtype, device):
    q = torch.tensor([[0.5, 1.0, 2.0]], dtype=dtype, device=device)
    for name in ACTIVATIONS:
        m = gaussian_moments(name, q)
        for t in (m.mean, m.second, m.deriv_second):
            assert t.shape == (1, 3) and t.dtype == dtype
            assert t.device.type == torch.device(device).type
        ref = gaussian_moments(name, q.cpu().to(F64))
        torch.testing.assert_close(m.second.cpu().to(F64), ref.second, rtol=TOL[dtype],
                                   atol=TOL[dtype])


def test_custom_activation_uses_quadrature():
    softplus = Activation("softplus", torch.nn.functional.softplus, torch.sigmoid)
    m = gaussian_moments(softplus, 1.0)
    assert m.method == "quadrature"
    x, w = hermegauss(150)
    w = w / math.sqrt(2 * math.pi)
    assert float(m.mean) == pytest.approx(float(w @ np.logaddexp(0, x)), abs=QUAD_TOL)
    # A custom Activation named like a registered one is not mistaken for it.
    fake = Activation("relu", torch.tanh, lambda u: 1 - torch.tanh(u) ** 2)
    # E tanh(z) = 0 by symmetry; the 300-node rule's sum of +-terms is within
    # 300 eps sum_i w_i |tanh(x_i)| <= 300 eps of it (ReLU's mean would be 0.4).
    assert float(gaussian_moments(fake, 1.0).mean) == pytest.approx(
        0.0, abs=300 * torch.finfo(F64).eps)


def test_moments_validation():
    with pytest.raises(ValueError, match="'q' parameter"):
        gaussian_moments("relu", -0.1)
    with pytest.raises(ValueError, match="'q' parameter"):
        gaussian_moments("relu", float("inf"))
    with pytest.raises(ValueError, match="'activation' parameter.*'tanh'"):
        gaussian_moments("gelu", 1.0)
    with pytest.raises(TypeError, match="'activation' parameter"):
        gaussian_moments(torch.tanh, 1.0)
    with pytest.raises(TypeError, match="'q' parameter"):
        gaussian_moments("tanh", torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="'degree' parameter"):
        gaussian_moments("tanh", 1.0, degree=0)


# --------------------------------------------------------------------------------------------
# Duals
# --------------------------------------------------------------------------------------------

def test_duals_use_the_closed_forms():
    c = (1.2, 0.4, 0.9)
    # dual dispatches to these very functions: identical bits by construction.
    assert float(dual("relu", *c)) == float(arccos_kernel(1, *c))
    assert float(dual_prime("relu", *c)) == float(arccos_kernel(0, *c))
    assert float(dual("erf", *c)) == float(erf_dual(*c))
    assert float(dual("erf_sqrt2", *c)) == float(erf_I2(*c))


@pytest.mark.parametrize("name", ["erf", "erf_sqrt2", "square", "linear"])
def test_smooth_duals_match_quadrature(name):
    # The library's own quadrature with a custom Activation of the same functions.
    act = get_activation(name)
    twin = Activation(name + "_twin", act.fn, act.deriv)
    for c in [(1.0, 0.5, 1.0), (0.7, -0.4, 1.3), (1.5, 1.2, 1.1)]:
        for f in (dual, dual_prime):
            torch.testing.assert_close(f(name, *c), f(twin, *c, degree=100), rtol=0,
                                       atol=QUAD_TOL)


def test_tanh_dual_vs_monte_carlo_and_price(generator):
    C = torch.tensor([[1.0, 0.6], [0.6, 1.5]], dtype=F64)
    z = torch.randn(200_000, 2, generator=generator, dtype=F64) @ torch.linalg.cholesky(C).mT
    act = get_activation("tanh")
    samples = torch.stack([act(z[:, 0]) * act(z[:, 1]),
                           act.deriv(z[:, 0]) * act.deriv(z[:, 1])], dim=-1)
    c = (C[0, 0], C[0, 1], C[1, 1])
    assert_mc_close(samples, torch.stack([dual("tanh", *c), dual_prime("tanh", *c)]))
    # Price's theorem through the quadrature: d dual / d c12 = dual_prime.
    c12 = C[0, 1].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(dual("tanh", C[0, 0], c12, C[1, 1], degree=150), c12)
    torch.testing.assert_close(grad, dual_prime("tanh", *c, degree=150), rtol=0,
                               atol=QUAD_TOL)


def test_dual_validation():
    with pytest.raises(ValueError, match="'c12' parameter"):
        dual("tanh", 1.0, 2.0, 1.0)
    with pytest.raises(ValueError, match="'activation' parameter"):
        dual_prime("softsign", 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="'degree' parameter"):
        dual("tanh", 1.0, 0.0, 1.0, degree=10_000)
