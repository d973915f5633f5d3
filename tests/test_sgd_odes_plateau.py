"""Tests of the plateau's length (chapter 04): the Saad-Solla saddle's unstable rate against
measured escape times, from near the saddle and from random weights, and the plateau widget's
time range.

Every slope test compares a fitted slope with the theorem's 1/lambda (lambda the largest
eigenvalue of the ODE's Jacobian at the saddle), within 4 of the fit's standard errors plus a
discretisation allowance derived from the run (RK4's growth-rate error, the interpolation
errors of the crossing times propagated through the fit), and shows that a wrong rate is
rejected at that tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from mfteach.sgd_odes import (
    LogLawFit,
    PlateauEscape,
    PlateauFromRandom,
    plateau_escape,
    plateau_from_random,
    plateau_overlaps,
    plateau_rate,
    plateau_risk,
    plot_plateau_escape,
    plot_plateau_from_random,
    teacher_cosines,
)
from mfteach.sgd_odes._overlaps import omega_raw
from mfteach.sgd_odes._plateau import _excess, _floor_excess, _saddle
from mfteach.sgd_odes._rhs import _rhs

F64 = torch.float64
EPS = torch.finfo(F64).eps
Z = 4


def _tol(fit: LogLawFit, allowance: float) -> float:
    return Z * fit.stderr + allowance


@pytest.fixture(scope="module")
def escape() -> PlateauEscape:
    return plateau_escape(2, gammas=(0.0, 1.0))


# ------------------------------------------------------------------------------------------
# The saddle's rate: autograd Jacobian against finite differences of the public RHS
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gamma", [0.0, 1.0])
def test_rate_matches_a_finite_difference_jacobian(gamma):
    """Central differences of the RHS in the packed (Q_{i<=j}, M) coordinates. Their error is
    h^2 |f'''| / 6 (h = 1e-5, |f'''| = O(1): 2e-11) plus rounding eps/h (2e-11); an
    eigenvalue of a matrix perturbed by E moves by at most cond(V) |E| (cond(V) < 10 here,
    the eigenvectors are near-orthogonal): tolerance 1e-8."""
    K = 2
    x0, J = _saddle(K, gamma, 0.0, "test")
    iu = torch.triu_indices(K, K)

    def f(x):
        U = torch.zeros(K, K, dtype=F64).index_put((iu[0], iu[1]), x[:3])
        Q = U + U.mT - torch.diag(torch.diagonal(U))
        Om = omega_raw(Q, x[3:].reshape(K, K), torch.eye(K, dtype=F64))
        dQ, dM = _rhs(Om, K, K, "erf_sqrt2", gamma, 0.0, "high_d")
        return torch.cat([dQ[iu[0], iu[1]], dM.reshape(-1)])

    # Omega is singular at the saddle (coinciding students): half the steps leave the PSD
    # cone, so the unvalidated RHS (smooth there: arcsin of correlations below 1) is used.
    h = 1e-5
    cols = []
    for i in range(x0.numel()):
        e = torch.zeros_like(x0)
        e[i] = h
        cols.append((f(x0 + e) - f(x0 - e)) / (2 * h))
    J_fd = torch.stack(cols, dim=1)
    lam_fd = float(torch.linalg.eigvals(J_fd).real.max())
    assert abs(plateau_rate(K, gamma) - lam_fd) < 1e-8
    assert float((J - J_fd).abs().max()) < 1e-8


def test_saddle_is_the_closed_form_plateau_without_the_variance_term():
    for K in (2, 3):
        x, _ = _saddle(K, 0.0, 0.0, "test")
        assert abs(_excess(x, K) - plateau_risk(K)) < 64 * EPS


def test_unstable_direction_is_the_doubly_centred_M():
    """The top eigenvector has no Q part and M proportional to H e e^T H (K = 2: +-1 signs)."""
    x, J = _saddle(2, 0.0, 0.0, "test")
    w, V = torch.linalg.eig(J)
    v = V[:, int(w.real.argmax())].real
    v = v / v[3]
    want = torch.tensor([0, 0, 0, 1, -1, -1, 1], dtype=F64)
    assert float((v - want).abs().max()) < 1e3 * EPS * 7


# ------------------------------------------------------------------------------------------
# 1. Escape times from near the saddle
# ------------------------------------------------------------------------------------------

def test_escape_slope_is_one_over_lambda(escape):
    for i, fit in enumerate(escape.fits):
        lam, allow = float(escape.rate[i]), float(escape.allowance[i])
        print(f"gamma {float(escape.gammas[i]):g}: {fit} vs 1/lambda {1 / lam:.5f}, "
              f"allowance {allow:.2g}")
        assert abs(fit.slope - 1 / lam) <= _tol(fit, allow)
    # the test can fail: gamma = 1's escapes reject gradient flow's rate
    fit1 = escape.fits[1]
    assert abs(fit1.slope - 1 / float(escape.rate[0])) > _tol(fit1, float(escape.allowance[1]))


def test_variance_term_shortens_the_plateau_as_lambda_predicts(escape):
    lam0, lam1 = escape.rate.tolist()
    assert lam1 > lam0  # the Jacobian's prediction: a faster escape
    predicted = 1 / lam1 - 1 / lam0
    f0, f1 = escape.fits
    measured = f1.slope - f0.slope
    tol = Z * math.hypot(f0.stderr, f1.stderr) + float(escape.allowance.sum())
    assert math.copysign(1, measured) == math.copysign(1, predicted)
    assert abs(measured - predicted) <= tol
    # measured directly: every escape is earlier with the variance term (threshold relative
    # to each saddle's own risk), by more for smaller perturbations (the log part shrinks)
    d = (escape.t_escape[1] - escape.t_escape[0]).numpy()
    assert bool(np.all(d < 0)) and bool(np.all(np.diff(d) < 0))


def test_escape_records_are_consistent(escape):
    assert escape.t_escape.shape == (2, 7)
    assert abs(float(escape.saddle_risk[0]) - plateau_risk(2)) < 64 * EPS
    assert bool((escape.floor == 0).all())  # Delta = 0: the teacher is the floor
    # each threshold lies on the recorded curve between the neighbouring records
    for i in range(2):
        for j in range(7):
            k = int(np.searchsorted(escape.t.numpy(), float(escape.t_escape[i, j])))
            lo, hi = escape.excess[i, j, k], escape.excess[i, j, k - 1]
            assert float(lo) <= float(escape.threshold[i]) <= float(hi)


def test_floor_with_label_noise_is_the_closed_form_to_first_order():
    """The stationary point near the teacher with gamma Delta > 0 (Newton): within the
    closed form's relative O(gamma/p + gamma Delta) (here 5e-2 + 1e-3) of it."""
    from mfteach.sgd_odes import noise_floor_theory
    got = _floor_excess(2, 0.1, 0.01, "test")
    assert got == pytest.approx(noise_floor_theory(2, 0.1, 0.01), rel=0.1)


@pytest.mark.slow
def test_escape_slope_k3_and_label_noise():
    """K = 3 (a four-fold degenerate rate) and gamma Delta > 0 (the saddle moved by Newton)."""
    res = plateau_escape(3, perturbations=(1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5),
                         gammas=(0.0, 0.5), delta=0.05)
    for i, fit in enumerate(res.fits):
        lam = float(res.rate[i])
        print(f"K = 3, gamma {float(res.gammas[i]):g}: {fit} vs 1/lambda {1 / lam:.4f}")
        assert abs(fit.slope - 1 / lam) <= _tol(fit, float(res.allowance[i]))
    assert float(res.floor[1]) > 0 and float(res.floor[0]) == 0


# ------------------------------------------------------------------------------------------
# 2. The plateau from random weights
# ------------------------------------------------------------------------------------------

def test_plateau_from_random_follows_the_escape_law(seed):
    res = plateau_from_random(2, 100, generator=seed)
    sp = res.spread
    tol = Z * max(sp.stderr, sp.fit_stderr) + res.allowance
    print(f"{sp}, fit_stderr {sp.fit_stderr:.2g}, allowance {res.allowance:.2g}, "
          f"1/lambda {1 / res.rate:.4f}; lengths {res.length[:, [0, -1]].tolist()}")
    assert abs(sp.mean - 1 / res.rate) <= tol
    # the test can fail: K = 3's rate (a different saddle) is rejected
    assert abs(sp.mean - 1 / plateau_rate(3)) > tol
    # eps0 scales as s (same directions at every scale): exact up to rounding
    ratio = res.eps0 / res.scales
    assert float((ratio / ratio[:, :1] - 1).abs().max()) < 1e3 * EPS


def test_random_plateau_lengths_grow_as_the_scale_shrinks(seed):
    res = plateau_from_random(2, 100, scales=(0.03, 0.01, 3e-3, 1e-3), n_init=2, dt=2.0,
                              generator=seed)
    assert bool((res.length.diff(dim=1) > 0).all())
    assert bool((res.t_enter < res.t_leave).all())


# ------------------------------------------------------------------------------------------
# Validation and plots
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, name", [
    (dict(K=1), "'K'"), (dict(perturbations=(1e-2, 1e-3, 1e-4)), "'perturbations'"),
    (dict(perturbations=(0.0, 1e-2, 1e-3, 1e-4)), "'perturbations'"),
    (dict(gammas=(-1.0,)), "'gammas'"), (dict(band=1.0), "'band'"),
    (dict(activation="square"), "'activation'"), (dict(dt=4.0), "'dt'"),
])
def test_plateau_escape_rejects_bad_arguments(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        plateau_escape(**kwargs)


@pytest.mark.parametrize("kwargs, name", [
    (dict(d=1), "'d'"), (dict(n_init=1), "'n_init'"), (dict(scales=(1.0, 0.1)), "'scales'"),
    (dict(band=0.0), "'band'"), (dict(generator="x"), "'generator'"),
])
def test_plateau_from_random_rejects_bad_arguments(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        plateau_from_random(**kwargs)


def test_plots_draw_theory_beside_measurement(escape):
    fig, axes = plot_plateau_escape(escape)
    assert isinstance(fig, Figure) and all(a.get_xlabel() and a.get_ylabel() for a in axes)
    assert sum("1/λ" in (ln.get_label() or "") for ln in axes[0].lines) == 2
    r = plateau_from_random(scales=(0.01, 3e-3, 1e-3, 3e-4), n_init=2, dt=2.0)
    assert isinstance(r, PlateauFromRandom)
    fig, axes = plot_plateau_from_random(r)
    assert all(a.get_xlabel() and a.get_ylabel() for a in axes)
    with pytest.raises(TypeError, match="'res'"):
        plot_plateau_escape(r)


# ------------------------------------------------------------------------------------------
# The plateau widget's time range, over its whole control grid
# ------------------------------------------------------------------------------------------

def _widget_shows_everything(K, gamma_over_p, delta):
    from mfteach.widgets import sgd_odes as sw
    _, _, _, tr = sw.plateau_compute(K, gamma_over_p, delta)
    ex = (tr.risk - delta / 2).numpy()
    r_s = _excess(_saddle(K, gamma_over_p * K, delta, "test")[0], K)
    floor = _floor_excess(K, gamma_over_p * K, delta, "test")
    plateau = int((np.abs(ex / r_s - 1) < 0.2).sum())  # records near the saddle's risk
    cos = teacher_cosines(tr.Q[-1], tr.M[-1], tr.P[-1])
    specialised = (float(cos.max(-1).values.min()) > 0.9
                   and len(set(cos.argmax(-1).tolist())) == K)
    at_floor = (abs(ex[-1] - floor) <= 0.1 * floor if floor > 0
                else ex[-1] <= 1e-2 * plateau_risk(K))
    return plateau >= 30, specialised, at_floor


def test_plateau_widget_defaults_show_plateau_specialisation_and_floor():
    assert all(_widget_shows_everything(2, 0.1, 0.05))


@pytest.mark.slow
def test_plateau_widget_time_range_covers_the_whole_control_grid():
    bad = []
    for K in (2, 3):
        for gp in np.round(np.arange(0.0, 0.501, 0.05), 2):
            for dl in np.round(np.arange(0.0, 0.101, 0.01), 2):
                ok = _widget_shows_everything(K, float(gp), float(dl))
                if not all(ok):
                    bad.append((K, float(gp), float(dl), ok))
    assert not bad, f"(K, gamma/p, Delta, (plateau, specialised, floor)): {bad}"


def test_plateau_overlaps_is_the_gamma_zero_saddle():
    o = plateau_overlaps(2)
    x, _ = _saddle(2, 0.0, 0.0, "test")
    assert float((x[3:] - o.M.reshape(-1)).abs().max()) == 0.0
