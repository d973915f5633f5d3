"""Precomputed explorers: slider-driven figures that work in the static HTML, with no kernel.

Every combination of a small parameter grid is rendered once, when the notebook executes (at
book build time), and stored as a PNG in an ``ipywidgets.Image``. The images sit in nested
``ipywidgets.Stack`` containers (one nesting level per grid key); each level's
``selected_index`` is ``jslink``-ed to one ``SelectionSlider``. Links run in the browser, so
Jupyter Book's saved widget state lets a reader of the static page move the sliders and see the
frames switch.

A frame whose computation fails (a diverging run, a bad setting, any exception) or whose
figure holds NaN or infinite data is drawn as a *message frame* that says why, so that one bad
setting does not stop the book build; the explorer lists it in ``failed_frames`` and
:func:`check_explorer` reports it. In strict mode (``strict=True``, or the environment variable
``MFTEACH_STRICT_WIDGETS=1`` that the widget tests set) such a frame raises :class:`FrameError`
instead, so the book cannot ship one unnoticed.
"""

from __future__ import annotations

import html
import io
import itertools
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._checks import check_bool, check_float, check_int, fail
from ._live import _handled_errors, find_nonfinite

__all__ = ["precomputed_explorer", "check_explorer", "EXPLORER_CLASS", "FrameError",
           "STRICT_ENV"]

_FN = "mfteach.widgets.precomputed_explorer"
EXPLORER_CLASS = "mfteach-explorer"
#: Environment variable that turns on strict mode for every explorer (the widget tests set it).
STRICT_ENV = "MFTEACH_STRICT_WIDGETS"
_MAX_MESSAGE = 300


class FrameError(RuntimeError):
    """A frame of a precomputed explorer failed or plotted NaN/inf, in strict mode."""


def _strict_from_env() -> bool:
    raw = os.environ.get(STRICT_ENV, "")
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"The environment variable {STRICT_ENV} must be 1 or 0 (or unset). "
                     f"Got {raw!r}.")


def _frame_label(combo: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_label(v)}" for k, v in combo.items())


def _failure_message(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if type(exc).__name__ == "DivergenceError":
        text = "This setting diverged: " + text
    elif isinstance(exc, _handled_errors()):
        text = "This setting cannot be shown: " + text
    else:
        text = f"This setting could not be computed ({type(exc).__name__}): " + text
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _message_png(combo: dict[str, Any], message: str, size: Any, dpi: float) -> bytes:
    """A frame that says why this setting has no figure (same size as the other frames)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=tuple(size))
    fig.text(0.5, 0.62, _frame_label(combo), ha="center", va="center", fontsize=11,
             weight="bold")
    fig.text(0.5, 0.42, "\n".join(textwrap.wrap(message, width=70)), ha="center", va="center",
             fontsize=10, color="#533f03",
             bbox={"boxstyle": "round,pad=0.6", "facecolor": "#fff3cd",
                   "edgecolor": "#e0a800"})
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)  # not "tight": keep the frame size
    return buf.getvalue()


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _png(figure, dpi: float) -> bytes:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    if not isinstance(figure, Figure):
        fail("render_frame", _FN, "a function returning a matplotlib Figure", figure,
             exc=TypeError)
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return buf.getvalue()


def precomputed_explorer(render_frame: Callable[..., Any], grid: Mapping[str, Sequence], *,
                         description: str | None = None, dpi: float = 80.0,
                         max_frames: int = 64, strict: bool | None = None):
    """Render ``render_frame`` on every grid combination and switch frames with sliders.

    Parameters
    ----------
    render_frame : callable
        ``render_frame(**combo) -> matplotlib.figure.Figure``, with one keyword per grid key.
        Called ``prod(len(v) for v in grid.values())`` times, when this function runs.
    grid : dict of str to sequence
        Parameter name -> the values to precompute (each non-empty). Slider order follows the
        dict order; each slider starts at the first value.
    description : str, optional
        Text (HTML-escaped) shown above the sliders.
    dpi : float, optional
        Resolution of the stored PNGs; about 80 keeps a 16-frame page near 0.5 MB.
    max_frames : int, optional
        Refuse grids with more combinations than this (the page would get heavy).
    strict : bool, optional
        Raise :class:`FrameError` when a frame fails or plots NaN/inf, instead of drawing a
        message frame. Default: the environment variable ``MFTEACH_STRICT_WIDGETS``
        (``1``: strict), else False.

    Returns
    -------
    ipywidgets.VBox
        With CSS class ``mfteach-explorer``: the description, one ``SelectionSlider`` per grid
        key, and the nested ``Stack`` of ``Image`` frames. Attributes ``frames`` (the number
        of images), ``sliders`` (dict key -> slider) and ``failed_frames`` (dict
        ``"key=value, ..."`` -> the one-line message drawn in that frame) are attached.

    Raises
    ------
    TypeError
        If ``render_frame`` is not callable or returns something that is not a ``Figure``,
        or ``grid`` is not a dict of sequences keyed by identifiers.
    ValueError
        If ``grid`` or one of its value lists is empty, or the grid exceeds ``max_frames``.
    FrameError
        In strict mode, if a frame raises or its figure holds NaN or infinite data.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> def frame(a, b):
    ...     fig = Figure(figsize=(2, 1.5)); fig.add_subplot().plot([0, a], [0, b]); return fig
    >>> box = precomputed_explorer(frame, {"a": [1, 2], "b": [0.5, 1.0, 2.0]})
    >>> box.frames, list(box.sliders), "mfteach-explorer" in box._dom_classes
    (6, ['a', 'b'], True)
    """
    import ipywidgets

    if not callable(render_frame):
        fail("render_frame", _FN, "callable", render_frame, exc=TypeError)
    if not isinstance(grid, Mapping):
        fail("grid", _FN, "a dict of name -> sequence of values", grid, exc=TypeError)
    if not grid:
        fail("grid", _FN, "a non-empty dict", grid)
    axes: dict[str, list[Any]] = {}
    for key, values in grid.items():
        if not isinstance(key, str) or not key.isidentifier():
            fail("grid", _FN, "keyed by keyword names of render_frame", key, exc=TypeError)
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            fail(f"grid[{key}]", _FN, "a list or tuple of values", values, exc=TypeError)
        if not values:
            fail(f"grid[{key}]", _FN, "a non-empty list of values", values)
        axes[key] = list(values)
    dpi = check_float(dpi, "dpi", _FN, min=0.0, min_open=True)
    max_frames = check_int(max_frames, "max_frames", _FN, min=1)
    n_frames = 1
    for values in axes.values():
        n_frames *= len(values)
    if n_frames > max_frames:
        fail("grid", _FN, f"at most {max_frames} combinations (max_frames)", n_frames,
             hint="Use fewer values per parameter, or a LiveWidget for fine control.")
    if description is not None and not isinstance(description, str):
        fail("description", _FN, "a str or None", description, exc=TypeError)

    strict = _strict_from_env() if strict is None else check_bool(strict, "strict", _FN)

    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    keys = list(axes)
    images = {}
    failed: dict[tuple, str] = {}
    size = None  # of the first good frame: message frames take the same size
    for combo in itertools.product(*axes.values()):
        settings = dict(zip(keys, combo))
        try:
            figure = render_frame(**settings)
        except Exception as exc:  # noqa: BLE001 - one bad setting must not stop a book build
            if strict:
                raise FrameError(f"The frame {_frame_label(settings)} of the explorer failed: "
                                 f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                                 ) from exc
            failed[combo] = _failure_message(exc)
            continue
        if not isinstance(figure, Figure):
            fail("render_frame", _FN, "a function returning a matplotlib Figure", figure,
                 exc=TypeError)
        bad = find_nonfinite(figure)
        if bad:
            plt.close(figure)
            message = ("This setting diverged: the figure holds NaN or infinite values ("
                       + ", ".join(bad[:3]) + ").")
            if strict:
                raise FrameError(f"The frame {_frame_label(settings)} of the explorer plots "
                                 f"NaN or infinite values in {', '.join(bad)}.")
            failed[combo] = message
            continue
        if size is None:
            size = figure.get_size_inches()
        images[combo] = ipywidgets.Image(value=_png(figure, dpi), format="png")
    for combo, message in failed.items():
        png = _message_png(dict(zip(keys, combo)), message,
                           (6.4, 3.6) if size is None else size, dpi)
        images[combo] = ipywidgets.Image(value=png, format="png")

    stacks_by_level: list[list[Any]] = [[] for _ in keys]

    def build(level: int, prefix: tuple) -> Any:
        if level == len(keys):
            return images[prefix]
        children = [build(level + 1, prefix + (v,)) for v in axes[keys[level]]]
        stack = ipywidgets.Stack(children=children, selected_index=0)
        stacks_by_level[level].append(stack)
        return stack

    frames_widget = build(0, ())
    sliders = {}
    links = []
    for level, key in enumerate(keys):
        slider = ipywidgets.SelectionSlider(
            options=[(_label(v), i) for i, v in enumerate(axes[key])], value=0,
            description=key, continuous_update=True, style={"description_width": "initial"},
            layout={"width": "420px"})
        sliders[key] = slider
        for stack in stacks_by_level[level]:
            links.append(ipywidgets.jslink((slider, "index"), (stack, "selected_index")))

    header = []
    if description:
        header = [ipywidgets.HTML(f"<p>{html.escape(description)}</p>")]
    box = ipywidgets.VBox(header + list(sliders.values()) + [frames_widget])
    box.add_class(EXPLORER_CLASS)
    box.frames = len(images)
    box.sliders = sliders
    box.failed_frames = {_frame_label(dict(zip(keys, c))): m for c, m in failed.items()}
    box.links = links  # keep the links alive with the box
    return box


def check_explorer(box: Any) -> list[str]:
    """List the structural problems of a precomputed explorer (empty list: it is sound).

    Checks, independently of how the explorer was built: the CSS class ``mfteach-explorer``;
    one ``SelectionSlider`` per nesting level of ``Stack``; every ``Stack`` at level ``k`` has
    as many children as slider ``k`` has options and is ``jslink``-ed to it (through the
    ``links`` attribute kept on the box); the number of PNG frames equals the product of the
    sliders' option counts; no frame is a message frame (``failed_frames``): a book must not
    ship a setting that failed or plotted NaN.

    Parameters
    ----------
    box : ipywidgets.Box
        What an explorer builder returned.

    Returns
    -------
    list of str
    """
    import ipywidgets

    problems: list[str] = []
    if not isinstance(box, ipywidgets.Box):
        return [f"expected an ipywidgets Box, got {type(box).__name__}"]
    for where, message in (getattr(box, "failed_frames", None) or {}).items():
        problems.append(f"frame {where} is a message frame: {message}")
    if EXPLORER_CLASS not in box._dom_classes:
        problems.append(f"missing CSS class {EXPLORER_CLASS!r} (has {box._dom_classes})")
    sliders = [c for c in box.children if isinstance(c, ipywidgets.SelectionSlider)]
    stacks = [c for c in box.children if isinstance(c, ipywidgets.Stack)]
    if len(stacks) != 1 or not sliders:
        return problems + [f"expected sliders and one Stack, got {len(sliders)} sliders and "
                           f"{len(stacks)} stacks"]
    from ipywidgets.widgets.widget_link import Link

    links = [ln for ln in getattr(box, "links", []) if isinstance(ln, Link)]
    linked = {(id(ln.source[0]), id(ln.target[0])) for ln in links
              if ln.source[1] == "index" and ln.target[1] == "selected_index"}
    frames = 0
    level = [stacks[0]]
    for depth, slider in enumerate(sliders):
        n_opts = len(slider.options)
        nxt = []
        for stack in level:
            if not isinstance(stack, ipywidgets.Stack):
                problems.append(f"level {depth}: expected a Stack, got {type(stack).__name__}")
                continue
            if len(stack.children) != n_opts:
                problems.append(f"level {depth}: a Stack has {len(stack.children)} children "
                                f"but slider {slider.description!r} has {n_opts} options")
            if (id(slider), id(stack)) not in linked:
                problems.append(f"level {depth}: a Stack is not jslinked to slider "
                                f"{slider.description!r}")
            nxt.extend(stack.children)
        level = nxt
    for leaf in level:
        if isinstance(leaf, ipywidgets.Image) and bytes(leaf.value[:8]) == b"\x89PNG\r\n\x1a\n":
            frames += 1
        else:
            problems.append(f"a frame is not a PNG Image ({type(leaf).__name__})")
    expected = 1
    for slider in sliders:
        expected *= len(slider.options)
    if frames != expected:
        problems.append(f"{frames} PNG frames for {expected} slider combinations")
    return problems
