r"""The two-timescale kernel view of mean-field Langevin dynamics: the chapter module of
``book/05_two_timescale.ipynb``.

Takakura & Suzuki, "Mean-field Analysis on Two-layer Neural Networks from a Kernel
Perspective", ICML 2024 (PMLR 235), arXiv:2403.14917. A two-layer network
:math:`f(x) = \int a(w)\tanh(u^\top x + b)\,d\mu(w)` is trained on two timescales: the second
layer is solved exactly at every step (kernel ridge regression with the *intrinsic kernel*
:math:`k_\mu(x, x') = \mathbb{E}_\mu[h(x; w)h(x'; w)]`), which leaves the first layer the
objective :math:`U(\mu) = \frac{\bar\lambda_a}{2}Y^\top(\hat\Sigma_\mu +
n\bar\lambda_a I)^{-1}Y` plus weight decay, convex in :math:`\mu`. Mean-field Langevin dynamics
of the particles (temperature :math:`\lambda`, the same :math:`\lambda` as the regulariser's
multiplier: :math:`\bar\lambda_a = \lambda\lambda_a`, :math:`\bar\lambda_w = \lambda\lambda_w`,
prior :math:`N(0, I/\lambda_w)`) converges at a linear rate; the learned kernel aligns with
the target (kernel alignment :math:`\hat A`, parameter alignment :math:`P`); label noise added
to the second layer's fit penalises the degrees of freedom :math:`d_{\bar\lambda_a}(\mu)`.

* Model: ``TARGETS``, ``METHODS``, :func:`target_function`,
  :func:`relevant_directions`, :class:`Data`, :func:`make_data`, :func:`init_particles`,
  :func:`features`, :func:`intrinsic_kernel`, :class:`Ridge`, :func:`ridge`,
  :func:`regularized_risk`, :func:`first_variation`, :func:`kernel_alignment`,
  :func:`parameter_alignment`.
* Dynamics: :class:`History`, :func:`langevin_drift`, :func:`langevin_step`, :func:`train`.
* Experiments: :func:`run`, :class:`RateFit`, :func:`fit_linear_rate`,
  :class:`AlignmentScaling`, :func:`initial_alignment`, :class:`KernelComparison`,
  :func:`kernel_comparison`, :class:`DiscretisationSweep`, :func:`time_discretisation`,
  :func:`particle_discretisation`, :class:`LabelNoiseCheck`, :func:`label_noise_identity`.
* Mixtures: :class:`MixtureCheck`, :func:`convexity_along_mixture`.
* Plots: ``COLORS``, :func:`plot_training`, :func:`plot_alignment_scaling`,
  :func:`plot_kernel_comparison`, :func:`plot_dof`, :func:`plot_discretisation`,
  :func:`plot_mixture`.

Verified
--------
Checked numerically in ``tests/test_two_timescale.py`` (facts of ``shared/papers.md``,
Paper 3):

* [SRC] :math:`U(\mu) = \frac{\bar\lambda_a}{2}Y^\top(\hat\Sigma_\mu + n\bar\lambda_a
  I)^{-1}Y` and :math:`a_\mu` agree with the primal ridge problem solved by its own normal
  equations (to ulps times the condition number); Woodbury (:math:`N \times N`) equals the
  :math:`n \times n` route, weighted particles included.
* [SRC] the first variation :math:`-\frac{\bar\lambda_a}{2}a_\mu^2 + \frac{\bar\lambda_w}{2}
  \|w\|^2`: against central differences of :math:`G` along a particle and along a mixture;
  [DER] its :math:`w`-gradient equals :math:`-N\,\partial G(\mu_W)/\partial w_i` computed by
  autograd through the Cholesky solve (envelope theorem), so the drift is right.
* [SRC] convexity of :math:`G` along mixtures (midpoint and second differences).
* [DER] degrees-of-freedom constant: **1/6, not** :math:`\bar\lambda_a/6`. Monte Carlo
  (20 000 draws, 3 data sets, :math:`\sigma = 0.8`, :math:`\bar\lambda_a = 10^{-2}`) of the
  directly computed objectives matches :math:`U + \frac{\sigma^2}{6n}d` (procedure) and
  :math:`U + \frac{\sigma^2}{6} - \frac{\sigma^2}{6n}d` (intrinsic noise) within 1.8 standard
  errors, and refutes the printed constant by more than 100 standard errors. The procedure
  is read as: the clean-label objective differentiated *through* the second layer fitted on
  noisy labels (as autograd does); only this reading gives the penalty in expectation, and
  the expected drift equals the drift of :math:`G + \frac{\tilde\sigma^2}{6n}d` (Monte Carlo,
  every entry). Differentiating with the noisy second layer held fixed would instead give
  :math:`\frac{\tilde\sigma^2}{n}\log\det(\hat\Sigma + n\bar\lambda_a I) -
  \frac{\tilde\sigma^2}{6n}d` (our derivation, not used).
* [SRC] Thm 5.4 levels at initialisation: fitted slopes against :math:`d \in \{8, 16, 32,
  64\}` of :math:`\hat A(\mu_0)`: :math:`-0.557 \pm 0.04` (seed sd; odd features without
  bias, target :math:`\tanh(2x_1)`) and of :math:`P(\mu_0)`: :math:`-1.027 \pm 0.02`
  (exactly :math:`k/d` in expectation). With a bias the :math:`x_1x_2` target has no
  :math:`d^{-1/2}` level (its slope is :math:`+0.18 \pm 0.12`: the kernel's even part).
* [SRC] Fig. 1/2 directions: intrinsic noise raises :math:`d_{\bar\lambda_a}` (final means
  23.8, 24.4, 24.6 for :math:`\sigma = 0, 0.5, 1`); the label-noise procedure with
  :math:`\tilde\sigma = 1` lowers it for every seed (23.8 to 21.8).
* [SRC] Thm 3.7 rates, as biases of the stationary objective (5 data sets, spread = sd of
  per-data-set slopes). :math:`O(\eta)`: coupled Euler-Maruyama levels (shared Brownian
  increments, 16 chains), :math:`\mathbb{E}_\eta G - \mathbb{E}_{\eta/2}G` at
  :math:`\eta = 0.1, 0.05, 0.025` (:math:`\lambda = 0.2, \lambda_a = 0.5, \lambda_w = 2.5`):
  slopes :math:`1.034 \pm 0.031` (seeds 1, 2: 1.01, 1.02 mean), 30-55 standard errors per
  level, 3 s; without the data term the bias equals the Ornstein-Uhlenbeck closed form
  :math:`d'\tau[1/(2-\eta\bar\lambda_w) - 1/(2-\eta\bar\lambda_w/2)]`. An earlier pathwise
  test failed because :math:`\eta L` reached 1.8, the drift had expanding directions (+0.48)
  and the chains were far from stationary. :math:`O(1/N)`: a :math:`2N`-particle system
  coupled to its two :math:`N`-particle halves, :math:`\mathbb{E}_N G - \mathbb{E}_{2N}G` at
  :math:`N = 8, 16, 32`: slopes :math:`-0.998 \pm 0.12` (seeds 1, 2: -0.94, -1.00 mean), 4 s;
  uncoupled runs drown the bias in the :math:`O(N^{-1/2})` noise of :math:`G`.
* [SRC] Linear convergence of the law: :math:`U` averaged over 32 chains per data set
  (floor lowered by :math:`\sqrt{32}`) decays log-linearly from :math:`t = 4` to 5 times the
  floor, rate :math:`0.144 \pm 0.024` with :math:`R^2` 0.97-0.98 (one chain: 0.74-0.89);
  the local rate slows from 0.16 to 0.10, towards :math:`2\bar\lambda_w`.
* [DER] temperature: with the data term negligible the particles' second moment is the
  Euler-Maruyama Ornstein-Uhlenbeck value :math:`2\tau d'/(\bar\lambda_w(2-\eta
  \bar\lambda_w))`, proportional to :math:`\tau` (Monte Carlo, :math:`\tau = \lambda/4,
  \lambda, 4\lambda`); :math:`\tau = 0` is deterministic.
"""

# Experiments
from ._experiments import AlignmentScaling as AlignmentScaling
from ._experiments import DiscretisationSweep as DiscretisationSweep
from ._experiments import KernelComparison as KernelComparison
from ._experiments import LabelNoiseCheck as LabelNoiseCheck
from ._experiments import RateFit as RateFit
from ._experiments import fit_linear_rate as fit_linear_rate
from ._experiments import initial_alignment as initial_alignment
from ._experiments import kernel_comparison as kernel_comparison
from ._experiments import label_noise_identity as label_noise_identity
from ._experiments import particle_discretisation as particle_discretisation
from ._experiments import run as run
from ._experiments import time_discretisation as time_discretisation

# Dynamics
from ._langevin import History as History
from ._langevin import langevin_drift as langevin_drift
from ._langevin import langevin_step as langevin_step
from ._langevin import train as train

# Mixtures
from ._mixture import MixtureCheck as MixtureCheck
from ._mixture import convexity_along_mixture as convexity_along_mixture

# Model
from ._model import METHODS as METHODS
from ._model import TARGETS as TARGETS
from ._model import Data as Data
from ._model import Ridge as Ridge
from ._model import features as features
from ._model import first_variation as first_variation
from ._model import init_particles as init_particles
from ._model import intrinsic_kernel as intrinsic_kernel
from ._model import kernel_alignment as kernel_alignment
from ._model import make_data as make_data
from ._model import parameter_alignment as parameter_alignment
from ._model import regularized_risk as regularized_risk
from ._model import relevant_directions as relevant_directions
from ._model import ridge as ridge
from ._model import target_function as target_function

# Plots
from ._plots import COLORS as COLORS
from ._plots import plot_alignment_scaling as plot_alignment_scaling
from ._plots import plot_discretisation as plot_discretisation
from ._plots import plot_dof as plot_dof
from ._plots import plot_kernel_comparison as plot_kernel_comparison
from ._plots import plot_mixture as plot_mixture
from ._plots import plot_training as plot_training

__all__ = [
    "TARGETS", "METHODS", "target_function", "relevant_directions", "Data", "make_data",
    "init_particles", "features", "intrinsic_kernel", "Ridge", "ridge", "regularized_risk",
    "first_variation", "kernel_alignment", "parameter_alignment",
    "History", "langevin_drift", "langevin_step", "train",
    "run", "RateFit", "fit_linear_rate", "AlignmentScaling", "initial_alignment",
    "KernelComparison", "kernel_comparison", "DiscretisationSweep", "time_discretisation",
    "particle_discretisation", "LabelNoiseCheck", "label_noise_identity",
    "MixtureCheck", "convexity_along_mixture",
    "COLORS", "plot_training", "plot_alignment_scaling", "plot_kernel_comparison", "plot_dof",
    "plot_discretisation", "plot_mixture",
]
