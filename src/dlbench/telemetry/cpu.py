"""CPU utilisation (total and per core), frequency and temperature."""

from __future__ import annotations

from pathlib import Path

import psutil

THERMAL_ZONES = Path("/sys/class/thermal")
CPU_SENSOR_NAMES = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal", "acpitz")


class CpuSource:
    name = "cpu"

    def open(self) -> None:
        psutil.cpu_percent(percpu=True)  # the first call has no interval and returns zeros
        self._temperature = find_cpu_temperature()
        self.notes = (
            []
            if self._temperature
            else [
                "no CPU temperature sensor (psutil finds none, no CPU zone in /sys/class/thermal)"
            ]
        )

    def read(self, now: float) -> dict[str, float]:
        per_core = psutil.cpu_percent(percpu=True)
        out = {f"cpu.core{i}.util_percent": value for i, value in enumerate(per_core)}
        out["cpu.util_percent"] = sum(per_core) / len(per_core)
        freq = psutil.cpu_freq()
        if freq and freq.current:
            out["cpu.freq_mhz"] = freq.current
        if self._temperature is not None:
            celsius = self._temperature()
            if celsius is not None:
                out["cpu.temp_c"] = celsius
        return out

    def close(self) -> None:
        pass


def find_cpu_temperature() -> TemperatureReader | None:
    """A reader of the CPU temperature: psutil's sensors, else /sys/class/thermal, else None."""
    sensors = getattr(psutil, "sensors_temperatures", None)
    found = sensors() if sensors else {}
    for name in CPU_SENSOR_NAMES:
        if found.get(name):
            return TemperatureReader(sensor=name)
    zones = sorted(THERMAL_ZONES.glob("thermal_zone*/temp")) if THERMAL_ZONES.exists() else []
    for zone in zones:
        kind = (zone.parent / "type").read_text().strip() if (zone.parent / "type").exists() else ""
        if any(word in kind.lower() for word in ("cpu", "x86_pkg", "soc", "acpitz")):
            return TemperatureReader(path=zone)
    return None


class TemperatureReader:
    def __init__(self, sensor: str | None = None, path: Path | None = None) -> None:
        self.sensor, self.path = sensor, path

    def __call__(self) -> float | None:
        if self.sensor:
            readings = psutil.sensors_temperatures().get(self.sensor) or []
            values = [r.current for r in readings if r.current]
            return max(values) if values else None
        try:
            return int(self.path.read_text()) / 1000.0 if self.path else None
        except (OSError, ValueError):
            return None
