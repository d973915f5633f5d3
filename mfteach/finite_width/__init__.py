r"""Finite width: non-Gaussian outputs at initialisation and the tangent kernel in training.

The chapter module of ``book/02_finite_width.ipynb`` (Carvalho, Costa, Mourão & Oliveira
2023, arXiv 2304.03385). A one-hidden-layer network of width :math:`N` in the NTK
parametrization, :math:`f(x) = N^{-1/2}\sum_i a_i\phi(w_i\cdot x/\sqrt d)`, is a sum of
i.i.d. terms, so its cumulants scale exactly as :math:`\kappa_r \propto N^{1 - r/2}`, and its
law has an Edgeworth expansion in powers of :math:`N^{-1/2}`. During training the tangent
kernel moves by a vanishing amount, and the trained ensemble approaches the initial Gaussian
process pushed through the linear flow of the limiting NTK.

* Sampling: :func:`sample_outputs`, :func:`sample_ntk`, :func:`sample_readout`.
* Cumulants: :func:`k_statistics`, :func:`joint_cumulant4`, :func:`output_cumulants`,
  :func:`fourth_cumulant_tensor`, :func:`cumulant_scaling`; deeper networks:
  :func:`deep_cumulants` (the kernel and vertex recursions, :class:`DeepCumulants`).
* Edgeworth: :func:`edgeworth_density`, :func:`edgeworth_cdf`, :func:`ks_distance`.
* Tangent kernel: :func:`ntk_variance_coefficient`, :func:`ntk_fluctuations`,
  :func:`ntk_drift`, :func:`gp_prediction`, :func:`trained_ensemble`,
  :func:`ensemble_vs_gp`.
"""

# Cumulants: estimates and closed forms
from ._cumulants import Cumulants as Cumulants
from ._cumulants import CumulantScaling as CumulantScaling
from ._cumulants import OutputCumulants as OutputCumulants
from ._cumulants import activation_moment as activation_moment
from ._cumulants import cumulant_scaling as cumulant_scaling
from ._cumulants import fit_weighted_loglog_slope as fit_weighted_loglog_slope
from ._cumulants import fourth_cumulant_tensor as fourth_cumulant_tensor
from ._cumulants import joint_cumulant4 as joint_cumulant4
from ._cumulants import k_statistics as k_statistics
from ._cumulants import output_cumulants as output_cumulants

# Edgeworth expansions and distances
from ._depth import DeepCumulants as DeepCumulants
from ._depth import deep_cumulants as deep_cumulants

# The drift during the whole training; non-Gaussian hidden weights
from ._drift_study import DriftDataset as DriftDataset
from ._drift_study import DriftStudy as DriftStudy
from ._drift_study import ntk_drift_dataset as ntk_drift_dataset
from ._drift_study import ntk_drift_study as ntk_drift_study
from ._edgeworth import edgeworth_cdf as edgeworth_cdf
from ._edgeworth import edgeworth_density as edgeworth_density
from ._edgeworth import hermite_e as hermite_e
from ._edgeworth import ks_distance as ks_distance
from ._hidden import HIDDEN_KAPPA4 as HIDDEN_KAPPA4
from ._hidden import HiddenLawCumulants as HiddenLawCumulants
from ._hidden import hidden_law_cumulants as hidden_law_cumulants

# The tangent kernel at finite width
from ._ntk import EnsembleVsGP as EnsembleVsGP
from ._ntk import GPPrediction as GPPrediction
from ._ntk import NTKDrift as NTKDrift
from ._ntk import NTKFluctuations as NTKFluctuations
from ._ntk import ensemble_vs_gp as ensemble_vs_gp
from ._ntk import gp_prediction as gp_prediction
from ._ntk import ntk_drift as ntk_drift
from ._ntk import ntk_fluctuations as ntk_fluctuations
from ._ntk import ntk_variance_coefficient as ntk_variance_coefficient
from ._ntk import sphere_data as sphere_data
from ._ntk import trained_ensemble as trained_ensemble

# Figures
from ._plots import plot_cumulant_scaling as plot_cumulant_scaling
from ._plots import plot_ensemble_vs_gp as plot_ensemble_vs_gp
from ._plots import plot_ntk_drift as plot_ntk_drift
from ._plots import plot_output_law as plot_output_law
from ._plots_drift import plot_drift_study as plot_drift_study
from ._sampling import HIDDEN_LAWS as HIDDEN_LAWS

# Sampling random networks
from ._sampling import READOUTS as READOUTS
from ._sampling import ReadoutLaw as ReadoutLaw
from ._sampling import readout_law as readout_law
from ._sampling import sample_ntk as sample_ntk
from ._sampling import sample_outputs as sample_outputs
from ._sampling import sample_readout as sample_readout

# The law of the trained ensemble
from ._trained_distance import TrainedDistance as TrainedDistance
from ._trained_distance import empirical_w2 as empirical_w2
from ._trained_distance import trained_distance as trained_distance
from ._trained_distance import two_term_slope as two_term_slope
from ._training_law import PushedCumulants as PushedCumulants
from ._training_law import TrainingCumulants as TrainingCumulants
from ._training_law import pushed_cumulants as pushed_cumulants
from ._training_law import training_cumulants as training_cumulants
from ._training_law_plots import plot_trained_distance as plot_trained_distance
from ._training_law_plots import plot_training_cumulants as plot_training_cumulants

__all__ = [
    "PushedCumulants", "TrainedDistance", "TrainingCumulants", "empirical_w2",
    "pushed_cumulants", "trained_distance", "training_cumulants", "plot_trained_distance",
    "plot_training_cumulants", "two_term_slope",
    "READOUTS", "ReadoutLaw", "readout_law", "sample_ntk", "sample_outputs", "sample_readout",
    "Cumulants", "CumulantScaling", "OutputCumulants", "activation_moment",
    "cumulant_scaling", "fit_weighted_loglog_slope", "fourth_cumulant_tensor",
    "joint_cumulant4", "k_statistics", "output_cumulants", "DeepCumulants", "deep_cumulants",
    "edgeworth_cdf", "edgeworth_density", "hermite_e", "ks_distance",
    "EnsembleVsGP", "GPPrediction", "NTKDrift", "NTKFluctuations", "ensemble_vs_gp",
    "gp_prediction", "ntk_drift", "ntk_fluctuations", "ntk_variance_coefficient",
    "sphere_data", "trained_ensemble",
    "plot_cumulant_scaling", "plot_ensemble_vs_gp", "plot_ntk_drift", "plot_output_law",
    "DriftDataset", "DriftStudy", "ntk_drift_dataset", "ntk_drift_study", "HIDDEN_KAPPA4",
    "HiddenLawCumulants", "hidden_law_cumulants", "plot_drift_study", "HIDDEN_LAWS",
]
