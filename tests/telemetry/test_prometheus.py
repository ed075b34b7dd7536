"""Telemetry for Prometheus: names with units, labels, a real endpoint scraped over HTTP by the
monitor and the exporter, and promtool's verdict on what they serve."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dlbench.store.database import Store
from dlbench.telemetry import build_sources
from dlbench.telemetry.prometheus import (
    MetricsServer,
    SeriesName,
    TelemetryCollector,
    constant_labels,
    series_name,
)
from dlbench.telemetry.sampler import Sampler
from synthetic_runs import stored_device_run

from conftest import BIN, call_main, cli_env, wait_for


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process, timeout_s=60):
    """Wait for ``process`` to end (killed after ``timeout_s``), its pipes closed."""
    try:
        process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def scrape(port):
    """The endpoint's families by name ({} while it is not up yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    return {f.name: f for f in text_string_to_metric_families(text)}


@pytest.mark.parametrize(
    ("metric", "name", "labels", "counter", "factor"),
    [
        ("cpu.util_percent", "dlbench_cpu_util_percent", (), False, 1.0),
        ("gpu0.power_w", "dlbench_gpu_power_watts", (("gpu", "0"),), False, 1.0),
        ("gpu1.temp_c", "dlbench_gpu_temperature_celsius", (("gpu", "1"),), False, 1.0),
        ("gpu0.energy_j", "dlbench_gpu_energy_joules_total", (("gpu", "0"),), True, 1.0),
        ("cpu.core3.util_percent", "dlbench_cpu_core_util_percent", (("core", "3"),), False, 1.0),
        ("cpu.package0.energy_j", "dlbench_cpu_package_energy_joules_total",
         (("package", "0"),), True, 1.0),
        ("cpu.freq_mhz", "dlbench_cpu_freq_hertz", (), False, 1e6),
        ("net.recv_bytes_per_s", "dlbench_net_recv_bytes_per_second", (), False, 1.0),
        ("disk.nvme0n1.util_percent", "dlbench_disk_util_percent", (("disk", "nvme0n1"),),
         False, 1.0),
        ("mem.used_bytes", "dlbench_mem_used_bytes", (), False, 1.0),
        ("proc.count", "dlbench_proc_processes", (), False, 1.0),  # _count is a histogram's
    ],
)  # fmt: skip
def test_every_metric_has_its_unit_in_the_name_and_its_device_as_a_label(
    metric, name, labels, counter, factor
):
    assert series_name(metric) == SeriesName(name, labels, counter, factor)


def test_the_collector_serves_the_last_tick_with_constant_labels():
    labels = constant_labels("run-1", "resnet50", environ={"SLURM_JOB_ID": "4242"})
    collector = TelemetryCollector(labels)
    collector.update({"gpu0.power_w": 250.0, "gpu1.power_w": 90.0, "cpu.freq_mhz": 2400.0})
    collector.update({"gpu0.power_w": 260.0})  # a later tick replaces it
    families = {f.name: f for f in collector.collect()}
    power = {s.labels["gpu"]: s.value for s in families["dlbench_gpu_power_watts"].samples}
    assert power == {"0": 260.0, "1": 90.0}
    sample = families["dlbench_cpu_freq_hertz"].samples[0]
    assert sample.value == 2.4e9
    assert sample.labels == {
        "host": socket.gethostname(), "run_id": "run-1", "workload": "resnet50",
        "slurm_job_id": "4242",
    }  # fmt: skip


def test_a_real_sampler_is_scraped_over_http():
    collector = TelemetryCollector(constant_labels("r", "w"))
    server = MetricsServer(collector, 0)
    sampler = Sampler(build_sources(), 0.2, lambda _b: None, on_tick=collector.update).start()
    try:
        wait_for(lambda: "dlbench_cpu_util_percent" in scrape(server.port))
        families = scrape(server.port)
    finally:
        sampler.stop()
        server.close()
    util = families["dlbench_cpu_util_percent"].samples[0]
    assert 0 <= util.value <= 100 and util.labels["run_id"] == "r"
    assert families["dlbench_mem_used_bytes"].samples[0].value > 0


def test_monitor_serves_its_run_while_the_command_runs(db_path):
    port = free_port()
    child = subprocess.Popen(
        [str(BIN / "dlbench"), "monitor", "--interval", "0.2", "--metrics-port", str(port),
         "--name", "sleeper", "--", sys.executable, "-c", "import time; time.sleep(6)"],
        env=cli_env(db_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: "dlbench_proc_cpu_percent" in scrape(port))
        families = scrape(port)
        labels = families["dlbench_proc_cpu_percent"].samples[0].labels
        assert labels["workload"] == "sleeper" and labels["run_id"]
        _, stderr = child.communicate(timeout=120)
    finally:
        stop(child)
    assert child.returncode == 0, stderr
    assert f"metrics: http://127.0.0.1:{port}/metrics" in stderr
    assert Store(str(db_path)).run(labels["run_id"]).status == "ok"
    assert scrape(port) == {}  # the endpoint ends with the run


@pytest.mark.parametrize(
    ("command", "after"), [(["monitor"], ["--", "true"]), (["run", "lenet-mnist"], [])]
)
def test_a_taken_port_is_one_line_and_stores_nothing(db_path, capsys, command, after):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = ["--metrics-port", str(port), "--metrics-host", "0.0.0.0", "--db", str(db_path)]
        code, _, err = call_main(capsys, *command, *options, *after)
    assert code == 2 and f"cannot listen on 0.0.0.0:{port}" in err
    assert "warning: --metrics-host 0.0.0.0 serves the metrics to every network" in err
    assert "Traceback" not in err
    assert not db_path.exists() or Store(str(db_path)).count_runs() == 0


def test_the_exporter_serves_the_machine_and_the_last_runs(db_path):
    from dlbench.records import Quality

    store = Store(str(db_path))
    stored_device_run(store, "old", "cuda", 0.2, 50, name="A100")
    stored_device_run(store, "new", "cuda", 0.1, 50, name="A100")
    busy = Quality("contended", ("busy",), 1.5, 0.0, None)
    stored_device_run(store, "b32", "cuda", 0.1, 50, batch=32, name="A100", quality=busy)
    store.close()
    port = free_port()
    child = subprocess.Popen(
        [str(BIN / "dlbench"), "exporter", "--port", str(port), "--interval", "0.2"],
        env=cli_env(db_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: "dlbench_cpu_util_percent" in scrape(port))
        families = scrape(port)
        speed = families["dlbench_last_run_images_per_second"]
        # one series per configuration (its newest ok run), with its measurement quality
        by_batch = {s.labels["batch_size"]: s for s in speed.samples}
        assert sorted(by_batch) == ["32", "64"]
        assert (by_batch["64"].labels["workload"], by_batch["64"].labels["device"]) == (
            "resnet18", "A100"
        )  # fmt: skip
        assert by_batch["64"].value == pytest.approx(64 / 0.1, rel=0.1)  # the newer run's
        assert by_batch["32"].labels["quality"] == "contended"
        assert by_batch["64"].labels["host"] == "node1"  # where it was measured, not here
        assert speed.documentation.startswith("Training speed of the newest ok run")
        assert families["dlbench_cpu_busy_cores"].documentation.startswith("CPU busy time")
        assert not [name for name in families if name.startswith("dlbench_proc_")]
        child.send_signal(signal.SIGTERM)  # how systemd stops a service
        _, stderr = child.communicate(timeout=60)
    finally:
        stop(child)
    assert child.returncode == 0, stderr
    assert "exporter stopped" in stderr


def prometheus_tools():
    """promtool and prometheus (Debian's package; scripts/ci-services installs it): in CI a
    missing one fails, elsewhere the test is skipped."""
    found = shutil.which("promtool"), shutil.which("prometheus")
    if not all(found):
        if os.environ.get("CI"):
            pytest.fail("promtool and prometheus are missing: run scripts/ci-services")
        pytest.skip("Debian's prometheus package is not installed (scripts/ci-services)")
    return found


def test_promtool_accepts_the_scrape_and_a_real_prometheus_queries_it(db_path, tmp_path):
    """A real Prometheus scrapes the exporter, a monitor and a run at once, and answers PromQL
    queries with each one's series."""
    promtool, prometheus = prometheus_tools()
    ports = {name: free_port() for name in ("exporter", "monitor", "run", "prometheus")}
    commands = {
        "exporter": ["exporter", "--port", str(ports["exporter"]), "--interval", "0.2"],
        "monitor": ["monitor", "--interval", "0.2", "--metrics-port", str(ports["monitor"]),
                    "--name", "sleeper", "--", sys.executable, "-c",
                    "import time; time.sleep(120)"],
        "run": ["run", "lenet-mnist", "--warmup", "5", "--steps", "3000", "--interval", "0.2",
                "--no-validate", "--no-infer", "--metrics-port", str(ports["run"])],
    }  # fmt: skip
    children = [
        subprocess.Popen(
            [str(BIN / "dlbench"), *command],
            env=cli_env(db_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for command in commands.values()
    ]
    targets = ", ".join(f"'127.0.0.1:{ports[n]}'" for n in commands)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs: [{{job_name: dlbench, static_configs: [{{targets: [{targets}]}}]}}]\n"
    )
    try:
        wait_for(lambda: "dlbench_cpu_util_percent" in scrape(ports["exporter"]))
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['exporter']}/metrics") as answer:
            text = answer.read()
        checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        children.append(subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{ports['prometheus']}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip

        def answered(query):
            url = f"http://127.0.0.1:{ports['prometheus']}/api/v1/query?query={query}"
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    return json.load(answer)["data"]["result"]
            except OSError:
                return None

        machine = wait_for(lambda: answered("dlbench_cpu_util_percent"), timeout_s=120)
        assert machine[0]["metric"]["job"] == "dlbench"
        assert 0 <= float(machine[0]["value"][1]) <= 100
        monitored = wait_for(
            lambda: answered("dlbench_proc_cpu_percent%7Bworkload%3D%22sleeper%22%7D")
        )
        assert monitored[0]["metric"]["run_id"]
        trained = wait_for(lambda: answered("dlbench_run_steps_completed%3E0"), timeout_s=300)
        assert trained[0]["metric"]["workload"] == "lenet-mnist"
    finally:
        for process in children:
            process.send_signal(signal.SIGTERM)
            stop(process)


@pytest.mark.slow
def test_a_run_serves_its_progress_and_telemetry_and_keeps_its_key(db_path):
    from dlbench.config import build_spec

    plain = build_spec(workload="lenet-mnist")
    served = build_spec(workload="lenet-mnist", metrics_port=9999, metrics_host="0.0.0.0")
    assert served.run_key == plain.run_key  # where it is watched from is not what it measures
    port = free_port()
    child = subprocess.Popen(
        [str(BIN / "dlbench"), "run", "lenet-mnist", "--warmup", "5", "--steps", "400",
         "--interval", "0.2", "--no-validate", "--no-infer", "--metrics-port", str(port)],
        env=cli_env(db_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        def training():
            families = scrape(port)
            phase = families.get("dlbench_run_phase")
            on = [s.labels["dlbench_run_phase"] for s in phase.samples if s.value] if phase else []
            rate = families.get("dlbench_run_images_per_second")
            return on == ["train"] and rate.samples[0].value > 0 and families

        families = wait_for(training, timeout_s=300)
        steps = families["dlbench_run_steps_completed"].samples[0]
        assert steps.value >= 1 and steps.labels["workload"] == "lenet-mnist"
        assert "dlbench_proc_cpu_percent" in families  # the run's telemetry beside it
        _, stderr = child.communicate(timeout=300)
    finally:
        stop(child)
    assert child.returncode == 0, stderr
    assert Store(str(db_path)).run(steps.labels["run_id"]).status == "ok"


def test_every_grafana_query_names_only_series_dlbench_serves(db_path):
    """The dashboard's queries against a real scrape: this machine's sources, NVML's fields
    through the real NvmlSource on a stand-in GPU (none here), a run's progress and the last
    stored runs."""
    import re
    from pathlib import Path

    from dlbench.runner.benchmark import NullProgress
    from dlbench.runner.serving import RunMetrics
    from dlbench.telemetry.nvml import NvmlSource
    from dlbench.tools.exporter import LastRuns

    from .fake_pynvml import FakeNvml

    store = Store(str(db_path))
    stored_device_run(store, "r", "cuda", 0.1, 50, name="A100")
    labels = constant_labels("run-1", "resnet50")
    run = RunMetrics(NullProgress(), 64, labels)
    last = LastRuns(store, labels["host"])
    collector = TelemetryCollector(labels, extra=lambda: iter([*run(), *last()]))
    server = MetricsServer(collector, 0)
    sources = [*build_sources(), NvmlSource(nvml=FakeNvml(gpus=1))]
    sampler = Sampler(sources, 0.2, lambda _b: None, on_tick=collector.update).start()
    try:
        wait_for(lambda: "dlbench_gpu_power_watts" in scrape(server.port)
                 and "dlbench_cpu_foreign_cores" in scrape(server.port))  # fmt: skip
        served = set(scrape(server.port))
    finally:
        sampler.stop()
        server.close()
    dashboard = json.loads((Path(__file__).parents[2] / "contrib/grafana/dlbench.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queries += [a["expr"] for a in dashboard["annotations"]["list"]]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    named = {m for q in queries for m in re.findall(r"\bdlbench_[a-z0-9_]+", q)}
    assert len(dashboard["panels"]) >= 10 and len(named) >= 12
    assert named <= served, named - served
    # Every telemetry series says what it is in words, not in dlbench's internal names.
    from dlbench.telemetry.prometheus import HELP, PREFIX

    telemetry = {n for n in served if not n.startswith(("dlbench_last_run", "dlbench_run_"))}
    names = {n.removeprefix(PREFIX) for n in telemetry}  # a counter parses without _total
    assert not [n for n in names if n not in HELP and f"{n}_total" not in HELP], names


def test_the_exporter_on_a_taken_port_names_its_own_option(db_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = call_main(capsys, "exporter", "--port", str(port), "--db", str(db_path))
    assert code == 2 and f"--port {port}: cannot listen on 127.0.0.1:{port}" in err
