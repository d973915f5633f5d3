"""Tests of mfteach.plotting: labelled axes, the theory drawn beside the data, no global state."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from mfteach.plotting import (
    histogram_with_densities,
    kernel_heatmap,
    loglog_with_fit,
    loss_curves,
    particles_2d,
)
from mfteach.stats import SlopeFit, fit_loglog_slope


@pytest.fixture(autouse=True)
def _close_figures_and_guard_rcparams():
    before = dict(matplotlib.rcParams)
    yield
    plt.close("all")
    assert dict(matplotlib.rcParams) == before, "a plotting helper changed global rcParams"


def _labels(ax):
    return [line.get_label() for line in ax.get_lines()]


def _as(kind, x):
    return torch.as_tensor(np.asarray(x), dtype=torch.float64) if kind == "torch" else (
        np.asarray(x, dtype=float))


ARRAY_KINDS = ["numpy", "torch"]


@pytest.mark.parametrize("kind", ARRAY_KINDS)
def test_loss_curves_draws_each_network_their_mean_and_the_theory(kind):
    steps = np.arange(5)
    losses = np.exp(-np.outer(steps, [1.0, 2.0, 3.0]))
    fig, ax = loss_curves(_as(kind, steps), _as(kind, losses),
                          theory=(steps, np.exp(-2.0 * steps)))
    assert ax.get_xlabel() == "step" and ax.get_ylabel() and ax.get_yscale() == "log"
    assert "theory" in _labels(ax) and "mean of 3 networks" in _labels(ax)
    mean_line = ax.get_lines()[_labels(ax).index("mean of 3 networks")]
    np.testing.assert_allclose(mean_line.get_ydata(), losses.mean(axis=1))
    assert fig is ax.figure


def test_loss_curves_with_labels_on_given_axes_and_linear_scale():
    fig, ax = plt.subplots()
    fig2, ax2 = loss_curves([0, 1], [[1.0, 2.0], [0.5, 1.5]], labels=["ntk", "mf"], ax=ax,
                            logy=False, xlabel="time t")
    assert fig2 is fig and ax2 is ax
    assert _labels(ax) == ["ntk", "mf"] and ax.get_yscale() == "linear"
    assert ax.get_xlabel() == "time t"


def test_loss_curves_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="'losses' parameter of mfteach.plotting.loss_curves"):
        loss_curves([0, 1, 2], np.ones((2, 3)))
    with pytest.raises(ValueError, match="'labels' parameter"):
        loss_curves([0, 1], np.ones((2, 3)), labels=["a"])


@pytest.mark.parametrize("kind", ARRAY_KINDS)
def test_loglog_with_fit_shows_the_fitted_slope_and_the_reference(kind):
    x = np.array([64.0, 128.0, 256.0, 512.0])
    y = 3.0 * x**-0.5 * np.array([1.01, 0.99, 1.02, 0.98])
    fig, ax = loglog_with_fit(_as(kind, x), _as(kind, y), yerr=_as(kind, 0.05 * y),
                              xlabel="width N", ylabel="relative change",
                              reference_slopes=(-0.5, -1.0), label="ntk")
    fit = fit_loglog_slope(x, y)
    labels = _labels(ax)
    assert f"fit: slope {fit.slope:.2f} ± {fit.stderr:.2f}" in labels
    assert "theory: slope -0.5" in labels and "theory: slope -1" in labels
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "width N" and ax.get_ylabel() == "relative change"
    # the fitted line is the fit, the reference line passes through the first point
    fit_line = ax.get_lines()[labels.index(f"fit: slope {fit.slope:.2f} ± {fit.stderr:.2f}")]
    gx, gy = fit_line.get_data()
    np.testing.assert_allclose(gy, np.exp(fit.intercept) * gx**fit.slope, rtol=1e-12)
    ref = ax.get_lines()[labels.index("theory: slope -1")]
    rx, ry = ref.get_data()
    np.testing.assert_allclose(ry, y[0] * (rx / x[0]) ** -1.0, rtol=1e-12)


def test_loglog_with_fit_accepts_a_given_fit_and_two_points():
    # Two points: an OLS slope would have no standard error, so none is fitted here; a fit
    # computed elsewhere (e.g. a weighted fit, defined with two points) is drawn as given.
    fit = SlopeFit(slope=-1.0, stderr=0.05, intercept=0.0, n_points=2)
    fig, ax = loglog_with_fit([1, 2], [1.0, 0.5], fit=fit, xlabel="n", ylabel="err",
                              reference_slopes=())
    assert "fit: slope -1.00 ± 0.05" in _labels(ax)
    fig, ax = loglog_with_fit([1, 2], [1.0, 0.5], xlabel="n", ylabel="err",
                              reference_slopes=())
    assert not any(lab.startswith("fit") for lab in _labels(ax))
    assert _labels(ax) == ["measured"]
    with pytest.raises(TypeError, match="'fit' parameter"):
        loglog_with_fit([1, 2], [1.0, 0.5], fit=(1, 2), xlabel="n", ylabel="err")
    with pytest.raises(ValueError, match="'yerr' parameter"):
        loglog_with_fit([1, 2], [1.0, 0.5], yerr=[0.1], xlabel="n", ylabel="err")


@pytest.mark.parametrize("kind", ARRAY_KINDS)
def test_histogram_with_densities_normalised_with_labelled_theory(kind):
    rng = np.random.default_rng(0)
    s = rng.standard_normal(2000)
    g = np.linspace(-4, 4, 81)
    fig, ax = histogram_with_densities(_as(kind, s), {"Gaussian limit": (
        _as(kind, g), _as(kind, np.exp(-g**2 / 2) / np.sqrt(2 * np.pi)))}, bins=30,
        xlabel="f(x)")
    assert _labels(ax) == ["Gaussian limit"]
    assert ax.get_xlabel() == "f(x)" and ax.get_ylabel() == "density"
    heights = np.array([p.get_height() for p in ax.patches])
    widths = np.array([p.get_width() for p in ax.patches])
    assert heights.size == 30
    np.testing.assert_allclose((heights * widths).sum(), 1.0, rtol=1e-12)
    with pytest.raises(TypeError, match="'densities' parameter"):
        histogram_with_densities(s, {"bad": np.ones(3)})


@pytest.mark.parametrize("kind", ARRAY_KINDS)
def test_kernel_heatmap_shows_the_matrix_with_a_colorbar(kind):
    K = np.array([[2.0, 0.5], [0.5, 1.0]])
    fig, ax = kernel_heatmap(_as(kind, K)[None], title="NTK at init")
    assert ax.get_title() == "NTK at init" and ax.get_xlabel() and ax.get_ylabel()
    np.testing.assert_array_equal(ax.images[0].get_array(), K)
    assert len(fig.axes) == 2  # the image and its colour bar
    with pytest.raises(ValueError, match="'K' parameter"):
        kernel_heatmap(np.ones((2, 2, 2)))


@pytest.mark.parametrize("kind", ARRAY_KINDS)
def test_particles_2d_colours_by_output_weight_and_draws_teacher(kind):
    W = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]])
    a = np.array([0.5, -1.0, 0.1])
    fig, ax = particles_2d(_as(kind, W)[None], _as(kind, a), directions=[[2.0, 0.0]])
    pts = ax.collections[0]
    np.testing.assert_allclose(pts.get_offsets(), W)
    np.testing.assert_allclose(pts.get_array(), a)
    sizes = pts.get_sizes()
    assert sizes[1] > sizes[0] > sizes[2]  # sized by |a|
    assert "teacher direction" in _labels(ax)
    assert ax.get_xlabel() and ax.get_ylabel()


def test_particles_2d_without_output_weights_and_validation():
    fig, ax = particles_2d(np.zeros((4, 2)))
    assert len(ax.collections[0].get_offsets()) == 4
    with pytest.raises(ValueError, match="'W' parameter .* \\(N, 2\\)"):
        particles_2d(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="'a' parameter"):
        particles_2d(np.zeros((4, 2)), np.ones(3))


def test_helpers_work_on_tensors_that_require_grad():
    w = torch.ones(3, 2, requires_grad=True)
    fig, ax = particles_2d(w, w[:, 0])
    assert len(ax.collections[0].get_offsets()) == 3


# Nothing drawn silently --------------------------------------------------------------------
_NAN, _INF = float("nan"), float("inf")


@pytest.mark.parametrize("call, match", [
    (lambda: loss_curves([0, 1, 2], [1.0, _NAN, 0.5]), "'losses' parameter .* finite"),
    (lambda: loss_curves([0, _INF, 2], [1.0, 0.7, 0.5]), "'steps' parameter .* finite"),
    (lambda: loss_curves([0, 1, 2], [1.0, 0.0, 0.5]), "'losses' parameter .* positive"),
    (lambda: loss_curves([0, 1], [1.0, 0.5], theory=([0, 1], [1.0, _NAN])),
     "'theory' parameter .* finite"),
    (lambda: loglog_with_fit([1, 2, 4], [1.0, _NAN, 0.5], xlabel="n", ylabel="e"),
     "'y' parameter of mfteach.plotting.loglog_with_fit .* finite"),
    (lambda: loglog_with_fit([1, 2, 4], [1.0, -0.7, 0.5], xlabel="n", ylabel="e",
                             fit=SlopeFit(-0.5, 0.1, 0.0, 3)),
     "'y' parameter .* positive"),
    (lambda: loglog_with_fit([1, 2, 4], [1.0, 0.7, 0.5], yerr=[0.1, _NAN, 0.1], xlabel="n",
                             ylabel="e"), "'yerr' parameter .* finite"),
    (lambda: loglog_with_fit([1, 2, 4], [1.0, 0.7, 0.5], reference_slopes=[_NAN],
                             xlabel="n", ylabel="e"), "'reference_slopes' parameter"),
    (lambda: loglog_with_fit([1, 2, 4], [1.0, 0.7, 0.5], fit=SlopeFit(_NAN, _NAN, 0.0, 3),
                             xlabel="n", ylabel="e"), "'fit' parameter .* finite"),
    (lambda: histogram_with_densities([1.0, _NAN, 2.0]), "'samples' parameter .* finite"),
    (lambda: histogram_with_densities([]), "'samples' parameter .* at least 1"),
    (lambda: histogram_with_densities([1e308, -1e308]), "'samples' parameter .* range"),
    (lambda: histogram_with_densities([1.0, 2.0], {"p": ([0.0, 1.0], [_NAN, 1.0])}),
     "'densities' parameter .* finite"),
    (lambda: kernel_heatmap([[1.0, _NAN], [0.0, 1.0]]), "'K' parameter .* finite"),
    (lambda: particles_2d([[1.0, _INF], [0.0, 1.0]]), "'W' parameter .* finite"),
    (lambda: particles_2d([[1.0, 0.0], [0.0, 1.0]], [_NAN, 1.0]), "'a' parameter .* finite"),
    (lambda: particles_2d([[1.0, 0.0]], directions=[[_NAN, 1.0]]),
     "'directions' parameter .* finite"),
])
def test_plots_refuse_non_finite_data_naming_the_argument(call, match):
    # matplotlib would draw a NaN as a gap and a non-positive value on a log axis as nothing.
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: loss_curves([0, 1], [1.0, 0.5], ax="axes"), TypeError, "'ax' parameter"),
    (lambda: loss_curves([0, 1], [1.0, 0.5], logy=1), TypeError, "'logy' parameter"),
    (lambda: loss_curves([0, 1], [1.0, 0.5], theory=3), TypeError, "'theory' parameter"),
    (lambda: loss_curves([0, 1], [1.0, 0.5], theory=([0, 1], [1.0, 2.0, 3.0])), ValueError,
     "'theory' parameter"),
    (lambda: loss_curves([0, 1], [1.0, 0.5], labels=5), TypeError, "'labels' parameter"),
    (lambda: loss_curves([0, 1], np.ones(2) * 1j), TypeError, "'losses' parameter"),
    (lambda: loglog_with_fit([1, 2, 4], [1.0, 0.7, 0.5], reference_slopes="a", xlabel="n",
                             ylabel="e"), TypeError, "'reference_slopes' parameter"),
    (lambda: loglog_with_fit([1, 2, 4], [1.0, 0.7, 0.5], yerr=[-1, 1, 1], xlabel="n",
                             ylabel="e"), ValueError, "'yerr' parameter .* non-negative"),
    (lambda: histogram_with_densities([1.0, 2.0], bins=10**12), ValueError,
     "'bins' parameter"),
    (lambda: histogram_with_densities([1.0, 2.0], {"p": ([0.0, 1.0], [1.0])}), ValueError,
     "'densities' parameter"),
    (lambda: kernel_heatmap(np.eye(2), cmap="no-such-map"), ValueError, "'cmap' parameter"),
    (lambda: particles_2d(np.zeros((2, 2)), directions=[1.0, 2.0, 3.0]), ValueError,
     "'directions' parameter"),
    (lambda: particles_2d(np.zeros((2, 2)), directions=[[0.0, 0.0]]), ValueError,
     "'directions' parameter .* non-zero"),
    (lambda: particles_2d(np.zeros((0, 2)), np.zeros(0)), ValueError, "'W' parameter"),
])
def test_plots_refuse_bad_arguments_with_one_line(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert "\n" not in str(info.value)
