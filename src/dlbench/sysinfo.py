"""The hardware fingerprint stored with every run (``dlbench sysinfo``).

Every probe is best-effort: a field that cannot be read here is ``None`` with no error, since a
container without sysfs entries or a machine without a GPU is normal.
"""

from __future__ import annotations

import os
import platform
import re
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any

import psutil

from dlbench.version import __version__


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name, read from /proc/cpuinfo (py-cpuinfo is the slow fallback)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    try:
        import cpuinfo

        return str(cpuinfo.get_cpu_info().get("brand_raw") or platform.processor() or "unknown CPU")
    except Exception:  # noqa: BLE001 - py-cpuinfo probes subprocesses that may fail anywhere
        return platform.processor() or "unknown CPU"


ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "asimd", "neon")


@lru_cache(maxsize=1)
def cpu_isa() -> dict[str, Any]:
    """Vendor, family and the vector-FMA flags that bound the CPU's peak FLOP/s."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("vendor_id", "cpu family", "flags", "Features") and key not in fields:
                fields[key] = value.strip()
            if not line.strip() and fields:
                break  # the first processor is enough
    except OSError:
        return {}
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    family = fields.get("cpu family", "")
    return {
        "vendor": fields.get("vendor_id"),
        "family": int(family) if family.isdigit() else None,
        **{flag: flag in flags for flag in ISA_FLAGS},
    }


def usable_cpus() -> int:
    """CPUs this process may run on (affinity), which a container quota can make smaller."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity
        return os.cpu_count() or 1


HOST_NAME_VARIABLE = "DLBENCH_HOSTNAME"  # a node's name in ranks and telemetry; tests only
SYS_NET = Path("/sys/class/net")
SYS_INFINIBAND = Path("/sys/class/infiniband")


def node_name() -> str:
    """This node's name as a run's ranks carry it: the host name, or DLBENCH_HOSTNAME where
    a test runs two "nodes" on one machine."""
    return os.environ.get(HOST_NAME_VARIABLE) or socket.gethostname()


def links(net: Path = SYS_NET, infiniband: Path = SYS_INFINIBAND) -> list[dict[str, Any]]:
    """The node's network links and their nominal rates, from sysfs: each InfiniBand port's
    rate ("400 Gb/sec (4X NDR)") and each physical NIC that is up and says its speed (Mb/s).
    Loopback, virtual devices and NICs that report no speed (-1, most VMs) are left out."""
    found: list[dict[str, Any]] = []
    for port in sorted(infiniband.glob("*/ports/*")):
        rate = _read_text(port / "rate")
        match = re.match(r"\s*([\d.]+)\s*Gb/sec", rate or "")
        if match:
            name = f"{port.parent.parent.name}/{port.name}"
            found.append({"name": name, "kind": "infiniband", "gbit_s": float(match.group(1))})
    for nic in sorted(net.glob("*")):
        if not (nic / "device").exists() or _read_text(nic / "operstate") != "up":
            continue
        speed = _read_text(nic / "speed")
        if speed and speed.lstrip("-").isdigit() and int(speed) > 0:
            found.append({"name": nic.name, "kind": "ethernet", "gbit_s": int(speed) / 1000})
    return found


def collect(data_path: str | None = None) -> dict[str, Any]:
    """The fingerprint of this machine, as plain JSON-ready values."""
    memory = psutil.virtual_memory()
    freq = _safe(psutil.cpu_freq)
    return {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "dlbench": __version__,
        "cpu": {
            "model": cpu_model(),
            "architecture": platform.machine(),
            "physical_cores": psutil.cpu_count(logical=False),
            "logical_cpus": psutil.cpu_count(logical=True),
            "usable_cpus": usable_cpus(),
            "max_mhz": round(freq.max, 1) if freq and freq.max else None,
            "clock_mhz": round(freq.current, 1) if freq and freq.current else None,
            "isa": cpu_isa(),
        },
        "memory_bytes": memory.total,
        "swap_bytes": psutil.swap_memory().total,
        "storage": storage_for(data_path or os.getcwd()),
        "links": links(),
        **_framework_info(),
    }


def _framework_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"torch": None, "cuda": None, "cudnn": None, "gpus": []}
    cuda_ok = torch.cuda.is_available()
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda_ok else None,
        "gpus": _gpus(torch) if cuda_ok else [],
    }


def _gpus(torch: Any) -> list[dict[str, Any]]:
    driver = _nvml_driver()
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        gpus.append(
            {
                "index": index,
                "name": props.name,
                "memory_bytes": int(props.total_memory),
                "compute_capability": f"{props.major}.{props.minor}",
                "multiprocessors": props.multi_processor_count,
                "driver": driver,
            }
        )
    return gpus


def _nvml_driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # noqa: BLE001 - no NVML library, no driver, or no permission
        return None


def storage_for(path: str) -> dict[str, Any]:
    """The block device that holds ``path``: name, model, rotational, filesystem, mount."""
    real = os.path.realpath(path)
    info: dict[str, Any] = {
        "path": real,
        "device": None,
        "model": None,
        "rotational": None,
        "filesystem": None,
        "mountpoint": None,
    }
    mounts = sorted(_safe(psutil.disk_partitions, all=True) or [], key=lambda p: len(p.mountpoint))
    for part in mounts:
        if real == part.mountpoint or real.startswith(part.mountpoint.rstrip("/") + "/"):
            info["filesystem"], info["mountpoint"] = part.fstype, part.mountpoint
    try:
        dev = os.stat(real).st_dev
    except OSError:
        return info
    block = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if not block.exists():
        return info  # overlay, tmpfs, network filesystems: no single block device
    disk = block.resolve()
    if (disk / "partition").exists():
        disk = disk.parent
    info["device"] = disk.name
    info["rotational"] = _read_flag(disk / "queue" / "rotational")
    info["model"] = _read_text(disk / "device" / "model")
    return info


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _read_flag(path: Path) -> bool | None:
    text = _read_text(path)
    return None if text is None else text == "1"


def _safe(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except Exception:  # noqa: BLE001 - psutil raises platform-specific errors
        return None
