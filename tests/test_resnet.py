"""Tests of mfteach.resnet: linearly parameterised ResNets (chapter 6).

Tolerances. Monte Carlo: ``z * s / sqrt(n)`` with a Bonferroni z (``assert_mc_close``).
Slopes: the OLS standard error of the fit (``assert_slope_close``, z = 4) plus, where the
asymptotic law has a known next-order correction, an allowance for it (derived at the test).
Floating point: ``n * eps * |A| |B|`` for a length-n reduction, ``n * eps * lambda_max`` for a
symmetric eigensolver. Rates: their spread over five seeds (one network per data set). The seed
is fixed, so the tests are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from mfteach import resnet as rn
from mfteach.stats import fit_loglog_slope
from mfteach.testing import assert_mc_close, assert_slope_close
from mfteach.training import DivergenceError

F64 = torch.float64
EPS = torch.finfo(F64).eps
N_SEEDS = 5


def _points(n: int, q: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 2 * torch.rand(n, q, generator=g, dtype=F64) - 1


# ------------------------------------------------------------------------------------------
# Features and kernels
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", rn.FAMILIES)
def test_feature_kernel_closed_form_by_monte_carlo(family, generator):
    """M phi_j(x) phi_j(x') / c over the features j are i.i.d. samples of the kernel
    (c = 1 for relu, the sqrt(2/M) / sqrt(1/M) normalisation otherwise): their mean against
    the closed form (Gaussian, Matern via scipy's K_nu, arc-cosine)."""
    M, n = 200_000, 6
    X = _points(n, 2, 1)
    f = rn.draw_features(2, M, family=family, bandwidth=0.7, nu=3.0, generator=generator)
    Phi = rn.feature_map(f, X)[0] * math.sqrt(M)  # (n, M): unit-normalised features
    samples = Phi.T.unsqueeze(-1) * Phi.T.unsqueeze(-2)  # (M, n, n)
    iu = torch.triu_indices(n, n)
    assert_mc_close(samples[:, iu[0], iu[1]], rn.feature_kernel(f, X)[iu[0], iu[1]])


def test_matern_kernel_half_integer_closed_forms():
    """nu = 1: exp(-z) (Cauchy frequencies, Laplace kernel); nu = 5: (1 + z + z^2/3) e^{-z}."""
    X = _points(7, 3, 2)
    r = torch.cdist(X, X)
    for nu, form in [(1.0, lambda z: torch.exp(-z)),
                     (5.0, lambda z: (1 + z + z * z / 3) * torch.exp(-z))]:
        z = math.sqrt(nu) * r / 0.8
        torch.testing.assert_close(rn.matern_kernel(X, bandwidth=0.8, nu=nu), form(z),
                                   rtol=64 * EPS, atol=8 * EPS)  # ~10 float64 ops, k <= 1


@pytest.mark.parametrize("family", rn.FAMILIES)
def test_rff_gram_error_falls_like_m_to_minus_half(family):
    """RMS entrywise error of K_M against the kernel, over 8 seeds, versus M = 16..4096:
    E|K_M - K|_F^2 = sum Var / M exactly, so the log-log slope is -1/2 within its stderr."""
    X = _points(20, 2, 3)
    widths = [16, 64, 256, 1024, 4096]
    errs = []
    for i, M in enumerate(widths):
        f = rn.draw_features(2, M, family=family, bandwidth=0.3, n_networks=8,
                             generator=100 + i)
        K = rn.feature_kernel(f, X)
        errs.append(float((rn.feature_gram(f, X) - K).square().mean().sqrt()))
    fit = fit_loglog_slope(widths, errs)
    print(f"{family}: RMS Gram error {fit}; sqrt(M) * err = "
          f"{[round(e * math.sqrt(m), 3) for e, m in zip(errs, widths)]}")
    assert_slope_close(fit, -0.5, z=4.0)


def test_gram_is_singular_below_m_equals_n_and_positive_above():
    """K_M = Phi Phi^T has rank <= M: lambda_min = 0 (to rounding) for M < N, over 5 seeds;
    for M = 50 N it is positive and within the Weyl bound |K_M - K|_2 of lambda_min(K)."""
    N = 20
    X = _points(N, 2, 4)
    lam_K = float(torch.linalg.eigvalsh(rn.gaussian_kernel(X, bandwidth=0.3))[0])
    for M in (5, 10, 19):
        f = rn.draw_features(2, M, bandwidth=0.3, n_networks=N_SEEDS, generator=M)
        G = rn.feature_gram(f, X)
        ev = torch.linalg.eigvalsh(G)
        tol = 10 * N * EPS * ev[:, -1]
        assert bool((ev[:, 0].abs() <= tol).all()), (M, ev[:, 0])
        assert bool((torch.linalg.matrix_rank(G) <= M).all())
    f = rn.draw_features(2, 50 * N, bandwidth=0.3, n_networks=N_SEEDS, generator=7)
    G = rn.feature_gram(f, X)
    lam = torch.linalg.eigvalsh(G)[:, 0]
    weyl = torch.linalg.matrix_norm(G - rn.gaussian_kernel(X, bandwidth=0.3), ord=2)
    assert bool((lam > 0).all())
    assert bool(((lam - lam_K).abs() <= weyl + 10 * N * EPS).all()), (lam, lam_K, weyl)
    print(f"lambda_min(K) = {lam_K:.4g}; lambda_min(K_M), M = {50 * N}: {lam.tolist()}")


# ------------------------------------------------------------------------------------------
# The ResNet: identity at initialisation, depth discretisation order
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", rn.SCHEMES)
@pytest.mark.parametrize("family", rn.FAMILIES)
def test_zero_residuals_give_the_identity_exactly(scheme, family, generator):
    net = rn.init_resnet(2, 5, 32, 6, family=family, scheme=scheme, n_networks=3,
                         generator=generator)
    X, _ = rn.toy_data(11, generator=generator)
    assert torch.equal(rn.resnet_output(net, X), X.expand(3, 11, 2))
    path = rn.trajectories(net, X)
    assert path.shape == (3, 7, 11, 5)
    assert torch.equal(path, rn.lift(X, 5).expand_as(path))


def _smooth_U(s: np.ndarray | float, U0: torch.Tensor, U1: torch.Tensor) -> torch.Tensor:
    """A velocity smooth in depth: U(s) = U0 cos(pi s) + U1 s^2."""
    s = torch.as_tensor(s, dtype=F64)
    return U0 * torch.cos(math.pi * s) + U1 * s * s


@pytest.mark.parametrize("scheme", rn.SCHEMES)
def test_depth_discretisation_order(scheme):
    """The blocks with U_l = U(l/L) (Euler) or U((l + 1/2)/L) (midpoint) against scipy's
    DOP853 solution of dx/ds = U(s) phi(x) at rtol 1e-11 (an independent solver): the error
    at s = 1 falls like L^{-p}, p = ORDER[scheme]. Allowance: the next term of the error
    expansion, c L^{-p-1}, shifts the OLS slope over L = 8..128 by at most about
    |c| / (8 ln 16) relative; 0.15 covers |c| up to 3, a seventh of the gap between orders."""
    q, M, n = 2, 64, 6
    net0 = rn.init_resnet(2, q, M, 1, bandwidth=0.7, generator=5)
    g = torch.Generator().manual_seed(6)
    U0 = torch.randn(q, M, generator=g, dtype=F64)
    U1 = torch.randn(q, M, generator=g, dtype=F64)
    X = _points(n, 2, 8)
    feats = net0.feats

    def rhs(s, y):
        x = torch.as_tensor(y, dtype=F64).reshape(1, n, q)
        v = rn.feature_map(feats, x[0]) @ _smooth_U(s, U0, U1).T
        return v.reshape(-1).numpy()

    # The reference's own error (~1e-11 at these tolerances) is far below the smallest
    # discretisation error fitted (~1e-5, midpoint at L = 128), so it cannot bend the slope.
    sol = solve_ivp(rhs, (0.0, 1.0), X.reshape(-1).numpy(), method="DOP853", rtol=1e-11,
                    atol=1e-11)
    ref = torch.as_tensor(sol.y[:, -1], dtype=F64).reshape(n, q)
    depths = [8, 16, 32, 64, 128]
    errs = []
    shift = 0.0 if scheme == "euler" else 0.5
    for L in depths:
        s = (torch.arange(L, dtype=F64) + shift) / L
        U = _smooth_U(s[:, None, None], U0, U1).unsqueeze(0)  # (1, L, q, M)
        net = rn.ResNet(feats, U, 2, scheme)
        errs.append(float((rn.resnet_output(net, X)[0] - ref).abs().max()))
    fit = fit_loglog_slope(depths, errs)
    print(f"{scheme}: error vs L {fit}, errors {[f'{e:.2e}' for e in errs]}")
    assert_slope_close(fit, -rn.ORDER[scheme], z=4.0, atol=0.15)


# ------------------------------------------------------------------------------------------
# Training: PL at initialisation, linear convergence above M = N
# ------------------------------------------------------------------------------------------

TRAIN = dict(n=10, M=256, L=8, bandwidth=0.2, lr=20.0, steps=600, record_every=10)


@pytest.fixture(scope="module")
def runs():
    """Five data sets, one network each (batched), per scheme, with M > N."""
    out = {}
    c = TRAIN
    Xs, Ys = zip(*(rn.toy_data(c["n"], generator=g) for g in range(200, 200 + N_SEEDS)))
    X, Y = torch.stack(Xs), torch.stack(Ys)  # (B, N, 2)
    for scheme in rn.SCHEMES:
        net = rn.init_resnet(2, 2, c["M"], c["L"], bandwidth=c["bandwidth"], scheme=scheme,
                             n_networks=N_SEEDS, generator=300)
        out[scheme] = (net, X, Y, rn.train(net, X, Y, lr=c["lr"], steps=c["steps"],
                                           record_every=c["record_every"]))
    return out


@pytest.mark.parametrize("scheme", rn.SCHEMES)
def test_pl_ratio_at_initialisation_matches_the_gram(runs, scheme):
    """At U = 0 (both schemes) |grad L|^2 / L = 2 tr(R^T K_M R) / (L N |R|^2) exactly (the
    autograd gradient against the Gram, eq. rn-pl0), hence >= 2 lambda_min(K_M) / (L N)."""
    net, X, Y, h = runs[scheme]
    R = X - Y  # residuals of the identity map, (B, N, d)
    G = rn.feature_gram(net.feats, rn.lift(X, net.q))
    N, L = X.shape[1], net.depth
    want = 2 * (R * (G @ R)).sum((1, 2)) / (L * N * R.square().sum((1, 2)))
    got = h.pl_ratio[0]
    tol = 100 * N * N * EPS * torch.linalg.matrix_norm(G, ord=2) / (L * N)
    assert bool(((got - want).abs() <= tol).all()), (got, want)
    assert bool((got >= h.pl_floor0).all())
    assert bool((h.pl_floor0 > 0).all())


@pytest.mark.parametrize("scheme", rn.SCHEMES)
def test_loss_decreases_linearly_when_m_exceeds_n(runs, scheme):
    """M = 256 > N = 10: the loss decreases at every recorded step, log L on the late half is
    a straight line (R^2 above what any power law reaches on the window) for each of the 5
    data sets, and the PL ratio stays bounded below (its minimum along training is a fixed
    fraction of its initial value, printed with the Gram floor)."""
    net, X, Y, h = runs[scheme]
    assert bool((h.loss[1:] < h.loss[:-1]).all())
    fit = rn.fit_log_rate(h)
    assert bool((fit.r2 > fit.r2_algebraic).all()), (fit.r2, fit.r2_algebraic)
    assert bool((fit.rate > 0).all())
    ratio = h.pl_ratio.amin(0) / h.pl_ratio[0]
    print(f"{scheme}: rate {fit.mean:.4g} ± {fit.std:.3g} per step (sd over {N_SEEDS}), "
          f"R^2 >= {float(fit.r2.min()):.6f} vs {fit.r2_algebraic:.6f}; loss "
          f"{float(h.loss[0].mean()):.3g} -> {float(h.loss[-1].mean()):.3g}; "
          f"min PL ratio / initial {ratio.tolist()}; lr * min PL ratio "
          f"{(h.lr * h.pl_ratio.amin(0)).tolist()}; Gram floor 2 lambda/(LN) at start "
          f"{h.pl_floor0.tolist()}, min along training {h.pl_floor.amin(0).tolist()}")


# ------------------------------------------------------------------------------------------
# Errors and devices
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: rn.draw_features(2, 0, generator=0), "'n_features' parameter"),
    (lambda: rn.draw_features(2, 4, family="laplace", generator=0), "'family' parameter"),
    (lambda: rn.draw_features(2, 4, bandwidth=0.0, generator=0), "'bandwidth' parameter"),
    (lambda: rn.draw_features(2, 4, nu=-1.0, generator=0), "'nu' parameter"),
    (lambda: rn.init_resnet(3, 2, 4, 4, generator=0), "'q' parameter"),
    (lambda: rn.init_resnet(2, 2, 4, 0, generator=0), "'depth' parameter"),
    (lambda: rn.init_resnet(2, 2, 4, 4, scheme="rk4", generator=0), "'scheme' parameter"),
    (lambda: rn.toy_data(0, generator=0), "'n' parameter"),
    (lambda: rn.toy_data(5, target="x", generator=0), "'target' parameter"),
    (lambda: rn.gaussian_kernel(torch.zeros(3, 2), bandwidth=-1.0), "'bandwidth' parameter"),
])
def test_bad_arguments_raise_one_line_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_bad_tensors_raise_one_line_errors():
    net = rn.init_resnet(2, 3, 8, 4, generator=0)
    X, Y = rn.toy_data(5, generator=1)
    for call, match in [
        (lambda: rn.train(net, X[:, :1], Y), "'X' parameter"),
        (lambda: rn.train(net, X, Y[:3]), "'Y' parameter"),
        (lambda: rn.train(net, X.float(), Y.float()), "'X' parameter"),
        (lambda: rn.train(net, X, Y, lr=0.0), "'lr' parameter"),
        (lambda: rn.train("net", X, Y), "'net' parameter"),
        (lambda: rn.resnet_output(net, X.numpy()), "'X' parameter"),
        (lambda: rn.feature_gram(net.feats, torch.zeros(4, 2, dtype=F64)), "'X' parameter"),
        (lambda: rn.fit_log_rate("h"), "'history' parameter"),
    ]:
        with pytest.raises((ValueError, TypeError), match=match) as info:
            call()
        assert "\n" not in str(info.value)


def test_huge_step_diverges_with_a_clear_error():
    net = rn.init_resnet(2, 2, 64, 4, bandwidth=0.3, generator=0)
    X, Y = rn.toy_data(10, generator=1)
    with pytest.raises(DivergenceError, match="lr < 2 L N / lambda_max"):
        rn.train(net, X, Y, lr=1e6, steps=50)


def test_same_seed_same_history():
    X, Y = rn.toy_data(8, generator=1)
    a = rn.train(rn.init_resnet(2, 2, 32, 4, generator=3), X, Y, lr=5.0, steps=20)
    b = rn.train(rn.init_resnet(2, 2, 32, 4, generator=3), X, Y, lr=5.0, steps=20)
    assert torch.equal(a.loss, b.loss) and torch.equal(a.final.U, b.final.U)


def test_device_matches_cpu(device):
    """A run on ``device`` follows the CPU run to sqrt(eps) relative (float64 rounding
    differences grow over the steps)."""
    X, Y = rn.toy_data(12, generator=1)
    kw = dict(bandwidth=0.3, scheme="midpoint", n_networks=3, generator=4)
    cpu = rn.train(rn.init_resnet(2, 3, 64, 6, **kw), X, Y, lr=20.0, steps=60)
    other = rn.train(rn.init_resnet(2, 3, 64, 6, device=device, **kw), X.to(device),
                     Y.to(device), lr=20.0, steps=60)
    assert other.loss.device.type == torch.device(device).type
    for name in ("loss", "grad_sq", "gram_min"):
        torch.testing.assert_close(getattr(other, name).cpu(), getattr(cpu, name),
                                   rtol=math.sqrt(EPS), atol=0)
