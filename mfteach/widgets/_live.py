"""Live widgets: controls that re-run a pure ``mfteach`` computation and redraw its figure.

A :class:`LiveWidget` is a view over two functions (STYLE.md B.7):

* ``compute(**values)`` calls the library with the control values and returns a result. It
  fixes its own random seed (common random numbers), so moving one slider changes that
  parameter only, never the noise realisation.
* ``plot(result)`` draws the result and returns a matplotlib ``Figure``.

:meth:`LiveWidget.render` runs both and never lets a reader see a traceback or a NaN plot: a
``ValueError``/``TypeError`` (bad combination of settings), a diverging run
(``mfteach.training.DivergenceError``) or non-finite plotted data turn into a one-line message.
The tests (``tests/widgets/test_sweep.py``) drive every control of every chapter widget through
:func:`sweep_settings` and call :meth:`LiveWidget.render` directly, without a browser.
"""

from __future__ import annotations

import base64
import html
import io
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_float, check_int, fail

__all__ = ["LiveWidget", "RenderResult", "find_nonfinite", "sweep_settings", "control_range",
           "check_live_widget"]

_FN = "mfteach.widgets.LiveWidget"
_MAX_MESSAGE = 300
_WARNING_STYLE = ("background:#fff3cd;border-left:4px solid #e0a800;color:#533f03;"
                  "padding:0.5em 0.8em;margin:0.3em 0;font-size:0.95em;")


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
    # No bbox_inches="tight": it draws the figure twice, and a live update has 0.2 s. Plot
    # functions keep their labels inside the canvas (a layout engine or fixed margins).
    figure.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _close(figure) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)  # a no-op for figures that pyplot does not manage


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
        Seconds one update may take at any setting (checked by the widget sweep).
    dpi : float, optional
        Resolution of the live image.

    Raises
    ------
    TypeError
        If ``compute``/``plot`` are not callable, or ``controls`` is not a dict of widgets
        keyed by identifiers.
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
                 controls: Mapping[str, Any], *, title: str = "", budget_s: float = 2.0,
                 dpi: float = 90.0) -> None:
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
        self.compute = compute
        self.plot = plot
        self.controls = dict(controls)
        self.title = title
        self.budget_s = check_float(budget_s, "budget_s", _FN, min=0.0, min_open=True)
        self.dpi = check_float(dpi, "dpi", _FN, min=0.0, min_open=True)
        self._defaults = {k: c.value for k, c in self.controls.items()}
        self._box = None
        self._output = None

    # ------------------------------------------------------------------ computing
    def default_values(self) -> dict[str, Any]:
        """The control values the widget was built with."""
        return dict(self._defaults)

    def values(self) -> dict[str, Any]:
        """The controls' current values."""
        return {k: c.value for k, c in self.controls.items()}

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
        """The figure at the default settings, for the static HTML page.

        The figure is closed in pyplot (so Jupyter shows it once, as the cell's value).

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

    # ------------------------------------------------------------------ the ipywidgets view
    @property
    def widget(self):
        """The ipywidgets ``VBox`` (title, controls, output), built on first access."""
        if self._box is None:
            import ipywidgets

            self._output = ipywidgets.Output(layout={"min_height": "120px"})
            self._output.add_class("mfteach-live-output")
            header = []
            if self.title:
                header = [ipywidgets.HTML(f"<b>{html.escape(self.title)}</b>")]
            self._box = ipywidgets.VBox(header + list(self.controls.values()) + [self._output])
            self._box.add_class("mfteach-live")
            for control in self.controls.values():
                control.observe(self._on_change, names="value")
            self.refresh()
        return self._box

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
            data = {"text/html": f'<div class="mfteach-warning" style="{_WARNING_STYLE}">'
                                 f"&#9888; {html.escape(result.message or '')}</div>",
                    "text/plain": result.message or ""}
        self._output.outputs = ({"output_type": "display_data", "data": data,
                                 "metadata": {}},)
        self._last = result
        return result

    def _ipython_display_(self) -> None:
        from IPython.display import display

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
                      require_default: bool = True) -> list[str]:
    """Drive ``widget`` through :func:`sweep_settings` and list every problem found.

    A problem is: ``render`` raising (a bug: handled errors become messages), a figure with
    NaN/inf data, an update slower than ``widget.budget_s`` (timed twice before complaining,
    since timings are noisy), or, with ``require_default``, no figure at the defaults.
    Messages at other settings (e.g. a diverging run at the largest learning rate) are fine.

    Parameters
    ----------
    widget : LiveWidget
    n_random : int, optional
        Random combinations in addition to each control's extremes.
    seed : int, optional
        Seed of the random combinations.
    require_default : bool, optional
        Whether the default settings must give a figure.

    Returns
    -------
    list of str
        Empty when the widget passed; one line per problem otherwise.
    """
    problems: list[str] = []
    settings = [("defaults", widget.default_values())]
    settings += sweep_settings(widget, n_random=n_random, seed=seed)
    for label, values in settings:
        where = f"{label} {values}"
        try:
            result = widget.render(**values)
        except Exception as exc:  # noqa: BLE001 - collected and reported by the test
            problems.append(f"{where}: render raised {type(exc).__name__}: "
                            + " ".join(str(exc).split())[:300])
            continue
        seconds = result.seconds
        if result.figure is not None:
            bad = find_nonfinite(result.figure)
            _close(result.figure)
            if bad:
                problems.append(f"{where}: NaN/inf plotted in {', '.join(bad)}")
        elif label == "defaults" and require_default:
            problems.append(f"{where}: no figure at the defaults: {result.message}")
        elif not result.message or "\n" in result.message:
            problems.append(f"{where}: no figure and no one-line message ({result.message!r})")
        if seconds > widget.budget_s:
            again = widget.render(**values)
            if again.figure is not None:
                _close(again.figure)
            seconds = min(seconds, again.seconds)
            if seconds > widget.budget_s:
                problems.append(f"{where}: update took {seconds:.2f} s, over the widget's "
                                f"budget of {widget.budget_s:g} s")
    return problems
