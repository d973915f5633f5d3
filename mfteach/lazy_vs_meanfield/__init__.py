r"""Lazy versus mean-field training of two-layer networks: the introduction chapter's experiments.

The same two-layer network :math:`f(x) = s_N \sum_{j=1}^N a_j \sigma(w_j\cdot x/\sqrt d)`
(:class:`mfteach.models.TwoLayer`) is trained by gradient descent in two parametrizations:

* ``"ntk"``: :math:`s_N = 1/\sqrt N`, learning rate :math:`\eta`. Every neuron moves by
  :math:`O(N^{-1/2})`, so :math:`\|W_t - W_0\|_F/\|W_0\|_F = O(N^{-1/2})` and the tangent
  kernel freezes as :math:`N \to \infty` (lazy training).
* ``"mf"``: :math:`s_N = 1/N`, learning rate :math:`\eta N`. Every neuron moves by
  :math:`O(1)` in the time :math:`t = \text{steps}\times\eta`, so the relative weight change
  and the relative kernel change stay :math:`O(1)` (mean-field, or feature-learning, regime).

This package measures those two relative changes over a ladder of widths with an ensemble of
networks per width (:func:`width_sweep`, with the held-out loss along training), repeats the
sweep on independent data sets so that every fitted slope comes with its spread
(:func:`replicate_sweeps`), splits the held-out-loss gap between the scalings into what the
random initial function costs and what feature learning gains (:func:`gap_decomposition`,
with the antisymmetric initialisation of :func:`init_network`), records the neurons of one
network in the plane for the particle picture (:func:`particle_trajectory`), and draws the
chapter's figures. The predicted slopes are in :func:`predicted_slope`; for the kernel they are
heuristic counts, and the measured values are quoted there.

* Sweeps: :func:`width_sweep`, :func:`replicate_sweeps`, :func:`dataset_seeds`,
  :func:`gap_decomposition`, :func:`particle_trajectory`.
* Networks and kernels: :func:`init_network`, :func:`function_space_kernel`,
  :func:`frobenius_relative_change`, :func:`output_scale`, :func:`predicted_slope`.
* Figures: :func:`plot_loss_curves`, :func:`plot_width_scaling`, :func:`plot_slope_spread`,
  :func:`plot_test_loss`, :func:`plot_particles`, :func:`plot_training`.

Introduced in the book in ``book/01_lazy_vs_meanfield.ipynb``.

References
----------
Jacot, Gabriel & Hongler (2018), "Neural Tangent Kernel", NeurIPS, arXiv:1806.07572, Thm. 2.
Lee et al. (2019), "Wide neural networks of any depth evolve as linear models under gradient
descent", NeurIPS, arXiv:1902.06720, Thm. 2.1 (weights and kernel move by :math:`O(N^{-1/2})`).
Chizat, Oyallon & Bach (2019), "On lazy training in differentiable programming", NeurIPS,
arXiv:1812.07956, Sec. 2 (the scale of the output decides lazy versus non-lazy).
Mei, Montanari & Nguyen (2018), "A mean field view of the landscape of two-layer neural
networks", PNAS, arXiv:1804.06561, Eqs. (1)-(7) (the :math:`1/N` scaling and the particle PDE).
Chizat & Bach (2018), "On the global convergence of gradient descent for over-parameterized
models using optimal transport", NeurIPS, arXiv:1805.09545 (particles as a measure).
"""
# Sweeps and their results
from ._init import function_space_kernel as function_space_kernel
from ._init import init_network as init_network
from ._particles import ParticleTrajectory as ParticleTrajectory
from ._particles import particle_trajectory as particle_trajectory
from ._plots import plot_loss_curves as plot_loss_curves
from ._plots import plot_particles as plot_particles
from ._plots import plot_slope_spread as plot_slope_spread
from ._plots import plot_test_loss as plot_test_loss
from ._plots import plot_training as plot_training
from ._plots import plot_width_scaling as plot_width_scaling
from ._replicates import GapDecomposition as GapDecomposition
from ._replicates import SweepReplicates as SweepReplicates
from ._replicates import dataset_seeds as dataset_seeds
from ._replicates import gap_decomposition as gap_decomposition
from ._replicates import replicate_sweeps as replicate_sweeps
from ._sweep import ACTIVATIONS as ACTIVATIONS
from ._sweep import INITS as INITS
from ._sweep import PARAMETRIZATIONS as PARAMETRIZATIONS
from ._sweep import QUANTITIES as QUANTITIES
from ._sweep import WidthSweep as WidthSweep
from ._sweep import frobenius_relative_change as frobenius_relative_change
from ._sweep import output_scale as output_scale
from ._sweep import predicted_slope as predicted_slope
from ._sweep import width_sweep as width_sweep

__all__ = [
    "PARAMETRIZATIONS", "QUANTITIES", "ACTIVATIONS", "INITS",
    "WidthSweep", "SweepReplicates", "GapDecomposition", "ParticleTrajectory",
    "predicted_slope", "output_scale", "frobenius_relative_change", "init_network",
    "function_space_kernel", "width_sweep", "replicate_sweeps", "dataset_seeds",
    "gap_decomposition", "particle_trajectory",
    "plot_loss_curves", "plot_width_scaling", "plot_slope_spread", "plot_test_loss",
    "plot_particles", "plot_training",
]
