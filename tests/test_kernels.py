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


def _naive(x1, x2, act, depth, wv, bv, *, coincident=False):
    """Entry-by-entry recursion through the public duals of mfteach.activations: an
    independent route to the same kernels (no blocking, no fusion, no symmetry).

    ``coincident=True`` (x2 is x1) gives the diagonal pairs their exact covariance,
    ``K^l(x, x) = q^l(x)``: from the Gram matrix it would differ from the sum of squares by
    rounding, which the arc-cosine kernels turn into a spurious angle of order sqrt(eps).
    Also returns the smallest sine of the angle between the two inputs' features over all
    layers and all other pairs, the reference's condition number (see _relu_tol).
    """
    d = x1.shape[1]
    q1 = wv * (x1 * x1).sum(1) / d + bv
    q2 = wv * (x2 * x2).sum(1) / d + bv
    K = wv * x1 @ x2.T / d + bv
    if coincident:
        K.diagonal().copy_(q1)
    T = K.clone()
    sin_min = 1.0
    for _ in range(depth):
        c11, c22 = q1[:, None].expand_as(K), q2[None, :].expand_as(K)
        sin = _sin_angle(c11, K, c22)
        if coincident:
            sin.fill_diagonal_(1.0)
        sin_min = min(sin_min, float(sin.min()))
        K_next = wv * dual(act, c11, K, c22) + bv
        T = K_next + wv * dual_prime(act, c11, K, c22) * T
        q1 = wv * dual(act, q1, q1, q1) + bv
        q2 = wv * dual(act, q2, q2, q2) + bv
        K = K_next
        if coincident:
            K.diagonal().copy_(q1)
    return K, T, sin_min


EPS = torch.finfo(F64).eps


def _sin_angle(c11, c12, c22):
    """sin of the angle of the covariance [[c11, c12], [c12, c22]]: its sensitivity to c12."""
    rho = (c12 / (c11 * c22).sqrt()).clamp(-1.0, 1.0)
    return (1 - rho * rho).sqrt()


def _relu_tol(d: int, depth: int) -> float:
    r"""Error bound of the fused ReLU recursion in float64, relative to the natural scale
    sqrt(M(x, x) M(x', x')) of an entry M(x, x') (Cauchy-Schwarz).

    Derivation (mfteach.kernels._relu_block carries the angle by its defect W = s - K):
    * first layer: the squared norms, the Gram entries and the unit-feature differences are
      sums of d products, each within gamma_d ~ d eps relative of the exact value (Higham,
      "Accuracy and Stability of Numerical Algorithms", Sec. 3.1). Where |K| <= 3s/4,
      W = s - K loses at most a factor 4 and dW/dtheta = s sin(theta) >= 0.66 s, so the
      angle is within 3 (d + 2) eps; elsewhere it is 2 asin(|u - u'| / 2) of unit vectors
      within (d/2 + 3) eps each, i.e. within 1.2 (d + 6) eps. Either way <= 3 (d + 6) eps.
    * each layer adds a dozen roundings of well-conditioned operations, <= 8 eps to the angle
      (the cancelling H = s sin - theta K has absolute error eps s theta and moves the next
      angle by <= 2 eps), and does not amplify the angle error (ReLU contracts angles), so
      every angle is within 4 (d + 6 + 2L) eps;
    * K and Theta are positive combinations of terms with these relative errors, the step
      factor (pi - theta) / pi included (pi - theta >= pi/2 after the first layer, and
      computed directly near pi at the first), accumulated over L + 1 layers.
    Total: 4 (L + 1) (d + 7 + 2L) eps, e.g. 336 eps = 7.5e-14 for d = 8, L = 3.
    """
    return 4 * (depth + 1) * (d + 7 + 2 * depth) * EPS


def _relu_reference(x, y, depth, wv, bv):
    """K^{L+1}(x, y) and Theta^{L+1}(x, y) of ReLU networks in 50-digit arithmetic (mpmath,
    which torch requires through sympy), from the float64 inputs taken as exact."""
    import mpmath

    with mpmath.workdps(50):
        d, wv, bv = len(x), mpmath.mpf(wv), mpmath.mpf(bv)
        x = [mpmath.mpf(float(v)) for v in x]
        y = [mpmath.mpf(float(v)) for v in y]
        qa = wv * mpmath.fsum(v * v for v in x) / d + bv
        qb = wv * mpmath.fsum(v * v for v in y) / d + bv
        K = wv * mpmath.fsum(a * b for a, b in zip(x, y)) / d + bv
        T = K
        for _ in range(depth):
            s = mpmath.sqrt(qa * qb)
            theta = mpmath.acos(max(-1, min(1, K / s))) if s else mpmath.mpf(0)
            K = wv * (s * mpmath.sin(theta) + (mpmath.pi - theta) * K) / (2 * mpmath.pi) + bv
            T = K + wv * (mpmath.pi - theta) / (2 * mpmath.pi) * T
            qa, qb = wv * qa / 2 + bv, wv * qb / 2 + bv
        return float(K), float(T)


def _relu_diagonal(x, depth, wv, bv):
    """The closed-form diagonal: E[relu(u)^2] = q/2, E[step(u)^2] = 1/2."""
    q = wv * (x * x).sum(1) / x.shape[1] + bv
    theta = q.clone()
    for _ in range(depth):
        q = wv * q / 2 + bv
        theta = q + wv / 2 * theta
    return q, theta


# ------------------------------------------------------------------------------------------
# Closed forms and an independent route
# ------------------------------------------------------------------------------------------

def _assert_within(got, want, tol, scale):
    """|got - want| <= tol * scale entrywise (scale: a tensor broadcasting with them)."""
    err = (got - want).abs()
    bound = tol * scale
    assert bool((err <= bound).all()), f"max error / bound = {float((err / bound).max()):.3g}"


def _scale(M_diag1, M_diag2):
    """sqrt(M(x, x) M(x', x')): the natural scale of M(x, x') (Cauchy-Schwarz)."""
    return (M_diag1[:, None] * M_diag2[None, :]).abs().sqrt()


def test_depth1_relu_and_erf_match_gaussian_closed_forms(generator):
    """One hidden layer: K^2 = wv E[phi phi] + bv, Theta^2 = K^2 + wv E[phi' phi'] K^1, with
    the expectations from mfteach.gaussian (an independent implementation).

    Tolerance: both routes see the first-layer covariance through a different rounding (a
    differently ordered matmul), an error of the size the fused route's own, _relu_tol(d, 1),
    which the closed form turns into an angle error 1/sin(theta) times larger (erf is better
    conditioned than that)."""
    x, y = _inputs(7, 5, generator), _inputs(6, 5, generator)
    wv, bv = 1.7, 0.3
    K1 = wv * x @ y.T / 5 + bv
    c11 = (wv * (x * x).sum(1) / 5 + bv)[:, None].expand_as(K1)
    c22 = (wv * (y * y).sum(1) / 5 + bv)[None, :].expand_as(K1)
    tol = _relu_tol(5, 1) * (1 + 2 / float(_sin_angle(c11, K1, c22).min()))
    for act, e, e_prime in (("relu", lambda *c: arccos_kernel(1, *c),
                             lambda *c: arccos_kernel(0, *c)),
                            ("erf", erf_dual, erf_dual_prime)):
        K2 = wv * e(c11, K1, c22) + bv
        T2 = K2 + wv * e_prime(c11, K1, c22) * K1
        K, T = nngp_and_ntk(x, y, activation=act, depth=1, weight_var=wv, bias_var=bv)
        K_xx, T_xx = nngp_and_ntk(x, activation=act, depth=1, weight_var=wv, bias_var=bv)
        K_yy, T_yy = nngp_and_ntk(y, activation=act, depth=1, weight_var=wv, bias_var=bv)
        _assert_within(K, K2, tol, _scale(K_xx.diagonal(), K_yy.diagonal()))
        _assert_within(T, T2, tol, _scale(T_xx.diagonal(), T_yy.diagonal()))


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "erf_sqrt2", "square", "linear"])
@pytest.mark.parametrize("wv, bv", [(1.0, 0.0), (2.0, 0.3)], ids=["plain", "bias"])
def test_deep_recursion_matches_naive_recursion(activation, wv, bv, generator):
    """Depth 3 (fused, blocked, symmetric path and x2 path) vs the naive entrywise recursion.

    The naive route gets coincident pairs exactly coincident (see _naive); it evaluates the
    closed forms on covariances that carry the rounding of its own recursion, an error of
    _relu_tol relative that moves the angle by 1/sin(theta) times as much, theta the
    smallest angle of the data over the layers. So the tolerance is
    _relu_tol (1 + 2/sin(theta_min)), not a hoped-for 1e-12: agreement to rounding on any CPU.
    tanh goes through the same 2-D Gauss-Hermite rule on both routes; the rule is not
    exactly symmetric in (u, v), and with x2=None the kernel keeps the orientation of the
    upper triangle (mirrored), so compare that triangle."""
    x, y = _inputs(7, 4, generator, radius=1.0), _inputs(4, 4, generator, radius=1.0)
    for x2 in (y, None):
        ref_y = x if x2 is None else y
        K, T = nngp_and_ntk(x, x2, activation=activation, depth=3, weight_var=wv, bias_var=bv)
        K0, T0, sin_min = _naive(x, ref_y, activation, 3, wv, bv, coincident=x2 is None)
        tol = _relu_tol(4, 3) * (1 + 2 / sin_min)
        sx = nngp_and_ntk(x, activation=activation, depth=3, weight_var=wv, bias_var=bv)
        sy = nngp_and_ntk(ref_y, activation=activation, depth=3, weight_var=wv, bias_var=bv)
        if x2 is None:
            K, T, K0, T0 = (torch.triu(M) for M in (K, T, K0, T0))
        _assert_within(K, K0, tol, _scale(sx[0].diagonal(), sy[0].diagonal()))
        _assert_within(T, T0, tol, _scale(sx[1].diagonal(), sy[1].diagonal()))


def _near_pairs(generator, d):
    """Pairs (x, y) where the old angle formula loses digits: angles 1e-9..1e-3 (equal and
    unequal norms), the same near pi (antiparallel), coincident, collinear and randomly
    perturbed by 1e-9 relative; plus well-separated angles."""
    xs, ys = [], []
    for theta in (1e-9, 1e-6, 1e-5, 1e-4, 1e-3, 0.3, 1.5):
        for ratio in (1.0, 3.0):
            for sign in (1.0, -1.0):
                x = torch.randn(d, generator=generator, dtype=F64)
                e = torch.randn(d, generator=generator, dtype=F64)
                e = e - (e @ x) / (x @ x) * x
                e = e / e.norm()
                xs.append(x)
                ys.append(sign * ratio * (math.cos(theta) * x + math.sin(theta) * x.norm() * e))
    for _ in range(3):
        x = torch.randn(d, generator=generator, dtype=F64)
        xs += [x, x, x]
        ys += [x.clone(), x * (1 + 1e-9),
               x + 1e-9 * x.norm() / math.sqrt(d) * torch.randn(d, generator=generator,
                                                               dtype=F64)]
    return torch.stack(xs), torch.stack(ys)


@pytest.mark.parametrize("wv, bv", [(1.0, 0.0), (2.0, 0.3)], ids=["plain", "bias"])
def test_relu_near_coincident_inputs_match_high_precision_reference(wv, bv, generator):
    """The fused ReLU kernels of nearly coincident (or antiparallel) inputs against the same
    recursion in 50-digit arithmetic, on both paths (x2 given, and x2=None with the pairs in
    one batch), to the derived bound _relu_tol: a few hundred ulps at most, where the old
    formula sqrt(q q' - K^2) was off by up to 1e-9 (sqrt(eps) in the angle)."""
    d, depth = 8, 3
    X, Y = _near_pairs(generator, d)
    n = X.shape[0]
    tol = _relu_tol(d, depth)
    ref = torch.tensor([_relu_reference(x, y, depth, wv, bv) for x, y in zip(X, Y)],
                       dtype=F64)
    qx, tx = _relu_diagonal(X, depth, wv, bv)
    qy, ty = _relu_diagonal(Y, depth, wv, bv)
    K, T = nngp_and_ntk(X, Y, activation="relu", depth=depth, weight_var=wv, bias_var=bv)
    Ks, Ts = nngp_and_ntk(torch.cat([X, Y]), activation="relu", depth=depth, weight_var=wv,
                          bias_var=bv)
    for k_got, t_got in ((K.diagonal(), T.diagonal()),
                         (Ks.diagonal(n), Ts.diagonal(n))):
        _assert_within(k_got, ref[:, 0], tol, (qx * qy).sqrt())
        _assert_within(t_got, ref[:, 1], tol, (tx * ty).sqrt())


@pytest.mark.parametrize("wv, bv", [(1.0, 0.0), (2.0, 0.3)], ids=["plain", "bias"])
@pytest.mark.parametrize("data", ["2d", "clustered"])
def test_relu_many_near_pairs_match_high_precision_reference(data, wv, bv, generator):
    """The other first-layer routes: low-dimensional inputs (every pair from the inputs'
    differences, many pairs nearly (anti)parallel) and clustered inputs (most pairs of a
    block near), on both paths, against the 50-digit recursion, to _relu_tol."""
    depth = 3
    if data == "2d":
        d = 2
        x = torch.randn(8, d, generator=generator, dtype=F64)
        x = torch.cat([x, x[:2] * (1 + 1e-9), -x[2:4] * 3, x[4:5] + 1e-9])
    else:
        d = 8
        x0 = torch.randn(d, generator=generator, dtype=F64)
        x = x0 + 1e-3 * torch.randn(9, d, generator=generator, dtype=F64)
        x = torch.cat([x, -x[:3], x[3:4] * (1 + 1e-9)])
    y = x.flip(0)
    n, tol = x.shape[0], _relu_tol(d, depth)
    ref = torch.tensor([[_relu_reference(a, b, depth, wv, bv) for b in y] for a in x],
                       dtype=F64)
    q, theta = _relu_diagonal(x, depth, wv, bv)
    qy, ty = _relu_diagonal(y, depth, wv, bv)
    K, T = nngp_and_ntk(x, y, activation="relu", depth=depth, weight_var=wv, bias_var=bv)
    _assert_within(K, ref[..., 0], tol, _scale(q, qy))
    _assert_within(T, ref[..., 1], tol, _scale(theta, ty))
    Ks, Ts = nngp_and_ntk(x, activation="relu", depth=depth, weight_var=wv, bias_var=bv)
    flip = torch.arange(n - 1, -1, -1)  # y = x[flip]
    _assert_within(Ks[:, flip], ref[..., 0], tol, _scale(q, qy))
    _assert_within(Ts[:, flip], ref[..., 1], tol, _scale(theta, ty))


@pytest.mark.parametrize("wv, bv", [(1.0, 0.0), (2.0, 0.3)], ids=["plain", "bias"])
def test_relu_x2_equal_x1_matches_symmetric_path_and_diagonal(wv, bv, generator):
    """x2 == x1 takes the general path, on which coincident pairs have angle 0 exactly: it
    agrees with the symmetric path everywhere, and on the diagonal with the closed-form
    diagonal recursion, to the derived _relu_tol (the old formula: 1e-9 on the diagonal)."""
    d, depth = 6, 3
    x = _inputs(9, d, generator)
    K, T = nngp_and_ntk(x, activation="relu", depth=depth, weight_var=wv, bias_var=bv)
    K2, T2 = nngp_and_ntk(x, x.clone(), activation="relu", depth=depth, weight_var=wv,
                          bias_var=bv)
    q, theta = _relu_diagonal(x, depth, wv, bv)
    tol = _relu_tol(d, depth)
    _assert_within(K2, K, tol, _scale(q, q))
    _assert_within(T2, T, tol, _scale(theta, theta))
    _assert_within(K2.diagonal(), q, tol, q)
    _assert_within(T2.diagonal(), theta, tol, theta)
    # The symmetric path writes the diagonal recursion itself: the same to a few ulps.
    _assert_within(T.diagonal(), theta, tol, theta)


def test_quadrature_route_matches_fused_erf(generator):
    """A custom Activation (not the registered erf) takes the Gauss-Hermite route. The
    integrands are entire (erf, Gaussian), so the rule converges geometrically in the
    degree: the error at degree 128 is bounded by extrapolating the measured errors at
    degrees 64 and 96 (ratio r per 32 nodes, error(128) ~ error(96) r, times 4 for safety),
    plus the rounding of the recursion (_relu_tol; the 128^2-node sums are cascaded, within
    log2(128^2) eps, and no matrix product is involved). At degree 32 the rule is visibly
    off."""
    x = _inputs(6, 3, generator, radius=1.0)
    erf = get_activation("erf")
    custom = Activation("my_erf", erf.fn, erf.deriv)
    kw = dict(depth=2, weight_var=1.5, bias_var=0.2)
    ref = nngp_and_ntk(x, activation="erf", **kw)
    errs = {}
    for degree in (64, 96, 128):
        got = nngp_and_ntk(x, activation=custom, quadrature_degree=degree, **kw)
        errs[degree] = [float((g - r).abs().max()) for g, r in zip(got, ref)]
    for i, r in enumerate(ref):
        rate = errs[96][i] / errs[64][i]
        assert rate < 1e-2  # geometric convergence
        bound = 4 * errs[96][i] * rate + _relu_tol(3, 2) * float(r.abs().max())
        assert errs[128][i] <= bound, (errs, bound)
    Tc = ntk(x, activation=custom, quadrature_degree=32, **kw)
    assert float((Tc - ref[1]).abs().max()) > 1e-8


@pytest.mark.parametrize("wv, bv", [(1.0, 0.0), (2.0, 0.5)])
def test_relu_diagonal_closed_form(wv, bv, generator):
    # Elementwise (no matrix product): the row sums are the same expression as in the
    # kernel, and the closed form differs from the recursion's pi q / (2 pi) by an ulp or
    # two; 1e-14 is about 45 ulps.
    x = _inputs(5, 3, generator)
    q1 = wv * (x * x).sum(1) / 3 + bv
    K2 = wv * q1 / 2 + bv  # E[relu(u)^2] = q/2
    T2 = K2 + wv * 0.5 * q1  # E[step(u)^2] = 1/2
    K, T = nngp_and_ntk(x, activation="relu", depth=1, weight_var=wv, bias_var=bv)
    torch.testing.assert_close(K.diagonal(), K2, rtol=1e-14, atol=0)
    torch.testing.assert_close(T.diagonal(), T2, rtol=1e-14, atol=0)
    # nngp / ntk run the very same code path as nngp_and_ntk (the NTK buffers do not enter
    # the NNGP's operations): identical bits by construction.
    torch.testing.assert_close(nngp(x, activation="relu", depth=1, weight_var=wv, bias_var=bv),
                               K, rtol=0, atol=0)
    torch.testing.assert_close(ntk(x, activation="relu", depth=1, weight_var=wv, bias_var=bv),
                               T, rtol=0, atol=0)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
def test_depth0_is_the_linear_kernel(activation, generator):
    # Two differently rounded matrix products of length d = 3: each within gamma_3 of the
    # exact one relative to sum_k |x_k y_k| (Higham, Sec. 3.1), i.e. a derived atol of
    # 2 (d + 1) eps wv sum_k |x_k y_k| / d per entry.
    x, y = _inputs(4, 3, generator), _inputs(3, 3, generator)
    lin = 1.3 * x @ y.T / 3 + 0.4
    K, T = nngp_and_ntk(x, y, activation=activation, depth=0, weight_var=1.3, bias_var=0.4)
    bound = 2 * 4 * EPS * (1.3 * x.abs() @ y.abs().T / 3 + 0.4)
    _assert_within(K, lin, 1.0, bound)
    _assert_within(T, lin, 1.0, bound)


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
        # Exact by construction: every entry below the diagonal is the mirror of one computed
        # above it (in the blocks' square parts as well).
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
    """Tiny blocks (many row blocks, partial last block) give the same kernels.

    Every entry goes through the same elementwise operations whatever the blocking; only its
    position decides whether a vectorised or a scalar loop computes it (the same functions,
    within an ulp or two of each other). The recursions being well-conditioned, that is
    rounding: _relu_tol bounds it (for tanh, the 16^2-node sums are per-entry reductions of
    the same order, and the rule's sensitivity to the covariance is bounded)."""
    import mfteach.kernels as mk

    x, y = _inputs(23, 4, generator), _inputs(11, 4, generator)
    tol = _relu_tol(4, 2)
    for act in ("relu", "erf", "tanh"):
        kw = dict(activation=act, depth=2, bias_var=0.1, quadrature_degree=16)
        ref = [nngp_and_ntk(x, x2, **kw) for x2 in (None, y)]
        monkeypatch.setattr(mk, "_BLOCK", 40)
        got = [nngp_and_ntk(x, x2, **kw) for x2 in (None, y)]
        monkeypatch.undo()
        for (a, b), (c, e) in zip(ref, got):
            torch.testing.assert_close(c, a, rtol=tol, atol=tol * float(a.abs().max()))
            torch.testing.assert_close(e, b, rtol=tol, atol=tol * float(b.abs().max()))


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_several_blocks_and_workers_match_naive(activation, generator, monkeypatch):
    """Enough inputs for several default-size blocks shared by two worker threads, diagonal
    included (the naive route with exactly coincident diagonal pairs, see _naive), to the
    tolerance of test_deep_recursion_matches_naive_recursion."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    x = _inputs(300, 4, generator)
    K, T = nngp_and_ntk(x, activation=activation, depth=2, bias_var=0.1)
    K0, T0, sin_min = _naive(x, x, activation, 2, 1.0, 0.1, coincident=True)
    tol = _relu_tol(4, 2) * (1 + 2 / sin_min)
    for M, M0 in ((K, K0), (T, T0)):
        d = M.diagonal()
        _assert_within(M, M0, tol, _scale(d, d))
        assert torch.equal(M, M.T)  # mirrored blocks: exact by construction


def test_zero_input_and_empty_batch(generator):
    x = torch.zeros(2, 3, dtype=F64)
    x[1, 0] = 1.0
    K, T = nngp_and_ntk(x, activation="relu", depth=2)
    assert torch.isfinite(K).all() and torch.isfinite(T).all()
    # Exact: a zero input (no bias) has zero features at every layer, and every term of its
    # kernel entries is a product with them.
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


def _abs_twin(model):
    """The network with |W|, |b| and identity activations. Its Jacobian at |x| bounds the
    absolute sums over paths of the model's Jacobian entries (tanh and ReLU have |phi'| <= 1
    and |phi(h)| <= |h|), the scale of their rounding errors (Higham, Sec. 3.5)."""
    layers = []
    for m in model:
        if isinstance(m, torch.nn.Linear):
            twin = torch.nn.Linear(m.in_features, m.out_features).double()
            with torch.no_grad():
                twin.weight.copy_(m.weight.abs())
                twin.bias.copy_(m.bias.abs())
            layers.append(twin)
    return torch.nn.Sequential(*layers)


def test_empirical_ntk_matches_hand_written_jacobian(generator):
    """vmap'd vjps vs a loop of autograd.grad: the same chain rule through differently
    batched products. Bound: each Jacobian entry within gamma_m of the exact one relative to
    its absolute path sum (m = 3 + 5 + 4 fan-ins and 3 layers), and the P-term product
    J1 J2^T within gamma_P; both relative to |J1| |J2|^T <= J1_abs J2_abs^T (_abs_twin)."""
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
    twin = _abs_twin(model)
    A1, A2 = _jacobian_by_loop(twin, x.abs()), _jacobian_by_loop(twin, y.abs())
    tol = 2 * (J1.shape[1] + 2 * (3 + 5 + 4 + 3)) * EPS
    _assert_within(empirical_ntk(f, params, x, y), J1 @ J2.T, tol, A1 @ A2.T)
    got = empirical_ntk(f, params, x)
    _assert_within(got, J1 @ J1.T, tol, A1 @ A1.T)
    assert not got.requires_grad


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
@pytest.mark.parametrize("depth", [0, 1, 3])
def test_batched_network_kernels_match_autograd(activation, depth, generator):
    """The explicit backpropagation of the Monte-Carlo sampler equals empirical_ntk (autograd)
    of each network, and its 'nngp' samples are the products of the network's outputs.

    Bound as in test_empirical_ntk_matches_hand_written_jacobian: relative to the absolute
    path sums, i.e. the same network with |W|, |b| and the linear activation of slope
    max|phi'| (1, or 2/sqrt(pi) for erf, which also bounds |phi(h)| / |h|) at |x|; m = the
    fan-ins (3 + 7 depth) plus the layers, P the number of parameters."""
    act = get_activation(activation)
    slope = 2 / math.sqrt(math.pi) if activation == "erf" else 1.0
    bound_act = Activation("abs_bound", lambda u: slope * u,
                           lambda u: torch.full_like(u, slope))
    x, y = _inputs(4, 3, generator), _inputs(3, 3, generator)
    params = _init_mlp(2, 3, 7, depth, generator=generator, device="cpu", dtype=F64)
    got = _mlp_kernels(params, x, y, act, depth, 1.7, 0.2)
    n_params = sum(v[0].numel() for v in params.values())
    tol = 2 * (n_params + 2 * (3 + 7 * depth + depth + 1)) * EPS
    for s in range(2):
        p = {k: v[s] for k, v in params.items()}
        p_abs = {k: v.abs() for k, v in p.items()}

        def f(q, z):
            return _mlp_forward(q, z, activation=act, depth=depth, weight_var=1.7, bias_var=0.2)

        def f_abs(q, z):
            return _mlp_forward(q, z, activation=bound_act, depth=depth, weight_var=1.7,
                                bias_var=0.2)

        scale_ntk = empirical_ntk(f_abs, p_abs, x.abs(), y.abs())
        scale_f = f_abs(p_abs, x.abs())[:, None] * f_abs(p_abs, y.abs())[None, :]
        _assert_within(got["ntk"][s], empirical_ntk(f, p, x, y), tol, scale_ntk)
        _assert_within(got["nngp"][s], f(p, x)[:, None] * f(p, y)[None, :], tol, scale_f)


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
        # Two stable orders of the same sums over S = 10 samples: each mean within
        # S eps max|v|; each sum of squared deviations (<= 4 S max|v|^2) within S eps of
        # itself, Chan's delta^2 term carrying the means' error, i.e. within
        # 4 S^2 eps max|v|^2, which moves the standard error by that over 2 stderr S (S - 1).
        amax = s.abs().amax(0)
        _assert_within(est[key].mean, direct.mean, 2 * 10 * EPS, amax)
        _assert_within(est[key].stderr, direct.stderr, 2 * 4 * 10 * 10 * EPS,
                       amax**2 / (2 * direct.stderr * 10 * 9))
        assert est[key].n_samples == 10
    # Same seed, same batch size, same code path: identical bits by construction.
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
    # The Jacobian of x @ w is x exactly (products with 0 and 1); the two Gram matrices are
    # 8-term products rounded on different devices: within 2 gamma_8 |x| |x|^T.
    _assert_within(empirical_ntk(_linear_fn, params, xd).cpu(), x[:4] @ x[:4].T,
                   2 * 9 * EPS, x[:4].abs() @ x[:4].abs().T)


@pytest.mark.gpu
def test_mixed_devices_are_rejected(device):
    if device == "cpu":
        pytest.skip("needs two devices")
    with pytest.raises(ValueError, match="'x2' parameter"):
        nngp(X, X.to(device), activation="relu", depth=1)
    with pytest.raises(ValueError, match="'params' parameter"):
        empirical_ntk(_linear_fn, {"w": torch.ones(2, dtype=F64, device=device)}, X)
