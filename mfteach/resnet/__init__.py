r"""ResNets with linearly parameterised residuals, at finite and infinite depth and width: the
chapter module of ``book/06_resnet.ipynb``.

Barboni, Peyré & Vialard, "On global convergence of ResNets: From finite to infinite width
using linear parameterization" (NeurIPS 2022, arXiv:2112.05531; code ``rbarboni/FlowResNets``).
The network is a discretised neural ODE on :math:`[0, 1]`,
:math:`x_{l+1} = x_l + \frac1L U_l\phi(x_l)`, with fixed random features :math:`\phi` and
trained :math:`U_l`, zero at initialisation (the identity map). As :math:`M \to \infty` the
residual lives in the RKHS of the feature kernel, and as :math:`L \to \infty` the blocks become
a velocity field in :math:`L^2([0, 1]; \mathcal{H})`. The paper proves a local
Polyak-Łojasiewicz inequality, hence linear convergence of gradient descent near
initialisation, under an expressivity condition: the feature Gram at the data is uniformly
positive definite, which needs :math:`M \ge N` features (the Gram has rank at most :math:`M`).

Formulas referred to by the functions below (derived in ``book/06_resnet.ipynb``; the paper's
constants are not available to us). With :math:`R` the :math:`N\times d` residuals,
:math:`K_M = \Phi\Phi^\top` the feature Gram at the lifted data, the PL ratio at
initialisation (both schemes) is

.. math::
    :label: rn-pl0

    \frac{\|\nabla\mathcal{L}\|^2}{\mathcal{L}} = \frac{2}{LN}\,
    \frac{\operatorname{tr}(R^\top K_M R)}{\|R\|_F^2} \;\ge\; \frac{2\lambda_{\min}(K_M)}{LN};

along training (Euler blocks), with :math:`K_M(x_l)` the Gram at the moving states and
:math:`s_l = \min_n\sigma_{\min}(BJ_{n,l})` for the flow's Jacobians
:math:`J_{n,l} = \partial x_{n,L}/\partial x_{n,l}`,

.. math::
    :label: rn-pl-bound

    \frac{\|\nabla\mathcal{L}\|^2}{\mathcal{L}} \;\ge\; \frac{2}{L^2N}\sum_{l=0}^{L-1}
    \lambda_{\min}\big(K_M(x_l)\big)\,s_{l+1}^2 ;

and the network linearised at :math:`U = 0` (the lazy prediction), with the eigenpairs
:math:`(\lambda_i, v_i)` of :math:`K_M`, trains as

.. math::
    :label: rn-lazy

    \mathcal{L}_k = \frac1{2N}\sum_i\Big(1 - \frac{\eta\lambda_i}{LN}\Big)^{2k}
    \|v_i^\top R_0\|^2 , \qquad
    \rho = -2\log\Big(1 - \frac{\eta\lambda_{\min}}{LN}\Big),
    \qquad \mathcal{L}_\infty = \frac1{2N}\|P_{\ker K_M}R_0\|_F^2 .

* Features and kernels: ``FAMILIES``, :class:`RandomFeatures`, :func:`draw_features`,
  :func:`feature_map`, :func:`feature_gram`, :func:`gaussian_kernel`, :func:`matern_kernel`,
  :func:`relu_kernel`, :func:`feature_kernel`.
* Model: ``SCHEMES``, ``ORDER``, ``MODELS`` (``"rkhs"``, ``"shl"``), :class:`ResNet`,
  :func:`init_resnet`, :func:`lift`, :func:`project`, :func:`trajectories`,
  :func:`resnet_output`.
* Training: ``TARGETS``, :func:`toy_data`, :class:`History`, :func:`train`,
  :class:`RateFit`, :func:`fit_log_rate`.
* The PL inequality and the lazy limit: :class:`PLBound`, :func:`pl_lower_bound`,
  :class:`PLTrace`, :func:`pl_trace`, :class:`LazyPrediction`, :func:`lazy_prediction`.
* The infinite-width limit of training (function-space gradient descent with the exact
  kernel): :class:`KernelResNet`, :func:`train_kernel_limit`, :class:`KernelHistory`,
  :func:`kernel_velocity`, :func:`kernel_trajectories`, :func:`kernel_resnet_output`,
  :class:`WidthLimit`, :func:`width_limit`.
* Real data (scikit-learn's 8x8 digits, the RKHS ResNet against the SHL baseline with both
  residual layers trained): :func:`digits_data`, :func:`init_digits_net`,
  :func:`digits_logits`, :func:`train_digits`, :func:`digits_comparison` and their classes;
  ``MNIST_REFERENCE`` holds the authors' stored MNIST results.
* Figures: :func:`plot_gram_spectrum`, :func:`plot_width_sweep`, :func:`plot_training`,
  :func:`plot_depth_convergence`, :func:`plot_flow`, :func:`plot_width_limit`,
  :func:`plot_pl_trace`, :func:`plot_digits` (colours ``COLORS``).
* Experiments: :func:`gram_spectrum`, :func:`width_sweep`, :func:`depth_convergence`,
  :func:`flow_grid` and their result classes.
"""

# Features and kernels
# Experiments
# Real data: scikit-learn's 8x8 digits
from ._digits import DIGITS_FULL as DIGITS_FULL
from ._digits import DIGITS_N as DIGITS_N
from ._digits import MNIST_REFERENCE as MNIST_REFERENCE
from ._digits import DigitsData as DigitsData
from ._digits import DigitsHistory as DigitsHistory
from ._digits import DigitsNet as DigitsNet
from ._digits import digits_data as digits_data
from ._digits import digits_logits as digits_logits
from ._digits import init_digits_net as init_digits_net
from ._digits import train_digits as train_digits
from ._digits_comparison import DigitsComparison as DigitsComparison
from ._digits_comparison import digits_comparison as digits_comparison
from ._experiments import DepthConvergence as DepthConvergence
from ._experiments import FlowGrid as FlowGrid
from ._experiments import GramSpectrum as GramSpectrum
from ._experiments import WidthSweep as WidthSweep
from ._experiments import depth_convergence as depth_convergence
from ._experiments import flow_grid as flow_grid
from ._experiments import gram_spectrum as gram_spectrum
from ._experiments import width_sweep as width_sweep
from ._features import FAMILIES as FAMILIES
from ._features import RandomFeatures as RandomFeatures
from ._features import draw_features as draw_features
from ._features import feature_gram as feature_gram
from ._features import feature_kernel as feature_kernel
from ._features import feature_map as feature_map
from ._features import gaussian_kernel as gaussian_kernel
from ._features import matern_kernel as matern_kernel
from ._features import relu_kernel as relu_kernel

# The infinite-width (RKHS) limit
from ._kernel_limit import KernelHistory as KernelHistory
from ._kernel_limit import KernelResNet as KernelResNet
from ._kernel_limit import kernel_resnet_output as kernel_resnet_output
from ._kernel_limit import kernel_trajectories as kernel_trajectories
from ._kernel_limit import kernel_velocity as kernel_velocity
from ._kernel_limit import train_kernel_limit as train_kernel_limit

# Model
from ._model import MODELS as MODELS
from ._model import ORDER as ORDER
from ._model import SCHEMES as SCHEMES
from ._model import ResNet as ResNet
from ._model import init_resnet as init_resnet
from ._model import lift as lift
from ._model import project as project
from ._model import resnet_output as resnet_output
from ._model import trajectories as trajectories

# The PL inequality and the lazy limit
from ._pl import LazyPrediction as LazyPrediction
from ._pl import PLBound as PLBound
from ._pl import PLTrace as PLTrace
from ._pl import lazy_prediction as lazy_prediction
from ._pl import pl_lower_bound as pl_lower_bound
from ._pl import pl_trace as pl_trace

# Figures
from ._plots import COLORS as COLORS
from ._plots import plot_depth_convergence as plot_depth_convergence
from ._plots import plot_flow as plot_flow
from ._plots import plot_gram_spectrum as plot_gram_spectrum
from ._plots import plot_training as plot_training
from ._plots import plot_width_sweep as plot_width_sweep
from ._plots_experiments import plot_digits as plot_digits
from ._plots_experiments import plot_pl_trace as plot_pl_trace
from ._plots_experiments import plot_width_limit as plot_width_limit

# Training
from ._train import TARGETS as TARGETS
from ._train import History as History
from ._train import RateFit as RateFit
from ._train import fit_log_rate as fit_log_rate
from ._train import toy_data as toy_data
from ._train import train as train
from ._width_limit import WidthLimit as WidthLimit
from ._width_limit import width_limit as width_limit

__all__ = [
    "FAMILIES", "RandomFeatures", "draw_features", "feature_map", "feature_gram",
    "gaussian_kernel", "matern_kernel", "relu_kernel", "feature_kernel",
    "SCHEMES", "ORDER", "MODELS", "ResNet", "init_resnet", "lift", "project", "trajectories",
    "resnet_output",
    "TARGETS", "toy_data", "History", "train", "RateFit", "fit_log_rate",
    "PLBound", "pl_lower_bound", "PLTrace", "pl_trace", "LazyPrediction", "lazy_prediction",
    "GramSpectrum", "gram_spectrum", "WidthSweep", "width_sweep", "DepthConvergence",
    "depth_convergence", "FlowGrid", "flow_grid",
    "KernelResNet", "kernel_velocity", "kernel_trajectories", "kernel_resnet_output",
    "KernelHistory", "train_kernel_limit", "WidthLimit", "width_limit",
    "DIGITS_N", "DIGITS_FULL", "MNIST_REFERENCE", "DigitsData", "digits_data", "DigitsNet",
    "init_digits_net", "digits_logits", "DigitsHistory", "train_digits", "DigitsComparison",
    "digits_comparison",
    "COLORS", "plot_gram_spectrum", "plot_width_sweep", "plot_training",
    "plot_depth_convergence", "plot_flow", "plot_width_limit", "plot_pl_trace",
    "plot_digits",
]
