"""Live widgets in a real browser: Voila runs the notebook, Chromium moves a slider.

Marker ``browser`` (``make test-browser``). Uses the Debian Chromium through Playwright's
``executable_path`` (no Playwright browser download). Two notebooks: a small self-test notebook
built from ``mfteach.widgets.LiveWidget`` (checks the machinery whatever the chapters hold), and
the intro chapter ``book/01_lazy_vs_meanfield.ipynb`` (skipped while it does not exist). In
each, the first slider of the first live widget (``.mfteach-live``) is moved with the keyboard
and the plot image must change, then settle: a redraw replaces the image's ``src`` once, so the
test waits until the ``src`` differs from the first one and has stayed put for 2 s (a single
change could be an intermediate state; a fixed sleep would be either slow or flaky).

Voila runs outside the book build, so the widgets must be live there: the environment variable
``MFTEACH_STATIC_BUILD`` is removed from Voila's environment, and the test checks that no
static view (``.mfteach-static``, disabled controls) was shown.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pw = pytest.importorskip("playwright.sync_api")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("voila")

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = ROOT / "book" / "01_lazy_vs_meanfield.ipynb"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Voila executes the whole notebook before showing it; MFTEACH_VOILA_TIMEOUT (seconds) raises it.
LOAD_TIMEOUT_MS = int(float(os.environ.get("MFTEACH_VOILA_TIMEOUT", "300")) * 1000)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no system chromium"),
]

SELFTEST_CELLS = [
    "%matplotlib inline\nfrom matplotlib.figure import Figure\n"
    "from mfteach.widgets import LiveWidget, controls",
    "def plot(freq):\n    fig = Figure(figsize=(4, 3)); ax = fig.add_subplot()\n"
    "    ax.plot([i / 50 for i in range(200)], [((i * freq) % 50) / 50 for i in range(200)])\n"
    "    ax.set_title(f'freq={freq:.2f}'); return fig",
    "w = LiveWidget(lambda freq: freq, plot,\n"
    "               {'freq': controls.float_slider('freq', 1.0, 0.5, 5.0, step=0.5)})",
    "w",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _selftest_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in SELFTEST_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = folder / "selftest.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture(params=["selftest", "chapter"])
def voila_url(request, tmp_path):
    if request.param == "chapter":
        if not CHAPTER.exists():
            pytest.skip(f"{CHAPTER.relative_to(ROOT)} does not exist yet")
        notebook = CHAPTER
    else:
        notebook = _selftest_notebook(tmp_path)
    port = _free_port()
    env = dict(os.environ, MFTEACH_FAST="1")
    env.pop("MFTEACH_STATIC_BUILD", None)  # Voila is a live kernel, whatever built the book
    with open(tmp_path / "voila.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
             "--Voila.ip=127.0.0.1"], stdout=log, stderr=subprocess.STDOUT,
            cwd=notebook.parent, env=env)
        try:
            deadline = time.time() + 90
            while time.time() < deadline:  # TCP only: every GET starts a kernel
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None:
                        pytest.fail(f"voila exited: {(tmp_path / 'voila.log').read_text()}")
                    time.sleep(0.5)
            else:
                pytest.fail("voila did not start within 90 s")
            yield f"http://127.0.0.1:{port}/"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_settled(page, img, before: str, timeout_s: float = 60) -> str:
    """The image src once it differs from ``before`` and has not changed for 2 s."""
    last, since, deadline = before, None, time.time() + timeout_s
    while time.time() < deadline:
        cur = img.get_attribute("src")
        if cur != last:
            last, since = cur, time.time()
        elif cur != before and since and time.time() - since > 2:
            break
        page.wait_for_timeout(250)
    return last


def test_moving_a_live_slider_redraws_the_plot(voila_url):
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(LOAD_TIMEOUT_MS)  # Voila runs the whole notebook first
            page.goto(voila_url, wait_until="commit")
            live = page.locator(".mfteach-live").first
            img = live.locator(".mfteach-live-output img").first
            img.wait_for(state="visible")
            assert not page.locator(".mfteach-static").count(), "a static view in Voila"
            assert not live.locator(".noUi-target[disabled], select:disabled, "
                                    "input:disabled").count(), "disabled controls in Voila"
            handle = live.locator(".widget-slider .noUi-handle").first
            readout = live.locator(".widget-slider .widget-readout").first
            before_value = readout.text_content().strip()
            before = img.get_attribute("src")
            handle.focus()
            for key in ("ArrowRight", "ArrowLeft"):  # Left if the slider starts at its max
                for _ in range(3):
                    page.keyboard.press(key)
                if readout.text_content().strip() != before_value:
                    break
            after_value = readout.text_content().strip()
            assert after_value != before_value, "the slider did not move"
            after = _wait_settled(page, img, before)
            assert after != before, (f"plot did not change after moving the slider from "
                                     f"{before_value} to {after_value}")
            assert not live.locator(".mfteach-warning").count(), (
                "the widget shows a warning instead of a plot: "
                + live.locator(".mfteach-warning").first.text_content())
        finally:
            browser.close()
