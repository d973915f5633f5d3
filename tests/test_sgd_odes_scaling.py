"""Tests of the chapter-04 scaling experiments: dimension independence shown by SGD (spread of
runs from the same overlaps in several d) and the collapse of the SGD-ODE gap on
eps = sqrt(gamma/(pd)) over a (d, gamma) grid (arXiv 2302.05882, Thm 1).

Rates are fitted slopes whose tolerance is the standard error over independent replicates;
Monte-Carlo comparisons use ``assert_mc_close`` (z s / sqrt(n)); round-off tolerances come from
float eps and the length of the dot products.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from matplotlib.figure import Figure

from mfteach.device import spawn_generators
from mfteach.sgd_odes import (
    DimensionRuns,
    GapCollapse,
    default_overlaps,
    dimension_independence,
    gap_collapse,
    gap_vs_scale,
    ode_vs_sgd,
    plot_dimension_independence,
    plot_gap_collapse,
    solve_ode,
)
from mfteach.testing import assert_mc_close

F64 = torch.float64

#: Book size (about 3 s and 5 s on one core).
DS = [50, 100, 200, 400]
GAMMAS = [0.25, 0.5, 1.0]
#: A replicate-based z: with n replicates the z-score is Student-t with n - 1 degrees of
#: freedom; |t_7| > 4 has probability 0.5 %, |t_4| > 4 1.6 %.
Z_SLOPE = 4.0


@functools.cache
def _runs(seed: int) -> DimensionRuns:
    return dimension_independence("erf_sqrt2", DS, p=2, k=1, gamma=0.5, t_max=1.0, n_runs=16,
                                  n_replicates=8, generator=seed)


@functools.cache
def _collapse(seed: int) -> GapCollapse:
    return gap_collapse("erf_sqrt2", DS, GAMMAS, p=2, k=1, t_max=1.0, n_runs=16, n_replicates=5,
                        generator=seed)


def _small_collapse(seed: int) -> GapCollapse:
    return gap_collapse("erf_sqrt2", [20, 40, 80], [0.5, 1.0, 2.0], t_max=0.5, n_runs=4,
                        n_replicates=2, generator=seed)


# ------------------------------------------------------------------------------------------
# Dimension independence
# ------------------------------------------------------------------------------------------

def test_sgd_spread_falls_like_sqrt_gamma_over_pd(seed):
    """Thm 1: runs from the same overlaps fluctuate by O(sqrt(gamma/(pd))): the slope of
    log spread against log eps, over 8 replicates, is 1 within Z_SLOPE standard errors
    (for M, a linear statistic, and for the risk). Fails if the spread were d-independent
    (slope 0) or fell like 1/d (slope 2)."""
    runs = _runs(seed)
    for fit in (runs.spread_fit, runs.risk_fit):
        assert fit.n == 8
        z = fit.z_score(1.0)
        assert abs(z) <= Z_SLOPE, f"{fit}: z = {z:.2f} from Thm 1's slope 1"
    # the spread at t = 0 is zero (same overlaps), and positive afterwards
    assert float(runs.M_spread[:, 0].max()) < 1e-12
    assert bool((runs.M_spread[:, 1:] > 0).all())


def test_mean_sgd_risk_at_largest_d_matches_the_ode(seed):
    """At the largest d the mean SGD risk equals the high-d ODE's within MC error plus the
    O(gamma/(pd)) = O(eps^2) bias of the expansion. Control: the gradient-flow ODE (without
    the gamma/p variance term) is rejected by the same tolerance."""
    runs = _runs(seed)
    sgd, ode = runs.sgd[-1], runs.ode[-1]
    eps2 = float(runs.eps[-1]) ** 2
    assert_mc_close(sgd.risk[:, 1:] - ode.risk[1:], torch.zeros(1, dtype=F64), atol_bias=eps2)
    gf = solve_ode(runs.Q0, runs.M0, runs.P, activation="erf_sqrt2", regime="gf", times=sgd.t,
                   dt=0.05)
    with pytest.raises(AssertionError):
        assert_mc_close(sgd.risk[:, 1:] - gf.risk[1:], torch.zeros(1, dtype=F64),
                        atol_bias=eps2)
    # the recorded summary is the same comparison
    assert torch.allclose(runs.max_risk_gap[-1], (runs.risk_mean[-1] - runs.ode_risk[-1])
                          .abs().max(), rtol=0, atol=1e-15)


def test_same_overlaps_in_every_dimension(seed):
    """The initial overlaps realised in every d equal the requested ones up to round-off:
    Gram matrices of length-d vectors of a Cholesky factor, |error| <= 16 (d + p + k) eps
    max|Omega|. (Independent draws by init_weights would differ by O(1/sqrt(d)).)"""
    runs = _runs(seed)
    Om = torch.cat([torch.cat([runs.Q0, runs.M0], -1), torch.cat([runs.M0.mT, runs.P], -1)],
                   -2)
    n = Om.shape[-1]
    fe = torch.finfo(F64).eps
    for d, err in zip(runs.ds, runs.initial_error.tolist()):
        assert err <= 16 * (d + n) * fe * float(Om.abs().max()), (d, err)
    # user-given overlaps are respected too (and differ from the default)
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(4, 6, generator=g, dtype=F64)
    Om2 = A @ A.T / 6
    Q0, M0, P = Om2[:2, :2].clone(), Om2[:2, 2:].clone(), Om2[2:, 2:].clone()
    r = dimension_independence("erf_sqrt2", [20, 40, 80], p=2, k=2, gamma=1.0, t_max=0.5, n_runs=3,
                               n_replicates=2, Q0=Q0, M0=M0, P=P, generator=seed)
    for i, d in enumerate(r.ds):
        tr = r.sgd[i]
        for got, want in ((tr.Q[:, 0], Q0), (tr.M[:, 0], M0), (tr.P[:, 0], P)):
            tol = 16 * (d + 4) * fe * float(Om2.abs().max())
            assert float((got - want).abs().max()) <= tol
    assert not torch.allclose(M0, default_overlaps(2, 2)[1])


def test_a_dimension_recomputed_alone_equals_the_scan(seed):
    """ds[c] uses spawn_generators(generator, len(ds))[c]; a neighbouring child differs."""
    from mfteach.sgd_odes._scaling import _run_cell

    ds = [20, 40, 80]
    r = dimension_independence("erf_sqrt2", ds, gamma=1.0, t_max=0.5, n_runs=3, n_replicates=2,
                               generator=seed)
    children = spawn_generators(seed, len(ds))
    Q0, M0, P = default_overlaps(2, 1)
    sgd, ode = _run_cell("erf_sqrt2", ds[1], 1.0, Q0, M0, P, 0.5, 6, 21, children[1])
    assert torch.equal(sgd.M, r.sgd[1].M) and torch.equal(ode.risk, r.ode_risk[1])
    other, _ = _run_cell("erf_sqrt2", ds[1], 1.0, Q0, M0, P, 0.5, 6, 21, children[0])
    assert not torch.allclose(other.M, r.sgd[1].M)


# ------------------------------------------------------------------------------------------
# Gap collapse over (d, gamma)
# ------------------------------------------------------------------------------------------

def test_gap_collapses_on_sqrt_gamma_over_pd(seed):
    """All (d, gamma) cells on one line of slope 1 in eps: the replicates' pooled slope is 1
    within Z_SLOPE standard errors; the scatter about the eps line is smaller than about the
    best line in 1/d alone (gamma varies by 4x, so the single scale must be gamma/(pd)), and
    is of the size of the cells' own Monte-Carlo errors."""
    c = _collapse(seed)
    assert c.spread.n == 5 and c.eps.shape == (4, 3)
    z = c.spread.z_score(1.0)
    assert abs(z) <= Z_SLOPE, f"{c.spread}: z = {z:.2f}"
    assert c.scatter_eps < c.scatter_d, (c.scatter_eps, c.scatter_d)
    # residual rms <= 3 x the rms relative standard error of a cell (log-scale noise)
    noise = float((c.gap_stderr / c.gap).pow(2).mean().sqrt())
    assert c.scatter_eps <= 3 * noise, (c.scatter_eps, noise)
    # at fixed d the gap still grows with gamma (the 1/d line cannot explain it)
    assert bool((c.gap.diff(dim=1) > 0).all())


@pytest.mark.slow
def test_gap_slope_at_larger_d_has_no_finite_size_bias(seed):
    """At d in [100, 800] (eps <= 0.07) the O(eps) correction to the slope (about +0.04 at
    d >= 50) is gone: the pooled slope is 1 within Z_SLOPE replicate standard errors, and the
    collapse still beats 1/d. About 22 s on one core."""
    c = gap_collapse("erf_sqrt2", [100, 200, 400, 800], GAMMAS, t_max=1.0, n_runs=16,
                     n_replicates=5, generator=seed)
    z = c.spread.z_score(1.0)
    assert abs(z) <= Z_SLOPE, f"{c.spread}: z = {z:.2f}"
    assert c.scatter_eps < c.scatter_d


def test_a_grid_cell_recomputed_alone_equals_the_grid(seed):
    """Cell (i, j) uses spawn_generators(generator, n_d * n_gamma)[i * n_gamma + j]."""
    from mfteach.sgd_odes._scaling import _cell_gaps, _run_cell

    c = _small_collapse(seed)
    i, j = 1, 2
    child = spawn_generators(seed, 9)[i * 3 + j]
    sgd, ode = _run_cell("erf_sqrt2", c.ds[i], c.gammas[j], *default_overlaps(2, 1), 0.5, 8, 21,
                         child)
    gaps = _cell_gaps(sgd, ode)
    rms = float(gaps.pow(2).mean().sqrt())
    assert math.isclose(rms, float(c.gap[i, j]), rel_tol=8 * torch.finfo(F64).eps)
    rep0 = float(gaps[:4].pow(2).mean().sqrt())
    assert math.isclose(rep0, float(c.replicate_gap[0, i, j]),
                        rel_tol=8 * torch.finfo(F64).eps)
    # the neighbouring cell's stream gives another gap
    sgd2, ode2 = _run_cell("erf_sqrt2", c.ds[i], c.gammas[j], *default_overlaps(2, 1), 0.5, 8, 21,
                           spawn_generators(seed, 9)[i * 3 + j - 1])
    assert not math.isclose(float(_cell_gaps(sgd2, ode2).pow(2).mean().sqrt()), rms,
                            rel_tol=1e-6)


def test_gap_vs_scale_takes_the_gap_over_a_dense_grid(seed):
    """gap_vs_scale records 21 times by default (one per step if the smallest d has fewer)
    and its gap is the max over them: it equals ode_vs_sgd with n_save=21."""
    ds = [8, 16, 32]
    scan = gap_vs_scale("erf_sqrt2", ds, t_max=2.0, n_runs=2, generator=seed)
    i = 1
    sgd, ode = ode_vs_sgd("erf_sqrt2", 2, 1, ds[i], gamma=1.0, t_max=2.0, n_runs=2, n_save=21,
                          generator=spawn_generators(seed, i + 1)[i])
    assert sgd.t.numel() == 21
    rms = float((sgd.M - ode.M).abs().amax(dim=(-1, -2, -3)).pow(2).mean().sqrt())
    assert rms == float(scan.rms[i])
    with pytest.raises(ValueError, match="'n_save' parameter of mfteach.sgd_odes.gap_vs_scale"):
        gap_vs_scale("erf_sqrt2", ds, t_max=2.0, n_save=10**12)


# ------------------------------------------------------------------------------------------
# Plots and bad input
# ------------------------------------------------------------------------------------------

def test_plots_draw_theory_beside_measurement(seed):
    r = dimension_independence("erf_sqrt2", [20, 40, 80], gamma=1.0, t_max=0.5, n_runs=3,
                               n_replicates=2, generator=seed)
    fig, (a1, a2) = plot_dimension_independence(r)
    assert isinstance(fig, Figure) and a2.get_xscale() == "log"
    labels = [t.get_text() for t in a1.get_legend().get_texts()]
    assert "high-d ODE (no d)" in labels and any("slope 1" in t.get_text()
                                                 for t in a2.get_legend().get_texts())
    assert all(a.get_xlabel() and a.get_ylabel() for a in (a1, a2))
    fig, ax = plot_gap_collapse(_small_collapse(seed))
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "d = 20" in texts and "gamma = 0.5" in texts and any("slope 1" in t for t in texts)
    with pytest.raises(TypeError, match="'runs' parameter"):
        plot_dimension_independence(r.sgd[0])
    with pytest.raises(TypeError, match="'collapse' parameter"):
        plot_gap_collapse(r)


KW = dict(t_max=0.5, n_runs=2, n_replicates=2)


@pytest.mark.parametrize("call,blamed", [
    (lambda: dimension_independence("erf_sqrt2", [], gamma=1.0, **KW), "ds"),
    (lambda: dimension_independence("erf_sqrt2", [20, 40], gamma=1.0, **KW), "ds"),
    (lambda: dimension_independence("erf_sqrt2", [20, 20, 40], gamma=1.0, **KW), "ds"),
    (lambda: dimension_independence("erf_sqrt2", [20, 40, 80], gamma=0.0, **KW), "gamma"),
    (lambda: dimension_independence("erf_sqrt2", [20, 40, 80], gamma=-1.0, **KW), "gamma"),
    (lambda: dimension_independence("erf_sqrt2", [2, 40, 80], k=3, gamma=1.0, **KW), "k"),
    (lambda: dimension_independence("erf_sqrt2", [3, 40, 80], p=2, k=2, gamma=1.0, **KW), "ds"),
    (lambda: dimension_independence("erf_sqrt2", [20, 40, 80], gamma=1.0, n_save=3, **KW),
     "n_save"),
    (lambda: dimension_independence("erf_sqrt2", [20, 40, 80], gamma=1.0, t_max=0.5, n_runs=2,
                                    n_replicates=1), "n_replicates"),
    (lambda: dimension_independence("relu", [20, 40, 80], gamma=1.0, **KW), "activation"),
    (lambda: dimension_independence("erf_sqrt2", [20, 40, 80], gamma=1.0, Q0=torch.eye(2), **KW),
     "M0"),
    (lambda: gap_collapse("erf_sqrt2", [20, 40, 80], [], **KW), "gammas"),
    (lambda: gap_collapse("erf_sqrt2", [20, 40, 80], [0.5, 1.0], **KW), "gammas"),
    (lambda: gap_collapse("erf_sqrt2", [20, 40, 80], [0.5, 1.0, 0.0], **KW), "gammas"),
    (lambda: gap_collapse("erf_sqrt2", [20, 40, 80], [0.5, 1.0, -2.0], **KW), "gammas"),
    (lambda: gap_collapse("erf_sqrt2", [20], [0.5, 1.0, 2.0], **KW), "ds"),
    (lambda: gap_collapse("erf_sqrt2", [1, 40, 80], [0.5, 1.0, 2.0], k=2, **KW), "k"),
    (lambda: gap_collapse("erf_sqrt2", [20, 40, 80], [0.5, 1.0, 1e6], **KW), "gammas"),
    (lambda: gap_collapse("erf_sqrt2", [20, 40, 10**12], [0.5, 1.0, 2.0], **KW), "ds|n_runs"),
])
def test_bad_input_is_refused_naming_the_argument(call, blamed):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    msg = str(info.value)
    assert "\n" not in msg and any(f"'{b}' parameter of mfteach.sgd_odes." in msg
                                   for b in blamed.split("|")), msg


@pytest.mark.gpu
def test_cuda_runs_agree_with_cpu_statistics(seed):
    """On CUDA (float64) the spread slope and the gap agree with theory as on the CPU."""
    c = gap_collapse("erf_sqrt2", DS, GAMMAS, t_max=1.0, n_runs=16, n_replicates=5, generator=seed,
                     device="cuda")
    assert c.eps.device.type == "cpu" and abs(c.spread.z_score(1.0)) <= Z_SLOPE
    r = dimension_independence("erf_sqrt2", DS, gamma=0.5, t_max=1.0, n_runs=16, n_replicates=8,
                               generator=seed, device="cuda")
    assert r.sgd[0].M.device.type == "cuda" and abs(r.spread_fit.z_score(1.0)) <= Z_SLOPE
