"""The widget framework itself: LiveWidget, the explorer, discovery, and that the sweep can fail.

The dummy chapter package written to ``tmp_path`` has one sound module and broken ones (NaN at
the defaults, an exception at a slider's maximum, a slow update, a bad explorer), so these
tests show that ``check_live_widget`` / ``check_explorer`` catch what the generic sweep in
``test_sweep.py`` relies on them to catch: updates slow only without a cache hit, failed or NaN
explorer frames. Also the static-build view (disabled controls, notice, one figure).
"""

from __future__ import annotations

import base64
import math
import textwrap
from functools import lru_cache

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

import ipywidgets  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mfteach.widgets import (  # noqa: E402
    STATIC_BUILD_ENV,
    STATIC_NOTICE,
    STRICT_ENV,
    FrameError,
    LiveWidget,
    check_explorer,
    check_live_widget,
    controls,
    discover,
    find_nonfinite,
    precomputed_explorer,
    static_build,
    sweep_settings,
)

_DUMMY = {
    "__init__.py": '"""Dummy chapter widgets for the framework self-test."""\n',
    "_private.py": "raise RuntimeError('private modules must not be imported by discover')\n",
    "controls.py": "raise RuntimeError('controls is machinery, not a chapter')\n",
    "good.py": '''
        import math
        from matplotlib.figure import Figure
        from mfteach.widgets import LiveWidget, controls, precomputed_explorer

        def compute(width, lr, act):
            if lr > 5.0:
                raise ValueError(f"lr={lr} is too large for width {width}")
            return [math.exp(-lr * t / width) for t in range(20)]

        def plot(curve):
            fig = Figure(figsize=(3, 2)); ax = fig.add_subplot()
            ax.semilogy(curve, label="loss"); ax.scatter([0], [curve[0]])
            ax.fill_between(range(len(curve)), curve, 1.0, alpha=0.2)
            return fig

        def live():
            return LiveWidget(compute, plot, {
                "width": controls.int_slider("width", 8, 1, 64),
                "lr": controls.float_log_slider("lr", 0.1, 1e-3, 10.0),
                "act": controls.dropdown("act", ["relu", "erf"])}, title="good")

        def explorer():
            def frame(lr, width):
                return plot(compute(width, lr, "relu"))
            return precomputed_explorer(frame, {"lr": [0.01, 0.1, 1.0], "width": [4, 16]})

        LIVE_WIDGETS = [live]
        EXPLORERS = [explorer]
        ''',
    "nan_default.py": '''
        from matplotlib.figure import Figure
        from mfteach.widgets import LiveWidget, controls

        def plot(r):
            fig = Figure(); fig.add_subplot().plot([0, 1, 2], [1.0, r, 0.5]); return fig

        def live():
            return LiveWidget(lambda x: x / (x - 1.0) if x != 1.0 else float("nan"), plot,
                              {"x": controls.float_slider("x", 1.0, 0.0, 2.0)})

        LIVE_WIDGETS = [live]
        ''',
    "cached.py": '''
        from functools import lru_cache
        from matplotlib.figure import Figure
        from mfteach.widgets import LiveWidget, controls

        @lru_cache(maxsize=8)
        def _heavy(x):
            return (0.0, x)

        def compute(x):
            return list(_heavy(x))

        def plot(r):
            fig = Figure(); fig.add_subplot().plot(r); return fig

        def live():
            return LiveWidget(compute, plot, {"x": controls.float_slider("x", 1.0, 0.0, 2.0)})

        LIVE_WIDGETS = [live]
        ''',
    "boom_at_max.py": '''
        from matplotlib.figure import Figure
        from mfteach.widgets import LiveWidget, controls

        def compute(n):
            if n == 10:
                raise RuntimeError("index out of range in the chapter code")
            return n

        def plot(n):
            fig = Figure(); fig.add_subplot().plot(range(n)); return fig

        def live():
            return LiveWidget(compute, plot, {"n": controls.int_slider("n", 3, 2, 10)})

        LIVE_WIDGETS = [live]
        ''',
}


@pytest.fixture
def dummy_pkg(tmp_path, monkeypatch, request):
    """A throwaway package of chapter widget modules; returns its import name."""
    name = f"mfteach_dummy_{request.node.name.replace('[', '_').replace(']', '_')}"
    root = tmp_path / name
    root.mkdir()
    for fname, text in _DUMMY.items():
        (root / fname).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    import sys

    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]


def _spin(seconds: float) -> None:
    """Busy work for ``seconds`` of this process's CPU time (the sweep times CPU work: a
    sleeping update would look free)."""
    import time

    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def _line_plot(values):
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot(values)
    return fig


def test_discover_finds_public_modules_only(dummy_pkg):
    reg = discover(dummy_pkg)
    assert [m.rsplit(".", 1)[-1] for m in reg.modules] == ["boom_at_max", "cached", "good",
                                                           "nan_default"]
    assert [b.__name__ for b in reg.live] == ["live", "live", "live", "live"]
    assert [b.__name__ for b in reg.explorers] == ["explorer"]


def test_discover_rejects_a_malformed_registry(tmp_path, monkeypatch):
    root = tmp_path / "mfteach_dummy_bad_registry"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "ch.py").write_text("LIVE_WIDGETS = 'not a list'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match="LIVE_WIDGETS must be a list"):
        discover("mfteach_dummy_bad_registry")


def test_sweep_passes_a_sound_widget_and_explorer(dummy_pkg):
    reg = discover(dummy_pkg)
    good = [b for b in reg.live if b.__module__.endswith(".good")][0]()
    assert check_live_widget(good, n_random=3, seed=1) == []
    # lr=10 at its maximum raises ValueError inside compute: a message, not a failure.
    result = good.render(lr=10.0)
    assert result.figure is None and result.message.startswith("This setting cannot be shown")
    assert "lr=10.0 is too large" in result.message and "\n" not in result.message
    assert check_explorer(reg.explorers[0]()) == []


def test_sweep_catches_nan_at_the_defaults(dummy_pkg):
    reg = discover(dummy_pkg)
    widget = [b for b in reg.live if b.__module__.endswith(".nan_default")][0]()
    problems = check_live_widget(widget, n_random=2)
    assert any("no figure at the defaults" in p and "NaN or infinite" in p for p in problems)
    result = widget.render()
    assert result.figure is None and "Line2D" in result.message


def test_sweep_catches_an_exception_at_a_slider_maximum(dummy_pkg):
    reg = discover(dummy_pkg)
    widget = [b for b in reg.live if b.__module__.endswith(".boom_at_max")][0]()
    problems = check_live_widget(widget, n_random=0)
    assert len(problems) == 1, problems
    assert "n=max" in problems[0] and "RuntimeError" in problems[0]
    with pytest.raises(RuntimeError, match="index out of range"):
        widget.render(n=10)  # a bug is not turned into a message


def test_sweep_catches_a_slow_update():
    def slow(x):
        _spin(0.06)
        return [x, x]

    widget = LiveWidget(slow, _line_plot, {"x": controls.float_slider("x", 1.0, 0.0, 2.0)},
                        budget_s=0.05)
    problems = check_live_widget(widget, n_random=0)
    assert any(p.startswith("defaults") and "over the budget (0.05 s" in p for p in problems)
    assert any(p.startswith("the median cold update over 3 settings") for p in problems)
    assert check_live_widget(widget, n_random=0, timing=False) == []


def test_sweep_times_cold_updates_not_cache_hits():
    """A widget fast only on a cache hit fails: the sweep clears the caches before each update.

    The previous sweep re-timed a slow setting, hit the cache the first run had filled, and
    passed such a widget."""
    calls = []

    @lru_cache(maxsize=8)
    def heavy(x):
        calls.append(x)
        _spin(0.3)  # 1.5 x the budget, with or without PNG encoding
        return (0.0, x)

    def compute(x):  # a wrapper: the cache is found in the arguments, not by the module scan
        return list(heavy(x))

    widget = LiveWidget(compute, _line_plot, {"x": controls.float_slider("x", 1.0, 0.0, 2.0)},
                        budget_s=0.2, caches=[heavy])
    widget.render()  # fills the cache
    assert widget.render().seconds < 0.3 <= widget.cold_update().seconds
    n = len(calls)
    assert widget.render().ok and len(calls) == n  # render alone hits the cache
    problems = check_live_widget(widget, n_random=0)
    assert any(p.startswith("defaults") and "a cold update took" in p for p in problems)
    assert any(p.startswith("the median cold update") for p in problems)
    # compute itself an lru_cache: found without being named
    assert LiveWidget(heavy, _line_plot, {"x": controls.float_slider("x", 1.0, 0.0, 2.0)}
                      ).caches == (heavy,)


def test_sweep_judges_defaults_median_and_worst_case_separately():
    """Budget 0.2 s: one extreme at 0.25 s is fine (median fast, under twice the budget), the
    other at 0.5 s is not (over twice the budget); nothing else is reported."""
    def compute(x):
        _spin({0.0: 0.5, 2.0: 0.25}.get(x, 0.0))
        return [0.0, x]

    widget = LiveWidget(compute, _line_plot,
                        {"x": controls.float_slider("x", 1.0, 0.0, 2.0, step=0.02)},
                        budget_s=0.2)
    randoms = [v["x"] for k, v in sweep_settings(widget, n_random=2) if k.startswith("random")]
    assert not {0.0, 2.0} & set(randoms)  # 5 settings: 3 fast, so the median is fast
    problems = check_live_widget(widget, n_random=2)
    assert len(problems) == 1, problems
    assert problems[0].startswith("x=min") and "over twice the budget (0.4 s" in problems[0]


def test_module_caches_are_found_and_cleared(dummy_pkg):
    import importlib

    mod = importlib.import_module(f"{dummy_pkg}.cached")
    widget = mod.live()
    assert mod._heavy in widget.caches
    widget.render()
    assert mod._heavy.cache_info().currsize == 1
    widget.clear_caches()
    assert mod._heavy.cache_info().currsize == 0
    with pytest.raises(TypeError, match="'caches' parameter"):
        LiveWidget(mod.compute, _line_plot, {"x": controls.float_slider("x", 1.0, 0.0, 2.0)},
                   caches=[len])


def test_sweep_catches_a_nan_figure_that_escaped_render(monkeypatch):
    """Defence in depth: a figure with NaN data reaching the sweep is a failure."""
    from mfteach.widgets import _live

    widget = LiveWidget(lambda x: [x, 2 * x], _line_plot,
                        {"x": controls.float_slider("x", 1.0, 0.0, 2.0)})
    monkeypatch.setattr(widget, "render",
                        lambda **v: _live.RenderResult(_line_plot([1.0, math.nan]), None, 0.0))
    problems = check_live_widget(widget, n_random=0)
    assert len(problems) == 3 and all("NaN/inf plotted in Line2D" in p for p in problems)


@pytest.mark.parametrize("kind", ["line", "scatter", "fill", "image", "bar", "mesh"])
def test_find_nonfinite_sees_every_artist_kind(kind):
    fig = Figure()
    ax = fig.add_subplot()
    bad = np.array([1.0, np.nan, 2.0])
    good = np.array([1.0, 1.5, 2.0])
    draw = {
        "line": lambda y: ax.plot(y),
        "scatter": lambda y: ax.scatter([0, 1, 2], y),
        "fill": lambda y: ax.fill([0, 1, 2], y),
        "image": lambda y: ax.imshow(np.outer(y, y)),
        "bar": lambda y: ax.bar([0, 1, 2], y),
        "mesh": lambda y: ax.pcolormesh(np.outer(y, y)),
    }[kind]
    draw(good)
    assert find_nonfinite(fig) == []
    draw(bad)
    assert find_nonfinite(fig), f"a non-finite {kind} was not found"


def test_find_nonfinite_counts_masked_nan_but_not_masked_numbers():
    fig = Figure()
    fig.add_subplot().imshow(np.ma.masked_greater(np.array([[1.0, 5.0], [2.0, 3.0]]), 4.0))
    assert find_nonfinite(fig) == []
    fig.axes[0].imshow(np.ma.masked_invalid(np.array([[1.0, np.nan], [2.0, 3.0]])))
    assert find_nonfinite(fig) == ["AxesImage"]


def test_render_turns_user_errors_into_one_line_messages():
    def compute(x):
        if x > 1.5:
            raise TypeError("x must be\n small")
        return [x, x]

    widget = LiveWidget(compute, _line_plot, {"x": controls.float_slider("x", 1.0, 0.0, 2.0)})
    ok = widget.render()
    assert ok.figure is not None and ok.message is None and ok.seconds >= 0
    bad = widget.render(x=2.0)
    assert bad.figure is None and bad.message == "This setting cannot be shown: x must be small"
    with pytest.raises(TypeError, match="'values' parameter"):
        widget.render(y=1.0)


def test_render_reports_divergence_and_closes_leftover_figures():
    training = pytest.importorskip("mfteach.training")

    def plot(r):
        plt.subplots()  # a pyplot figure left open by a failing plot
        raise training.DivergenceError("loss exceeded 1e6 at step 12")

    widget = LiveWidget(lambda x: x, plot, {"x": controls.float_slider("x", 1.0, 0.0, 2.0)})
    before = plt.get_fignums()
    result = widget.render()
    assert result.message == "The run diverged: loss exceeded 1e6 at step 12"
    assert plt.get_fignums() == before


def test_constructor_validates_and_sets_continuous_update_false():
    slider = ipywidgets.FloatSlider(value=1.0, min=0.0, max=2.0, continuous_update=True)
    widget = LiveWidget(lambda x: [x], _line_plot, {"x": slider})
    assert slider.continuous_update is False
    assert widget.default_values() == {"x": 1.0}
    with pytest.raises(TypeError, match="'compute' parameter"):
        LiveWidget(1, _line_plot, {"x": slider})
    with pytest.raises(ValueError, match="'controls' parameter"):
        LiveWidget(lambda: 1, _line_plot, {})
    with pytest.raises(TypeError, match=r"'controls\[x\]' parameter"):
        LiveWidget(lambda x: 1, _line_plot, {"x": 3})
    with pytest.raises(ValueError, match="'budget_s' parameter"):
        LiveWidget(lambda x: 1, _line_plot, {"x": slider}, budget_s=0)


def test_widget_view_redraws_when_a_control_moves():
    widget = LiveWidget(lambda x: [0.0, x], _line_plot,
                        {"x": controls.float_slider("x", 1.0, 0.0, 2.0)}, title="demo")
    box = widget.widget
    assert isinstance(box, ipywidgets.VBox) and "mfteach-live" in box._dom_classes
    out = box.children[-1]
    first = out.outputs[0]["data"]["image/png"]
    widget.controls["x"].value = 2.0
    second = out.outputs[0]["data"]["image/png"]
    assert len(out.outputs) == 1 and second != first
    widget.controls["x"].value = 0.0
    assert out.outputs[0]["data"]["image/png"] not in (first, second)


def test_widget_view_shows_a_warning_box_instead_of_a_nan_plot():
    widget = LiveWidget(lambda x: [1.0, 1.0 / x if x else math.inf], _line_plot,
                        {"x": controls.float_slider("x", 1.0, 0.0, 2.0)})
    out = widget.widget.children[-1]
    widget.controls["x"].value = 0.0
    data = out.outputs[0]["data"]
    assert "image/png" not in data and "mfteach-warning" in data["text/html"]
    assert "NaN or infinite" in data["text/plain"]


def test_static_figure_is_closed_and_raises_when_defaults_fail():
    widget = LiveWidget(lambda x: [x, x], lambda r: plt.subplots()[0],
                        {"x": controls.float_slider("x", 1.0, 0.0, 2.0)})
    before = plt.get_fignums()
    fig = widget.static_figure()
    assert isinstance(fig, Figure) and plt.get_fignums() == before
    broken = LiveWidget(lambda x: [math.nan, x], _line_plot,
                        {"x": controls.float_slider("x", 1.0, 0.0, 2.0)})
    with pytest.raises(RuntimeError, match="default settings"):
        broken.static_figure()


def test_sweep_settings_cover_extremes_options_and_log_sliders():
    widget = LiveWidget(lambda n, lr, act, show: n, lambda r: Figure(), {
        "n": controls.int_slider("n", 4, 2, 10, step=4),
        "lr": controls.float_log_slider("lr", 0.1, 1e-3, 10.0),
        "act": controls.dropdown("act", [("ReLU", "relu"), ("erf", "erf")]),
        "show": controls.checkbox("show", True)})
    settings = dict(sweep_settings(widget, n_random=3, seed=5))
    assert settings["n=min"]["n"] == 2 and settings["n=max"]["n"] == 10
    assert settings["lr=min"]["lr"] == pytest.approx(1e-3)
    assert settings["lr=max"]["lr"] == pytest.approx(10.0)
    assert {settings["act='relu'"]["act"], settings["act='erf'"]["act"]} == {"relu", "erf"}
    assert settings["show=False"]["show"] is False
    assert settings == dict(sweep_settings(widget, n_random=3, seed=5))  # reproducible
    randoms = [v for k, v in settings.items() if k.startswith("random#")]
    assert len(randoms) == 3 and all(v["n"] in (2, 6, 10) for v in randoms)


def test_explorer_frames_sliders_and_validation():
    calls = []

    def frame(a, b):
        calls.append((a, b))
        return _line_plot([a, b])

    box = precomputed_explorer(frame, {"a": [1, 2], "b": [0.5, 1.0, 2.0]}, description="x")
    assert box.frames == 6 and len(calls) == 6 and check_explorer(box) == []
    assert [s.description for s in box.sliders.values()] == ["a", "b"]
    assert box.sliders["b"]._options_labels == ("0.5", "1", "2")
    with pytest.raises(ValueError, match="at most 4 combinations"):
        precomputed_explorer(frame, {"a": [1, 2, 3], "b": [1, 2]}, max_frames=4)
    with pytest.raises(ValueError, match=r"'grid\[a\]' parameter"):
        precomputed_explorer(frame, {"a": []})
    with pytest.raises(TypeError, match="'render_frame' parameter"):
        precomputed_explorer(lambda a: "not a figure", {"a": [1]})


def test_check_explorer_catches_missing_frames_and_links():
    box = precomputed_explorer(lambda a: _line_plot([a, a]), {"a": [1, 2, 3]})
    stack = box.children[-1]
    stack.children = stack.children[:2]
    box.links = []
    problems = check_explorer(box)
    assert any("2 children" in p for p in problems)
    assert any("not jslinked" in p for p in problems)
    assert any("2 PNG frames for 3" in p for p in problems)
    box.remove_class("mfteach-explorer")
    assert any("missing CSS class" in p for p in check_explorer(box))


def test_controls_validate_and_update_on_release():
    s = controls.int_slider("w", 8, 1, 64)
    assert s.continuous_update is False
    with pytest.raises(ValueError, match="'value' parameter"):
        controls.int_slider("w", 100, 1, 64)
    with pytest.raises(ValueError, match="'min' parameter"):
        controls.float_log_slider("lr", 0.1, 0.0, 1.0)
    with pytest.raises(ValueError, match="'value' parameter"):
        controls.dropdown("act", ["relu"], "tanh")
    assert controls.selection_slider("N", [64, 256], 256).value == 256


# ---------------------------------------------------------------------------------------------
# The static build: disabled controls, a notice, one figure
# ---------------------------------------------------------------------------------------------

def _three_controls():
    return {"x": controls.float_slider("x", 1.0, 0.0, 2.0),
            "act": controls.dropdown("act", ["relu", "erf"]),
            "show": controls.checkbox("show", True)}


def _displayed(widget, monkeypatch) -> list:
    """What ``widget``'s IPython display sends to the frontend, in order."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display",
                        lambda obj, raw=False: shown.append((obj, raw)))
    widget._ipython_display_()
    return shown


@pytest.mark.parametrize("raw, expected", [("1", True), ("TRUE", True), (" yes ", True),
                                           ("", False), ("0", False), ("off", False)])
def test_static_build_reads_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv(STATIC_BUILD_ENV, raw)
    assert static_build() is expected


def test_static_build_refuses_an_unknown_value(monkeypatch):
    monkeypatch.setenv(STATIC_BUILD_ENV, "static")
    with pytest.raises(ValueError, match="MFTEACH_STATIC_BUILD must be one of"):
        static_build()
    monkeypatch.delenv(STATIC_BUILD_ENV)
    assert static_build() is False


def test_static_view_disables_every_control_and_shows_one_figure():
    widget = LiveWidget(lambda x, act, show: [0.0, x], _line_plot, _three_controls(),
                        title="demo")
    widget.controls["x"].value = 2.0  # the static view is at the defaults, not here
    box, notice, figure = widget.static_view()
    assert {"mfteach-live", "mfteach-static"} <= set(box._dom_classes)
    shown_controls = [c for c in box.children if c in widget.controls.values()]
    assert len(shown_controls) == 3 and all(c.disabled for c in shown_controls)
    assert widget.values() == widget.default_values()
    assert not any(isinstance(c, ipywidgets.Output) for c in box.children)
    assert STATIC_NOTICE in notice["text/plain"] and "Jupyter" in notice["text/html"]
    assert set(figure) == {"image/png", "text/plain"}
    assert base64.b64decode(figure["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    # the widget state that the book saves says disabled
    assert all(c.get_state()["disabled"] is True for c in shown_controls)


def test_display_is_live_in_a_kernel_and_static_in_the_book_build(monkeypatch):
    monkeypatch.delenv(STATIC_BUILD_ENV, raising=False)
    live = LiveWidget(lambda x, act, show: [0.0, x], _line_plot, _three_controls())
    shown = _displayed(live, monkeypatch)
    assert [obj for obj, _ in shown] == [live.widget]
    assert isinstance(live.widget.children[-1], ipywidgets.Output)
    assert not any(c.disabled for c in live.controls.values())

    monkeypatch.setenv(STATIC_BUILD_ENV, "1")
    static = LiveWidget(lambda x, act, show: [0.0, x], _line_plot, _three_controls())
    shown = _displayed(static, monkeypatch)
    assert len(shown) == 3 and static._box is None  # the live view was never built
    box, notice, figure = (obj for obj, _ in shown)
    assert "mfteach-static" in box._dom_classes
    assert [raw for _, raw in shown] == [False, True, True]
    assert "image/png" in figure and STATIC_NOTICE in notice["text/plain"]
    images = [o for o in (notice, figure) if "image/png" in o]
    assert len(images) == 1, "the default figure must appear once"


def test_static_view_shows_a_message_when_the_defaults_fail(monkeypatch):
    monkeypatch.setenv(STATIC_BUILD_ENV, "1")
    widget = LiveWidget(lambda x: [math.nan, x], _line_plot,
                        {"x": controls.float_slider("x", 1.0, 0.0, 2.0)})
    box, notice, figure = widget.static_view()
    assert "image/png" not in figure and "mfteach-warning" in figure["text/html"]
    assert "NaN or infinite" in figure["text/plain"]


# ---------------------------------------------------------------------------------------------
# Explorers: a failing or NaN frame becomes a message frame; strict mode raises
# ---------------------------------------------------------------------------------------------

def _frame_with_failures(a):
    training = pytest.importorskip("mfteach.training")
    if a == 2:
        raise training.DivergenceError("loss exceeded 1e6 at step 7")
    if a == 3:
        return _line_plot([1.0, math.nan])
    return _line_plot([a, a + 1.0])


def test_explorer_draws_failed_frames_as_messages(monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    box = precomputed_explorer(_frame_with_failures, {"a": [1, 2, 3, 4]})
    assert box.frames == 4
    assert set(box.failed_frames) == {"a=2", "a=3"}
    assert box.failed_frames["a=2"] == "This setting diverged: loss exceeded 1e6 at step 7"
    assert box.failed_frames["a=3"].startswith("This setting diverged: the figure holds NaN")
    frames = box.children[-1].children
    assert all(bytes(f.value[:8]) == b"\x89PNG\r\n\x1a\n" for f in frames)
    assert len({bytes(f.value) for f in frames}) == 4  # each message frame names its setting
    problems = check_explorer(box)
    assert len(problems) == 2 and all("is a message frame" in p for p in problems)


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_explorer_strict_mode_raises_on_a_bad_frame(monkeypatch, how):
    kwargs = {}
    if how == "argument":
        kwargs["strict"] = True
    else:
        monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(FrameError, match="frame a=2 of the explorer failed: DivergenceError"):
        precomputed_explorer(_frame_with_failures, {"a": [1, 2]}, **kwargs)
    with pytest.raises(FrameError, match="frame a=3 of the explorer plots NaN"):
        precomputed_explorer(_frame_with_failures, {"a": [3]}, **kwargs)


def test_explorer_strict_setting_is_validated(monkeypatch):
    with pytest.raises(TypeError, match="'strict' parameter"):
        precomputed_explorer(_frame_with_failures, {"a": [1]}, strict="yes")
    monkeypatch.setenv(STRICT_ENV, "sometimes")
    with pytest.raises(ValueError, match="MFTEACH_STRICT_WIDGETS must be 1 or 0"):
        precomputed_explorer(_frame_with_failures, {"a": [1]})
