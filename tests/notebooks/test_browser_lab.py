"""The attention explorer in a real browser: JupyterLab (this checkout's .venv, ipywidgets 8) on
127.0.0.1 with a token, Debian's Chromium driven by Playwright. The test opens a solution
notebook (in a temporary root folder), runs all cells from the Run menu, drags one slider of the
last attention explorer to another value and checks that the heatmap was redrawn:

- notebook 04 (`make test`): the explorer over the four hand-made heads of the finished
  CausalSelfAttention; the head slider goes from head 0 to head 1;
- notebooks 07 and 10 (slow tier): the explorer over every layer and head of a trained model
  (07 offline: the small model shipped in data/trained/; 10: the model the notebook just
  trained, in fast mode); the layer slider goes from the layer it starts at (the strongest
  induction head's) to another.

Screenshots go to the test's tmp folder (``screenshots/``) and, when GPT2COURSE_SCREENSHOTS=DIR
is set, to DIR as well; docs/images/attention_explorer.png is ``explorer_head1.png`` of a run of
notebook 04.

Needs /usr/bin/chromium (``make system-deps`` installs it as root with apt-get; never
``playwright install``) and the playwright package (dev extras). Without them the test fails;
outside CI, GPT2COURSE_SKIP_BROWSER=1 turns that into a skip.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, SOLUTIONS

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("GPT2COURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
# (notebook, the slider dragged, its largest value or None for "whatever the model has, at least
# 1"): 04 in `make test`; 07 and 10 (each about a minute: they load or train a model first) in the
# slow tier.
CASES = [pytest.param("04_multi_head_attention.ipynb", "head", 3, id="04-head"),
         pytest.param("07_gpt2_model.ipynb", "layer", 1, id="07-layer", marks=pytest.mark.slow),
         pytest.param("10_full_training_run.ipynb", "layer", None, id="10-layer", marks=pytest.mark.slow)]


def require_browser():
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[dev]'; never `playwright install`)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (`make system-deps` as root installs Debian's chromium)")
    if missing:
        message = "the browser test needs " + " and ".join(missing)
        if os.environ.get("GPT2COURSE_SKIP_BROWSER") == "1" and not os.environ.get("CI"):
            pytest.skip(message)
        pytest.fail(message, pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    root: Path


def stop(proc: subprocess.Popen, url: str, token: str) -> None:
    """Shut the server down (it stops its kernels), then make sure its PID is gone."""
    if proc.poll() is None:
        try:
            request = urllib.request.Request(f"{url}/api/shutdown", method="POST",
                                             headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(request, timeout=10).close()
        except OSError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    try:  # anything else left in the server's own session (it was started as its leader)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture
def lab(tmp_path, notebook):
    require_browser()
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(SOLUTIONS / notebook, root / notebook)
    jupyter = tmp_path / "jupyter"  # config, data and settings of this server only
    (jupyter / "config" / "labconfig").mkdir(parents=True)
    # No "get Jupyter news?" pop-up over the notebook (nothing is fetched either way).
    (jupyter / "config" / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port, token = free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, GPT2COURSE_FAST="1",
               PYTHONPATH=os.pathsep.join(p for p in [str(REPO), os.environ.get("PYTHONPATH")] if p),
               JUPYTER_CONFIG_DIR=str(jupyter / "config"), JUPYTER_DATA_DIR=str(jupyter / "data"),
               JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(jupyter / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = tmp_path / "jupyterlab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer in 90 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield Lab(url, token, root)
    finally:
        stop(proc, url, token)


def wait_for_kernel(lab: Lab, timeout: float = 90) -> None:
    """Until the server has one kernel, idle, with the page connected to it."""
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(f"{lab.url}/api/kernels",
                                         headers={"Authorization": f"token {lab.token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                kernels = json.load(r)
        except OSError as error:
            # While a kernel starts, jupyter_server can answer 500 here (its last_activity is
            # still None); that is "not ready yet", like a kernel that is still busy.
            kernels = f"GET /api/kernels failed: {error}"
        if (isinstance(kernels, list) and len(kernels) == 1
                and kernels[0]["execution_state"] == "idle" and kernels[0]["connections"] >= 1):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"no idle, connected kernel after {timeout:.0f} s: {kernels}")
        time.sleep(0.5)


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.mark.parametrize("notebook, slider, largest", CASES)
def test_explorer_slider_redraws_the_heatmap_in_chromium(lab, tmp_path, notebook, slider, largest):
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    extra = os.environ.get("GPT2COURSE_SCREENSHOTS")

    def save(name: str, png: bytes) -> bytes:
        (shots / name).write_bytes(png)
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            (Path(extra) / name).write_bytes(png)
        return png

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                page.goto(f"{lab.url}/lab/tree/{notebook}?token={lab.token}")
                page.wait_for_selector(".jp-Notebook", timeout=90_000)
                wait_for_kernel(lab)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                       timeout=90_000)
                first_prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
                expect(first_prompt).to_have_text(re.compile(r"^\[ \]:$"))  # nothing has run yet
                for attempt in range(2):
                    page.get_by_role("menuitem", name="Run", exact=True).click()
                    page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
                    try:  # "[*]:" while it runs, "[1]:" once done
                        expect(first_prompt).not_to_have_text(re.compile(r"^\[ \]:$"), timeout=30_000)
                        break
                    except AssertionError:
                        # Under load JupyterLab can start the notebook's kernel twice and drop
                        # requests sent to the first; nothing ran, so asking again is safe.
                        if attempt:
                            raise
                        warnings.warn("Run All ran nothing; asked again (kernel start race)")

                # The explorer: a VBox with a visible slider labelled `slider` (in 04 the layer
                # slider is hidden: one layer).
                control = page.locator(".widget-hslider").filter(
                    has=page.locator("label.widget-label", has_text=slider)).last
                expect(control).to_be_visible(timeout=180_000)
                explorer = page.locator(".widget-vbox").filter(has=control).last
                heatmap = explorer.locator(".widget-output img")
                expect(heatmap).to_be_visible(timeout=60_000)
                readout = control.locator(".widget-readout")
                handle = control.locator(".noUi-handle")
                if largest is None:
                    largest = round(float(handle.get_attribute("aria-valuemax")))
                    assert largest >= 1, f"{notebook}: the {slider} slider has one value only"
                assert handle.get_attribute("aria-valuemax") == f"{largest:.1f}", (
                    f"{notebook}: the {slider} slider should end at {largest}")
                # Let every cell finish first: outputs still arriving can re-lay out the notebook
                # (JupyterLab re-estimates cell heights and scrolls), which would move the
                # handle between measuring it and pressing the mouse.
                expect(page.locator(".jp-CodeCell .jp-InputPrompt").filter(
                    has_text=re.compile(r"\[\s*[*]?\s*\]"))).to_have_count(0, timeout=180_000)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                       timeout=90_000)
                explorer.scroll_into_view_if_needed()
                page.wait_for_timeout(300)
                start = int(readout.inner_text())
                target = 1 if start == 0 else 0
                src_before = heatmap.get_attribute("src")
                shot_before = save(f"explorer_{slider}{start}.png", explorer.screenshot())

                # Drag the handle to another value: from 0 to 1 (a third of the way along 04's
                # head track), from anything else to 0 (the left end). hover() waits until the
                # handle is still and is what the pointer would hit; if the drag is lost anyway
                # (the page moved under it), measure again and repeat.
                for attempt in range(3):
                    handle.hover()
                    track = control.locator(".noUi-target").bounding_box()
                    knob = handle.bounding_box()
                    page.mouse.down()
                    page.mouse.move(track["x"] + track["width"] * target / largest, knob["y"] + knob["height"] / 2,
                                    steps=8)
                    page.mouse.up()
                    try:
                        expect(readout).to_have_text(str(target), timeout=10_000)
                        break
                    except AssertionError:
                        if attempt == 2:
                            raise  # the handler below saves failure.png
                        # From wherever it is now, the same drag still ends on the target.
                        warnings.warn(f"drag {attempt + 1} left the {slider} slider at "
                                      f"{readout.inner_text()!r}; measuring again")
                expect(heatmap).not_to_have_attribute("src", src_before, timeout=60_000)
                page.wait_for_timeout(300)  # let the new image paint before the screenshot
                src_after = heatmap.get_attribute("src")
                shot_after = save(f"explorer_{slider}{target}.png", explorer.screenshot())
                save("lab.png", page.screenshot())
            except Exception:
                save("failure.png", page.screenshot())
                raise
        finally:
            browser.close()

    before, after = pixels(shot_before), pixels(shot_after)
    # Same widget, same size give or take a pixel of sub-pixel layout; compare the common part.
    assert all(abs(a - b) <= 2 for a, b in zip(before.shape, after.shape)), (before.shape, after.shape)
    h, w = min(before.shape[0], after.shape[0]), min(before.shape[1], after.shape[1])
    changed = np.any(before[:h, :w] != after[:h, :w], axis=-1)
    assert changed.mean() > 0.01, f"only {changed.mean():.4%} of the explorer's pixels changed"
    for src in (src_before, src_after):
        assert src.startswith("data:image/png;base64,"), src[:40]
    heat_before, heat_after = (pixels(base64.b64decode(s.split(",", 1)[1])) for s in (src_before, src_after))
    assert heat_before.shape == heat_after.shape and not np.array_equal(heat_before, heat_after)
