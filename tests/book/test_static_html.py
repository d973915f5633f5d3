"""The built book works as static HTML with no network (headless Chromium through Playwright).

Serves ``_build/html`` on 127.0.0.1, blocks every request to another host, and checks that:

1. the landing page and every chapter render (title; on chapters, figures that load);
2. the maths is typeset by the vendored MathJax (``mjx-container``, no raw ``\\[``);
3. each precomputed explorer (an ipywidgets box with CSS class ``mfteach-explorer``: a slider
   ``jslink``ed to a ``Stack`` of image frames) switches its frame when its slider is moved
   with the keyboard;
4. nothing outside 127.0.0.1 was requested (blocked requests are recorded and reported);
5. each widget view is rendered once (as many ``.mfteach-explorer`` elements as explorer models
   in the page's saved widget state, and one rendered view per widget-view script);
6. live widgets (``.mfteach-live``: they need a kernel) show no control that does anything:
   every control is disabled in the saved widget state and in the page (a key press does not
   move a slider), the "run in Jupyter" notice is visible next to them, and their default
   figure appears once (one image in the widget's cell, none in the code cell just before it,
   no live output area). The book build sets ``MFTEACH_STATIC_BUILD=1`` for this
   (``make book``); a build without it fails here.

Screenshots go to ``_build/screenshots/`` for humans. Needs ``make book`` first (``make test``
builds it); skipped with a reason when the book or Chromium is missing. Set
``MFTEACH_BOOK_HTML`` to test another build folder. Never downloads a Playwright browser: it
drives the system (Debian) Chromium.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("MFTEACH_BOOK_HTML", ROOT / "_build" / "html")).resolve()
SHOTS = HTML.parent / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXPLORER = ".mfteach-explorer"
LIVE = ".mfteach-live"
STATIC = ".mfteach-static"
# Blocked font requests (e.g. a theme's web font) do not break a page; they are reported only.
FONT = re.compile(r"\.(woff2?|ttf|otf|eot)(\?|$)|fonts\.(googleapis|gstatic)\.com")
TIMEOUT_MS = 60_000
# Known and harmless: Sphinx 7.4 adds sphinx-thebe's inline config script twice, so the second
# copy's `const THEBE_JS_URL` throws; thebe is off in this book (no live-code button).
KNOWN_PAGE_ERRORS = re.compile(r"Identifier 'THEBE_JS_URL' has already been declared")


def _chapters() -> list[str]:
    """Chapter pages: book/NN_<name>.html, as built from book/NN_<name>.ipynb."""
    pages = (HTML / "book").glob("[0-9][0-9]_*.html")
    return sorted(p.relative_to(HTML).as_posix() for p in pages)


def _widget_state(page_file: Path) -> dict[str, dict]:
    """model id -> saved state, over every widget-state script of the page."""
    text = page_file.read_text(encoding="utf-8")
    models: dict[str, dict] = {}
    for block in re.findall(
            r'<script type="application/vnd\.jupyter\.widget-state\+json">(.*?)</script>',
            text, re.S):
        for model_id, model in json.loads(block)["state"].items():
            models[model_id] = model.get("state", {})
    return models


def _with_class(models: dict[str, dict], cls: str) -> list[str]:
    return [k for k, st in models.items() if cls in (st.get("_dom_classes") or [])]


def _explorer_models(page_file: Path) -> int:
    """Number of widget models in the page's saved state whose DOM classes hold the explorer."""
    return len(_with_class(_widget_state(page_file), EXPLORER[1:]))


def _descendants(models: dict[str, dict], root: str) -> list[str]:
    """Model ids of ``root``'s children, recursively (``"IPY_MODEL_<id>"`` references)."""
    out, todo = [], [root]
    while todo:
        for ref in models.get(todo.pop(), {}).get("children") or []:
            child = ref.removeprefix("IPY_MODEL_")
            out.append(child)
            todo.append(child)
    return out


# ---------------------------------------------------------------------------------------------
# Fixtures: a local server, one browser, a page factory that blocks the network
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site() -> str:
    if not (HTML / "index.html").is_file():
        pytest.skip(f"the book is not built ({HTML / 'index.html'} is missing): run `make book`")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(HTML)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no system Chromium on PATH (`make chromium` installs the Debian package)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


class Visit:
    """One page in a fresh context; records requests to other hosts and failed local ones."""

    def __init__(self, browser, site: str, path: str):
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.bad_responses: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        host = urlparse(site).netloc

        def route(r):
            url = r.request.url
            if urlparse(url).netloc == host:
                r.continue_()
            else:
                self.blocked.append(url)
                r.abort()

        self.page.route("**/*", route)
        self.page.on("requestfailed", lambda req: self.failed.append(req.url))
        self.page.on("response", lambda r: r.status >= 400
                     and self.bad_responses.append(f"{r.status} {r.url}"))
        self.page.on("pageerror", self._on_error)
        self.page.goto(f"{site}/{path}", wait_until="commit")

    def _on_error(self, exc):
        if not KNOWN_PAGE_ERRORS.search(str(exc)):
            self.errors.append(str(exc))

    def wait_for_mathjax(self):
        self.page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        self.page.evaluate("() => MathJax.startup.promise.then(() => true)")

    def shot(self, name: str, *, full_page: bool = True):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / name), full_page=full_page)

    @contextmanager
    def explain(self):
        """Turn a Playwright timeout into a failure that says what the page could not load."""
        try:
            yield
        except Exception as exc:
            if type(exc).__name__ != "TimeoutError":
                raise
            raise AssertionError(
                f"{str(exc).splitlines()[0]} on {self.page.url}\n"
                f"requests to other hosts (blocked): {sorted(set(self.blocked))}\n"
                f"failed requests: {sorted(set(self.failed))}\n"
                f"error responses: {self.bad_responses}\n"
                f"JavaScript errors: {self.errors}") from exc

    def assert_self_contained(self):
        """No JavaScript error, no missing local file, no request to another host but fonts."""
        assert not self.errors, f"JavaScript errors on {self.page.url}: {self.errors}"
        assert not self.bad_responses, f"missing files on {self.page.url}: {self.bad_responses}"
        needed = [u for u in self.blocked if not FONT.search(u)]
        assert not needed, f"requests to other hosts on {self.page.url}: {needed}"

    def close(self):
        if self.blocked:
            print(f"blocked requests on {self.page.url}: {sorted(set(self.blocked))}")
        self.context.close()


@pytest.fixture
def visit(browser, site):
    opened: list[Visit] = []

    def _open(path: str) -> Visit:
        v = Visit(browser, site, path)
        opened.append(v)
        return v

    yield _open
    for v in opened:
        v.close()


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------

def _assert_math_typeset(v: Visit):
    v.wait_for_mathjax()
    assert v.page.locator("mjx-container").count() > 0, "no MathJax output on the page"
    text = v.page.locator("main").inner_text()
    for raw in ("\\[", "\\(", "$$"):
        assert raw not in text, f"raw TeX {raw!r} left in the page text: MathJax did not typeset"


def _images(v: Visit, selector: str) -> list[dict]:
    v.page.wait_for_function(
        f"() => [...document.querySelectorAll({selector!r})].every(i => i.complete)")
    return v.page.eval_on_selector_all(
        selector, "imgs => imgs.map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth}))")


def _image_digest(v: Visit, img) -> str:
    """Hash of the bytes an <img> shows (blob:, data: or a file), so equal frames compare equal."""
    data = img.evaluate("""async (i) => {
        const buf = new Uint8Array(await (await fetch(i.currentSrc || i.src)).arrayBuffer());
        return Array.from(buf, b => String.fromCharCode(b)).join('');
    }""")
    return hashlib.sha256(data.encode("latin-1")).hexdigest()


def test_landing_page(visit):
    t0 = time.perf_counter()
    v = visit("index.html")              # redirects to the toc root, book/index.html
    with v.explain():
        v.page.wait_for_url("**/book/index.html")
        v.page.wait_for_selector("article h1")
        assert "Wide networks" in v.page.locator("article h1").first.inner_text()
        _assert_math_typeset(v)
        # the table of contents and the bibliography are on the landing page
        assert v.page.locator("main a[href*='01_lazy_vs_meanfield']").count() > 0
        n_refs = v.page.locator("main .citation-list .citation").count()
        assert n_refs >= 5, f"the bibliography lists {n_refs} entries, expected the papers (>= 5)"
        broken = [i for i in _images(v, "main img") if i["w"] == 0]
        assert not broken, f"images that did not load: {broken}"
        v.assert_self_contained()
        v.shot("index.png")
        print(f"landing page checked in {time.perf_counter() - t0:.1f} s")


def test_there_are_chapters():
    if not (HTML / "index.html").is_file():
        pytest.skip("the book is not built: run `make book`")
    assert _chapters(), f"no chapter pages book/NN_*.html under {HTML}"


@pytest.mark.parametrize("chapter", _chapters() or [pytest.param("none", marks=pytest.mark.skip(
    reason="no built chapters (run `make book`)"))])
def test_chapter_renders_offline(visit, chapter):
    t0 = time.perf_counter()
    v = visit(chapter)
    with v.explain():
        v.page.wait_for_selector("article h1")
        assert v.page.locator("article h1").first.inner_text().strip(), "chapter has no title"
        _assert_math_typeset(v)

        imgs = _images(v, "main .cell_output img, main figure img")
        assert any(i["w"] > 0 for i in imgs), f"no figure loaded on {chapter}: {imgs}"
        broken = [i["src"][:80] for i in imgs if i["w"] == 0]
        assert not broken, f"figures that did not load on {chapter}: {broken}"

        # Launch buttons (Binder, Colab) point at this chapter's notebook.
        html = (HTML / chapter).read_text(encoding="utf-8")
        nb = Path(chapter).with_suffix(".ipynb").as_posix()
        assert "mybinder.org/v2/gh/" in html and nb in html, "no Binder launch link"
        assert "colab.research.google.com/github/" in html, "no Colab launch link"

        # Each widget view rendered once: one rendered root per widget-view script.
        if v.page.locator("script[type='application/vnd.jupyter.widget-view+json']").count():
            v.page.wait_for_selector(".widget-subarea")
            per_view = v.page.eval_on_selector_all(
                "script[type='application/vnd.jupyter.widget-view+json']",
                "ss => ss.map(s => s.parentElement"
                ".querySelectorAll(':scope > .widget-subarea').length)")
            assert all(n == 1 for n in per_view), f"widget views rendered {per_view} times"

        v.assert_self_contained()
        v.shot(chapter.replace("/", "_").replace(".html", ".png"))
        print(f"{chapter} checked in {time.perf_counter() - t0:.1f} s")

def _slider_state(slider) -> tuple[float, float, float]:
    """(value, min, max) of an ipywidgets noUiSlider handle or an <input type=range>."""
    return slider.evaluate("""(s) => s.tagName === 'INPUT'
        ? [Number(s.value), Number(s.min), Number(s.max)]
        : [Number(s.getAttribute('aria-valuenow')), Number(s.getAttribute('aria-valuemin')),
           Number(s.getAttribute('aria-valuemax'))]""")


@pytest.mark.parametrize("chapter", _chapters() or [pytest.param("none", marks=pytest.mark.skip(
    reason="no built chapters (run `make book`)"))])
def test_explorer_switches_frames_offline(visit, chapter):
    t0 = time.perf_counter()
    expected = _explorer_models(HTML / chapter)
    assert expected >= 1, (f"{chapter} has no precomputed explorer (an ipywidgets box with CSS "
                           f"class 'mfteach-explorer' in the saved widget state)")
    v = visit(chapter)
    with v.explain():
        v.page.wait_for_selector(EXPLORER)
        v.page.wait_for_timeout(500)          # let the widget manager finish rendering every view
        explorers = v.page.locator(EXPLORER)
        assert explorers.count() == expected, (
            f"{explorers.count()} explorer elements for {expected} explorer widgets: "
            "a widget view was rendered "
            f"{'more than once' if explorers.count() > expected else 'not at all'}")

        for k in range(expected):
            box = explorers.nth(k)
            box.scroll_into_view_if_needed()
            slider = box.locator(".widget-slider .noUi-handle, input[type=range]").first
            img = box.locator("img:visible").first
            img.wait_for(state="visible")
            before_src, before = img.evaluate("i => i.currentSrc || i.src"), _image_digest(v, img)
            value, lo, hi = _slider_state(slider)
            assert hi > lo, f"explorer {k} on {chapter}: its slider has a single position"
            slider.focus()
            v.page.keyboard.press("ArrowRight" if value < hi else "ArrowLeft")
            # Wait until the shown frame has changed and stayed put for 0.5 s.
            last, since, deadline = before_src, None, time.time() + 15
            while time.time() < deadline:
                cur = box.locator("img:visible").first.evaluate("i => i.currentSrc || i.src")
                if cur != last:
                    last, since = cur, time.time()
                elif cur != before_src and since and time.time() - since > 0.5:
                    break
                v.page.wait_for_timeout(100)
            assert _slider_state(slider)[0] != value, f"explorer {k}: the slider did not move"
            assert last != before_src, f"explorer {k} on {chapter}: the frame did not change"
            after = _image_digest(v, box.locator("img:visible").first)
            assert after != before, f"explorer {k} on {chapter}: new frame, same picture"
            SHOTS.mkdir(parents=True, exist_ok=True)
            box.screenshot(path=str(SHOTS / f"{Path(chapter).stem}_explorer{k}.png"))

        v.assert_self_contained()
        print(f"{chapter}: {expected} explorer(s) checked in {time.perf_counter() - t0:.1f} s")



# ---------------------------------------------------------------------------------------------
# Live widgets in the static HTML: disabled, with the notice, one figure each
# ---------------------------------------------------------------------------------------------

def test_live_widget_state_is_static():
    """The saved widget state (no browser): every live widget box is the static view."""
    if not (HTML / "index.html").is_file():
        pytest.skip("the book is not built: run `make book`")
    found = 0
    for chapter in _chapters():
        models = _widget_state(HTML / chapter)
        for box in _with_class(models, LIVE[1:]):
            found += 1
            assert STATIC[1:] in models[box]["_dom_classes"], (
                f"{chapter}: a live widget was saved as its live view (was the book built "
                "with MFTEACH_STATIC_BUILD=1, e.g. by `make book`?)")
            enabled = [models[c].get("description") or c for c in _descendants(models, box)
                       if models[c].get("disabled") is False]
            assert not enabled, f"{chapter}: live-widget controls saved enabled: {enabled}"
        outputs = _with_class(models, "mfteach-live-output")
        assert not outputs, f"{chapter}: {len(outputs)} live output areas in the static page"
    assert found, "no live widget (.mfteach-live) in any chapter's saved widget state"


_LIVE_CELLS_JS = """(live) => live.map((box) => {
    const cell = box.closest('.cell');
    const prev = cell && cell.previousElementSibling;
    const notice = cell && cell.querySelector('.mfteach-static-notice');
    const enabled = [...box.querySelectorAll('input, select, textarea, button')]
        .filter((e) => !e.disabled).length
        + [...box.querySelectorAll('.noUi-target')].filter((e) => !e.hasAttribute('disabled'))
        .length
        + box.querySelectorAll('[contenteditable="true"]').length;
    return {
        images: cell ? [...cell.querySelectorAll('.cell_output img')]
            .map((i) => ({w: i.naturalWidth, inBox: box.contains(i)})) : [],
        prevImages: prev && prev.classList.contains('cell')
            ? prev.querySelectorAll('.cell_output img').length : 0,
        notice: notice ? notice.innerText : null,
        noticeVisible: !!(notice && notice.offsetParent !== null),
        enabled,
        static: box.classList.contains('mfteach-static'),
        liveOutputs: box.querySelectorAll('.mfteach-live-output').length,
    };
})"""


@pytest.mark.parametrize("chapter", _chapters() or [pytest.param("none", marks=pytest.mark.skip(
    reason="no built chapters (run `make book`)"))])
def test_live_widgets_show_no_dead_controls(visit, chapter):
    expected = len(_with_class(_widget_state(HTML / chapter), LIVE[1:]))
    if not expected:
        pytest.skip(f"{chapter} has no live widget")
    v = visit(chapter)
    with v.explain():
        v.page.wait_for_selector(LIVE)
        v.page.wait_for_function(  # every image of the page loaded
            "() => [...document.querySelectorAll('main img')].every(i => i.complete)")
        v.page.wait_for_timeout(500)  # let the widget manager finish rendering every view
        boxes = v.page.locator(LIVE)
        assert boxes.count() == expected, (
            f"{boxes.count()} live widget elements for {expected} live widgets in the state")
        for k, info in enumerate(v.page.eval_on_selector_all(LIVE, _LIVE_CELLS_JS)):
            where = f"live widget {k} on {chapter}"
            assert info["static"], f"{where}: the live view was saved (no MFTEACH_STATIC_BUILD)"
            assert info["enabled"] == 0, f"{where}: {info['enabled']} controls are enabled"
            assert info["liveOutputs"] == 0, f"{where}: a live output area is on the page"
            assert info["noticeVisible"] and "Jupyter" in info["notice"], (
                f"{where}: no visible 'run in Jupyter' notice ({info['notice']!r})")
            assert len(info["images"]) == 1, (
                f"{where}: {len(info['images'])} figures in its cell, expected the default "
                "figure once")
            assert info["images"][0]["w"] > 0, f"{where}: its figure did not load"
            assert info["prevImages"] == 0, (
                f"{where}: the code cell before it shows a figure too (a second copy of the "
                "default figure?)")
        # A key press on a disabled slider does nothing.
        box = boxes.first
        handle = box.locator(".noUi-handle, input[type=range]").first
        if handle.count():
            before = _slider_state(handle)
            handle.focus()
            v.page.keyboard.press("ArrowRight")
            v.page.keyboard.press("ArrowLeft")
            v.page.keyboard.press("ArrowLeft")
            assert _slider_state(handle) == before, f"{chapter}: a disabled slider moved"
        box.scroll_into_view_if_needed()
        SHOTS.mkdir(parents=True, exist_ok=True)
        box.locator("xpath=ancestor::div[contains(@class, 'cell')][1]").screenshot(
            path=str(SHOTS / f"{Path(chapter).stem}_live0.png"))
        v.assert_self_contained()
