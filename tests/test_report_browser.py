"""The report's smoothing explorer in a real browser: headless Chromium (Debian's ``chromium``)
opens the self-contained page, the test drags the β slider, toggles a run and hovers the plot,
and checks that the curves change, that the page's numbers equal ``gdlab.ewa`` and that no
console error appears.

Chromium is driven through its DevTools protocol over a pipe (``--remote-debugging-pipe``:
JSON messages ending in a NUL byte on file descriptors 3 and 4), with the standard library
only; every read has a deadline and the browser is killed at the end. Without Chromium the
tests are skipped (``.ci/run`` installs it).
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import gdlab

CHROMIUM = next((path for path in (os.environ.get("GDLAB_CHROMIUM"), "/usr/bin/chromium",
                                   shutil.which("chromium"), shutil.which("chromium-browser"))
                 if path and os.access(path, os.X_OK)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--remote-debugging-pipe",
         "--window-size=1280,900", "--hide-scrollbars", "--mute-audio"]
TIMEOUT = 20.0  # seconds for any one answer of the browser
_TRAMPOLINE = ("import os, sys\n"
               "a, b = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))\n"
               "os.dup2(a, 3)\nos.dup2(b, 4)\n"
               "os.set_inheritable(3, True)\nos.set_inheritable(4, True)\n"
               "os.execv(sys.argv[3], sys.argv[3:])\n")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


class BrowserError(RuntimeError):
    pass


class Browser:
    """A headless Chromium and one page, driven over the DevTools protocol's pipe."""

    def __init__(self, user_data_dir: Path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # the browser reads commands on fd 3 and writes answers on fd 4: a small Python
        # trampoline moves the pipe's ends there, then becomes the browser
        command = [sys.executable, "-c", _TRAMPOLINE, str(to_browser_r), str(from_browser_w),
                   CHROMIUM, *FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"]
        self.process = subprocess.Popen(command, pass_fds=(to_browser_r, from_browser_w),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._id = 0
        self.session = None
        self.events: list[dict] = []
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.call("Target.attachToTarget",
                                     {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (BrowserError, OSError):
            pass
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a browser that won't die
            pass

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no answer from chromium in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    raise BrowserError("chromium closed the DevTools pipe")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, timeout: float = TIMEOUT) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            if "method" in answer:
                self.events.append(answer)

    def wait_for_event(self, name: str, timeout: float = TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event["method"] == name:
                    self.events.remove(event)
                    return event
            answer = self._receive(deadline)
            if "method" in answer:
                self.events.append(answer)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until(self, expression: str, timeout: float = TIMEOUT):
        """Evaluate ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression}")
            time.sleep(0.05)

    def open(self, path: Path) -> None:
        self.call("Page.navigate", {"url": path.resolve().as_uri()})
        self.wait_for_event("Page.loadEventFired")

    def mouse(self, kind: str, x: float, y: float, buttons: int = 0) -> None:
        moved = kind == "mouseMoved"
        self.call("Input.dispatchMouseEvent", {
            "type": kind, "x": x, "y": y, "button": "none" if moved and not buttons else "left",
            "buttons": buttons, "clickCount": 0 if moved else 1})

    def center_of(self, selector: str) -> dict:
        """Scroll the element into view; its box in the viewport."""
        return self.evaluate(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            e.scrollIntoView({{block: "center"}});
            const r = e.getBoundingClientRect();
            return {{x: r.left, y: r.top, width: r.width, height: r.height}};
        }})()""")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries so far."""
        found = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                found.append(json.dumps(params.get("exceptionDetails"))[:500])
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") in (
                    "error", "assert", "warning"):
                found.append(json.dumps(params.get("args"))[:500])
            elif event["method"] == "Log.entryAdded" and params.get("entry", {}).get(
                    "level") in ("error", "warning"):
                found.append(json.dumps(params["entry"])[:500])
        return found


@pytest.fixture
def browser(tmp_path):
    instance = Browser(tmp_path / "chromium-profile")
    try:
        yield instance
    finally:
        instance.close()


# ---------------------------------------------------------------------------- pages


def _runs():
    """Two short real runs (GD and Adam on noisy two-class data) as the report shows them."""
    from gdlab.lab.runs import RunResult

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    Y = (X[:, :1] + 0.5 * rng.normal(size=(200, 1)) > 0).astype(np.float64)
    runs = []
    for name, Optimizer, lr in (("gd", gdlab.GD, 0.3), ("adam", gdlab.Adam, 0.02)):
        torch.manual_seed(0)
        model = gdlab.MLP([2, 4, 1])
        history = gdlab.fit(model, X, Y, Optimizer(model.parameters(), lr=lr), epochs=6,
                            batch_size=16, seed=0, progress=False)
        runs.append(RunResult(name, "constant", f"{name} <b>run</b>", history, model,
                              config={"lr": lr}))
    return X, Y, runs


@pytest.fixture(scope="module")
def compare_page(tmp_path_factory):
    from gdlab.data.datasets import Dataset
    from gdlab.report import write_report

    X, Y, runs = _runs()
    dataset = Dataset("blobs", X, Y, X[:20], Y[:20], "binary", 1, ["x1", "x2"], ["0", "1"])
    return write_report(tmp_path_factory.mktemp("compare"), runs, dataset)


@pytest.fixture(scope="module")
def figures_page(tmp_path_factory):
    from gdlab.lab.figures import write_figures

    out = tmp_path_factory.mktemp("figures")
    write_figures(out, ["minibatch-cost", "ewa"])
    return out / "report.html"


def _page_costs(browser) -> list[np.ndarray]:
    costs = browser.evaluate("window.gdlabData.runs.map(r => r.costs)")
    return [np.asarray(c, dtype=np.float64) for c in costs]


def _assert_curves_are_ewa(state, costs, labels):
    """The page's smoothed curves are gdlab.ewa of the page's own costs, for its β."""
    assert [s["label"] for s in state["series"]] == labels
    for series, J in zip(state["series"], costs, strict=True):
        expected = gdlab.ewa(J, state["beta"], bias_correction=state["corrected"])
        np.testing.assert_allclose(np.asarray(series["smooth"], dtype=np.float64), expected,
                                   rtol=1e-12, atol=0)


def _drag_slider(browser, to: float) -> dict:
    """Drag the β slider's thumb from where it is to ``to`` (a fraction of the track); returns
    the explorer's state once it has redrawn."""
    box = browser.center_of("#beta")
    value = float(browser.evaluate("document.getElementById('beta').value"))
    y = box["y"] + box["height"] / 2
    x0 = box["x"] + 8 + (box["width"] - 16) * value / 0.999
    x1 = box["x"] + box["width"] * to
    browser.mouse("mousePressed", x0, y, buttons=1)
    for k in range(1, 6):
        browser.mouse("mouseMoved", x0 + (x1 - x0) * k / 5, y, buttons=1)
    browser.mouse("mouseReleased", x1, y)
    return browser.wait_until(
        f"(() => {{ const v = document.getElementById('beta').value;"
        f" return v !== '{value:g}' && window.gdlabExplorer.beta === parseFloat(v)"
        f" && window.gdlabExplorer; }})()")


def _click(browser, selector: str) -> None:
    box = browser.center_of(selector)
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    browser.mouse("mousePressed", x, y, buttons=1)
    browser.mouse("mouseReleased", x, y)


def test_slider_resmooths_with_the_ewa_of_gdlab(browser, compare_page):
    browser.open(compare_page)
    start = browser.wait_until("window.gdlabExplorer")
    costs = _page_costs(browser)
    labels = ["gd <b>run</b>", "adam <b>run</b>"]  # shown as text, never as markup
    assert start["beta"] == 0.98 and start["corrected"]
    _assert_curves_are_ewa(start, costs, labels)

    moved = _drag_slider(browser, 0.3)
    assert 0.2 < moved["beta"] < 0.4, moved["beta"]
    assert moved["beta"] == float(browser.evaluate("document.getElementById('beta').value"))
    _assert_curves_are_ewa(moved, costs, labels)
    assert not np.allclose(moved["series"][0]["smooth"], start["series"][0]["smooth"])
    assert str(round(moved["beta"], 3)) in browser.evaluate(
        "document.getElementById('beta-out').textContent")

    _click(browser, "#bias-correction")
    uncorrected = browser.wait_until("!window.gdlabExplorer.corrected && window.gdlabExplorer")
    assert uncorrected["beta"] == moved["beta"]
    _assert_curves_are_ewa(uncorrected, costs, labels)
    assert browser.problems() == []


def test_run_toggles_and_hover_values(browser, compare_page):
    browser.open(compare_page)
    state = browser.wait_until("window.gdlabExplorer")
    assert browser.evaluate("document.getElementById('run-toggles').querySelectorAll('b')"
                            ".length") == 0
    assert len(state["series"]) == 2
    _click(browser, "#run-toggles label:first-child input")
    state = browser.wait_until("window.gdlabExplorer.series.length === 1 && window.gdlabExplorer")
    assert [s["label"] for s in state["series"]] == ["adam <b>run</b>"]

    box = browser.center_of("#explorer")
    browser.mouse("mouseMoved", box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    t = browser.wait_until("window.gdlabExplorer.hover")
    n = len(_page_costs(browser)[1])
    assert 1 < t < n
    text = browser.evaluate("document.getElementById('explorer-hover').innerText")
    assert text.splitlines()[0] == f"t = {t}"
    shown = re.search(r"adam <b>run</b>: v\u0302 = ([-+.\de]+), J = ([-+.\de]+)", text)
    assert shown, text
    assert float(shown.group(1)) == pytest.approx(state["series"][0]["smooth"][t - 1], rel=1e-4)
    assert float(shown.group(2)) == pytest.approx(_page_costs(browser)[1][t - 1], rel=1e-4)
    assert browser.evaluate("document.getElementById('explorer-hover').hidden") is False

    browser.mouse("mouseMoved", 2, 2)  # off the plot: the values go away
    browser.wait_until("window.gdlabExplorer.hover === null")
    browser.wait_until("document.getElementById('explorer-hover').hidden")
    assert browser.problems() == []


def test_figures_report_in_the_browser(browser, figures_page):
    browser.open(figures_page)
    state = browser.wait_until("window.gdlabExplorer")
    assert [s["label"] for s in state["series"]] == ["batch GD", "mini-batch GD (size 64)"]
    costs = _page_costs(browser)
    _assert_curves_are_ewa(state, costs, [s["label"] for s in state["series"]])
    moved = _drag_slider(browser, 0.95)
    assert moved["beta"] > state["beta"]
    _assert_curves_are_ewa(moved, costs, [s["label"] for s in state["series"]])
    images = browser.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
    assert len(images) == 2 and all(width > 300 for width in images)
    assert browser.problems() == []


def test_a_20000_epoch_report_is_light_opens_fast_and_smooths_exactly(browser, tmp_path):
    """gdlab fit's report of a 20,000-epoch run of the default network (12 mini-batches an
    epoch): every mini-batch cost is in the page, as float32 (5.3 bytes each), which smooths
    the whole series exactly and draws it per pixel column."""
    from gdlab.data.datasets import Dataset
    from gdlab.lab.runs import RunResult
    from gdlab.report import write_report
    from gdlab.train import History

    epochs, steps = 20_000, 12
    rng = np.random.default_rng(0)
    t = np.arange(epochs * steps)
    runs = []
    for name, rate in (("adam", 1e-4),):
        costs = 0.05 + np.exp(-rate * t) * (1 + 0.3 * rng.standard_normal(t.size) ** 2)
        epoch_costs = costs.reshape(epochs, steps).mean(1)
        history = History(costs=costs.tolist(), epoch_costs=epoch_costs.tolist(),
                          lrs=[0.01] * epochs, times=(np.arange(1, epochs + 1) * 1e-3).tolist())
        runs.append(RunResult(name, "constant", name, history, None))
    X = np.zeros((100, 3))
    dataset = Dataset("long", X, np.zeros(100), X, np.zeros(100), "regression", 1,
                      ["a", "b", "c"])
    page = write_report(tmp_path, runs, dataset)
    assert page.stat().st_size < 2_000_000, page.stat().st_size
    start = time.monotonic()
    browser.open(page)
    browser.wait_until("window.gdlabExplorer && window.gdlabExplorer.draws >= 1")
    assert time.monotonic() - start < 1.0 + 0.5  # (0.5 s for the pipe and the test's polls)
    costs = _page_costs(browser)
    np.testing.assert_allclose(costs[0], runs[0].history.costs, rtol=1e-6)  # float32's digits
    state = browser.evaluate("({beta: window.gdlabExplorer.beta, "
                             "corrected: window.gdlabExplorer.corrected, "
                             "head: window.gdlabExplorer.series.map(s => s.smooth.slice(0, 50)),"
                             " tail: window.gdlabExplorer.series.map(s => s.smooth.slice(-50)),"
                             " n: window.gdlabExplorer.series.map(s => s.smooth.length)})")
    assert state["n"] == [epochs * steps]
    for head, tail, J in zip(state["head"], state["tail"], costs, strict=True):
        expected = gdlab.ewa(J, state["beta"], bias_correction=state["corrected"])
        np.testing.assert_allclose(head, expected[:50], rtol=1e-12)
        np.testing.assert_allclose(tail, expected[-50:], rtol=1e-9)
    assert browser.problems() == []
