"""Widgets of chapter 06, "Global convergence of ResNets" (Barboni, Peyré & Vialard 2022).

Views over :mod:`mfteach.resnet` (no maths here):

* :func:`training_widget` (live): features M, depth L, bandwidth, training points N, learning
  rate, feature family and target amplitude -> one run of gradient descent on a ResNet in the
  plane: the loss beside its lazy prediction, the PL ratio beside its Gram floor and bound,
  lambda_min(K_M) against M with the threshold M = N, and the learned flow
  (:func:`mfteach.resnet.plot_training`).
* :func:`width_explorer` (precomputed, works in the static HTML): M x bandwidth x family ->
  the same figure, three data sets per frame.

Both fix their seeds (common random numbers): moving a slider changes that parameter, not the
data or the feature draw. The learning rate is set in units of the lazy stability limit
``2 L N / lambda_max(K_M)`` (:func:`mfteach.resnet.train`): at a fraction 1/2 the linearised
dynamics contract every mode, whatever L, N, the family or the bandwidth; past 1 the top mode
grows (the run diverges, or its lazy prediction does), which shows a message.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from .. import resnet as rn
from ..device import spawn_generators
from ..resnet import plot_training
from . import controls
from ._explorer import precomputed_explorer
from ._live import LiveWidget

__all__ = ["training_widget", "width_explorer", "training_compute", "explorer_frame",
           "live_steps", "LIVE_WIDGETS", "EXPLORERS", "SEED", "LIVE_STEPS", "MIN_STEPS",
           "WIDTHS", "EXPLORER_GRID"]

SEED = 0
"""Seed of the data, the features and the Gram-spectrum draws of both widgets."""

LIVE_STEPS = 80
"""Gradient steps of the live widget where a step is cheap (``L (M N + 10^4)`` up to about
1.9e5, e.g. at the defaults M = 32, L = 8, N = 10: about 1.5 ms a step on one core)."""
MIN_STEPS = 15
"""Fewest steps of the live widget: at the most expensive setting (M = 1024, L = 32,
N = 20) a step takes about 16 ms on one core."""
_WORK = 1.5e7  # steps * L * (M N + 10^4) per update: about 0.25 s of training on one core

WIDTHS = [4, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 128, 256, 512, 1024]
"""Positions of the live widget's M slider (log-spaced above 32)."""
_SPECTRUM_WIDTHS = [2 ** i for i in range(1, 11)]  # lambda_min(K_M) panel: M = 2 .. 1024
_FAMILIES = [("Gaussian random Fourier features", "gaussian"),
             ("Matérn random Fourier features (ν = 3)", "matern"),
             ("ReLU features (arc-cosine kernel)", "relu")]


def live_steps(n_features: int, depth: int, n_train: int) -> int:
    """Steps of the live widget at these sizes: :data:`LIVE_STEPS`, fewer when a step is
    expensive (its cost grows like ``L (M N + 10^4)`` on one core), at least
    :data:`MIN_STEPS`."""
    work = depth * (n_features * n_train + 1e4)
    return max(MIN_STEPS, min(LIVE_STEPS, int(_WORK / work)))


def _run(n_features: int, depth: int, bandwidth: float, n_train: int, lr_fraction: float,
         family: str, amplitude: float, n_data: int, steps: int, record_every: int):
    """Train ``n_data`` networks (one per data set) and compute what the figure shows."""
    g_data, g_feat, g_spec = spawn_generators(SEED, 3)
    sets = [rn.toy_data(n_train, amplitude=amplitude, min_distance=1.2 / n_train ** 0.5,
                        generator=g) for g in spawn_generators(g_data, n_data)]
    X = torch.stack([x for x, _ in sets])  # (B, N, 2)
    Y = torch.stack([y for _, y in sets])
    net = rn.init_resnet(2, 2, n_features, depth, family=family, bandwidth=bandwidth,
                         scheme="euler", n_networks=n_data, generator=g_feat)
    lam_max = float(torch.linalg.eigvalsh(rn.feature_gram(net.feats, X))[:, -1].max())
    lr = lr_fraction * 2 * depth * n_train / lam_max  # a fraction of the lazy stability limit
    h = rn.train(net, X, Y, lr=lr, steps=steps, record_every=record_every)
    if lr_fraction > 1:  # the run did not blow up, but its linearisation does
        raise ValueError(f"The learning rate is {lr_fraction:g} times the lazy stability "
                         f"limit 2LN/lambda_max(K_M) = {lr / lr_fraction:.3g}: the linearised "
                         "dynamics diverge (no lazy prediction to draw). Use at most 1.")
    lazy = rn.lazy_prediction(net, X, Y, lr=lr, step=h.step)
    bound = rn.pl_lower_bound(h.final, X, Y)
    spectrum = rn.gram_spectrum(X[0], _SPECTRUM_WIDTHS, family=family, bandwidth=bandwidth,
                                n_draws=3, generator=g_spec)
    flow = rn.flow_grid(h.final, X[0], n_lines=8, n_points=21)
    return h, lazy, bound, spectrum, flow, Y[0]


@lru_cache(maxsize=32)
def training_compute(n_features: int, depth: int, bandwidth: float, n_train: int,
                     lr_fraction: float, family: str, amplitude: float):
    """One run of :func:`mfteach.resnet.train` (one network, Euler blocks) at the widget's
    settings, with its lazy prediction, PL bound, Gram spectrum and flow."""
    M, L, N = int(n_features), int(depth), int(n_train)
    steps = live_steps(M, L, N)
    return _run(M, L, float(bandwidth), N, float(lr_fraction), family, float(amplitude),
                n_data=1, steps=steps, record_every=-(-steps // 20))  # about 20 records


def _plot(res):
    h, lazy, bound, spectrum, flow, Y = res
    return plot_training(h, lazy, bound, spectrum=spectrum, flow=flow, targets=Y)


def training_widget() -> LiveWidget:
    """Live widget: train a ResNet with fixed random features at your settings.

    Controls: features M (4 to 1024, log-spaced), depth L (1 to 32 blocks), bandwidth sigma
    of the features (0.1 to 2), training points N (4 to 20, kept 1.2/sqrt(N) apart in the
    square), the learning rate as a fraction of the lazy stability limit 2LN/lambda_max(K_M)
    (0.05 to 1.5; past 1 the lazy dynamics diverge: a message shows), the feature family, the
    amplitude a of the target y = x + a sin(3 x_rev) (0.05 to 1; large a leaves the lazy
    regime). :data:`LIVE_STEPS` steps, fewer where a step is expensive (:func:`live_steps`).

    Returns
    -------
    LiveWidget
    """
    import scipy.special  # noqa: F401 - Matérn features need it: load it now, not on a slider move

    ctrls = {
        "n_features": controls.selection_slider("features M", WIDTHS, 32),
        "depth": controls.int_slider("depth L (blocks)", 8, 1, 32),
        "bandwidth": controls.float_log_slider("bandwidth σ", 0.5, 0.1, 2.0),
        "n_train": controls.int_slider("training points N", 10, 4, 20, step=2),
        "lr_fraction": controls.float_slider("learning rate / (2LN/λmax)", 0.5, 0.05, 1.5,
                                             step=0.05),
        "family": controls.dropdown("features", _FAMILIES, "gaussian"),
        "amplitude": controls.float_slider("target amplitude a", 0.2, 0.05, 1.0, step=0.05),
    }
    return LiveWidget(training_compute, _plot, ctrls,
                      title="Train a ResNet x_(l+1) = x_l + U_l φ(x_l) / L in the plane "
                            "(U = 0 at start, full-batch gradient descent, Euler blocks)")


EXPLORER_GRID = {"n_features": [5, 20, 160], "bandwidth": [0.2, 0.5, 1.0],
                 "family": ["gaussian", "matern", "relu"]}
"""Settings precomputed by :func:`width_explorer` (27 frames; N = 10 points, L = 8 blocks,
amplitude 0.2, learning rate half the lazy stability limit, 100 steps, 3 data sets)."""

_EXPLORER = {"depth": 8, "n_train": 10, "lr_fraction": 0.5, "amplitude": 0.2, "n_data": 3,
             "steps": 100, "record_every": 2}


@lru_cache(maxsize=32)
def _explorer_run(n_features: int, bandwidth: float, family: str):
    return _run(int(n_features), bandwidth=float(bandwidth), family=family, **_EXPLORER)


def explorer_frame(n_features: int, bandwidth: float, family: str):
    """One frame of :func:`width_explorer` (a matplotlib Figure)."""
    return _plot(_explorer_run(int(n_features), float(bandwidth), family))


def width_explorer():
    """Precomputed explorer: one ResNet training for 3 widths M (below, near and far above
    N = 10) x 3 bandwidths x 3 feature families (3 data sets per frame, the first in bold).

    Returns
    -------
    ipywidgets.VBox
        See :func:`mfteach.widgets.precomputed_explorer` (27 frames).
    """
    return precomputed_explorer(
        explorer_frame, EXPLORER_GRID,
        description="From left: the training loss (solid) with the lazy prediction of the "
                    "network linearised at U = 0 (dashed), which falls in a straight line on "
                    "the log axis when lambda_min(K_M) > 0 and stalls at a plateau when M < N; "
                    "the PL ratio |grad L|^2 / L above its floor 2 lambda_min(K_M)/(LN); the "
                    "smallest eigenvalue of the feature Gram against M, zero below M = N; the "
                    "learned flow carrying the data (circles) to the targets (crosses). A "
                    "wider bandwidth smooths the kernel, lowers lambda_min and slows training.")


LIVE_WIDGETS = [training_widget]
EXPLORERS = [width_explorer]
