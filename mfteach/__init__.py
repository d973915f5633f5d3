"""mfteach: run the theory of wide neural networks.

The compute package behind the mfteach book. Core modules (``gaussian``, ``activations``,
``kernels``, ``models``, ``training``, ``plotting``) hold the shared maths; one module per chapter
builds on them; ``mfteach.widgets`` (needs the ``book`` extra) turns chapter functions into
ipywidgets.
"""

__version__ = "0.1.0"

# Devices, dtypes and randomness
from .device import as_generator as as_generator
from .device import default_device as default_device

# Statistics shared by chapters and tests
from .stats import fit_loglog_slope as fit_loglog_slope
from .stats import mc_estimate as mc_estimate

__all__ = [
    "__version__",
    "as_generator",
    "default_device",
    "fit_loglog_slope",
    "mc_estimate",
]
