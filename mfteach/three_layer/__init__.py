r"""Partially-trained three-layer networks in the mean-field limit: the chapter module of
``book/03_three_layer.ipynb``.

Chen, Vanden-Eijnden & Bruna, "A Functional-Space Mean-Field Theory of Partially-Trained
Three-Layer Neural Networks" (arXiv:2210.16286; JMLR 27(52), 2026). A random, frozen first
layer of :math:`m_1` features :math:`\phi_j(x) = \sigma_1(\theta_j^\top x)` feeds :math:`m_2`
trained neurons :math:`h_i = m_1^{-\alpha}\sum_j z_{ij}\phi_j`, each a *function* in the RKHS of
:math:`k_1`, and the output :math:`f = m_2^{-\beta}\sum_i c_i\sigma_2(h_i)`. Gradient flow is a
kernel gradient flow with a time-varying kernel :math:`K_t` that stays positive definite
(Schur's product theorem), so the training loss decays at a linear rate; under both mean-field
scalings the neurons move by :math:`O(1)` (feature learning), under the NTK scaling they freeze.

The explicit exponents and learning rates are our reconstruction from the abstracts (see
``mfteach/three_layer/_model.py``); quantities marked [REC] reconstruct the *kind* of norm
the paper's Rademacher bound uses, not its theorem.

The formulas the functions refer to. The ReLU random-feature kernel (:func:`feature_kernel`),
with :math:`\cos\vartheta = x^\top x'/(\|x\|\|x'\|)`,

.. math::
    :label: tl-k1

    k_1(x, x') = \mathbb{E}_\theta[\sigma_1(\theta^\top x)\sigma_1(\theta^\top x')]
    = \|x\|\|x'\|\,\frac{\sin\vartheta + (\pi - \vartheta)\cos\vartheta}{2\pi}.

The tangent kernel of the flow (:func:`tangent_kernel`), with
:math:`\hat k_1 = \frac1{m_1}\sum_j\phi_j(x)\phi_j(x')`,

.. math::
    :label: tl-kernel

    K_t(x, x') = \frac1{m_2}\sum_i\sigma_2(h_i(x))\sigma_2(h_i(x'))
    + \Big[\frac1{m_2}\sum_i c_i^2\,\sigma_2'(h_i(x))\sigma_2'(h_i(x'))\Big]\hat k_1(x, x'),

its Schur lower bound (:func:`schur_bound`),

.. math::
    :label: tl-schur

    \lambda_{\min}(K_t) \ge \lambda_{\min}(\hat k_1)\,\min_n\frac1{m_2}\sum_i c_i^2\,
    \sigma_2'(h_i(x_n))^2,

and the loss bound that follows (:attr:`History.loss_bound`), with
:math:`\underline\lambda(t) = \inf_{s\le t}\lambda_{\min}(K_s)`,

.. math::
    :label: tl-loss-bound

    L(t) \le L(0)\exp\big(-2\underline\lambda(t)\,t/N\big).

* Model: ``SCALINGS``, :class:`Scaling`, :func:`get_scaling`, :class:`ThreeLayer`,
  :func:`init_three_layer`, :func:`features`, :func:`neurons`, :func:`network_output`.
* Kernels: :func:`feature_kernel` (closed form), :func:`random_feature_kernel`,
  :class:`KernelParts`, :func:`kernel_parts`, :func:`tangent_kernel`, :func:`schur_bound`,
  :func:`empirical_ntk` (autograd).
* Data: ``TARGETS``, :func:`target_function`, :func:`sphere_data`, :func:`great_circle`.
* Training: :class:`History`, :func:`train`, ``LIPSCHITZ``.
* Experiments: :func:`run`, :func:`slice_target`, :class:`RateFit`, :func:`fit_log_rate`,
  :func:`algebraic_r2`, :class:`MovementSweep`, :func:`movement_sweep`.
* Sweeps: :class:`NeuronCovariance`, :func:`neuron_covariance`, :class:`NeuronLimit`,
  :func:`neuron_limit`, ``VARIANTS``, ``DEFAULT_DT``, :class:`GeneralizationSweep`,
  :func:`generalization_sweep`.
* Plots: :func:`plot_loss`, :func:`plot_kernel_eigenvalues`, :func:`plot_neurons`,
  :func:`plot_training`, :func:`plot_movement`, :func:`plot_neuron_limit`,
  :func:`plot_generalization`, :func:`plot_norms`.
"""

# Data
from ._data import TARGETS as TARGETS
from ._data import great_circle as great_circle
from ._data import sphere_data as sphere_data
from ._data import target_function as target_function

# Experiments
from ._experiments import MovementSweep as MovementSweep
from ._experiments import RateFit as RateFit
from ._experiments import algebraic_r2 as algebraic_r2
from ._experiments import fit_log_rate as fit_log_rate
from ._experiments import movement_sweep as movement_sweep
from ._experiments import run as run
from ._experiments import slice_target as slice_target

# Kernels
from ._kernels import KernelParts as KernelParts
from ._kernels import empirical_ntk as empirical_ntk
from ._kernels import feature_kernel as feature_kernel
from ._kernels import kernel_parts as kernel_parts
from ._kernels import random_feature_kernel as random_feature_kernel
from ._kernels import schur_bound as schur_bound
from ._kernels import tangent_kernel as tangent_kernel

# Model
from ._model import SCALINGS as SCALINGS
from ._model import Scaling as Scaling
from ._model import ThreeLayer as ThreeLayer
from ._model import features as features
from ._model import get_scaling as get_scaling
from ._model import init_three_layer as init_three_layer
from ._model import network_output as network_output
from ._model import neurons as neurons

# Plots
from ._plots import COLORS as COLORS
from ._plots import LABELS as LABELS
from ._plots import plot_generalization as plot_generalization
from ._plots import plot_kernel_eigenvalues as plot_kernel_eigenvalues
from ._plots import plot_loss as plot_loss
from ._plots import plot_movement as plot_movement
from ._plots import plot_neuron_limit as plot_neuron_limit
from ._plots import plot_neurons as plot_neurons
from ._plots import plot_norms as plot_norms
from ._plots import plot_training as plot_training

# Sweeps
from ._sweeps import DEFAULT_DT as DEFAULT_DT
from ._sweeps import VARIANTS as VARIANTS
from ._sweeps import GeneralizationSweep as GeneralizationSweep
from ._sweeps import NeuronCovariance as NeuronCovariance
from ._sweeps import NeuronLimit as NeuronLimit
from ._sweeps import generalization_sweep as generalization_sweep
from ._sweeps import neuron_covariance as neuron_covariance
from ._sweeps import neuron_limit as neuron_limit

# Training
from ._train import LIPSCHITZ as LIPSCHITZ
from ._train import History as History
from ._train import train as train

__all__ = [
    "SCALINGS", "Scaling", "get_scaling", "ThreeLayer", "init_three_layer", "features",
    "neurons", "network_output",
    "feature_kernel", "random_feature_kernel", "KernelParts", "kernel_parts",
    "tangent_kernel", "schur_bound", "empirical_ntk",
    "TARGETS", "target_function", "sphere_data", "great_circle",
    "History", "train", "LIPSCHITZ",
    "run", "slice_target", "RateFit", "fit_log_rate", "algebraic_r2", "MovementSweep",
    "movement_sweep",
    "NeuronCovariance", "neuron_covariance", "NeuronLimit", "neuron_limit", "VARIANTS",
    "DEFAULT_DT", "GeneralizationSweep", "generalization_sweep",
    "plot_loss", "plot_kernel_eigenvalues", "plot_neurons", "plot_training", "plot_movement",
    "plot_neuron_limit", "plot_generalization", "plot_norms", "COLORS", "LABELS",
]
