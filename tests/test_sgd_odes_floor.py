"""Tests of the noise floor of one-pass SGD at the teacher (chapter 04, sec-sgd-noise).

The closed form (first order in gamma, derived in ``mfteach/sgd_odes/_floor.py``) is checked
three independent ways: against the trace formula for any teacher overlap ``P`` (an autograd
Jacobian of the full ODE, no Lyapunov algebra), against the full nonlinear ODE's stationary
point (whose relative excess over the closed form must vanish linearly as gamma -> 0), and
against batched SGD extrapolated to d -> infinity at the theorem's 1/d rate (arXiv 2302.05882,
Thm 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from mfteach.sgd_odes import (
    NoiseFloorGrid,
    linearised_floor,
    noise_floor_grid,
    noise_floor_sgd,
    noise_floor_theory,
    plot_noise_floor_theory,
)

F64 = torch.float64
EPS = torch.finfo(F64).eps
#: The Jacobian at the teacher has condition number below 1e3 for K <= 3 (slowest rate 0.0145,
#: fastest about 2, erf): a solve in float64 loses at most cond * eps * (number of terms).
LINEAR_RTOL = 1e3 * 1e3 * EPS


def _spd(K: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(K, K, generator=g, dtype=F64) / math.sqrt(K)
    return A @ A.mT + 0.5 * torch.eye(K, dtype=F64)


@pytest.mark.parametrize("K", [1, 2, 3])
def test_linearised_floor_is_the_trace_formula_for_any_teacher(K):
    # (gamma Delta / 4K^2) tr G, G_ii = E[g'(u)^2] = (2/pi) / sqrt(1 + 2 P_ii) for
    # g = erf(./sqrt 2): the Lyapunov solution q* = gamma Delta I / 2 holds for every P.
    gamma, delta = 0.1, 0.03
    for seed in range(3):
        P = _spd(K, seed)
        trG = float((2 / math.pi / torch.sqrt(1 + 2 * torch.diagonal(P))).sum())
        want = gamma * delta / (4 * K * K) * trG
        got = linearised_floor(K, gamma, delta, P=P)
        assert got == pytest.approx(want, rel=LINEAR_RTOL)


@pytest.mark.parametrize("K", [1, 2])
def test_square_floor_is_gamma_delta_over_K(K):
    # square: g'(u) = 2u, E[g'^2] = 4 at P = I; the rotations of the students are zero modes
    got = linearised_floor(K, 0.1, 0.01, activation="square")
    assert got == pytest.approx(noise_floor_theory(K, 0.1, 0.01, activation="square"),
                                rel=LINEAR_RTOL)
    assert noise_floor_theory(K, 0.1, 0.01, activation="square") == pytest.approx(1e-3 / K)


@pytest.mark.parametrize("activation", ["erf_sqrt2", "square"])
def test_ode_floor_excess_over_closed_form_vanishes_linearly_in_gamma(activation):
    # The stationary point is analytic in gamma with first-order term the closed form, so
    # r(gamma) = measured / theory = 1 + a gamma + O(gamma^2): halving gamma halves r - 1.
    # A floor wrong by a constant factor (or an ODE not run to its floor) fails this.
    gammas = [0.01, 0.005]
    g = noise_floor_grid(gammas, [0.01, 0.1], [1, 2, 3] if activation == "erf_sqrt2" else [1, 2],
                         activation=activation)
    assert isinstance(g, NoiseFloorGrid)
    r = g.measured / g.theory - 1  # (n_K, 2, 2)
    halving = r[:, 1] / r[:, 0]
    # With r = a gamma + c gamma^2, halving - 1/2 = -c gamma / (4 (a + c gamma)): its size is
    # that of the next order, |r| itself where c ~ a^2 (the square case, r = 1/(1 - 6 gamma)
    # - 1 at K = 1, has halving - 1/2 = -r/4.5). A constant offset in r gives halving near 1.
    assert bool(((halving - 0.5).abs() < r[:, 0].abs()).all()), (halving, r)
    assert bool((g.relaxation_rate > 0).all())


def test_noise_floor_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="gammas"):
        noise_floor_grid([0.1, 0.1], [0.01])
    with pytest.raises(ValueError, match="Ks"):
        noise_floor_grid([0.1], [0.01], [5])
    with pytest.raises(TypeError, match="gammas"):
        noise_floor_grid(0.1, [0.01])


def test_plot_noise_floor_theory():
    g = noise_floor_grid([0.05, 0.1], [0.01], [1, 2])
    fig, axes = plot_noise_floor_theory(g)
    assert isinstance(fig, Figure)
    assert all(a.get_xlabel() and a.get_ylabel() for a in axes)
    with pytest.raises(TypeError, match="grid"):
        plot_noise_floor_theory("grid")


@pytest.mark.slow
def test_sgd_floor_extrapolates_to_the_ode_at_rate_one_over_d():
    # SGD's time-averaged floor in d = 100, 200, 400 (8 runs x 4 blocks each), fitted as
    # a + b/d with the Monte-Carlo errors as weights: the intercept must match the high-d
    # ODE averaged over the same window, within 4 of its standard errors (Thm 1: the
    # finite-d correction is O(1/d)).
    ds = [100, 200, 400]
    runs = [noise_floor_sgd(2, d, generator=10 + i) for i, d in enumerate(ds)]
    y = np.array([float(r.estimate.mean) for r in runs])
    s = np.array([float(r.estimate.stderr) for r in runs])
    A = np.stack([np.ones(3), 1 / np.array(ds, dtype=float)], 1) / s[:, None]
    cov = np.linalg.inv(A.T @ A)
    a, b = cov @ A.T @ (y / s)
    ode = runs[0].ode
    assert all(r.ode == pytest.approx(ode, rel=1e-12) for r in runs)
    assert abs(a - ode) < 4 * math.sqrt(cov[0, 0]), (a, ode, math.sqrt(cov[0, 0]), b)
    # and the floor is the closed form's to O(gamma Delta): the ODE's own stationary point
    # lies within a few percent (gamma = 0.2, Delta = 0.5)
    assert runs[0].stationary == pytest.approx(runs[0].theory, rel=0.05)
