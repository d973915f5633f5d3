"""mfteach: run the theory of wide neural networks.

The compute package behind the mfteach book. Core modules (``gaussian``, ``activations``,
``kernels``, ``models``, ``training``, ``plotting``, ``stats``) hold the shared maths; one module
per chapter builds on them (``lazy_vs_meanfield`` for the introduction); ``mfteach.widgets``
(needs the ``book`` extra) turns chapter functions into ipywidgets.

Examples
--------
>>> import mfteach, torch
>>> x = 3 ** 0.5 * torch.eye(3, dtype=torch.float64)   # |x|^2 = d, orthogonal inputs
>>> K = mfteach.ntk(x, activation="relu", depth=1)      # Theta = 1 and 1/(2 pi)
>>> round(float(K[0, 0]), 6), round(float(K[0, 1]), 6)
(1.0, 0.159155)
"""

__version__ = "0.1.0"

from . import activations as activations
from . import gaussian as gaussian
from . import kernels as kernels
from . import models as models
from . import plotting as plotting
from . import stats as stats
from . import training as training

# Activations
from .activations import ACTIVATIONS as ACTIVATIONS
from .activations import get_activation as get_activation

# Devices, dtypes and randomness
from .device import as_generator as as_generator
from .device import default_device as default_device

# Gaussian expectations
from .gaussian import arccos_kernel as arccos_kernel
from .gaussian import erf_I2 as erf_I2
from .gaussian import erf_I2_noise as erf_I2_noise
from .gaussian import erf_I3 as erf_I3
from .gaussian import erf_I4 as erf_I4

# Kernels
from .kernels import empirical_ntk as empirical_ntk
from .kernels import monte_carlo_kernels as monte_carlo_kernels
from .kernels import nngp as nngp
from .kernels import nngp_and_ntk as nngp_and_ntk
from .kernels import ntk as ntk

# Models and training
from .models import TwoLayer as TwoLayer
from .models import teacher_data as teacher_data

# Statistics shared by chapters and tests
from .stats import MCEstimate as MCEstimate
from .stats import SlopeFit as SlopeFit
from .stats import fit_loglog_slope as fit_loglog_slope
from .stats import mc_estimate as mc_estimate
from .training import DivergenceError as DivergenceError
from .training import History as History
from .training import train as train


def show_source(obj) -> None:
    """Print the source code of a library object (the book shows tested code, not a copy)."""
    import inspect

    print(inspect.getsource(obj))


__all__ = [
    "__version__",
    "ACTIVATIONS",
    "DivergenceError",
    "History",
    "MCEstimate",
    "SlopeFit",
    "TwoLayer",
    "activations",
    "arccos_kernel",
    "as_generator",
    "default_device",
    "empirical_ntk",
    "erf_I2",
    "erf_I2_noise",
    "erf_I3",
    "erf_I4",
    "fit_loglog_slope",
    "gaussian",
    "get_activation",
    "kernels",
    "mc_estimate",
    "models",
    "monte_carlo_kernels",
    "nngp",
    "nngp_and_ntk",
    "ntk",
    "plotting",
    "show_source",
    "stats",
    "teacher_data",
    "train",
    "training",
]
