"""Precomputed explorers: slider-driven figures that work in the static HTML, with no kernel.

Every combination of a small parameter grid is rendered once, when the notebook executes (at
book build time), and stored as a PNG in an ``ipywidgets.Image``. The images sit in nested
``ipywidgets.Stack`` containers (one nesting level per grid key); each level's
``selected_index`` is ``jslink``-ed to one ``SelectionSlider``. Links run in the browser, so
Jupyter Book's saved widget state lets a reader of the static page move the sliders and see the
frames switch.
"""

from __future__ import annotations

import html
import io
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._checks import check_float, check_int, fail

__all__ = ["precomputed_explorer", "check_explorer", "EXPLORER_CLASS"]

_FN = "mfteach.widgets.precomputed_explorer"
EXPLORER_CLASS = "mfteach-explorer"


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
                         max_frames: int = 64):
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

    Returns
    -------
    ipywidgets.VBox
        With CSS class ``mfteach-explorer``: the description, one ``SelectionSlider`` per grid
        key, and the nested ``Stack`` of ``Image`` frames. Attributes ``frames`` (the number
        of images) and ``sliders`` (dict key -> slider) are attached for tests.

    Raises
    ------
    TypeError
        If ``render_frame`` is not callable or does not return a ``Figure``, or ``grid`` is
        not a dict of sequences keyed by identifiers.
    ValueError
        If ``grid`` or one of its value lists is empty, or the grid exceeds ``max_frames``.

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

    keys = list(axes)
    images = {}
    for combo in itertools.product(*axes.values()):
        png = _png(render_frame(**dict(zip(keys, combo))), dpi)
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
    box.links = links  # keep the links alive with the box
    return box


def check_explorer(box: Any) -> list[str]:
    """List the structural problems of a precomputed explorer (empty list: it is sound).

    Checks, independently of how the explorer was built: the CSS class ``mfteach-explorer``;
    one ``SelectionSlider`` per nesting level of ``Stack``; every ``Stack`` at level ``k`` has
    as many children as slider ``k`` has options and is ``jslink``-ed to it (through the
    ``links`` attribute kept on the box); the number of PNG frames equals the product of the
    sliders' option counts.

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
