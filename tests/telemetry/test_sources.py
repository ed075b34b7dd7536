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

# Busy loops and CPU shares: what other work takes of this machine, measured live.
pytestmark = pytest.mark.serial

BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass"


def _busy(seconds, processes):
    return [
        subprocess.Popen([sys.executable, "-c", BUSY.format(s=seconds)]) for _ in range(processes)
    ]


def _times(**fields):
    """One CPU's cumulative times, as psutil.cpu_times(percpu=True) gives them."""
    from types import SimpleNamespace

    base = dict(user=0, nice=0, system=0, idle=0, iowait=0, irq=0, softirq=0, steal=0,
                guest=0, guest_nice=0)  # fmt: skip
    return SimpleNamespace(**{**base, **fields})


def _counters(monkeypatch, *snapshots):
    """psutil.cpu_times(percpu=True) gives these snapshots in turn; the process may use CPUs
    0 and 1, and steal is reported."""
    given = iter(snapshots)
    monkeypatch.setattr(cpu.psutil, "cpu_times", lambda percpu=False: next(given))
    monkeypatch.setattr(cpu, "affinity", lambda pid: [0, 1])
    monkeypatch.setattr(cpu, "steal_reported", lambda: True)


def test_cpu_utilisation_is_each_cores_busy_share_of_its_time(monkeypatch):
    _counters(
        monkeypatch,
        [_times(user=10, idle=90), _times(user=5, idle=95)],  # open()
        [_times(user=10.5, system=0.25, idle=90.25), _times(user=5.2, idle=95.6, steal=0.2)],
    )
    source = CpuSource()
    source.open()
    reading = source.read(time.monotonic() + 10)
    # CPU 0: 0.75 s busy of 1.0; CPU 1: 0.2 busy, 0.6 idle, 0.2 stolen of 1.0.
    assert reading["cpu.core0.util_percent"] == pytest.approx(75.0)
    assert reading["cpu.core1.util_percent"] == pytest.approx(20.0)
    assert reading["cpu.util_percent"] == pytest.approx(47.5)
    assert reading["cpu.busy_cores"] == pytest.approx(0.95)
    assert reading["cpu.steal_percent"] == pytest.approx(10.0)  # 0.2 s of the 2 CPUs' 2 s


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
            if reading.get("proc.count") == 2 and reading.get("proc.cpu_percent", 0) > 50:
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
    net = NetSource()
    net.open()
    assert net.read(time.monotonic()) == {}


def test_swap_and_network_rates_are_counter_changes_over_time(monkeypatch, tmp_path):
    from types import SimpleNamespace

    import dlbench.telemetry.memory as memory_module
    import dlbench.telemetry.net as net_module

    swap = dict(total=8e9, used=1e9, percent=12.5)
    swaps = iter([SimpleNamespace(sin=1000, sout=0, **swap),
                  SimpleNamespace(sin=5000, sout=2000, **swap)])  # fmt: skip
    monkeypatch.setattr(memory_module.psutil, "swap_memory", lambda: next(swaps))
    memory = MemorySource()
    memory.open()
    now = time.monotonic()
    memory.read(now)
    later = memory.read(now + 2)
    assert later["swap.in_bytes_per_s"] == pytest.approx(2000)
    assert later["swap.out_bytes_per_s"] == pytest.approx(1000)
    nic = dict(bytes_sent=0, packets_sent=0, packets_recv=0, errin=0, errout=0, dropin=0,
               dropout=0)  # fmt: skip
    reads = iter([{"eth0": SimpleNamespace(bytes_recv=10_000, **nic)},
                  {"eth0": SimpleNamespace(bytes_recv=410_000, **nic)}])  # fmt: skip
    monkeypatch.setattr(net_module.psutil, "net_io_counters", lambda pernic=True: next(reads))
    net = NetSource(net=tmp_path / "net", infiniband=tmp_path / "ib")  # no NIC of its own
    net.open()
    net.read(now)
    assert net.read(now + 4)["net.recv_bytes_per_s"] == pytest.approx(100_000)


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
        assert not source._account._fast
        assert source.read(time.monotonic())["proc.count"] >= 2
    finally:
        child.kill()
        child.wait()


def test_the_first_cpu_sample_is_a_real_interval_not_a_fake_zero(monkeypatch):
    # psutil's cpu_percent read twice back to back gives 0.0: the sampler's first tick did.
    # The first read is too soon after open() to resolve, and says nothing; the next one is
    # the whole interval since open(), not since that empty read.
    _counters(
        monkeypatch,
        [_times(user=100, idle=100), _times(user=100, idle=100)],  # open()
        [_times(user=101, idle=100), _times(user=101, idle=100)],  # 2 s later: fully busy
    )
    source = CpuSource()
    source.open()
    assert source.read(time.monotonic()).get("cpu.util_percent") is None
    first = source.read(time.monotonic() + 2)
    assert first["cpu.util_percent"] == pytest.approx(100.0)
    assert first["cpu.busy_cores"] == pytest.approx(2.0)
    assert first["cpu.steal_percent"] == 0.0
    assert ("cpu.load1" in first) == hasattr(os, "getloadavg")


def test_steal_is_apart_from_busy_time_as_mpstat_counts_it():
    from types import SimpleNamespace

    before = [SimpleNamespace(user=10, nice=0, system=5, idle=80, iowait=5, irq=0, softirq=0,
                              steal=0, guest=3, guest_nice=0)]  # fmt: skip
    after = [SimpleNamespace(user=40, nice=0, system=10, idle=90, iowait=5, irq=0, softirq=5,
                             steal=20, guest=13, guest_nice=0)]  # fmt: skip
    found = cpu.window(before, after, [0])
    # busy 40 (user 30 incl. guest 10, system 5, softirq 5); idle 10; steal 20: total 70.
    assert found.per_core_util == [pytest.approx(100 * 40 / 70)]
    assert found.steal_share == pytest.approx(20 / 70)
    assert found.busy_cores == pytest.approx(40 / 70)
    assert cpu.window(before, after + after, [0]) is None  # a CPU came online: start again


def test_usable_cores_take_a_cgroup_quota(tmp_path, monkeypatch):
    group = tmp_path / "job"
    group.mkdir()
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (group / "cpu.max").write_text("150000 100000\n")
    cgroup = tmp_path / "cgroup"
    cgroup.write_text("0::/job\n")
    real_path = cpu.Path

    def fake_path(name, *rest):
        return cgroup if str(name) == f"/proc/{os.getpid()}/cgroup" else real_path(name, *rest)

    monkeypatch.setattr(cpu, "Path", fake_path)
    assert cpu.cgroup_cpu_limit(os.getpid(), root=tmp_path) == 1.5
    assert cpu.usable_cores(os.getpid()) <= len(os.sched_getaffinity(0))


SHORT_LIVED = """
import subprocess, sys, time
code = "import time\\nend = time.time() + 0.15\\nwhile time.time() < end: pass"
end = time.time() + {seconds}
while time.time() < end:
    subprocess.run([sys.executable, "-c", code])
"""


def test_short_lived_children_are_counted():
    # A parent that spends its time starting children which burn 0.15 s of CPU and end before
    # the next read: psutil's per-process percentages saw almost none of it.
    parent = subprocess.Popen([sys.executable, "-c", SHORT_LIVED.format(seconds=4)])
    try:
        source = ProcessTreeSource(parent.pid)
        source.open()
        source.read(time.monotonic())
        start = psutil.Process(parent.pid).cpu_times()
        time.sleep(2.5)
        reading = source.read(time.monotonic())
        end = psutil.Process(parent.pid).cpu_times()
    finally:
        parent.wait()
    # The reference: the kernel's own count of the parent and its reaped children.
    reaped = (end.children_user + end.children_system) - (
        start.children_user + start.children_system
    )
    own = (end.user + end.system) - (start.user + start.system)
    assert reaped > 0.5  # the children did the work
    assert reading["proc.cpu_percent"] / 100 * 2.5 == pytest.approx(reaped + own, rel=0.25, abs=0.1)


def test_a_new_child_counts_from_its_first_second():
    """A process that starts working inside a window is counted for what it did there: the
    reading agrees with the kernel's own count of its CPU time over the same window, however
    busy the machine (no share is assumed)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(0.6)\n" + BUSY.format(s=1.5)]
    )
    try:
        source = ProcessTreeSource(parent.pid)
        source.open()
        process = psutil.Process(parent.pid)
        start, started = process.cpu_times(), time.monotonic()
        source.read(started)
        time.sleep(1.2)  # the busy loop starts at 0.6 s: half this window
        ended = time.monotonic()
        reading = source.read(ended)
        end = process.cpu_times()
    finally:
        parent.wait()
    used = (end.user + end.system) - (start.user + start.system)
    assert used > 0.05  # it did work in the window
    seen = reading["proc.cpu_percent"] / 100 * (ended - started)
    assert seen == pytest.approx(used, abs=0.05)  # the kernel's 10 ms ticks, twice over


def test_process_io_is_named_for_what_it_counts(tmp_path):
    blob = str(tmp_path / "blob")
    script = f"open({blob!r}, 'wb').write(b'x' * 4_000_000); import time; time.sleep(1)"
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        source = ProcessTreeSource(child.pid)
        source.open()
        source.read(time.monotonic())
        time.sleep(0.8)
        reading = source.read(time.monotonic())
    finally:
        child.wait()
    assert "proc.read_bytes_per_s" not in reading  # the old, wrong name
    assert reading["proc.write_chars_per_s"] > 1e6  # the write call's bytes
    # The block layer's count, which may not have reached the disk yet: present, a rate.
    assert isinstance(reading["proc.disk_write_bytes_per_s"], float)


def test_nvml_counts_other_processes_on_each_gpu_once_its_own_are_listed():
    fake = FakeNvml(gpus=2)
    fake.processes = {0: [(os.getpid(), 2**30), (4242, 3 * 2**30)], 1: [(777, None)]}
    source = NvmlSource(nvml=fake, own_pids=lambda: frozenset({os.getpid()}))
    source.open()
    reading = source.read(time.monotonic())
    assert reading["gpu0.other_processes"] == 1 and reading["gpu0.other_mem_bytes"] == 3 * 2**30
    assert reading["gpu1.other_processes"] == 1 and reading["gpu1.other_mem_bytes"] == 0
    # None of ours listed (a CPU run, or NVML's pids from another namespace): no count at all.
    blind = NvmlSource(nvml=fake, own_pids=lambda: frozenset({1}))
    blind.open()
    assert not any("other_processes" in k for k in blind.read(time.monotonic()))


def test_infiniband_ports_and_physical_nics_get_their_own_rates(tmp_path):
    counters = tmp_path / "ib" / "mlx5_0" / "ports" / "1" / "counters"
    counters.mkdir(parents=True)
    (tmp_path / "net" / "lo").mkdir(parents=True)  # virtual: no device link
    net = NetSource(net=tmp_path / "net", infiniband=tmp_path / "ib")

    def write(words_in, words_out):
        (counters / "port_rcv_data").write_text(f"{words_in}\n")
        (counters / "port_xmit_data").write_text(f"{words_out}\n")

    write(1000, 500)
    net.open()
    assert net.read(10.0) == {}
    write(1000 + 250_000, 500 + 25_000)  # octets / 4, as the kernel counts them
    rates = net.read(12.0)
    assert rates["ib.mlx5_0.1.recv_bytes_per_s"] == 500_000.0  # 250,000 x 4 bytes in 2 s
    assert rates["ib.mlx5_0.1.sent_bytes_per_s"] == 50_000.0
    assert "net.recv_bytes_per_s" in rates and not any(".lo." in key for key in rates)
    write(0, 0)  # a reset counter gives no rate, never a negative one
    assert "ib.mlx5_0.1.recv_bytes_per_s" not in net.read(14.0)


def test_links_are_read_from_sysfs_with_their_nominal_rates(tmp_path):
    from dlbench.sysinfo import links

    port = tmp_path / "ib" / "mlx5_0" / "ports" / "1"
    port.mkdir(parents=True)
    (port / "rate").write_text("400 Gb/sec (4X NDR)\n")
    for name, speed, state, physical in (
        ("eth0", "25000", "up", True),
        ("eth1", "-1", "up", True),  # a VM's NIC: no speed
        ("eth2", "10000", "down", True),
        ("docker0", "10000", "up", False),
    ):
        nic = tmp_path / "net" / name
        nic.mkdir(parents=True)
        (nic / "speed").write_text(speed)
        (nic / "operstate").write_text(state)
        if physical:
            (nic / "device").mkdir()
    assert links(tmp_path / "net", tmp_path / "ib") == [
        {"name": "mlx5_0/1", "kind": "infiniband", "gbit_s": 400.0},
        {"name": "eth0", "kind": "ethernet", "gbit_s": 25.0},
    ]
