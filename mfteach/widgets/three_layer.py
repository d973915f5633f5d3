"""Widgets of chapter 03, "Partially-trained three-layer networks".

Views over :mod:`mfteach.three_layer` (no maths here):

* :func:`training_widget` (live): scaling, widths m1 and m2, training points N, input
  dimension d and Euler step -> the loss with its bound, lambda_min(K_t) with the Schur bound,
  and a few neuron functions h_i on a 1-D slice at t = 0 and t = T.
* :func:`width_explorer` (precomputed, works in the static HTML): scaling x width x N -> the
  same runs' loss with its bound and neuron functions, beside the neuron movement against the
  width for the three scalings (the current width marked).

Both fix their seed (common random numbers): moving a width changes the width, not the data.
"""

from __future__ import annotations

from functools import lru_cache

from .. import three_layer as tl
from . import controls
from ._explorer import precomputed_explorer
from ._live import LiveWidget

__all__ = ["training_widget", "width_explorer", "training_compute", "explorer_frame",
           "LIVE_WIDGETS", "EXPLORERS", "SEED", "LIVE_STEPS", "EXPLORER_GRID"]

SEED = 0
"""Seed of the data and the networks of both widgets."""

LIVE_STEPS = 150
"""Euler steps of the live widget (training time ``LIVE_STEPS * dt``). With one network,
m1 <= 1500, m2 <= 200 and N <= 30 an update stays within the widget budget on one core."""

_SCALINGS = [("mean field, alpha = 1/2", "mf_half"), ("mean field, alpha = 1", "mf_one"),
             ("NTK scaling", "ntk")]


@lru_cache(maxsize=32)
def training_compute(scaling: str, m1: int, m2: int, n_train: int, d: int, dt: float):
    """One run of :func:`mfteach.three_layer.run` (one network) and its teacher on the slice."""
    h = tl.run(scaling, m1=int(m1), m2=int(m2), d=int(d), n_train=int(n_train), n_test=50,
               n_networks=1, dt=float(dt), steps=LIVE_STEPS, record_every=5, n_slice=97,
               generator=SEED)
    return h, tl.slice_target(h)


def _training_plot(res):
    h, teacher = res
    return tl.plot_training(h, teacher)


def training_widget() -> LiveWidget:
    """Live widget: train one network at your settings and show the theorems' quantities.

    Controls: scaling (two mean-field regimes, NTK), first-layer width m1 (100 to 1500),
    second-layer width m2 (20 to 200), training points N (4 to 30), input dimension d (3 to
    20) and the Euler step dt in the theory's time (0.1 to 4; past about 1.5 the mean-field
    scalings can diverge, which shows a message).

    Returns
    -------
    LiveWidget
    """
    ctrls = {
        "scaling": controls.dropdown("scaling", _SCALINGS, "mf_half"),
        "m1": controls.int_slider("first-layer width m1", 500, 100, 1500, step=100),
        "m2": controls.int_slider("trained width m2", 100, 20, 200, step=20),
        "n_train": controls.int_slider("training points N", 10, 4, 30, step=2),
        "d": controls.int_slider("input dimension d", 10, 3, 20),
        "dt": controls.float_log_slider("Euler step dt", 1.0, 0.1, 4.0),
    }
    return LiveWidget(training_compute, _training_plot, ctrls,
                      title="Train a partially-trained three-layer network (ReLU features, "
                            "tanh neurons, single-index teacher)")


EXPLORER_GRID = {"scaling": ["mf_half", "mf_one", "ntk"], "width": [40, 120, 360],
                 "n_train": [5, 10, 20]}
"""Settings precomputed by :func:`width_explorer` (27 frames; widths m = m1 = m2)."""

_EXPLORER_SEEDS = 3


@lru_cache(maxsize=16)
def _sweep(scaling: str, n_train: int) -> tl.MovementSweep:
    return tl.movement_sweep(EXPLORER_GRID["width"], scaling, n_seeds=_EXPLORER_SEEDS,
                             n_train=n_train, dt=1.0, steps=150, n_slice=97, record_every=5,
                             generator=SEED)


def explorer_frame(scaling: str, width: int, n_train: int):
    """One frame of :func:`width_explorer` (a matplotlib Figure)."""
    from matplotlib.figure import Figure

    sw = _sweep(scaling, int(n_train))
    h = sw.histories[EXPLORER_GRID["width"].index(int(width))]
    fig = Figure(figsize=(12.0, 3.7))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    fig.subplots_adjust(left=0.075, right=0.99, bottom=0.15, top=0.88, wspace=0.3)
    tl.plot_loss(h, ax=ax1, max_networks=_EXPLORER_SEEDS)
    tl.plot_neurons(h, ax=ax2, teacher=tl.slice_target(h))
    tl.plot_movement([_sweep(s, int(n_train)) for s in EXPLORER_GRID["scaling"]], ax=ax3,
                     mark=int(width))
    fig.suptitle(f"{tl.LABELS[scaling]}, m1 = m2 = {width}, N = {n_train}, t = 150",
                 fontsize=9, y=0.995)
    return fig


def width_explorer():
    """Precomputed explorer: the loss, the neurons and their movement for 3 scalings x 3
    widths x 3 training-set sizes (3 networks each, one data set per network).

    Returns
    -------
    ipywidgets.VBox
        See :func:`mfteach.widgets.precomputed_explorer` (27 frames).
    """
    return precomputed_explorer(
        explorer_frame, EXPLORER_GRID,
        description="Left: training loss of 3 networks (solid) with the bound "
                    "L(0) exp(-2 lambda t / N) (dashed). Middle: neurons h_i before (grey) and "
                    "after training. Right: the movement of the neurons against the width for "
                    "the three scalings; the grey line marks the width shown. Under both "
                    "mean-field scalings the neurons move by the same amount at every width; "
                    "under NTK scaling they freeze as the width grows.")


LIVE_WIDGETS = [training_widget]
EXPLORERS = [width_explorer]
