"""The dashboard in a real browser: Debian's chromium driven by Playwright."""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import cli_env, dlbench_here, run_dlbench

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed; .ci/run installs it",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"the dashboard did not answer at {url}")


@contextlib.contextmanager
def _dashboard(db_path):
    """``dlbench dashboard`` on a free port, as a user starts it; its URL, then its output."""
    port = _free_port()
    server = subprocess.Popen(
        ["dlbench", "dashboard", "--port", str(port)],
        env=cli_env(db_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url)
        yield url, output
    finally:
        server.terminate()
        output.append(server.communicate(timeout=30)[0])


def _launch(playwright, height: int):
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--no-sandbox", "--disable-background-networking"],
    )
    return browser, browser.new_page(viewport={"width": 1500, "height": height})


def _pick(page, run_id: str) -> None:
    box = page.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect'] input").first
    box.click()
    box.fill(run_id)
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")


def test_two_runs_overlaid_in_the_telemetry_chart(db_path, tmp_path, capsys):
    from playwright.sync_api import sync_playwright

    for batch in ("32", "64"):
        done = run_dlbench(
            db_path,
            "run",
            "mlp-mnist",
            "--batch-size",
            batch,
            "--steps",
            "40",
            "--warmup",
            "5",
            "--val-batches",
            "2",
            "--interval",
            "0.1",
        )
        assert done.returncode == 0, done.stderr
    run_ids = [r["run_id"] for r in json.loads(dlbench_here(capsys, "runs", "--json").stdout)]
    with _dashboard(db_path) as (url, output):
        with sync_playwright() as playwright:
            browser, page = _launch(playwright, 1000)
            page.goto(url)
            page.get_by_text("Selected runs").wait_for(timeout=60_000)
            for run_id in run_ids:
                _pick(page, run_id)
            page.locator("[data-testid='stSidebar']").get_by_text("Telemetry").click()
            chart = page.locator(".js-plotly-plot").first
            chart.wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            names = chart.evaluate("el => el.data.map(trace => trace.name)")
            shot = tmp_path / "dashboard-telemetry.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
        assert sorted(names) == sorted(run_ids)  # one trace per selected run
        keep = os.environ.get("DLBENCH_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / shot.name)
        assert shot.stat().st_size > 10_000
    assert f"dlbench dashboard on http://localhost:{url.rsplit(':', 1)[1]}" in output[0]


def test_the_calculator_answers_in_the_browser(db_path, tmp_path):
    from playwright.sync_api import sync_playwright

    from dlbench.store.database import Store
    from synthetic_runs import stored_runs, summaries

    store = Store(str(db_path))
    stored_runs(store, summaries(n=30), device="EPYC")
    store.close()
    with _dashboard(db_path) as (url, _):
        with sync_playwright() as playwright:
            browser, page = _launch(playwright, 1800)
            page.goto(url)
            page.get_by_text("Selected runs").wait_for(timeout=60_000)
            page.locator("[data-testid='stSidebar']").get_by_text("Calculator").click()
            page.get_by_text("Family", exact=True).first.click()
            page.get_by_text("Depth (weight layers)").wait_for(timeout=60_000)
            page.get_by_role("button", name="Predict").click()
            # Each waits until shown (Streamlit may still be redrawing the page): never is a
            # timeout, and the test fails.
            for shown in ("Nearest stored runs", "Step time", "learned from 30 runs"):
                page.get_by_text(shown).first.wait_for(timeout=120_000)
            page.get_by_text("90%:").first.wait_for(timeout=30_000)
            shot = tmp_path / "dashboard-calculator.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
    assert shot.stat().st_size > 10_000


@contextlib.contextmanager
def _beacon():
    """A web server that counts every request: what a rendered stored string would fetch."""
    import http.server
    import threading

    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the standard library's name
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def _hostile_runs(db_path, port: int) -> str:
    """Two finished runs and a failed one whose every stored text is Markdown, HTML or Plotly
    markup that would fetch from the beacon or restyle the page if rendered; the text."""
    from dlbench.records import Quality, RunResult, SpeedStats, StepRecord, TelemetrySample
    from dlbench.store.database import Store

    beacon = f"http://127.0.0.1:{port}"
    evil = (
        f"![]({beacon}/md-image) <img src='{beacon}/img'> <a href='{beacon}/a'>link</a> "
        "<span style='font-size:90px'>big</span> **bold** :red[red] $x^2$"
    )
    store = Store(str(db_path))
    for run_id, device, step in (("evil-cpu", "cpu", 0.1), ("evil-gpu", "cuda:0", 0.05)):
        store.create_run(run_id, "train", {"gpus": 1}, workload="resnet18", device=device,
                         batch_size=64, precision="fp32", sweep=evil)  # fmt: skip
        store.set_hardware(run_id, {"hostname": evil, "os": evil}, device_name=evil)
        store.set_tags(run_id, {"note": evil})
        samples = [TelemetrySample(t, t, evil, m, 50.0 + t) for t in range(6)
                   for m in (evil, "cpu.util_percent")]  # fmt: skip
        store.add_samples(run_id, samples)
        speed = SpeedStats(20, step, step, step, 64 / step, 64 / step, 1, 1, 1.0, 1.0, 0.0,
                           0.0, (0.9 * 64 / step, 1.1 * 64 / step))  # fmt: skip
        profile = {
            "available": True,
            "steps": 5,
            "categories": {evil: {"seconds_per_step": step, "share": 1.0, "tflops": None}},
            "layers": [],
        }
        store.finish_run(
            RunResult(
                run_id=run_id,
                status="ok",
                speed=speed,
                steps=tuple(StepRecord(i, 0, step, 0.0) for i in range(20)),
                quality=Quality("contended", (evil,), 1.0, 0.0, None),
                profile=profile,
            )
        )
    store.create_run("evil-failed", "train", {}, workload="resnet18", device="cpu")
    store.finish_run(RunResult(run_id="evil-failed", status="failed", error=evil))
    store.close()
    return evil


def test_stored_markup_is_shown_as_text_and_fetches_nothing(db_path, tmp_path):
    """Markdown, HTML and Plotly markup in every stored string: the browser fetches nothing
    from it on any page, and shows it as the characters it is."""
    from playwright.sync_api import sync_playwright

    with _beacon() as (port, seen):
        evil = _hostile_runs(db_path, port)
        with _dashboard(db_path) as (url, _):
            with sync_playwright() as playwright:
                browser, page = _launch(playwright, 1600)
                page.goto(url)
                page.get_by_text("Selected runs").wait_for(timeout=60_000)
                for run_id in ("evil-cpu", "evil-gpu", "evil-failed"):
                    _pick(page, run_id)
                texts, links = {}, {}
                for name in ("Telemetry", "Compare", "Scaling", "Hardware", "Runs"):
                    page.get_by_test_id("stRadioGroup").get_by_text(name, exact=True).click()
                    page.get_by_role("heading", name=name).wait_for(timeout=60_000)
                    page.wait_for_timeout(2500)  # charts and images would load by now
                    main = page.locator("[data-testid='stMain']")
                    # shown as it is stored, less the invisible joiners that keep links text
                    texts[name] = main.inner_text().replace("\u2060", "")
                    links[name] = main.locator(f"a[href*='127.0.0.1:{port}']").count()
                    if name == "Compare":
                        shot = tmp_path / "dashboard-hostile-compare.png"
                        page.screenshot(path=str(shot), full_page=True)
                        ticks = page.locator(".js-plotly-plot .xtick text").all_text_contents()
                browser.close()
        keep = os.environ.get("DLBENCH_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / shot.name)
        assert seen == []  # not one request from any page
        assert links == dict.fromkeys(texts, 0)  # nor a link to click
    # The Compare page's error and quality boxes show the stored text, characters and all.
    assert f"![](http://127.0.0.1:{port}/md-image)" in texts["Compare"]
    assert "**bold** :red[red] $x^2$" in texts["Compare"]
    # Plotly's bar labels show the tags as text instead of a link and a 90 px span.
    assert any("<span style='font-size:90px'>big</span>" in t for t in ticks), ticks
    assert evil


def test_the_runs_page_fits_a_1400_pixel_window(db_path, tmp_path):
    """At 1400 px the speed is on screen, 25 runs show without scrolling the table, empty
    labels read "—" (a CPU run has no GPU count), and a selected run's chip shows whole."""
    from playwright.sync_api import sync_playwright

    from dlbench.store.database import Store
    from synthetic_runs import stored_device_run

    store = Store(str(db_path))
    ids = [f"20261205-10{i:04d}-abc{i:03d}" for i in range(24)]
    for i, run_id in enumerate(ids):
        device = "cpu" if i % 2 else "cuda:0"
        stored_device_run(store, run_id, device, 0.1 + i / 100, 60, seed=i,
                          name=None if device == "cpu" else "NVIDIA H100 80GB HBM3")  # fmt: skip
    store.close()
    with _dashboard(db_path) as (url, _):
        with sync_playwright() as playwright:
            browser, page = _launch(playwright, 1000)
            page.set_viewport_size({"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_text("Selected runs").wait_for(timeout=60_000)
            _pick(page, ids[0])
            grid = page.locator("[data-testid='stDataFrame']").first
            grid.wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            # the grid draws on a canvas; its accessible table lists the columns in view
            headers = grid.locator("th").all_inner_texts()
            grid_box = grid.bounding_box()
            shot = tmp_path / "dashboard-runs-1400.png"
            page.screenshot(path=str(shot), full_page=True)
            chip = page.locator("[data-testid='stSidebar']").get_by_text(f"{ids[0]} · resnet18")
            chip_cut = chip.first.evaluate("el => el.scrollWidth > el.clientWidth + 1")
            browser.close()
    keep = os.environ.get("DLBENCH_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    assert "Speed" in headers and "Quality" in headers, headers  # on screen, no scrolling
    assert grid_box["height"] >= 38 + 35 * 24  # every run's row, no scrolling inside
    assert not chip_cut  # the chip shows the run's id and workload whole
