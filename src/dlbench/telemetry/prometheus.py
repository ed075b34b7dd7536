"""Telemetry served to Prometheus: ``/metrics`` in its text format (prometheus-client).

Every metric the sampler reads becomes a series named ``dlbench_<metric>`` with its unit in
the name, as Prometheus' conventions ask (``_bytes``, ``_percent``, ``_celsius``, ``_watts``,
``_hertz``, ``_per_second``; cumulative energy as a counter ``_joules_total``). Per-device
metrics carry the device as a label (``gpu``, ``core``, ``package``, ``disk``) instead of in
the name; every series carries the constant labels of what is measured (``run_id``,
``workload``, ``host``, and ``slurm_job_id`` under Slurm). No label varies per step, so the
number of series stays that of the metrics.

The collector keeps only the last tick (the sampler's thread writes it, the HTTP thread reads
it under a lock): a scrape costs a dictionary copy, never a read of the sources.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

PREFIX = "dlbench_"
DEFAULT_PORT = 9977
# (pattern on the sampler's name, label it captures, the name's remaining prefix)
LABELLED = (
    (re.compile(r"^gpu(\d+)\.(.+)$"), "gpu", "gpu"),
    (re.compile(r"^cpu\.core(\d+)\.(.+)$"), "core", "cpu_core"),
    (re.compile(r"^cpu\.package(\d+)\.(.+)$"), "package", "cpu_package"),
    (re.compile(r"^disk\.([^.]+)\.(.+)$"), "disk", "disk"),
    (re.compile(r"^net\.([^.]+)\.(.+)$"), "interface", "net_interface"),
    (re.compile(r"^ib\.([^.]+\.[^.]+)\.(.+)$"), "port", "ib_port"),
)
# (suffix of the sampler's name, Prometheus suffix, factor to the base unit)
UNITS = (
    ("_per_s", "_per_second", 1.0),
    ("_mhz", "_hertz", 1e6),
    ("_temp_c", "_temperature_celsius", 1.0),
    ("_c", "_celsius", 1.0),
    ("_w", "_watts", 1.0),
    ("_j", "_joules_total", 1.0),
)
INVALID = re.compile(r"[^a-zA-Z0-9_]")
# Names Prometheus reserves a suffix of (``_count`` is a histogram's or a summary's).
RENAMED = {"proc.count": "proc.processes"}


# Each series' HELP line, by its name without the prefix: what a Grafana user reads.
HELP = {
    "cpu_util_percent": "CPU busy time of the usable CPUs, percent",
    "cpu_core_util_percent": "CPU busy time of one core, percent",
    "cpu_busy_cores": "CPU busy time of the usable CPUs, in cores (2.0: two cores' worth)",
    "cpu_foreign_cores": "CPU time of processes other than the run's, in cores",
    "cpu_freq_hertz": "Mean CPU clock",
    "cpu_temperature_celsius": "CPU temperature",
    "cpu_steal_percent": "CPU time the hypervisor gave to other machines, percent",
    "cpu_load1": "1-minute load average",
    "cpu_package_power_watts": "CPU package power (RAPL)",
    "cpu_package_energy_joules_total": "CPU package energy since sampling began (RAPL)",
    "mem_used_bytes": "Memory in use",
    "mem_available_bytes": "Memory available to new processes",
    "mem_percent": "Memory in use, percent",
    "swap_used_bytes": "Swap in use",
    "swap_in_bytes_per_second": "Swapped in from disk",
    "swap_out_bytes_per_second": "Swapped out to disk",
    "disk_util_percent": "Time the disk was busy, percent (iostat's %util)",
    "disk_read_bytes_per_second": "Read from the disk",
    "disk_write_bytes_per_second": "Written to the disk",
    "disk_read_iops": "Read operations on the disk per second",
    "disk_write_iops": "Write operations on the disk per second",
    "net_recv_bytes_per_second": "Received over the network, all interfaces",
    "net_sent_bytes_per_second": "Sent over the network, all interfaces",
    "net_interface_recv_bytes_per_second": "Received on one physical network interface",
    "net_interface_sent_bytes_per_second": "Sent on one physical network interface",
    "ib_port_recv_bytes_per_second": "Received on one InfiniBand port (its data counter x 4)",
    "ib_port_sent_bytes_per_second": "Sent on one InfiniBand port (its data counter x 4)",
    "proc_cpu_percent": "CPU time of the run's processes, percent of one core",
    "proc_rss_bytes": "Resident memory of the run's processes",
    "proc_threads": "Threads of the run's processes",
    "proc_processes": "Processes of the run (its input workers included)",
    "proc_read_chars_per_second": "Bytes the run's processes passed to read calls",
    "proc_write_chars_per_second": "Bytes the run's processes passed to write calls",
    "proc_disk_read_bytes_per_second": "Bytes the run's processes read from disks",
    "proc_disk_write_bytes_per_second": "Bytes the run's processes wrote to disks",
    "gpu_util_percent": "Time a kernel ran on the GPU, percent (NVML)",
    "gpu_mem_util_percent": "Time GPU memory was read or written, percent (NVML)",
    "gpu_mem_used_bytes": "GPU memory in use",
    "gpu_mem_total_bytes": "GPU memory in all",
    "gpu_temperature_celsius": "GPU temperature",
    "gpu_power_watts": "GPU power (NVML's 1 s average on recent GPUs)",
    "gpu_energy_joules_total": "GPU energy since sampling began",
    "gpu_sm_clock_hertz": "GPU streaming multiprocessor clock",
    "gpu_mem_clock_hertz": "GPU memory clock",
    "gpu_throttle_reasons": "GPU clock event reasons, NVML's bit mask (0: none)",
    "gpu_pcie_tx_bytes_per_second": "Sent over PCIe by the GPU",
    "gpu_pcie_rx_bytes_per_second": "Received over PCIe by the GPU",
    "gpu_other_processes": "Compute processes on the GPU other than the run's",
    "gpu_other_mem_bytes": "GPU memory of processes other than the run's",
}


@dataclass(frozen=True)
class SeriesName:
    name: str  # the Prometheus metric name
    labels: tuple[tuple[str, str], ...]  # the device label, if any
    counter: bool  # cumulative (joules): a counter, not a gauge
    factor: float  # sampler value x factor = value in the base unit


def series_name(metric: str) -> SeriesName:
    """How the sampler's ``metric`` (``gpu0.power_w``) is served
    (``dlbench_gpu_power_watts{gpu="0"}``)."""
    labels: tuple[tuple[str, str], ...] = ()
    rest = metric = RENAMED.get(metric, metric)
    for pattern, label, prefix in LABELLED:
        found = pattern.match(metric)
        if found:
            labels, rest = ((label, found.group(1)),), f"{prefix}.{found.group(2)}"
            break
    factor, counter = 1.0, False
    rest = rest.replace(".", "_")
    for suffix, unit, scale in UNITS:
        if rest.endswith(suffix):
            rest, factor, counter = rest[: -len(suffix)] + unit, scale, unit.endswith("_total")
            break
    return SeriesName(PREFIX + INVALID.sub("_", rest), labels, counter, factor)


def constant_labels(
    run_id: str | None = None, workload: str | None = None, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """The labels every series carries: what is measured and where."""
    labels = {"host": socket.gethostname()}
    if run_id:
        labels["run_id"] = run_id
    if workload:
        labels["workload"] = workload
    if environ.get("SLURM_JOB_ID"):
        labels["slurm_job_id"] = environ["SLURM_JOB_ID"]
    return labels


Extra = Callable[[], Iterator[Metric]]


class TelemetryCollector:
    """The last tick of telemetry as Prometheus series (a prometheus-client collector)."""

    def __init__(self, labels: Mapping[str, str], extra: Extra | None = None) -> None:
        self.labels = dict(labels)
        self._extra = extra
        self._tick: dict[str, float] = {}
        self._lock = threading.Lock()

    def update(self, tick: Mapping[str, float]) -> None:
        """The sampler's hook: a tick's values replace the last ones (a metric that stopped
        being read keeps its last value, as node_exporter's do until the source returns)."""
        with self._lock:
            self._tick.update(tick)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            tick = dict(self._tick)
        families: dict[str, Metric] = {}
        names = sorted(self.labels)
        for metric, value in sorted(tick.items()):
            series = series_name(metric)
            family = families.get(series.name)
            if family is None:
                keys = names + [k for k, _ in series.labels]
                kind = CounterMetricFamily if series.counter else GaugeMetricFamily
                text = HELP.get(series.name.removeprefix(PREFIX), f"dlbench telemetry {metric}")
                family = kind(series.name, text, labels=keys)
                families[series.name] = family
            label_values = [self.labels[k] for k in names] + [v for _, v in series.labels]
            family.add_metric(label_values, value * series.factor)  # type: ignore[attr-defined]
        yield from families.values()
        if self._extra is not None:
            yield from self._extra()


class MetricsServer:
    """``/metrics`` on ``host:port`` in a daemon thread, until ``close``."""

    def __init__(
        self,
        collector: TelemetryCollector,
        port: int,
        host: str = "127.0.0.1",
        option: str = "--metrics-port",
    ) -> None:
        from prometheus_client import start_http_server

        from dlbench.errors import ConfigError

        self.collector = collector
        self.registry = CollectorRegistry()
        self.registry.register(collector)
        try:
            self._server, self._thread = start_http_server(port, host, self.registry)
        except OSError as exc:
            raise ConfigError(
                f"{option} {port}: cannot listen on {host}:{port}: {exc.strerror or exc}",
                "choose a free port (or stop what listens there)",
                option=option,
            ) from exc
        self.port = int(self._server.server_address[1])
        self.host = host

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def listen_address(host: str, option: str) -> tuple[str, bool]:
    """``host`` as a server binds it ("[::]" is "::") and whether it listens on every network:
    0.0.0.0 and :: in any spelling (0, 0x0, 0:0:0:0:0:0:0:0, an empty host). A host that does
    not resolve is one ConfigError naming ``option``."""
    import ipaddress

    from dlbench.errors import ConfigError

    bare = host.strip()
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1]
    if not bare:
        return "0.0.0.0", True
    try:
        found = socket.getaddrinfo(bare, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ConfigError(
            f"{option} {host!r} is not an address or a name this machine resolves ({reason})",
            f"e.g. {option} 127.0.0.1 (this machine only) or the address of one interface",
            option=option,
        ) from None
    every = any(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_unspecified for info in found
    )
    return bare, every


def check_listen(host: str, port: int, option: str) -> None:
    """``host:port`` can be listened on now: a taken port or a foreign address is one line
    before any work, not a server's traceback after it."""
    from dlbench.errors import ConfigError

    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, _, _, address = found[0]
        with socket.socket(family, kind) as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
    except OSError as exc:
        raise ConfigError(
            f"{option} {port}: cannot listen on {host}:{port}: {exc.strerror or exc}",
            "choose a free port (or stop what listens there)",
            option=option,
        ) from None


def exposed_host_warning(host: str, option: str = "--metrics-host") -> str | None:
    """The warning for an address every network can reach (None for any other)."""
    if listen_address(host, option)[1]:
        return (
            f"warning: {option} {host} serves the metrics to every network this machine "
            "is on; Prometheus on this machine needs only 127.0.0.1"
        )
    return None


__all__ = [
    "DEFAULT_PORT", "MetricsServer", "SeriesName", "TelemetryCollector", "constant_labels",
    "check_listen", "exposed_host_warning", "listen_address", "series_name",
]  # fmt: skip
