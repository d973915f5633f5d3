"""Widgets of the finite-width chapter (views over :mod:`mfteach.finite_width`, no maths).

* :func:`output_law_explorer` (precomputed, works in the static HTML): width x activation x
  readout law -> histogram of the outputs with Gaussian and Edgeworth overlays, beside the
  rescaled cumulants (flat in the width).
* :func:`ntk_drift_widget` (live): width, activation and learning rate -> the relative change
  of the tangent kernel during training for widths N and 4N.

Both fix their seed (common random numbers).
"""

from __future__ import annotations

from functools import lru_cache

from .. import finite_width as fw
from . import controls
from ._explorer import precomputed_explorer
from ._live import LiveWidget

__all__ = ["output_law_explorer", "ntk_drift_widget", "LIVE_WIDGETS", "EXPLORERS", "SEED",
           "EXPLORER_WIDTHS"]

SEED = 0
"""Seed of every draw in these widgets."""

EXPLORER_WIDTHS = (2, 8, 32, 128)
"""Widths precomputed by :func:`output_law_explorer`."""

_SAMPLES = 20_000


@lru_cache(maxsize=8)
def _scaling(activation: str, readout: str) -> fw.CumulantScaling:
    return fw.cumulant_scaling(activation, EXPLORER_WIDTHS, n_samples=_SAMPLES,
                               generator=SEED, readout=readout)


def output_law_figure(width: int, activation: str, readout: str):
    """The explorer's frame: histogram with Edgeworth overlays and the rescaled cumulants."""
    import torch
    from matplotlib.figure import Figure

    f = fw.sample_outputs(torch.ones(1, 1, dtype=torch.float64), activation=activation,
                          width=int(width), n_samples=_SAMPLES, generator=SEED,
                          readout=readout)[:, 0]
    fig = Figure(figsize=(9.0, 3.6))
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.4, 1]})
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.88, wspace=0.28)
    fw.plot_output_law(f, fw.output_cumulants(activation, readout=readout), int(width),
                       ax=ax1)
    fw.plot_cumulant_scaling(_scaling(activation, readout), ax=ax2, mark=int(width))
    return fig


def output_law_explorer():
    """Precomputed explorer: the output law for 4 widths x 2 activations x 2 readouts.

    Returns
    -------
    ipywidgets.VBox
        See :func:`mfteach.widgets.precomputed_explorer` (16 frames).
    """
    return precomputed_explorer(
        output_law_figure,
        {"width": list(EXPLORER_WIDTHS), "activation": ["relu", "tanh"],
         "readout": ["gaussian", "exponential"]},
        description=f"Outputs f(x) of {_SAMPLES} random one-hidden-layer networks: histogram, "
                    "Gaussian limit and Edgeworth corrections (left); excess kurtosis x N and "
                    "skewness x sqrt(N) against N, flat as predicted (right).")


@lru_cache(maxsize=32)
def _drift(width: int, activation: str, lr: float) -> fw.NTKDrift:
    return fw.ntk_drift(activation, (width, 4 * width), lr=lr, steps=150, record_every=10,
                        n_train=10, d=4, n_networks=2, generator=SEED)


def _compute(width: int, activation: str, lr: float) -> fw.NTKDrift:
    return _drift(int(width), activation, float(lr))


def ntk_drift_widget() -> LiveWidget:
    """Live widget: the tangent kernel's relative change during GD for widths N and 4N.

    Controls: width N (16 to 512), activation (relu, tanh, erf), learning rate (0.05 to 3).

    Returns
    -------
    LiveWidget
    """
    ctrls = {
        "width": controls.int_slider("width N", 64, 16, 512, step=16),
        "activation": controls.dropdown("activation", ["relu", "tanh", "erf"], "tanh"),
        "lr": controls.float_log_slider("learning rate η", 0.5, 0.05, 3.0),
    }
    return LiveWidget(_compute, fw.plot_ntk_drift, ctrls,
                      title="NTK drift during gradient descent (widths N and 4N)")


LIVE_WIDGETS = [ntk_drift_widget]
EXPLORERS = [output_law_explorer]
