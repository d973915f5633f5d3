"""Live widgets: controls that re-run a pure ``mfteach`` computation and redraw its figure.

A :class:`LiveWidget` is a view over two functions (CONTRIBUTING.md):

* ``compute(**values)`` calls the library with the control values and returns a result. It
  fixes its own random seed (common random numbers), so moving one slider changes that
  parameter only, never the noise realisation.
* ``plot(result)`` draws the result and returns a matplotlib ``Figure``.

:meth:`LiveWidget.render` runs both and never lets a reader see a traceback or a NaN plot: a
``ValueError``/``TypeError`` (bad combination of settings), a diverging run
(``mfteach.training.DivergenceError``) or non-finite plotted data turn into a one-line message.
The tests (``tests/widgets/test_sweep.py``) drive every control of every chapter widget through
:func:`sweep_settings` and call :meth:`LiveWidget.render` directly, without a browser.

**Speed.** :data:`UPDATE_BUDGET_S` is the one statement of how long a reader may wait after
releasing a control: a *cold* update (no cache hit: compute, plot, NaN check and PNG encoding)
takes at most that long at the defaults and in the median over the sweep, and no single cold
update takes longer than :data:`UPDATE_MAX_S`. :func:`check_live_widget` measures exactly that.

**Static pages.** Displayed in a notebook, a widget shows its live view (controls and an
output area redrawn by the kernel), except when the environment variable
:data:`STATIC_BUILD_ENV` (``MFTEACH_STATIC_BUILD=1``, exported by ``make book``) is set: the
book build executes the chapters in a kernel, but the saved HTML has none, so there the widget
shows its controls disabled, a notice to run the page in Jupyter, and the figure at the
defaults, once (:meth:`LiveWidget.static_view`).
"""

from __future__ import annotations

import base64
import gc
import html
import io
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_float, check_int, fail

__all__ = ["LiveWidget", "RenderResult", "find_nonfinite", "sweep_settings", "control_range",
           "check_live_widget", "static_build", "UPDATE_BUDGET_S", "UPDATE_MAX_S",
           "STATIC_BUILD_ENV", "STATIC_NOTICE"]

#: Seconds a reader may wait after releasing a control, on a 2-core laptop CPU: the cold update
#: (no cache hit) at the defaults and the median cold update over :func:`sweep_settings`.
UPDATE_BUDGET_S = 0.5
#: Seconds no single cold update may exceed, at any setting the controls allow.
UPDATE_MAX_S = 2 * UPDATE_BUDGET_S

#: Environment variable that marks a static build (``make book`` exports it as ``1``).
STATIC_BUILD_ENV = "MFTEACH_STATIC_BUILD"
#: What a reader of the static HTML reads next to a live widget's disabled controls.
STATIC_NOTICE = ("Run this page in Jupyter (launch button at the top of the page) to move these "
                 "controls; on this static page they are disabled and the figure below shows "
                 "the default settings.")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")

_FN = "mfteach.widgets.LiveWidget"
_MAX_MESSAGE = 300
_WARNING_STYLE = ("background:#fff3cd;border-left:4px solid #e0a800;color:#533f03;"
                  "padding:0.5em 0.8em;margin:0.3em 0;font-size:0.95em;")
_NOTICE_STYLE = ("background:#e7f1fb;border-left:4px solid #2f6fb0;color:#173a5e;"
                 "padding:0.5em 0.8em;margin:0.3em 0 0.6em 0;font-size:0.95em;")


def static_build() -> bool:
    """True when the environment variable ``MFTEACH_STATIC_BUILD`` marks a static book build.

    ``1``/``true``/``yes``/``on`` (any case) mean yes; unset, empty, ``0``/``false``/``no``/
    ``off`` mean no. A kernel cannot see whether its outputs will end up in a live frontend or
    in saved HTML, so the book build says so: ``make book`` exports ``MFTEACH_STATIC_BUILD=1``,
    and MyST-NB's kernels inherit the build's environment. Jupyter, Colab, Binder and Voila
    do not set it, so there the widgets are live.

    Raises
    ------
    ValueError
        If the variable holds anything else (a typo must not silently ship dead controls).
    """
    raw = os.environ.get(STATIC_BUILD_ENV, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"The environment variable {STATIC_BUILD_ENV} must be one of "
                     f"{', '.join(repr(v) for v in _TRUE + _FALSE[1:])} or unset. Got {raw!r}.")


@dataclass(frozen=True)
class RenderResult:
    """What one update of a live widget produced.

    Attributes
    ----------
    figure : matplotlib.figure.Figure or None
        The figure, or ``None`` when the setting could not be shown.
    message : str or None
        One-line explanation when ``figure`` is ``None`` (never a traceback), else ``None``.
    seconds : float
        Wall-clock time of ``compute`` + ``plot`` + the finiteness check.
    """

    figure: Any
    message: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        """True when a figure was produced."""
        return self.figure is not None


def _handled_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "this setting cannot be shown", not "the code is broken"."""
    errors: list[type[BaseException]] = [ValueError, TypeError]
    try:  # the training module may not exist (yet) in a minimal install
        from ..training import DivergenceError
    except ImportError:  # pragma: no cover - depends on the package state
        pass
    else:
        errors.append(DivergenceError)
    return tuple(errors)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if type(exc).__name__ == "DivergenceError":
        text = "The run diverged: " + text
    else:
        text = "This setting cannot be shown: " + text
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _nonfinite(values: Any) -> bool:
    """True if the numeric entries of ``values`` contain NaN or inf.

    Masked entries count too: matplotlib masks NaN/inf itself (scatter offsets, images), and
    a silently dropped point is exactly what the check is for.
    """
    if values is None:
        return False
    arr = np.asarray(np.ma.getdata(values))
    if arr.dtype.kind == "O":  # e.g. lists of mixed objects: convert what converts
        try:
            arr = arr.astype(float)
        except (TypeError, ValueError):
            return False
    if arr.size == 0 or arr.dtype.kind not in "fc":
        return False
    return not bool(np.isfinite(arr).all())


def find_nonfinite(figure) -> list[str]:
    """Describe every artist of ``figure`` whose data contain NaN or inf.

    Inspects the data of lines (``Line2D``), collections (scatter offsets, paths, mapped colour
    arrays), images and rectangles/polygons (bars, spans), masked entries included.
    ``fill_between`` drops non-finite points before storing its polygon, so a band is only
    checked through the line usually drawn with it.

    Parameters
    ----------
    figure : matplotlib.figure.Figure

    Returns
    -------
    list of str
        One description per offending artist, e.g. ``"Line2D 'loss'"``; empty if all finite.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(); ax = fig.add_subplot()
    >>> _ = ax.plot([0, 1, 2], [1.0, float("nan"), 2.0], label="loss")
    >>> find_nonfinite(fig)
    ["Line2D 'loss'"]
    """
    from matplotlib.collections import Collection
    from matplotlib.figure import Figure
    from matplotlib.image import _ImageBase
    from matplotlib.lines import Line2D
    from matplotlib.patches import Polygon, Rectangle

    if not isinstance(figure, Figure):
        fail("figure", "mfteach.widgets.find_nonfinite", "a matplotlib Figure", figure,
             exc=TypeError)
    bad = []
    for artist in figure.findobj():
        arrays: list[Any] = []
        if isinstance(artist, Line2D):
            arrays = [artist.get_xydata()]
        elif isinstance(artist, Collection):
            arrays = [artist.get_offsets(), artist.get_array()]
            arrays += [p.vertices for p in artist.get_paths()]
        elif isinstance(artist, _ImageBase):
            arrays = [artist.get_array()]
        elif isinstance(artist, Rectangle):
            arrays = [[artist.get_x(), artist.get_y(), artist.get_width(), artist.get_height()]]
        elif isinstance(artist, Polygon):
            arrays = [artist.get_xy()]
        if any(_nonfinite(a) for a in arrays):
            label = artist.get_label()
            name = type(artist).__name__
            bad.append(f"{name} {label!r}" if label and not label.startswith("_") else name)
    return bad


def _figure_png(figure, dpi: float) -> str:
    buf = io.BytesIO()
    # No bbox_inches="tight": it draws the figure twice, and it counts in the update budget.
    # Plot functions keep their labels inside the canvas (a layout engine or fixed margins).
    # zlib level 1 instead of 6: faster, slightly larger (the PNG goes to a local frontend).
    figure.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _close(figure) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)  # a no-op for figures that pyplot does not manage


def _module_caches(fn: Callable) -> tuple[Callable, ...]:
    """``fn`` if it is an ``lru_cache``, and every ``lru_cache`` function of its module."""
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    candidates = [fn, *(vars(module).values() if module is not None else ())]
    found: dict[int, Callable] = {}
    for obj in candidates:
        if callable(obj) and hasattr(obj, "cache_clear") and hasattr(obj, "cache_info"):
            found[id(obj)] = obj
    return tuple(found.values())


def _ensure_figure_display() -> None:
    """Inside IPython, make a ``Figure`` value display as a PNG even without ``%matplotlib``.

    ``%matplotlib inline`` registers this formatter; a kernel that never ran it shows only
    ``<Figure size ...>`` for a returned figure. Registered only when none exists.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import print_figure
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return
    shell = get_ipython()
    formatter = getattr(getattr(shell, "display_formatter", None), "formatters", {}).get(
        "image/png")
    if formatter is None:
        return
    from matplotlib.figure import Figure

    try:
        formatter.lookup_by_type(Figure)
    except KeyError:
        formatter.for_type(Figure, lambda fig: print_figure(fig, "png", bbox_inches="tight"))


def _message_bundle(message: str) -> dict[str, str]:
    return {"text/html": f'<div class="mfteach-warning" style="{_WARNING_STYLE}">'
                         f"&#9888; {html.escape(message)}</div>",
            "text/plain": message}


class LiveWidget:
    """Controls bound to a pure computation and its plot; re-renders when a control changes.

    Parameters
    ----------
    compute : callable
        ``compute(**values) -> result``; ``values`` has one entry per control. Pure: it reads
        no globals and fixes its own random seed.
    plot : callable
        ``plot(result) -> matplotlib.figure.Figure``.
    controls : dict of str to ipywidgets.ValueWidget
        Keyword of ``compute`` -> control (see :mod:`mfteach.widgets.controls`). Sliders are
        set to ``continuous_update=False``.
    title : str, optional
        Bold line shown above the controls.
    budget_s : float, optional
        Seconds a cold update may take, at the defaults and in the median over the sweep
        (checked by :func:`check_live_widget`); default and most :data:`UPDATE_BUDGET_S`. No
        single cold update may take more than twice as long.
    dpi : float, optional
        Resolution of the live image.
    caches : sequence of callables, optional
        ``functools.lru_cache`` functions that hold computed settings; :meth:`clear_caches`
        empties them so that the sweep times cold updates. Default: ``compute`` itself if it
        is cached, and every ``lru_cache`` function of the module that defines ``compute``.

    Raises
    ------
    TypeError
        If ``compute``/``plot`` are not callable, ``controls`` is not a dict of widgets
        keyed by identifiers, or a cache has no ``cache_clear``.
    ValueError
        If ``controls`` is empty or ``budget_s``/``dpi`` is not positive.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from mfteach.widgets import LiveWidget, controls
    >>> def plot(r):
    ...     fig = Figure(figsize=(3, 2)); fig.add_subplot().plot(r); return fig
    >>> w = LiveWidget(lambda n: list(range(n)), plot, {"n": controls.int_slider("n", 3, 1, 9)})
    >>> w.default_values()
    {'n': 3}
    >>> w.render(n=0).message
    'This setting cannot be shown: The value of n (0) is outside the slider range [1, 9].'
    """

    def __init__(self, compute: Callable[..., Any], plot: Callable[[Any], Any],
                 controls: Mapping[str, Any], *, title: str = "",
                 budget_s: float = UPDATE_BUDGET_S, dpi: float = 90.0,
                 caches: Sequence[Callable] | None = None) -> None:
        if not callable(compute):
            fail("compute", _FN, "callable", compute, exc=TypeError)
        if not callable(plot):
            fail("plot", _FN, "callable", plot, exc=TypeError)
        if not isinstance(controls, Mapping):
            fail("controls", _FN, "a dict of name -> ipywidgets control", controls,
                 exc=TypeError)
        if not controls:
            fail("controls", _FN, "a non-empty dict", controls)
        for name, control in controls.items():
            if not isinstance(name, str) or not name.isidentifier():
                fail("controls", _FN, "keyed by keyword names of compute", name, exc=TypeError)
            if not hasattr(control, "value") or not hasattr(control, "observe"):
                fail(f"controls[{name}]", _FN, "an ipywidgets ValueWidget", control,
                     exc=TypeError)
            if hasattr(control, "continuous_update"):
                control.continuous_update = False
        if not isinstance(title, str):
            fail("title", _FN, "a str", title, exc=TypeError)
        if caches is None:
            caches = _module_caches(compute)
        elif isinstance(caches, (str, bytes)) or not isinstance(caches, Sequence) or not all(
                hasattr(c, "cache_clear") for c in caches):
            fail("caches", _FN, "a list of functools.lru_cache functions", caches,
                 exc=TypeError)
        self.compute = compute
        self.plot = plot
        self.controls = dict(controls)
        self.title = title
        self.budget_s = check_float(budget_s, "budget_s", _FN, min=0.0, min_open=True)
        self.dpi = check_float(dpi, "dpi", _FN, min=0.0, min_open=True)
        self.caches = tuple(caches)
        self._defaults = {k: c.value for k, c in self.controls.items()}
        self._box = None
        self._output = None
        self._last: RenderResult | None = None

    # ------------------------------------------------------------------ computing
    def default_values(self) -> dict[str, Any]:
        """The control values the widget was built with."""
        return dict(self._defaults)

    def values(self) -> dict[str, Any]:
        """The controls' current values."""
        return {k: c.value for k, c in self.controls.items()}

    def clear_caches(self) -> None:
        """Empty :attr:`caches`, so that the next update computes from scratch (cold)."""
        for cache in self.caches:
            cache.cache_clear()

    def render(self, **values: Any) -> RenderResult:
        """Compute and plot at ``values`` (missing keys take their default).

        Returns
        -------
        RenderResult
            With ``figure=None`` and a one-line ``message`` when compute/plot raise
            ``ValueError``, ``TypeError`` or ``DivergenceError``, or when the plotted data
            contain NaN or inf. Any other exception is a bug and propagates.

        Raises
        ------
        TypeError
            If a key of ``values`` names no control, or ``plot`` returns no ``Figure``.
        """
        from matplotlib.figure import Figure

        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            fail("values", f"{_FN}.render", "keywords among " + ", ".join(self.controls),
                 unknown, exc=TypeError)
        import matplotlib.pyplot as plt

        kwargs = {**self._defaults, **values}
        before = set(plt.get_fignums())
        start = time.perf_counter()
        try:
            self._check_in_range(kwargs)
            figure = self.plot(self.compute(**kwargs))
        except _handled_errors() as exc:
            for num in set(plt.get_fignums()) - before:  # figures a failed plot left open
                plt.close(num)
            return RenderResult(None, _one_line(exc), time.perf_counter() - start)
        if not isinstance(figure, Figure):
            raise TypeError(f"The plot function of {self.title or 'this LiveWidget'} must "
                            f"return a matplotlib Figure. Got {type(figure).__name__} instead.")
        bad = find_nonfinite(figure)
        seconds = time.perf_counter() - start
        if bad:
            _close(figure)
            msg = ("This setting produced NaN or infinite values (" + ", ".join(bad[:3]) +
                   "); the dynamics are unstable here. Try a smaller learning rate or step.")
            return RenderResult(None, msg, seconds)
        return RenderResult(figure, None, seconds)

    def cold_update(self, **values: Any) -> RenderResult:
        """What a reader waits for at a new setting: :meth:`render` after
        :meth:`clear_caches`, plus the PNG encoding of the figure.

        Returns
        -------
        RenderResult
            Its figure is closed in pyplot (and still usable). Its ``seconds`` cover render
            and encoding: the smaller of the wall-clock time and this process's CPU time, so
            that other jobs on a shared CPU do not count against the widget (a single-threaded
            update on an idle core takes its CPU time), while a multi-threaded one counts
            its wall-clock time.
        """
        self.clear_caches()
        wall, cpu = time.perf_counter(), time.process_time()
        result = self.render(**values)
        if result.figure is not None:
            _figure_png(result.figure, self.dpi)
            _close(result.figure)
        seconds = min(time.perf_counter() - wall, time.process_time() - cpu)
        return RenderResult(result.figure, result.message, seconds)

    def _check_in_range(self, kwargs: dict[str, Any]) -> None:
        for name, value in kwargs.items():
            lo_hi = control_range(self.controls[name])
            if lo_hi is None or not isinstance(value, (int, float)):
                continue
            lo, hi = lo_hi
            if not lo - 1e-9 * abs(lo) <= value <= hi + 1e-9 * abs(hi):
                raise ValueError(f"The value of {name} ({value:g}) is outside the slider range "
                                 f"[{lo:g}, {hi:g}].")

    def static_figure(self):
        """The figure at the default settings (a matplotlib ``Figure``).

        The figure is closed in pyplot (so Jupyter shows it once, as the cell's value). A
        chapter does not need it: displaying the widget shows the figure at the defaults, in
        a live kernel and in the static build alike.

        Raises
        ------
        RuntimeError
            If the defaults cannot be shown (a bug in the chapter's defaults).
        """
        result = self.render()
        if result.figure is None:
            raise RuntimeError(f"{self.title or 'LiveWidget'}: the default settings "
                               f"{self._defaults} cannot be shown: {result.message}")
        _close(result.figure)
        _ensure_figure_display()
        return result.figure

    # ------------------------------------------------------------------ the ipywidgets views
    def _header(self) -> list:
        import ipywidgets

        if not self.title:
            return []
        return [ipywidgets.HTML(f"<b>{html.escape(self.title)}</b>")]

    @property
    def widget(self):
        """The live ipywidgets ``VBox`` (title, controls, output), built on first access."""
        if self._box is None:
            import ipywidgets

            self._output = ipywidgets.Output(layout={"min_height": "120px"})
            self._output.add_class("mfteach-live-output")
            self._box = ipywidgets.VBox(self._header() + list(self.controls.values())
                                        + [self._output])
            self._box.add_class("mfteach-live")
            for control in self.controls.values():
                control.observe(self._on_change, names="value")
            self.refresh()
        return self._box

    def static_view(self) -> tuple[Any, dict[str, str], dict[str, str]]:
        """The view for a page without a kernel: disabled controls, a notice, one figure.

        Returns
        -------
        (ipywidgets.VBox, dict, dict)
            The box (CSS classes ``mfteach-live`` and ``mfteach-static``) holds the title and
            the controls at their defaults, each with ``disabled=True`` (saved so in the
            widget state); then the notice (:data:`STATIC_NOTICE`) and the figure at the
            defaults, as plain display bundles (``text/html``; ``image/png``), so that they
            show even where widgets do not render. When the defaults cannot be shown, the
            figure bundle is the one-line message instead.

        Notes
        -----
        The controls of this widget are disabled for good: a page shows either this view
        or :attr:`widget`, never both.
        """
        import ipywidgets

        for name, control in self.controls.items():
            control.value = self._defaults[name]
            if hasattr(control, "disabled"):
                control.disabled = True
        box = ipywidgets.VBox(self._header() + list(self.controls.values()))
        box.add_class("mfteach-live")
        box.add_class("mfteach-static")
        notice = {"text/html": f'<div class="mfteach-static-notice" style="{_NOTICE_STYLE}">'
                               f"&#9654; {html.escape(STATIC_NOTICE)}</div>",
                  "text/plain": STATIC_NOTICE}
        try:
            result = self.render()
        except Exception as exc:  # noqa: BLE001 - a page build must not stop on one widget
            result = RenderResult(None, f"Internal error ({type(exc).__name__}): "
                                  + " ".join(str(exc).split())[:200], 0.0)
        if result.figure is None:
            figure = _message_bundle(result.message or "")
        else:
            figure = {"image/png": _figure_png(result.figure, self.dpi),
                      "text/plain": f"<Figure: {self.title or 'live widget'} at the defaults>"}
            _close(result.figure)
        return box, notice, figure

    def _on_change(self, change: Any) -> None:
        self.refresh()

    def refresh(self) -> RenderResult:
        """Render at the controls' current values into the widget's output area.

        The output is replaced in one step (no flicker, and it works from a callback without
        IPython's output capture): a PNG of the figure, or the message in a warning box. An
        unexpected exception is shown as a one-line message too (the sweep tests catch those).
        """
        if self._box is None:
            _ = self.widget  # builds the view, which calls refresh()
            return self._last
        start = time.perf_counter()
        try:
            result = self.render(**self.values())
        except Exception as exc:  # noqa: BLE001 - a reader must never see a frozen widget
            result = RenderResult(None, f"Internal error ({type(exc).__name__}): "
                                  + " ".join(str(exc).split())[:200],
                                  time.perf_counter() - start)
        if result.figure is not None:
            data = {"image/png": _figure_png(result.figure, self.dpi),
                    "text/plain": "<Figure>"}
            _close(result.figure)
        else:
            data = _message_bundle(result.message or "")
        self._output.outputs = ({"output_type": "display_data", "data": data,
                                 "metadata": {}},)
        self._last = result
        return result

    def _ipython_display_(self) -> None:
        """Live view in a kernel; the static view when :func:`static_build` says so."""
        from IPython.display import display

        if static_build():
            box, notice, figure = self.static_view()
            display(box)
            display(notice, raw=True)
            display(figure, raw=True)
        else:
            display(self.widget)

    def __repr__(self) -> str:
        return f"LiveWidget({self.title!r}, controls={list(self.controls)})"


def control_range(control: Any) -> tuple[float, float] | None:
    """The numeric value range ``(low, high)`` of a slider, or ``None`` for other controls.

    For a ``FloatLogSlider`` the range is in natural units (``base ** min``, ``base ** max``).
    """
    kind = type(control).__name__
    if kind.endswith("RangeSlider") or not hasattr(control, "min") or not hasattr(control, "max"):
        return None
    if kind == "FloatLogSlider":
        return control.base ** control.min, control.base ** control.max
    return control.min, control.max


def _positions(control: Any) -> list[Any] | None:
    """All slider positions of a numeric slider (None for non-sliders)."""
    kind = type(control).__name__
    if kind.endswith("RangeSlider") or not hasattr(control, "min") or not hasattr(control, "step"):
        return None
    lo, hi, step = control.min, control.max, control.step
    if not step or step <= 0:
        return [lo, hi]
    n = int(math.floor((hi - lo) / step + 1e-9))
    pos = [lo + k * step for k in range(n + 1)]
    if kind == "FloatLogSlider":
        return [control.base ** p for p in pos]
    if isinstance(lo, int) and isinstance(step, int):
        return [int(p) for p in pos]
    return pos


def _options(control: Any) -> list[Any] | None:
    values = getattr(control, "_options_values", None)
    if values is not None:
        return list(values)
    if isinstance(getattr(control, "value", None), bool):
        return [False, True]
    return None


def sweep_settings(widget: LiveWidget, *, n_random: int = 3,
                   seed: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """Settings that exercise every control: each extreme, each option, random combinations.

    Parameters
    ----------
    widget : LiveWidget
    n_random : int, optional
        Number of random combinations (all controls at once, on their slider grids).
    seed : int, optional
        Seed of the random combinations (the sweep is reproducible).

    Returns
    -------
    list of (str, dict)
        ``(label, values)`` pairs; each control alone at its minimum and maximum (every option
        for dropdowns, both states for checkboxes) with the others at their defaults, then
        ``n_random`` random combinations.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from mfteach.widgets import LiveWidget, controls
    >>> w = LiveWidget(lambda n, act: n, lambda r: Figure(),
    ...                {"n": controls.int_slider("n", 3, 1, 9),
    ...                 "act": controls.dropdown("act", ["relu", "erf"])})
    >>> [label for label, _ in sweep_settings(w, n_random=1)]
    ['n=min', 'n=max', "act='relu'", "act='erf'", 'random#0']
    """
    if not isinstance(widget, LiveWidget):
        fail("widget", "mfteach.widgets.sweep_settings", "a LiveWidget", widget, exc=TypeError)
    check_int(n_random, "n_random", "mfteach.widgets.sweep_settings", min=0)
    defaults = widget.default_values()
    settings: list[tuple[str, dict[str, Any]]] = []
    choices: dict[str, list[Any]] = {}
    for name, control in widget.controls.items():
        positions = _positions(control)
        if positions is not None:
            settings.append((f"{name}=min", {**defaults, name: positions[0]}))
            settings.append((f"{name}=max", {**defaults, name: positions[-1]}))
            choices[name] = positions
            continue
        options = _options(control)
        if options is not None:
            settings += [(f"{name}={o!r}", {**defaults, name: o}) for o in options]
            choices[name] = options
        else:
            choices[name] = [defaults[name]]
    rng = random.Random(seed)
    for i in range(n_random):
        settings.append((f"random#{i}", {k: rng.choice(v) for k, v in choices.items()}))
    return settings


def check_live_widget(widget: LiveWidget, *, n_random: int = 3, seed: int = 0,
                      require_default: bool = True, timing: bool = True) -> list[str]:
    """Drive ``widget`` through :func:`sweep_settings` and list every problem found.

    Every setting is a cold update (:meth:`LiveWidget.cold_update`: caches cleared, PNG
    encoding included), after one untimed update that warms up the process (imports, fonts,
    PNG codecs: a reader's kernel has drawn the defaults before the first slider move).
    A problem is: ``render`` raising (a bug: handled errors become messages), a figure with
    NaN/inf data, with ``require_default`` no figure at the defaults, and with ``timing``:

    * the cold update at the defaults over ``widget.budget_s``;
    * the median cold update over all settings over ``widget.budget_s``;
    * any cold update over ``2 * widget.budget_s`` (:data:`UPDATE_MAX_S` by default).

    A setting over its limit, and every setting over the budget when the median is, is timed
    again, cold, and the faster run counts (timings on a shared CPU are noisy upwards, never
    downwards). Messages at other settings (e.g. a
    diverging run at the largest learning rate) are fine, and count in the median: they are
    what the reader waits for there.

    Parameters
    ----------
    widget : LiveWidget
    n_random : int, optional
        Random combinations in addition to each control's extremes.
    seed : int, optional
        Seed of the random combinations.
    require_default : bool, optional
        Whether the default settings must give a figure.
    timing : bool, optional
        Whether to check the time budget.

    Returns
    -------
    list of str
        Empty when the widget passed; one line per problem otherwise.
    """
    if not isinstance(widget, LiveWidget):
        fail("widget", "mfteach.widgets.check_live_widget", "a LiveWidget", widget,
             exc=TypeError)
    problems: list[str] = []
    settings = [("defaults", widget.default_values())]
    settings += sweep_settings(widget, n_random=n_random, seed=seed)
    try:  # warm-up: the first update of a process pays for imports, fonts, PNG codecs
        widget.cold_update()
    except Exception:  # noqa: BLE001 - reported below, at the "defaults" setting
        pass
    budget, ceiling = widget.budget_s, 2 * widget.budget_s
    timed: list[tuple[dict[str, Any], float]] = []
    for label, values in settings:
        where = f"{label} {values}"
        gc.collect()  # untimed: the garbage of earlier settings is not this setting's cost
        try:
            result = widget.cold_update(**values)
        except Exception as exc:  # noqa: BLE001 - collected and reported by the test
            problems.append(f"{where}: render raised {type(exc).__name__}: "
                            + " ".join(str(exc).split())[:300])
            continue
        seconds = result.seconds
        if result.figure is not None:
            bad = find_nonfinite(result.figure)
            if bad:
                problems.append(f"{where}: NaN/inf plotted in {', '.join(bad)}")
        elif label == "defaults" and require_default:
            problems.append(f"{where}: no figure at the defaults: {result.message}")
        elif not result.message or "\n" in result.message:
            problems.append(f"{where}: no figure and no one-line message ({result.message!r})")
        limit = budget if label == "defaults" else ceiling
        if timing and seconds > limit:
            seconds = min(seconds, widget.cold_update(**values).seconds)
            if seconds > limit:
                what = "the budget" if label == "defaults" else "twice the budget"
                problems.append(f"{where}: a cold update took {seconds:.2f} s, over {what} "
                                f"({limit:g} s; budget_s = {budget:g} s)")
        timed.append((values, seconds))
    if timing and timed:
        median = statistics.median(t for _, t in timed)
        if median > budget:  # time the settings above the budget once more, then judge
            timed = [(v, t if t <= budget else min(t, widget.cold_update(**v).seconds))
                     for v, t in timed]
        times = [t for _, t in timed]
        median = statistics.median(times)
        if median > budget:
            problems.append(f"the median cold update over {len(times)} settings took "
                            f"{median:.2f} s (max {max(times):.2f} s), over the budget of "
                            f"{budget:g} s")
    return problems
