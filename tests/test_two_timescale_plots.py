"""Figures, the mixture convexity check and the widgets of chapter 5 (two timescales).

The figures must draw the theory beside the measurement and refuse NaN with a one-line error;
the convexity check must pass on G (Thm 3.1) and fail on a concave objective (the degrees of
freedom, operator concave along mixtures, and -G); the widgets are registered for the generic
sweep (``tests/widgets/test_sweep.py -k two_timescale``).
"""

from __future__ import annotations

import dataclasses
import functools

import pytest
import torch

import mfteach.two_timescale as tt
from mfteach.stats import fit_loglog_slope
from mfteach.two_timescale import _mixture

F64 = torch.float64


@functools.cache
def _history():
    return tt.run(d=3, n_train=30, n_test=20, n_particles=12, n_runs=3, steps=60,
                  record_every=5, generator=0)


def _labels(fig) -> list[str]:
    out = []
    for ax in fig.axes:
        out += ax.get_legend_handles_labels()[1]
        out.append(ax.get_title())
    return out


def _assert_axes_labelled(fig) -> None:
    for ax in fig.axes:
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), ax.get_title()


def _one_line_error(excinfo, name: str) -> None:
    msg = str(excinfo.value)
    assert "\n" not in msg and f"'{name}'" in msg and len(msg) < 400, msg


# ---------------------------------------------------------------------------------------------
# Figures: the theory beside the measurement
# ---------------------------------------------------------------------------------------------

def test_plot_training_draws_the_theory_beside_the_run():
    fig = tt.plot_training(_history(), target="x1x2")
    assert len(fig.axes) == 4
    _assert_axes_labelled(fig)
    text = " | ".join(_labels(fig))
    for needle in ("Thm 3.7", "k/d = 2/3", "Â(μ0)", "d_λ(μ0)", "relevant directions",
                   "prior ν"):
        assert needle in text, (needle, text)
    # the prior level of P drawn is exactly k/d
    ax2 = fig.axes[1]
    levels = [ln.get_ydata()[0] for ln in ax2.lines if ln.get_label().startswith("prior")]
    assert levels == [pytest.approx(2 / 3)]


def test_plot_training_single_index_draws_one_direction():
    fig = tt.plot_training(_history(), target="single_index", run=1)
    ax4 = fig.axes[3]
    dashed = [ln for ln in ax4.lines if ln.get_linestyle() == "--"]
    assert len(dashed) == 1


def test_plot_training_refuses_nan_with_one_line():
    h = _history()
    U = h.U.clone()
    U[3, 0] = float("nan")
    with pytest.raises(ValueError) as excinfo:
        tt.plot_training(dataclasses.replace(h, U=U))
    _one_line_error(excinfo, "history")
    with pytest.raises(TypeError) as excinfo:
        tt.plot_training("not a history")
    _one_line_error(excinfo, "history")
    with pytest.raises(ValueError) as excinfo:
        tt.plot_training(h, run=3)
    _one_line_error(excinfo, "run")


def test_plot_alignment_scaling_reference_slopes():
    s = tt.initial_alignment([4, 8, 16], n=60, n_particles=60, n_runs=3, generator=0)
    fig = tt.plot_alignment_scaling(s)
    _assert_axes_labelled(fig)
    text = " | ".join(_labels(fig))
    assert "theory: slope -0.5" in text and "theory: slope -1" in text, text
    assert "per-seed slopes" in text and "Thm 5.4" in text
    bad = dataclasses.replace(s, kernel=s.kernel * float("nan"))
    with pytest.raises(ValueError) as excinfo:
        tt.plot_alignment_scaling(bad)
    _one_line_error(excinfo, "scaling")


def test_plot_kernel_comparison_rate_and_nan():
    c = tt.kernel_comparison(_history(), sample_sizes=[10, 20, 40], n_val=20, n_test=20,
                             generator=1)
    fig = tt.plot_kernel_comparison(c)
    _assert_axes_labelled(fig)
    text = " | ".join(_labels(fig))
    assert "n^(−1/2)" in text and "learned kernel" in text and "isotropic" in text, text
    errs = dict(c.errors)
    errs["learned"] = errs["learned"].clone()
    errs["learned"][0, 0] = float("inf")
    with pytest.raises(ValueError) as excinfo:
        tt.plot_kernel_comparison(dataclasses.replace(c, errors=errs))
    _one_line_error(excinfo, "comparison")


def test_plot_dof_labels_runs_and_theory():
    kw = dict(d=3, n_train=30, n_test=20, n_particles=12, n_runs=3, steps=20,
              record_every=5, generator=0)
    hs = {"plain": tt.run(**kw), "label noise σ̃ = 1": tt.run(label_noise=1.0, **kw)}
    fig = tt.plot_dof(hs)
    _assert_axes_labelled(fig)
    text = " | ".join(_labels(fig))
    assert "Thm 5.5" in text and "plain" in text and "σ̃²/6n" in text, text
    bad = dataclasses.replace(hs["plain"], dof=hs["plain"].dof * float("nan"))
    with pytest.raises(ValueError) as excinfo:
        tt.plot_dof({"bad": bad})
    _one_line_error(excinfo, "histories")
    with pytest.raises(TypeError) as excinfo:
        tt.plot_dof([hs["plain"]])
    _one_line_error(excinfo, "histories")


def test_plot_discretisation_predicted_slopes():
    se = tt.time_discretisation([0.4, 0.2, 0.1], t_final=0.8, n=10, n_particles=8,
                                n_runs=2, n_chains=2, generator=0)
    fig = tt.plot_discretisation(se)
    _assert_axes_labelled(fig)
    assert "theory: slope 1" in " | ".join(_labels(fig))
    sn = tt.particle_discretisation([2, 4, 8], n_reference=16, burn_in=1.0, t_average=1.0,
                                    n=8, n_runs=2, n_chains=2, generator=0)
    # a positive synthetic gap c/N (the sampled one may be negative at this size)
    Ns = torch.tensor(sn.values, dtype=F64).unsqueeze(-1)
    gap = torch.cat([1 / Ns, 2 / Ns], -1)
    sn = dataclasses.replace(sn, gap=gap, fit=fit_loglog_slope(sn.values, gap.mean(1)),
                             slopes=torch.tensor([-1.0, -1.0], dtype=F64))
    fig = tt.plot_discretisation(sn)
    assert "theory: slope -1" in " | ".join(_labels(fig))
    with pytest.raises(ValueError) as excinfo:
        tt.plot_discretisation(dataclasses.replace(sn, gap=-sn.gap))
    _one_line_error(excinfo, "sweep")
    with pytest.raises(ValueError) as excinfo:
        tt.plot_discretisation(dataclasses.replace(sn, gap=sn.gap * float("nan")))
    _one_line_error(excinfo, "sweep")


# ---------------------------------------------------------------------------------------------
# Convexity along mixtures (Thm 3.1) and a check that can fail
# ---------------------------------------------------------------------------------------------

def _mixture_inputs(B: int = 3):
    data = tt.make_data(30, 3, n_sets=B, generator=11)
    W1 = tt.init_particles(3, 10, n_runs=B, generator=12)
    W2 = tt.init_particles(3, 14, n_runs=B, generator=13) * 0.3
    return data, W1, W2


def test_mixture_check_matches_regularized_risk_and_is_convex():
    data, W1, W2 = _mixture_inputs()
    kw = dict(lam=0.02, lambda_a=0.5, lambda_w=0.25)
    chk = tt.convexity_along_mixture(data.X, data.y, W1, W2, n_points=11, **kw)
    assert chk.convex
    assert bool((chk.midpoint_gap < -100 * chk.tol).all())  # strictly, far above rounding
    # against the public weighted-particle objective at s = 0.3
    Wc = torch.cat([W1, W2], 1)
    s = float(chk.s[3])
    p = torch.cat([torch.full((3, 10), (1 - s) / 10, dtype=F64),
                   torch.full((3, 14), s / 14, dtype=F64)], -1)
    G = tt.regularized_risk(data.X, data.y, Wc, weights=p, **kw)
    assert torch.allclose(chk.G[3], G, rtol=1e-12, atol=0)
    # the ends are the two particle measures themselves
    assert torch.allclose(chk.G[0], tt.regularized_risk(data.X, data.y, W1, **kw),
                          rtol=1e-12, atol=0)
    assert torch.allclose(chk.G[-1], tt.regularized_risk(data.X, data.y, W2, **kw),
                          rtol=1e-12, atol=0)
    # the tolerance is rounding, far below the curvature it judges
    assert bool((chk.tol < 1e-6 * chk.G.abs().amax(0)).all())
    fig = tt.plot_mixture(chk)
    _assert_axes_labelled(fig)
    assert "Thm 3.1: G − chord ≤ 0" in " | ".join(_labels(fig))


def test_mixture_check_flags_a_concave_objective(monkeypatch):
    """The degrees of freedom are operator concave along mixtures (x -> x/(x + c)), and -G is
    concave: the same check must say so."""
    data, W1, W2 = _mixture_inputs()
    kw = dict(lam=0.02, lambda_a=0.5, lambda_w=0.25)
    G = _mixture._objective

    def dof(X, y, W, p, lam, lambda_a, lambda_w, bias):
        return tt.ridge(X, y, W, lambda_a_bar=lam * lambda_a, bias=bias, weights=p).dof

    monkeypatch.setattr(_mixture, "_objective", dof)
    chk = tt.convexity_along_mixture(data.X, data.y, W1, W2, **kw)
    assert not chk.convex
    assert bool((chk.second_difference <= chk.tol).all())  # concave, up to rounding
    fig = tt.plot_mixture(chk)
    assert "NOT convex" in fig.axes[1].get_title()

    def minus_G(*args):
        return -G(*args)

    monkeypatch.setattr(_mixture, "_objective", minus_G)
    assert not tt.convexity_along_mixture(data.X, data.y, W1, W2, **kw).convex


def test_mixture_check_refuses_bad_input_with_one_line():
    data, W1, W2 = _mixture_inputs(B=1)
    with pytest.raises(ValueError) as excinfo:
        tt.convexity_along_mixture(data.X, data.y, W1, W2[..., :3])
    _one_line_error(excinfo, "W2")
    with pytest.raises(ValueError) as excinfo:
        tt.convexity_along_mixture(data.X, data.y, W1, W2, n_points=10)
    _one_line_error(excinfo, "n_points")
    with pytest.raises(TypeError) as excinfo:
        tt.convexity_along_mixture(data.X, data.y, "W1", W2)
    _one_line_error(excinfo, "W1")
    with pytest.raises(TypeError) as excinfo:
        tt.plot_mixture(object())
    _one_line_error(excinfo, "check")


# ---------------------------------------------------------------------------------------------
# Widgets: registered for the generic sweep
# ---------------------------------------------------------------------------------------------

def test_widgets_are_registered_for_the_generic_sweep():
    pytest.importorskip("ipywidgets")
    from mfteach.widgets import discover
    from mfteach.widgets import two_timescale as wtt

    reg = discover()
    assert wtt.training_widget in reg.live
    assert wtt.dynamics_explorer in reg.explorers
    assert all(len(v) >= 3 for v in wtt.EXPLORER_GRID.values())
