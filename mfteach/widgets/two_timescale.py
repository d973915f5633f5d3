"""Widgets of chapter 05, "The two-timescale kernel view of mean-field Langevin dynamics".

Views over :mod:`mfteach.two_timescale` (no maths here):

* :func:`training_widget` (live): regulariser lambda, temperature, particles N, samples n,
  target and label noise -> one run of mean-field Langevin dynamics: the objective with its
  fitted linear rate, the kernel and parameter alignments, the degrees of freedom and the
  particles' first-layer weights before and after (:func:`mfteach.two_timescale.plot_training`).
* :func:`dynamics_explorer` (precomputed, works in the static HTML): lambda x label noise x
  particles -> the same figure, three seeds per frame.

Both fix their seed (common random numbers): moving a slider changes that parameter, not the
data or the initial particles.
"""

from __future__ import annotations

from functools import lru_cache

from .. import two_timescale as tt
from . import controls
from ._explorer import precomputed_explorer
from ._live import LiveWidget

__all__ = ["training_widget", "dynamics_explorer", "training_compute", "explorer_frame",
           "LIVE_WIDGETS", "EXPLORERS", "SEED", "LIVE_STEPS", "EXPLORER_GRID"]

SEED = 0
"""Seed of the data, the particles and the Langevin noise of both widgets."""

LIVE_STEPS = 200
"""Langevin steps of the live widget (step eta = 1, so t = 200). With one run, N <= 200 and
n <= 120 a cold update (run and PNG) stays within the widget budget on one core."""

_D = 5  # input dimension of both widgets
_ETA = 1.0
_TARGETS = [("x1 x2 (two relevant directions)", "x1x2"),
            ("tanh(2 x1) (single index)", "single_index")]


@lru_cache(maxsize=32)
def training_compute(lam: float, temperature: float, n_particles: int, n_train: int,
                     target: str, label_noise: float) -> tuple[tt.History, str]:
    """One run of :func:`mfteach.two_timescale.run` (one data set, one particle system)."""
    h = tt.run(target, d=_D, n_train=int(n_train), n_test=200, n_particles=int(n_particles),
               n_runs=1, lam=float(lam), temperature=float(temperature), eta=_ETA,
               steps=LIVE_STEPS, label_noise=float(label_noise), record_every=10,
               generator=SEED)
    return h, target


def _training_plot(res):
    h, target = res
    return tt.plot_training(h, target=target)


def training_widget() -> LiveWidget:
    """Live widget: run mean-field Langevin dynamics of the two-timescale network at your
    settings.

    Controls: the regulariser's multiplier lambda (1e-3 to 0.1; lambda_a = lambda_w = 0.25),
    the Langevin temperature (1e-4 to 0.1; the paper couples it to lambda), particles N (20 to
    200), training samples n (20 to 120), the target and the label noise sigma~ of the
    label-noise procedure (0 to 2). A temperature so high that the particles diffuse away
    shows a message.

    Returns
    -------
    LiveWidget
    """
    ctrls = {
        "lam": controls.float_log_slider("regulariser λ", 0.01, 0.001, 0.1),
        "temperature": controls.float_log_slider("temperature", 0.01, 0.0001, 0.1),
        "n_particles": controls.int_slider("particles N", 100, 20, 200, step=20),
        "n_train": controls.int_slider("samples n", 80, 20, 120, step=20),
        "target": controls.dropdown("target", _TARGETS, "x1x2"),
        "label_noise": controls.float_slider("label noise σ̃", 0.0, 0.0, 2.0, step=0.5),
    }
    return LiveWidget(training_compute, _training_plot, ctrls,
                      title="Mean-field Langevin dynamics with the second layer solved "
                            "exactly (tanh features, d = 5, η = 1)")


EXPLORER_GRID = {"lam": [0.003, 0.01, 0.03], "label_noise": [0.0, 1.0, 2.0],
                 "n_particles": [25, 50, 100]}
"""Settings precomputed by :func:`dynamics_explorer` (27 frames; temperature = lambda)."""

_EXPLORER_SEEDS = 3
_EXPLORER_STEPS = 120


@lru_cache(maxsize=32)
def _explorer_run(lam: float, label_noise: float, n_particles: int) -> tt.History:
    return tt.run("x1x2", d=_D, n_train=60, n_test=100, n_particles=int(n_particles),
                  n_runs=_EXPLORER_SEEDS, lam=float(lam), eta=_ETA, steps=_EXPLORER_STEPS,
                  label_noise=float(label_noise), record_every=10, generator=SEED)


def explorer_frame(lam: float, label_noise: float, n_particles: int):
    """One frame of :func:`dynamics_explorer` (a matplotlib Figure)."""
    return tt.plot_training(_explorer_run(float(lam), float(label_noise), int(n_particles)),
                            target="x1x2")


def dynamics_explorer():
    """Precomputed explorer: one x1 x2 run for 3 values of lambda x 3 label-noise levels x 3
    particle numbers (3 seeds per frame, the first in bold).

    Returns
    -------
    ipywidgets.VBox
        See :func:`mfteach.widgets.precomputed_explorer` (27 frames).
    """
    return precomputed_explorer(
        explorer_frame, EXPLORER_GRID,
        description="From left: the objective U with its fitted linear rate (Thm 3.7); the "
                    "kernel alignment and the parameter alignment, which start at the prior's "
                    "level k/d and rise; the degrees of freedom, which the label-noise "
                    "procedure lowers (Thm 5.5); the particles' weights on the two relevant "
                    "coordinates before (grey) and after training. Larger lambda means a "
                    "hotter, more regularised run; more particles, a smoother measure.")


LIVE_WIDGETS = [training_widget]
EXPLORERS = [dynamics_explorer]
