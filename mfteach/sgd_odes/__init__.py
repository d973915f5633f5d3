r"""One-pass SGD in two-layer networks and its ODEs (chapter 04).

Arnaboldi, Stephan, Krzakala, Loureiro (2023), "From high-dimensional & mean-field dynamics
to dimensionless ODEs: a unifying approach to SGD in two-layers networks", arXiv 2302.05882.

Set-up: :math:`x \sim N(0, I_d/d)`; student :math:`f(x) = \frac1p\sum_{i=1}^p
\sigma(w_i\cdot x)` (second layer fixed at 1); teacher :math:`y = \frac1k\sum_{r=1}^k
\sigma(w^*_r\cdot x) + \sqrt\Delta z`; loss :math:`\frac12(f - y)^2`; one-pass SGD with raw
learning rate :math:`\gamma`; time :math:`t = \nu\gamma/(pd)`. Activations ``"erf_sqrt2"``
(:math:`\operatorname{erf}(u/\sqrt2)`, the paper's "erf"; the name ``"erf"`` is plain erf
everywhere else in mfteach and is accepted here only as a legacy alias) and ``"square"``
(:math:`u^2`).

* Overlaps and risk: :func:`overlaps`, :func:`population_risk`, :func:`teacher_cosines`.
* The high-dimensional / gradient-flow ODE: :func:`ode_rhs`, :func:`psi_terms` (and its Monte
  Carlo twin :func:`psi_samples`), :func:`solve_ode`.
* The mean-field reduced ODE: :func:`mf_rhs`, :func:`mf_risk`, :func:`solve_mf_ode`.
* The chapter's experiments: :func:`ode_vs_sgd`, :func:`gap_vs_scale`,
  :func:`near_plateau`, :func:`specialization`, :func:`mean_field_vs_sgd`,
  :func:`noise_floor`, :func:`limits_triangle`.
* Batched one-pass SGD: :func:`init_weights`, :func:`weights_from_overlaps`,
  :func:`simulate_sgd`.
* Scaling with :math:`\sqrt{\gamma/(pd)}`: :func:`dimension_independence`,
  :func:`gap_collapse` (from :func:`default_overlaps`), :func:`plot_dimension_independence`,
  :func:`plot_gap_collapse`.
* The noise floor in closed form: :func:`noise_floor_theory` (checked by
  :func:`linearised_floor`), against the ODE's stationary point (:func:`noise_floor_grid`)
  and SGD (:func:`noise_floor_sgd`); :func:`plot_noise_floor_theory`.
* The plateau as a saddle: its unstable rate :func:`plateau_rate`, escape times
  :func:`plateau_escape` and the plateau from random weights :func:`plateau_from_random`
  against the law :math:`t = \log(1/\epsilon)/\lambda + c`; :func:`plot_plateau_escape`,
  :func:`plot_plateau_from_random`.
* The mean-field limit measured: the reduced ODE's error against p
  (:func:`mean_field_error`), the high-dimensional mean field of the paper's Fig. 3 right
  (:func:`high_d_mean_field`), the cosines' law (:func:`cosine_histogram`,
  :func:`cosine_density`); :func:`plot_mean_field_error`, :func:`plot_high_d_mean_field`,
  :func:`plot_cosine_histogram`.
"""

# Experiments of the chapter; overlaps and initialisation
from ._experiments import GapScan as GapScan
from ._experiments import NoiseFloor as NoiseFloor
from ._experiments import gap_vs_scale as gap_vs_scale
from ._experiments import limits_triangle as limits_triangle
from ._experiments import mean_field_vs_sgd as mean_field_vs_sgd
from ._experiments import near_plateau as near_plateau
from ._experiments import noise_floor as noise_floor
from ._experiments import ode_vs_sgd as ode_vs_sgd
from ._experiments import perpendicular_q as perpendicular_q
from ._experiments import specialization as specialization

# The noise floor at the teacher: closed form, the ODE's stationary point, SGD
from ._floor import NoiseFloorGrid as NoiseFloorGrid
from ._floor import NoiseFloorSGD as NoiseFloorSGD
from ._floor import linearised_floor as linearised_floor
from ._floor import noise_floor_grid as noise_floor_grid
from ._floor import noise_floor_sgd as noise_floor_sgd
from ._floor import noise_floor_theory as noise_floor_theory
from ._floor import plot_noise_floor_theory as plot_noise_floor_theory

# The mean-field limit: its error against p, the high-d mean field, the cosines' law
from ._mean_field import CosineHistogram as CosineHistogram
from ._mean_field import HighDMeanField as HighDMeanField
from ._mean_field import MeanFieldError as MeanFieldError
from ._mean_field import cosine_density as cosine_density
from ._mean_field import cosine_histogram as cosine_histogram
from ._mean_field import high_d_mean_field as high_d_mean_field
from ._mean_field import mean_field_error as mean_field_error
from ._overlaps import Overlaps as Overlaps
from ._overlaps import init_weights as init_weights
from ._overlaps import omega as omega
from ._overlaps import overlaps as overlaps
from ._overlaps import plateau_overlaps as plateau_overlaps
from ._overlaps import plateau_risk as plateau_risk
from ._overlaps import teacher_cosines as teacher_cosines
from ._overlaps import weights_from_overlaps as weights_from_overlaps

# The plateau: its unstable rate, escape times, from random weights
from ._plateau import LogLawFit as LogLawFit
from ._plateau import PlateauEscape as PlateauEscape
from ._plateau import plateau_escape as plateau_escape
from ._plateau import plateau_rate as plateau_rate
from ._plateau_random import PlateauFromRandom as PlateauFromRandom
from ._plateau_random import plateau_from_random as plateau_from_random

# Figures
from ._plots import plot_cosines as plot_cosines
from ._plots import plot_gap_scaling as plot_gap_scaling
from ._plots import plot_noise_floor as plot_noise_floor
from ._plots import plot_risk_curves as plot_risk_curves
from ._plots_mean_field import plot_cosine_histogram as plot_cosine_histogram
from ._plots_mean_field import plot_high_d_mean_field as plot_high_d_mean_field
from ._plots_mean_field import plot_mean_field_error as plot_mean_field_error
from ._plots_plateau import plot_plateau_escape as plot_plateau_escape
from ._plots_plateau import plot_plateau_from_random as plot_plateau_from_random
from ._plots_scaling import plot_dimension_independence as plot_dimension_independence
from ._plots_scaling import plot_gap_collapse as plot_gap_collapse

# Risk and drift terms
from ._rhs import ACTIVATIONS as ACTIVATIONS
from ._rhs import REGIMES as REGIMES
from ._rhs import Psi as Psi
from ._rhs import mf_omega as mf_omega
from ._rhs import mf_rhs as mf_rhs
from ._rhs import mf_risk as mf_risk
from ._rhs import ode_rhs as ode_rhs
from ._rhs import population_risk as population_risk
from ._rhs import psi_samples as psi_samples
from ._rhs import psi_terms as psi_terms
from ._rhs import xi_quadrature as xi_quadrature

# Scaling experiments: dimension independence, the gap's collapse on gamma/(pd)
from ._scaling import DimensionRuns as DimensionRuns
from ._scaling import GapCollapse as GapCollapse
from ._scaling import default_overlaps as default_overlaps
from ._scaling import dimension_independence as dimension_independence
from ._scaling import gap_collapse as gap_collapse

# Simulation
from ._simulate import SIM_METHODS as SIM_METHODS
from ._simulate import simulate_sgd as simulate_sgd

# ODE integration
from ._solve import SOLVERS as SOLVERS
from ._solve import MFTrajectory as MFTrajectory
from ._solve import Solver as Solver
from ._solve import Trajectory as Trajectory
from ._solve import solve_mf_ode as solve_mf_ode
from ._solve import solve_ode as solve_ode

__all__ = [
    "ACTIVATIONS", "REGIMES", "SIM_METHODS", "SOLVERS",
    "GapScan", "MFTrajectory", "NoiseFloor", "Overlaps", "Psi", "Solver", "Trajectory",
    "gap_vs_scale", "limits_triangle", "mean_field_vs_sgd", "near_plateau", "noise_floor",
    "ode_vs_sgd",
    "perpendicular_q", "plot_gap_scaling", "plot_noise_floor", "specialization",
    "init_weights", "mf_omega", "mf_rhs", "mf_risk", "ode_rhs", "omega", "overlaps",
    "plateau_overlaps", "plateau_risk", "plot_cosines", "plot_risk_curves", "population_risk",
    "psi_samples", "psi_terms",
    "simulate_sgd", "solve_mf_ode", "solve_ode", "teacher_cosines", "weights_from_overlaps",
    "xi_quadrature",
    "DimensionRuns", "GapCollapse", "default_overlaps", "dimension_independence",
    "gap_collapse", "plot_dimension_independence", "plot_gap_collapse",
    "NoiseFloorGrid", "NoiseFloorSGD", "linearised_floor", "noise_floor_grid",
    "noise_floor_sgd", "noise_floor_theory", "plot_noise_floor_theory",
    "LogLawFit", "PlateauEscape", "PlateauFromRandom", "plateau_escape", "plateau_from_random",
    "plateau_rate", "plot_plateau_escape", "plot_plateau_from_random",
    "CosineHistogram", "HighDMeanField", "MeanFieldError", "cosine_density",
    "cosine_histogram", "high_d_mean_field", "mean_field_error", "plot_cosine_histogram",
    "plot_high_d_mean_field", "plot_mean_field_error",
]
