"""Interactive views of the chapters: live widgets and precomputed explorers.

Needs the ``book`` extra (``pip install mfteach[book]``): ``ipywidgets`` is imported inside
the functions, so ``import mfteach`` (and even ``import mfteach.widgets``) works without it.

Two kinds of widget, both views over pure ``mfteach`` functions (CONTRIBUTING.md):

* :class:`LiveWidget` re-runs a computation when a control moves (needs a kernel: Jupyter,
  Colab, Binder, Voila). A chapter cell displays it; in the static book build
  (``MFTEACH_STATIC_BUILD=1``, see :func:`static_build`) it shows its controls disabled, a
  notice to run the page in Jupyter and its figure at the defaults, once. A cold update takes
  at most :data:`UPDATE_BUDGET_S` seconds (median over the sweep, and at the defaults).
* :func:`precomputed_explorer` renders a small grid of settings at build time and switches the
  frames in the browser, so it works in the static HTML. A frame that fails or plots NaN
  becomes a message frame (the build goes on); with ``MFTEACH_STRICT_WIDGETS=1`` (the tests)
  it raises instead.

The registry: each public module ``mfteach/widgets/<chapter>.py`` lists its builders in
``LIVE_WIDGETS = [builder, ...]`` (``builder() -> LiveWidget``) and
``EXPLORERS = [builder, ...]`` (``builder() -> ipywidgets widget``). :func:`discover` collects
them for the generic sweep (``tests/widgets/test_sweep.py``) and the benchmarks.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from . import controls as controls
from ._explorer import EXPLORER_CLASS as EXPLORER_CLASS
from ._explorer import STRICT_ENV as STRICT_ENV
from ._explorer import FrameError as FrameError
from ._explorer import check_explorer as check_explorer
from ._explorer import precomputed_explorer as precomputed_explorer
from ._live import STATIC_BUILD_ENV as STATIC_BUILD_ENV
from ._live import STATIC_NOTICE as STATIC_NOTICE
from ._live import UPDATE_BUDGET_S as UPDATE_BUDGET_S
from ._live import UPDATE_MAX_S as UPDATE_MAX_S
from ._live import LiveWidget as LiveWidget
from ._live import RenderResult as RenderResult
from ._live import check_live_widget as check_live_widget
from ._live import control_range as control_range
from ._live import find_nonfinite as find_nonfinite
from ._live import static_build as static_build
from ._live import sweep_settings as sweep_settings

__all__ = [
    # Live widgets (need a kernel; disabled in the static build)
    "LiveWidget",
    "RenderResult",
    "controls",
    "static_build",
    "STATIC_BUILD_ENV",
    "STATIC_NOTICE",
    "UPDATE_BUDGET_S",
    "UPDATE_MAX_S",
    # Static-HTML explorers
    "precomputed_explorer",
    "EXPLORER_CLASS",
    "FrameError",
    "STRICT_ENV",
    # Registry and checks used by the tests
    "discover",
    "Registry",
    "builder_id",
    "check_live_widget",
    "check_explorer",
    "find_nonfinite",
    "sweep_settings",
    "control_range",
]

# Modules of this package that are machinery, not chapters.
_NOT_CHAPTERS = {"controls"}


@dataclass(frozen=True)
class Registry:
    """Widget builders found by :func:`discover`, in module then list order.

    Attributes
    ----------
    live : tuple of callables
        Builders returning a :class:`LiveWidget`.
    explorers : tuple of callables
        Builders returning a precomputed explorer.
    modules : tuple of str
        The chapter widget modules that were imported.
    """

    live: tuple[Callable, ...]
    explorers: tuple[Callable, ...]
    modules: tuple[str, ...]


def builder_id(builder: Callable) -> str:
    """A short test id for a builder: ``"<chapter module>.<function>"``."""
    module = getattr(builder, "__module__", "") or ""
    return f"{module.rsplit('.', 1)[-1]}.{getattr(builder, '__qualname__', repr(builder))}"


def discover(package: str = __name__) -> Registry:
    """Import every public module of ``package`` and collect its widget builders.

    Private modules (leading underscore) and ``controls`` are skipped. A chapter module must
    define ``LIVE_WIDGETS`` and/or ``EXPLORERS`` as lists of callables.

    Parameters
    ----------
    package : str, optional
        Dotted name of the package to scan (tests point it at a dummy package).

    Returns
    -------
    Registry

    Raises
    ------
    TypeError
        If a module's ``LIVE_WIDGETS``/``EXPLORERS`` is not a list or tuple of callables.
    ImportError
        If a chapter widget module fails to import (the error is not hidden).

    Examples
    --------
    >>> reg = discover()
    >>> all(callable(b) for b in reg.live + reg.explorers)
    True
    """
    pkg = importlib.import_module(package)
    live: list[Callable] = []
    explorers: list[Callable] = []
    modules: list[str] = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name in _NOT_CHAPTERS:
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        modules.append(module.__name__)
        for attr, sink in (("LIVE_WIDGETS", live), ("EXPLORERS", explorers)):
            builders = getattr(module, attr, [])
            if not isinstance(builders, (list, tuple)) or not all(callable(b)
                                                                  for b in builders):
                raise TypeError(f"{module.__name__}.{attr} must be a list of builder "
                                f"functions. Got {builders!r} instead.")
            sink.extend(builders)
    return Registry(tuple(live), tuple(explorers), tuple(modules))
