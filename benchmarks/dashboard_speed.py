"""Dashboard speed on a realistic store: 1,000 runs and a million telemetry samples.

Builds the store (real SQLite, the real schema, written through dlbench's Store), then times
with Streamlit's AppTest, which runs the app script as the server does (the browser's own
paint is not included): the first page on a cold cache, the same page again, and switching
the selected runs on the Telemetry page (two runs, then two others). Goals: first page < 3 s,
a switch < 1 s. Medians of several rounds.

    .venv/bin/python benchmarks/dashboard_speed.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

from dlbench.records import RunResult, SpeedStats, StepRecord, TelemetrySample
from dlbench.store.database import Store

from _report import machine, write_section

RUNS = 1_000
METRICS = (
    "cpu.util_percent",
    "proc.cpu_percent",
    "mem.used_bytes",
    "gpu0.util_percent",
    "gpu0.power_w",
    "gpu0.temp_c",
    "gpu0.sm_clock_mhz",
    "disk.sda.util_percent",
    "net.recv_bytes_per_s",
    "cpu.freq_mhz",
)
SAMPLES_PER_METRIC = 100  # 1,000 runs x 10 metrics x 100 = 1,000,000 samples
PHASES = ("setup", "warmup", "train", "validate", "infer")


def build(path: Path) -> list[str]:
    store = Store(str(path))
    rng = np.random.default_rng(0)
    ids = []
    for i in range(RUNS):
        run_id = f"2026{i:06d}-bench"
        ids.append(run_id)
        device = ("cpu", "cuda:0")[i % 2]
        store.create_run(
            run_id,
            "train",
            {"workload": "resnet50", "gpus": 1},
            workload=("resnet50", "vgg16", "lenet-mnist")[i % 3],
            device=device,
            batch_size=64,
            precision="fp32",
            sweep=f"sweep{i % 10}",
        )
        store.set_hardware(
            run_id,
            {"hostname": f"node{i % 8}", "cpu": {"model": "EPYC"}, "gpus": []},
            device=device,
            device_name=device,
            num_gpus=i % 2,
        )
        t = np.arange(SAMPLES_PER_METRIC) * 0.5
        store.add_samples(
            run_id,
            [
                TelemetrySample(
                    float(t[k]), 1e9 + float(t[k]), PHASES[min(4, k // 25)], m, float(v)
                )
                for m in METRICS
                for k, v in enumerate(rng.uniform(0, 100, SAMPLES_PER_METRIC))
            ],
        )
        speed = float(rng.uniform(50, 2000))
        stats = SpeedStats(
            100, 64 / speed, 64 / speed, 64 / speed, speed, speed, speed, speed, 1.0, 1.0, 0.0, 0.0
        )
        steps = tuple(StepRecord(s, 0, 64 / speed, 0.0) for s in range(100))
        store.finish_run(RunResult(run_id=run_id, status="ok", speed=stats, steps=steps))
    store.close()
    return ids


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(path: Path, ids: list[str], rounds: int) -> dict[str, list[float]]:
    import os

    from streamlit.testing.v1 import AppTest

    os.environ["DLBENCH_DB"] = str(path)
    script = str(resources.files("dlbench.dashboard") / "app.py")
    times: dict[str, list[float]] = {
        "first page (cold)": [],
        "first page (warm)": [],
        "switch selected runs": [],
    }
    for r in range(rounds):
        import streamlit as st

        st.cache_data.clear()
        st.cache_resource.clear()
        app = AppTest.from_file(script, default_timeout=120)
        times["first page (cold)"].append(_timed(app.run))
        times["first page (warm)"].append(_timed(app.run))
        app.sidebar.radio[0].set_value("Telemetry")
        app.sidebar.multiselect[0].set_value(ids[r * 4 : r * 4 + 2])
        app.run()
        assert not app.exception, app.exception
        app.sidebar.multiselect[0].set_value(ids[r * 4 + 2 : r * 4 + 4])
        times["switch selected runs"].append(_timed(app.run))
        assert len(app.get("plotly_chart")) >= 1
    return times


def measure_browser(path: Path, ids: list[str], rounds: int) -> dict[str, list[float]]:
    """The same in chromium: from navigation until the Runs table is drawn, and from choosing
    two other runs until the telemetry chart shows them."""
    import os
    import socket
    import subprocess
    import sys
    import urllib.request

    from playwright.sync_api import sync_playwright

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, DLBENCH_DB=str(path))
    server = subprocess.Popen(
        [sys.executable, "-m", "dlbench", "dashboard", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    times: dict[str, list[float]] = {
        "browser: first page drawn": [],
        "browser: switch selected runs": [],
    }
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                headless=True,
                args=["--no-sandbox", "--disable-background-networking"],
            )
            for r in range(rounds):
                page = browser.new_page(viewport={"width": 1500, "height": 1000})
                start = time.perf_counter()
                page.goto(url)
                page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=60_000)
                times["browser: first page drawn"].append(time.perf_counter() - start)
                page.locator("[data-testid='stSidebar']").get_by_text("Telemetry").click()
                box = page.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect'] input")
                for run_id in ids[r * 4 : r * 4 + 2]:
                    box.first.click()
                    box.first.fill(run_id)
                    page.keyboard.press("Enter")
                page.keyboard.press("Escape")
                chart = page.locator(".js-plotly-plot").first
                chart.wait_for(timeout=60_000)
                page.wait_for_timeout(500)
                new = ids[r * 4 + 2]
                start = time.perf_counter()
                box.first.click()
                box.first.fill(new)
                page.keyboard.press("Enter")
                page.wait_for_function(
                    "id => [...document.querySelectorAll('.js-plotly-plot')].some("
                    "el => el.data && el.data.some(t => t.name === id))",
                    arg=new,
                    timeout=60_000,
                )
                times["browser: switch selected runs"].append(time.perf_counter() - start)
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true", help="AppTest timings only")
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        help="busy-loop processes running meanwhile (a loaded machine)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.sqlite"
        started = time.perf_counter()
        ids = build(path)
        built = time.perf_counter() - started
        size = path.stat().st_size / 2**20
        loops = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)
        ]
        try:
            times = measure(path, ids, args.rounds)
            if not args.no_browser:
                times |= measure_browser(path, ids, args.rounds)
        finally:
            for loop in loops:
                loop.kill()
                loop.wait()
    rows = "\n".join(
        f"| {name} | {statistics.median(v):.3f} | {min(v):.3f} | {max(v):.3f} |"
        for name, v in times.items()
    )
    text = (
        f"Machine: {machine()}. Store: {RUNS:,} runs, {RUNS * len(METRICS) * SAMPLES_PER_METRIC:,}"
        f" telemetry samples, {RUNS * 100:,} step rows ({size:,.0f} MiB SQLite, built in "
        f"{built:,.0f} s). Seconds per script run under Streamlit's AppTest, {args.rounds} "
        f"rounds (cold: caches cleared); then in chromium (Playwright) against "
        f"`dlbench dashboard`: "
        f"navigation until the Runs table is drawn, and from picking one more run until the "
        f"telemetry chart has its trace."
        + (f" Under load: {args.busy} busy-loop processes ran throughout." if args.busy else "")
        + f"\n\n| What | Median (s) | Min | Max |\n|---|---|---|---|\n"
        f"{rows}\n\nGoals: first page < 3 s (< 5 s under load), switching runs < 1 s. Command: "
        f"`.venv/bin/python benchmarks/dashboard_speed.py --rounds {args.rounds}"
        + (f" --busy {args.busy}`" if args.busy else "`")
    )
    print(text)
    write_section("dashboard-speed-busy" if args.busy else "dashboard-speed", text)


if __name__ == "__main__":
    main()
