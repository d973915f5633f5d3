"""Figures and widgets of chapter 6 (ResNets): the theory drawn beside the measurement.

Each helper must return a Figure with labelled axes, draw its theory line exactly as the closed
form says (the M^(-1/2) and fitted lines, the lazy curve, the Gram floor, the reference orders,
the undeformed grid), never draw NaN, and refuse a wrong type or NaN data with a one-line
error. The widgets are registered for the generic sweep
(``tests/widgets/test_sweep.py -k resnet``); here their pure compute functions are called
directly.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import torch

import mfteach.resnet as rn
from mfteach.resnet import (
    plot_depth_convergence,
    plot_flow,
    plot_gram_spectrum,
    plot_training,
    plot_width_sweep,
)
from mfteach.widgets import find_nonfinite

N = 6
# The same closed form evaluated twice in float64 (a log, a mean, an exp, a power: a few
# roundings, amplified by |log| <= 10 of the values): 64 eps relative.
RTOL = 64 * np.finfo(np.float64).eps


@functools.cache
def _data():
    return rn.toy_data(N, amplitude=0.2, min_distance=0.4, generator=0)


@functools.cache
def _run(M: int):
    """Euler ResNet with M features trained on the N = 6 toy points, lazy curve beside it."""
    X, Y = _data()
    net = rn.init_resnet(2, 2, M, 4, bandwidth=0.5, scheme="euler", n_networks=2,
                         generator=1)
    h = rn.train(net, X, Y, lr=5.0, steps=40, record_every=2)
    return net, h, rn.lazy_prediction(net, X, Y, lr=5.0, step=h.step)


@functools.cache
def _spectrum():
    return rn.gram_spectrum(_data()[0], [2, 4, 8, 16, 32, 64], bandwidth=0.5, n_draws=3,
                            generator=2)


def _line(fig_or_ax, prefix: str):
    from matplotlib.figure import Figure

    axes = fig_or_ax.axes if isinstance(fig_or_ax, Figure) else [fig_or_ax]
    found = [ln for ax in axes for ln in ax.lines if ln.get_label().startswith(prefix)]
    assert found, (prefix, [ln.get_label() for ax in axes for ln in ax.lines])
    return found[0]


def _assert_axes_labelled(fig) -> None:
    for ax in fig.axes:
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), ax.get_title()


def _one_line_error(excinfo, name: str) -> None:
    msg = str(excinfo.value)
    assert "\n" not in msg and f"'{name}'" in msg and len(msg) < 400, msg


# ---------------------------------------------------------------------------------------------
# The feature Gram against M
# ---------------------------------------------------------------------------------------------

def test_gram_spectrum_figure_draws_the_rate_and_the_threshold():
    s = _spectrum()
    fig = plot_gram_spectrum(s)
    assert len(fig.axes) == 2
    _assert_axes_labelled(fig)
    assert find_nonfinite(fig) == []
    ax1, ax2 = fig.axes
    M = np.asarray(s.widths, dtype=float)
    le = np.log(s.rms_error.numpy()).mean(1)
    # the Monte-Carlo rate: c M^(-1/2) with log c the mean of log e + log M / 2
    theory = _line(ax2, "theory: c M^(−1/2)")
    c = np.exp((le + 0.5 * np.log(M)).mean())
    np.testing.assert_allclose(theory.get_ydata(), c * M ** -0.5, rtol=RTOL)
    # the fitted line has the spectrum's slope, and says it with its standard error
    fit = _line(ax2, "fit: slope")
    a = le.mean() - s.slope * np.log(M).mean()
    np.testing.assert_allclose(fit.get_ydata(), np.exp(a) * M ** s.slope, rtol=RTOL)
    assert f"{s.slope:+.2f} ± {s.slope_se:.2f}" in fit.get_label()
    assert -0.8 < s.slope < -0.3  # the rate is M^(-1/2), whatever the draw
    # M = N and the kernel's lambda_min; widths below N are singular (drawn at the floor)
    assert list(_line(ax1, "M = N").get_xdata()) == [N, N]
    assert _line(ax1, "kernel").get_ydata()[0] == pytest.approx(s.lam_kernel)
    singular = _line(ax1, "singular")
    assert set(singular.get_xdata()) == {w for w in s.widths if w < N}
    assert (singular.get_ydata() > 0).all()


def test_gram_spectrum_figure_refuses_bad_input_with_one_line():
    with pytest.raises(TypeError) as excinfo:
        plot_gram_spectrum(_run(32)[1])
    _one_line_error(excinfo, "spectrum")
    bad = dataclasses.replace(_spectrum(), rms_error=_spectrum().rms_error * float("nan"))
    with pytest.raises(ValueError) as excinfo:
        plot_gram_spectrum(bad)
    _one_line_error(excinfo, "spectrum")


# ---------------------------------------------------------------------------------------------
# One run: loss and lazy curve, PL ratio and floor, spectrum, flow
# ---------------------------------------------------------------------------------------------

def test_training_figure_draws_the_lazy_curve_floor_and_bound():
    net, h, lazy = _run(32)
    X, Y = _data()
    bound = rn.pl_lower_bound(h.final, X, Y)
    fig = plot_training(h, lazy, bound, spectrum=_spectrum(),
                        flow=rn.flow_grid(h.final, X, n_lines=4, n_points=7), targets=Y)
    assert len(fig.axes) == 4
    _assert_axes_labelled(fig)
    assert find_nonfinite(fig) == []
    loss_ax, pl_ax, gram_ax, flow_ax = fig.axes
    assert loss_ax.get_yscale() == "log" and pl_ax.get_yscale() == "log"
    k = h.step.numpy().astype(float)
    lz = _line(loss_ax, "lazy (rn-lazy)")
    np.testing.assert_array_equal(lz.get_xdata(), k)
    np.testing.assert_allclose(lz.get_ydata(), lazy.loss[:, 0].numpy(), rtol=0)
    np.testing.assert_allclose(_line(loss_ax, "measured").get_ydata(), h.loss[:, 0].numpy())
    floor = _line(pl_ax, "floor 2 min_l")
    np.testing.assert_allclose(floor.get_ydata(), h.pl_floor[:, 0].numpy(), rtol=0)
    assert floor.get_ydata()[0] == pytest.approx(float(h.pl_floor0[0]))
    marker = _line(pl_ax, "bound (rn-pl-bound)")
    assert list(marker.get_xdata()) == [k[-1]]
    assert marker.get_ydata()[0] == pytest.approx(float(bound.bound[0]))
    # the measured ratio stays above its floor along this run (near-identity target)
    assert bool((h.pl_ratio[:, 0] >= h.pl_floor[:, 0]).all())
    star = _line(gram_ax, "this run: M = 32")
    assert star.get_ydata()[0] == pytest.approx(float(h.gram_min_input[0]))
    assert len(_line(flow_ax, "y").get_xdata()) == N
    # network 1 in bold, network 0 thin
    fig1 = plot_training(h, lazy, network=1)
    np.testing.assert_allclose(_line(fig1.axes[0], "lazy").get_ydata(), lazy.loss[:, 1])


def test_training_figure_below_threshold_shows_the_plateau_not_nan():
    net, h, lazy = _run(3)  # M = 3 < N = 6: K_M singular
    assert float(lazy.plateau[0]) > 0 and float(lazy.rate[0]) == 0.0
    fig = plot_training(h, lazy)
    assert find_nonfinite(fig) == []
    plateau = _line(fig.axes[0], "lazy plateau")
    assert plateau.get_ydata()[0] == pytest.approx(float(lazy.plateau[0]))
    _line(fig.axes[1], "floor 0: K_M singular")  # no zero drawn on the log axis
    # the measured loss stalls at the lazy plateau's level (within a factor 2)
    assert float(lazy.plateau[0]) / 2 < float(h.loss[-1, 0]) < 2 * float(h.loss[0, 0])


def test_training_figure_takes_a_pl_trace():
    X, Y = _data()
    net = rn.init_resnet(2, 2, 32, 4, bandwidth=0.5, scheme="euler", generator=1)
    tr = rn.pl_trace(net, X, Y, lr=5.0, steps=20, every=10)
    h = rn.train(net, X, Y, lr=5.0, steps=20, record_every=2)
    marks = _line(plot_training(h, pl_bound=tr).axes[1], "bound")
    np.testing.assert_array_equal(marks.get_xdata(), tr.step.numpy().astype(float))
    np.testing.assert_allclose(marks.get_ydata(), tr.bound[:, 0].numpy())


def test_training_figure_refuses_bad_input_with_one_line():
    net, h, lazy = _run(32)
    for kwargs, name in (({"history": "h"}, "history"), ({"lazy": h}, "lazy"),
                         ({"pl_bound": lazy}, "pl_bound"), ({"spectrum": h}, "spectrum"),
                         ({"flow": lazy}, "flow")):
        args = {"history": h, **kwargs}
        with pytest.raises(TypeError) as excinfo:
            plot_training(**args)
        _one_line_error(excinfo, name)
    short = rn.lazy_prediction(net, *_data(), lr=5.0, step=h.step[:-1])
    with pytest.raises(ValueError) as excinfo:
        plot_training(h, short)
    _one_line_error(excinfo, "lazy")
    loss = h.loss.clone()
    loss[3, 0] = float("nan")
    with pytest.raises(ValueError) as excinfo:
        plot_training(dataclasses.replace(h, loss=loss))
    _one_line_error(excinfo, "history")
    with pytest.raises(ValueError) as excinfo:
        plot_training(h, network=2)
    _one_line_error(excinfo, "network")


# ---------------------------------------------------------------------------------------------
# Width sweep, depth limit, flow
# ---------------------------------------------------------------------------------------------

@functools.cache
def _sweep():
    return rn.width_sweep([3, 32], n_train=N, depth=4, lr=4.0, steps=40, record_every=4, n_data=3,
                          generator=0)


def test_width_sweep_figure_draws_lazy_medians_floors_and_the_diagonal():
    sw = _sweep()
    fig = plot_width_sweep(sw)
    assert len(fig.axes) == 3
    _assert_axes_labelled(fig)
    assert find_nonfinite(fig) == []
    ax1, ax2, ax3 = fig.axes
    dashed = [ln for ln in ax1.lines if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    assert len(dashed) == 2  # one lazy median per width
    for w, ln in enumerate(dashed):
        med = np.median(sw.lazy_loss[w].numpy(), 1)
        np.testing.assert_allclose(ln.get_ydata(), med[med > 0])
    # the floor is drawn for M = 32 > N (at its median), not for M = 3 < N (zero)
    floors = [ln for ln in ax2.lines if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    assert len(floors) == 1
    assert floors[0].get_ydata()[0] == pytest.approx(float(sw.pl_floor0[1].median()))
    diag = _line(ax3, "theory: fitted = lazy")
    np.testing.assert_array_equal(diag.get_xdata(), diag.get_ydata())
    pts = _line(ax3, "M = 32")
    np.testing.assert_allclose(pts.get_xdata(), sw.lazy_rate[1].numpy())
    np.testing.assert_allclose(pts.get_ydata(), sw.rate[1].numpy())
    with pytest.raises(TypeError) as excinfo:
        plot_width_sweep(_spectrum())
    _one_line_error(excinfo, "sweep")
    with pytest.raises(ValueError) as excinfo:
        plot_width_sweep(dataclasses.replace(sw, pl_ratio=sw.pl_ratio * float("nan")))
    _one_line_error(excinfo, "sweep")


def test_depth_convergence_figure_draws_the_declared_orders():
    X, Y = _data()
    net = rn.train(rn.init_resnet(2, 2, 16, 2, bandwidth=0.5, generator=1), X, Y, lr=5.0,
                   steps=10).final
    conv = rn.depth_convergence(net, X, [4, 8, 16, 32])
    fig = plot_depth_convergence(conv)
    _assert_axes_labelled(fig)
    assert find_nonfinite(fig) == []
    Ls = np.asarray(conv.depths, dtype=float)
    for scheme, p in rn.ORDER.items():
        e = conv.error_output[scheme].numpy()
        ref = _line(fig, f"theory: order {p}")
        np.testing.assert_allclose(ref.get_ydata(), e[0] * (Ls / Ls[0]) ** -p, rtol=RTOL)
        assert f"{scheme}: fitted order {conv.order[scheme]:.2f}" in " ".join(
            ln.get_label() for ln in fig.axes[0].lines)
    with pytest.raises(TypeError) as excinfo:
        plot_depth_convergence(_sweep())
    _one_line_error(excinfo, "conv")
    with pytest.raises(TypeError) as excinfo:
        plot_depth_convergence(conv, ax="axes")
    _one_line_error(excinfo, "ax")


def test_flow_figure_draws_the_grid_before_and_after():
    X, Y = _data()
    h = _run(32)[1]
    g = rn.flow_grid(h.final, X, n_lines=4, n_points=7)
    fig = plot_flow(g, targets=Y)
    _assert_axes_labelled(fig)
    assert find_nonfinite(fig) == []
    ax = fig.axes[0]
    before, after, paths = ax.collections
    np.testing.assert_allclose(np.stack([p.vertices for p in before.get_paths()]),
                               g.lines[0].numpy())
    np.testing.assert_allclose(np.stack([p.vertices for p in after.get_paths()]),
                               g.lines[-1].numpy())
    assert len(paths.get_paths()) == N * h.final.depth  # one segment per block and point
    assert paths.get_array().min() > 0 and paths.get_array().max() < 1  # coloured by s
    np.testing.assert_allclose(_line(ax, "f(x) at s = 1").get_xdata(), g.points[-1, :, 0])
    with pytest.raises(TypeError) as excinfo:
        plot_flow(h)
    _one_line_error(excinfo, "grid")
    with pytest.raises(ValueError) as excinfo:
        plot_flow(dataclasses.replace(g, points=g.points * float("nan")))
    _one_line_error(excinfo, "grid")
    with pytest.raises(ValueError) as excinfo:
        plot_flow(g, targets=Y[:3])
    _one_line_error(excinfo, "targets")


# ---------------------------------------------------------------------------------------------
# Widgets: pure compute functions, registered for the generic sweep
# ---------------------------------------------------------------------------------------------

def test_widget_compute_shows_the_threshold_and_fits_the_budget_rule():
    pytest.importorskip("ipywidgets")
    from mfteach.widgets import resnet as wr

    below = wr.training_compute(6, 4, 0.5, 10, 0.5, "gaussian", 0.2)
    above = wr.training_compute(64, 4, 0.5, 10, 0.5, "gaussian", 0.2)
    assert float(below[1].plateau[0]) > 0 and float(above[1].plateau[0]) == 0
    assert float(above[0].loss[-1, 0]) < 0.1 * float(below[0].loss[-1, 0])
    # common random numbers: the data do not move with M
    assert torch.equal(below[5], above[5])
    assert wr.live_steps(32, 8, 10) == wr.LIVE_STEPS
    assert wr.live_steps(1024, 32, 20) == wr.MIN_STEPS
    assert wr.WIDTHS[0] == 4 and wr.WIDTHS[-1] == 1024


def test_widget_shows_a_message_past_the_stability_limit():
    pytest.importorskip("ipywidgets")
    from mfteach.widgets import resnet as wr

    widget = wr.training_widget()
    diverged = widget.render(lr_fraction=1.5, depth=1)
    assert diverged.figure is None and diverged.message.startswith("The run diverged")
    lazy_only = widget.render(lr_fraction=1.1)
    assert lazy_only.figure is None and "lazy stability limit" in lazy_only.message
    assert "\n" not in lazy_only.message


def test_widgets_are_registered_for_the_generic_sweep():
    pytest.importorskip("ipywidgets")
    from mfteach.widgets import discover
    from mfteach.widgets import resnet as wr

    reg = discover()
    assert wr.training_widget in reg.live
    assert wr.width_explorer in reg.explorers
    assert all(len(v) >= 3 for v in wr.EXPLORER_GRID.values())
    assert min(wr.EXPLORER_GRID["n_features"]) < 10 < max(wr.EXPLORER_GRID["n_features"])


# ------------------------------------------------------------------------------------------
# Width limit, PL trace, digits
# ------------------------------------------------------------------------------------------

@functools.cache
def _limit():
    X, Y = _data()
    return rn.width_limit(X, Y, [16, 64, 256], depth=2, steps=5, n_seeds=2, generator=1)


def test_width_limit_figure_draws_the_inverse_square_root_through_the_first_mean():
    lim = _limit()
    fig = rn.plot_width_limit(lim)
    assert len(fig.axes) == 2
    Ms = np.asarray(lim.widths, dtype=float)
    for ax, err in zip(fig.axes, (lim.output_error, lim.trajectory_error)):
        assert ax.get_xlabel() and ax.get_ylabel()
        gm = np.exp(np.log(err.numpy()).mean(1))
        theory = [ln for ln in ax.get_lines() if ln.get_label() == "theory: M^(−1/2)"]
        assert len(theory) == 1
        np.testing.assert_allclose(theory[0].get_ydata(), gm[0] * (Ms / Ms[0]) ** -0.5,
                                   rtol=RTOL)
        assert any(f"{lim.output_slope:.2f}" in t.get_text() or
                   f"{lim.trajectory_slope:.2f}" in t.get_text()
                   for t in ax.get_legend().get_texts())
    assert not find_nonfinite(fig)


def test_pl_trace_figure_draws_both_sides_of_the_bound():
    X, Y = _data()
    net = rn.init_resnet(2, 2, 32, 4, bandwidth=0.5, scheme="euler", n_networks=2,
                         generator=2)
    tr = rn.pl_trace(net, X, Y, lr=5.0, steps=20, every=10)
    fig = rn.plot_pl_trace(tr)
    ax = fig.axes[0]
    ys = [ln.get_ydata() for ln in ax.get_lines()]
    for b in range(2):
        assert any(np.array_equal(y, tr.bound[:, b].numpy()) for y in ys)
        assert any(np.array_equal(y, tr.pl_ratio[:, b].numpy()) for y in ys)
    assert not find_nonfinite(fig)


def test_digits_figure_marks_the_authors_mnist_numbers():
    c = rn.digits_comparison(n_train=60, n_test=60, q=8, n_features=8, depths=(5,), epochs=2,
                             n_seeds=2, generator=0)
    fig = rn.plot_digits(c)
    stars = [ln for ln in fig.axes[1].get_lines() if ln.get_marker() == "*"
             and len(ln.get_ydata())]
    assert sorted(float(s.get_ydata()[0]) for s in stars) == sorted(
        rn.MNIST_REFERENCE[(m, 5)] for m in c.models)
    assert all(ax.get_ylabel() for ax in fig.axes)
    assert not find_nonfinite(fig)


@pytest.mark.parametrize("plot", ["plot_width_limit", "plot_pl_trace", "plot_digits"])
def test_new_figures_refuse_other_types(plot):
    with pytest.raises(TypeError) as info:
        getattr(rn, plot)("not a result")
    assert "\n" not in str(info.value)
