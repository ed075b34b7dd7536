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

from conftest import cli_env, run_dlbench

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


def test_two_runs_overlaid_in_the_telemetry_chart(db_path, tmp_path):
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
    run_ids = [r["run_id"] for r in json.loads(run_dlbench(db_path, "runs", "--json").stdout)]
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
