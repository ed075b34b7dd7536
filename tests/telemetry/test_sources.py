"""Each source against the real machine, and with injected fakes for what it lacks."""

import os
import subprocess
import sys
import time

import psutil
import pytest

from dlbench.sysinfo import storage_for
from dlbench.telemetry import build_sources, cpu
from dlbench.telemetry.base import SourceUnavailable
from dlbench.telemetry.cpu import CpuSource
from dlbench.telemetry.disk import DiskSource
from dlbench.telemetry.memory import MemorySource
from dlbench.telemetry.net import NetSource
from dlbench.telemetry.nvml import NvmlSource, decode_throttle
from dlbench.telemetry.process import ProcessTreeSource
from dlbench.telemetry.rapl import RaplSource

from .fake_pynvml import FakeNvml

BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass"


def _busy(seconds, processes):
    return [
        subprocess.Popen([sys.executable, "-c", BUSY.format(s=seconds)]) for _ in range(processes)
    ]


def test_cpu_utilisation_rises_under_a_busy_loop():
    source = CpuSource()
    source.open()
    time.sleep(0.5)
    idle = source.read(time.monotonic())
    workers = _busy(1.5, psutil.cpu_count())
    time.sleep(1.0)
    busy = source.read(time.monotonic())
    for worker in workers:
        worker.wait()
    cores = [v for k, v in busy.items() if k.startswith("cpu.core")]
    assert len(cores) == psutil.cpu_count()
    # On a machine that was already busy (another job beside the tests) there is no room to
    # rise by 30 points; then it must at least be saturated.
    if idle["cpu.util_percent"] < 60:
        assert busy["cpu.util_percent"] > idle["cpu.util_percent"] + 30
    assert busy["cpu.util_percent"] > 80


def test_cpu_temperature_falls_back_to_sys_class_thermal(tmp_path, monkeypatch):
    zone = tmp_path / "thermal_zone0"
    zone.mkdir()
    (zone / "type").write_text("x86_pkg_temp\n")
    (zone / "temp").write_text("45500\n")
    monkeypatch.setattr(cpu, "THERMAL_ZONES", tmp_path)
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: {}, raising=False)
    source = CpuSource()
    source.open()
    assert source.read(time.monotonic())["cpu.temp_c"] == 45.5
    assert source.notes == []


def test_no_temperature_sensor_is_said_not_zeroed(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu, "THERMAL_ZONES", tmp_path / "absent")
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: {}, raising=False)
    source = CpuSource()
    source.open()
    assert "cpu.temp_c" not in source.read(time.monotonic())
    assert "no CPU temperature sensor" in source.notes[0]


def test_disk_write_bytes_and_utilisation_rise_while_writing(tmp_path):
    disk = storage_for(str(tmp_path))["device"]
    if disk is None:
        pytest.skip(f"{tmp_path} is on no block device here (tmpfs or overlay)")
    source = DiskSource(data_disk=disk)
    source.open()
    source.read(time.monotonic())
    with (tmp_path / "blob").open("wb") as handle:
        for _ in range(16):
            handle.write(os.urandom(4 << 20))
            handle.flush()
            os.fsync(handle.fileno())
    after = source.read(time.monotonic())
    assert after[f"disk.{disk}.write_bytes_per_s"] > 1e6
    assert after[f"disk.{disk}.write_iops"] > 0
    assert 0 < after[f"disk.{disk}.util_percent"] <= 100


def test_process_tree_follows_a_child():
    script = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BUSY.format(s=3)!r}])"
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        source = ProcessTreeSource(parent.pid)
        source.open()
        deadline = time.monotonic() + 10
        reading = {}
        while time.monotonic() < deadline:
            time.sleep(0.5)
            reading = source.read(time.monotonic())
            if reading.get("proc.count") == 2 and reading["proc.cpu_percent"] > 50:
                break
        assert reading["proc.count"] == 2
        assert reading["proc.cpu_percent"] > 50  # the busy grandchild is counted
        assert reading["proc.rss_bytes"] > 1e6 and reading["proc.threads"] >= 2
    finally:
        parent.kill()
        parent.wait()


def test_process_that_is_gone_is_unavailable():
    done = subprocess.run([sys.executable, "-c", "pass"])
    assert done.returncode == 0
    with pytest.raises(SourceUnavailable):
        ProcessTreeSource(2**22 + 12345).open()


def test_memory_and_network_readings():
    memory = MemorySource()
    memory.open()
    first = memory.read(time.monotonic())
    total = psutil.virtual_memory().total
    assert first["mem.used_bytes"] + first["mem.available_bytes"] == pytest.approx(total, rel=0.01)
    assert "swap.in_bytes_per_s" not in first  # a rate needs two readings
    assert memory.read(time.monotonic() + 1)["swap.in_bytes_per_s"] >= 0
    net = NetSource()
    net.open()
    assert net.read(time.monotonic()) == {}
    assert net.read(time.monotonic() + 1)["net.recv_bytes_per_s"] >= 0


def _powercap(root, value, max_range=1_000_000):
    zone = root / "intel-rapl:0"
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text(f"{value}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_range}\n")
    (root / "intel-rapl:0:0").mkdir(exist_ok=True)  # a sub-zone (core): not a package


def test_rapl_energy_and_power_across_a_counter_wrap(tmp_path):
    _powercap(tmp_path, 900_000)
    source = RaplSource(tmp_path)
    source.open()
    assert source.read(10.0)["cpu.package0.energy_j"] == 0.0
    _powercap(tmp_path, 950_000)  # +0.05 J in 1 s
    first = source.read(11.0)
    assert first["cpu.package0.energy_j"] == pytest.approx(0.05)
    assert first["cpu.package0.power_w"] == pytest.approx(0.05)
    _powercap(tmp_path, 50_000)  # wrapped at 1,000,000: +0.1 J in 2 s
    second = source.read(13.0)
    assert second["cpu.package0.energy_j"] == pytest.approx(0.15)
    assert second["cpu.package0.power_w"] == pytest.approx(0.05)
    assert not any("package1" in key for key in second)


def test_rapl_absent_is_unavailable(tmp_path):
    with pytest.raises(SourceUnavailable, match="no RAPL"):
        RaplSource(tmp_path / "none").open()


def test_nvml_reads_every_field_per_gpu():
    fake = FakeNvml(gpus=2)
    source = NvmlSource(nvml=fake)
    source.open()
    reading = source.read(time.monotonic())
    assert reading["gpu0.util_percent"] == 87 and reading["gpu1.mem_util_percent"] == 41
    assert reading["gpu0.mem_used_bytes"] == 30 * 2**30
    assert reading["gpu0.power_w"] == 312.5 and reading["gpu0.temp_c"] == 71
    assert reading["gpu0.energy_j"] == 50.0  # since sampling began
    assert reading["gpu0.sm_clock_mhz"] == 1980 and reading["gpu0.mem_clock_mhz"] == 2619
    assert reading["gpu0.pcie_rx_bytes_per_s"] == 2048 * 1024
    assert decode_throttle(int(reading["gpu0.throttle_reasons"])) == [
        "software power cap",
        "software thermal slowdown",
    ]
    source.close()
    assert fake.shutdown


def test_nvml_unsupported_fields_are_left_out_and_not_asked_again():
    fake = FakeNvml(unsupported={"energy", "pcie", "reasons"})
    source = NvmlSource(nvml=fake)
    source.open()
    for _ in range(3):
        reading = source.read(time.monotonic())
    assert "gpu0.energy_j" not in reading and "gpu0.pcie_tx_bytes_per_s" not in reading
    assert "gpu0.throttle_reasons" not in reading and reading["gpu0.power_w"] == 312.5
    assert fake.calls["energy"] == 1 and fake.calls["reasons"] == 1
    assert fake.calls["pcie"] == 2  # tx and rx, once each
    assert fake.calls["power"] == 3


def test_nvml_without_a_driver_is_unavailable():
    with pytest.raises(SourceUnavailable, match="Driver Not Loaded"):
        NvmlSource(nvml=FakeNvml(fail_init=True)).open()
    with pytest.raises(SourceUnavailable, match="no GPU"):
        NvmlSource(nvml=FakeNvml(gpus=0)).open()


def test_standard_sources_cover_every_resource():
    names = [s.name for s in build_sources()]
    assert names == ["cpu", "memory", "disk", "net", "process", "gpu", "rapl"]


@pytest.mark.gpu
def test_real_nvml_on_a_gpu_machine():
    source = NvmlSource()
    try:
        source.open()
    except SourceUnavailable as exc:
        pytest.skip(str(exc))
    reading = source.read(time.monotonic())
    assert reading["gpu0.mem_total_bytes"] > 0 and 0 <= reading["gpu0.util_percent"] <= 100
    source.close()


def test_process_tree_without_the_kernels_children_lists_falls_back_to_psutil(monkeypatch):
    from dlbench.telemetry import process

    monkeypatch.setattr(process, "PROC", process.Path("/nonexistent-proc"))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(10)"])
    try:
        source = ProcessTreeSource(os.getpid())
        source.open()
        assert not source._fast
        assert source.read(time.monotonic())["proc.count"] >= 2
    finally:
        child.kill()
        child.wait()
