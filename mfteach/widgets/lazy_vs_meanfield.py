"""Widgets of the introduction chapter, "Lazy versus mean-field".

Views over :func:`mfteach.lazy_vs_meanfield.particle_trajectory` (no maths here):

* :func:`training_widget` (live): width, parametrization, learning rate and number of steps ->
  the loss curve and the particle picture of one network.
* :func:`particle_explorer` (precomputed, works in the static HTML): width x parametrization ->
  the particle picture after the same training time.

Both fix their seed (common random numbers): moving the width slider changes the width, not
the data or the draw of the first neurons.
"""

from __future__ import annotations

from functools import lru_cache

from .. import lazy_vs_meanfield as lvm
from . import controls
from ._explorer import precomputed_explorer
from ._live import LiveWidget

__all__ = ["training_widget", "particle_explorer", "LIVE_WIDGETS", "EXPLORERS",
           "SEED", "EXPLORER_WIDTHS"]

SEED = 0
"""Seed of the data and the networks of both widgets."""

EXPLORER_WIDTHS = (16, 64, 256, 512)
"""Widths precomputed by :func:`particle_explorer`."""

_PARAMS = [("mean-field (s = 1/N)", "mf"), ("NTK (s = 1/sqrt N)", "ntk")]


@lru_cache(maxsize=32)
def _trajectory(width: int, parametrization: str, lr: float, steps: int):
    return lvm.particle_trajectory(width, parametrization, lr=lr, steps=steps,
                                   record_every=max(1, steps // 50), generator=SEED)


def _compute(width: int, parametrization: str, lr: float, steps: int):
    return _trajectory(int(width), parametrization, float(lr), int(steps))


def training_widget():
    """Live widget: train one network on the 2-D teacher and show its loss and particles.

    Controls: width :math:`N` (8 to 512), parametrization (``"mf"``/``"ntk"``), learning rate
    :math:`\\eta` (0.05 to 5, theory units) and number of steps (20 to 1000). A learning rate
    that makes training diverge shows a one-line message instead of a figure.

    Returns
    -------
    LiveWidget
        Display it in a notebook (in the static book build: disabled controls and the
        figure at the defaults); ``.static_figure()`` is that figure.
    """
    ctrls = {
        "width": controls.int_slider("width N", 64, 8, 512, step=8),
        "parametrization": controls.dropdown("parametrization", _PARAMS, "mf"),
        "lr": controls.float_log_slider("learning rate η", 0.5, 0.05, 5.0),
        "steps": controls.int_slider("steps", 200, 20, 1000, step=20),
    }
    return LiveWidget(_compute, lvm.plot_training, ctrls,
                      title="Train one two-layer network (d = 2): loss and neurons")


def _frame(width: int, parametrization: str):
    fig, _ = lvm.plot_particles(_trajectory(width, parametrization, 0.5, 200), lim=3.5)
    return fig


def particle_explorer():
    """Precomputed explorer: the particle picture for each width and parametrization.

    Eight frames (widths :data:`EXPLORER_WIDTHS` x ``"ntk"``/``"mf"``), each after time
    :math:`t = 100` (200 steps at :math:`\\eta = 0.5`); switching frames needs no kernel.

    Returns
    -------
    ipywidgets.VBox
        See ``mfteach.widgets.precomputed_explorer``.
    """
    return precomputed_explorer(
        _frame, {"width": list(EXPLORER_WIDTHS), "parametrization": ["ntk", "mf"]},
        description="Neurons w_j before (grey) and after training (coloured by a_j) for "
                    "t = 100: under NTK scaling they freeze as N grows, under mean-field "
                    "scaling they travel to the teacher's directions at every width.")


LIVE_WIDGETS = [training_widget]
EXPLORERS = [particle_explorer]
