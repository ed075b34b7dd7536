"""Cost and energy of training: what one epoch, and E epochs of N images, cost at the measured
speed, from a price per GPU-hour (the shipped table, the user's, or --price-per-hour) and the
measured energy (with --price-per-kwh)."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dlbench import input_files
from dlbench.datasets import synthetic_sizes
from dlbench.errors import ConfigError
from dlbench.measure.training_plan import plan
from dlbench.store.stored import StoredRun
from dlbench.workloads import get_workload

J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Price:
    usd_per_gpu_hour: float
    source: str  # the table entry, or "--price-per-hour"


@dataclass(frozen=True)
class Cost:
    run_id: str
    dataset_size: int
    epochs: int
    epoch_s: float | None  # training steps of one epoch at the measured step time
    total_s: float | None
    price: Price | None
    price_note: str  # where the price came from, or why there is none
    usd_per_epoch: float | None
    usd_total: float | None
    kwh_per_epoch: float | None  # from measured energy in the train phase
    kwh_total: float | None
    energy_usd_total: float | None  # with --price-per-kwh
    energy_note: str
    price_unit: str = "GPU-h"  # what the price is per: a GPU-hour, or for a CPU run an hour


class PriceEntry(BaseModel):
    """One entry of a price table: a regular expression matched against the device's name,
    and what one GPU-hour (a CPU run: one machine-hour) costs there."""

    model_config = ConfigDict(extra="forbid")

    match: str = Field(min_length=1, max_length=200)
    usd_per_gpu_hour: float = Field(ge=0, le=1e6, allow_inf_nan=False)
    source: str = Field(default="price table", max_length=500)
    date: str = Field(default="undated", max_length=40)

    @field_validator("match")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        return value

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (datetime.date, int)) else value  # 2024-06-01


def load_prices(path: Path | None = None) -> list[dict[str, Any]]:
    """The price table: ``path``'s (validated: one line naming the entry and field at fault)
    or the shipped one."""
    if path is None:
        text = (resources.files("dlbench") / "data" / "prices.yaml").read_text()
    else:
        text = input_files.read_text(path, "price table", input_files.MAX_YAML_BYTES)
    try:
        entries = input_files.load(text)[0] or []
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"price table {path}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    if not isinstance(entries, list):
        raise ConfigError(
            f"{path}: a price table is a list of {{match, usd_per_gpu_hour, source, date}}"
        )
    table = []
    for number, entry in enumerate(entries, start=1):
        try:
            table.append(PriceEntry.model_validate(entry).model_dump())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "itself"
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"price table {path}: entry {number}, {where}: {message}") from None
    return table


def find_price(device_name: str, table: list[dict[str, Any]]) -> Price | None:
    for entry in table:
        if re.search(str(entry["match"]), device_name or "", flags=re.IGNORECASE):
            return Price(
                float(entry["usd_per_gpu_hour"]),
                f"{entry.get('source', 'price table')} ({entry.get('date', 'undated')})",
            )
    return None


def run_cost(
    summary: StoredRun,
    dataset_size: int | None = None,
    epochs: int = 1,
    price_per_hour: float | None = None,
    price_per_kwh: float | None = None,
    table: list[dict[str, Any]] | None = None,
) -> Cost:
    """Cost of ``epochs`` epochs of ``dataset_size`` images (default: the workload's standard
    dataset) at the run's measured step time, on as many GPUs as it used."""
    if summary.kind != "train":
        raise ConfigError(
            f"run {summary.run_id} is a {summary.kind} run: an epoch's cost is of training",
            "give a training run",
        )
    workload = get_workload(str(summary.workload))
    shape = (1, summary.seq_len, 1) if summary.seq_len else workload.input_shape
    size = dataset_size or synthetic_sizes(workload.data_format, shape)[0]
    config = summary.config or {}
    gpus = int(config.get("gpus", 1))
    batch = summary.batch_size or 0
    step = summary.mean_step_time_s
    job = plan(step, size, batch, epochs, gpus=gpus) if step and batch else None
    epoch_s = job.epoch_s if job else None
    total_s = job.total_s if job else None
    price: Price | None
    if price_per_hour is not None:
        price, note = Price(price_per_hour, "--price-per-hour"), "--price-per-hour"
    elif not (summary.num_gpus or 0):
        price, note = None, "no price for a CPU run: give --price-per-hour"
    else:
        price = find_price(summary.device_name or "", table or load_prices())
        note = (
            price.source
            if price
            else (f"no price for {summary.device_name} in the table: give --price-per-hour")
        )
    on_gpus = bool(summary.num_gpus or 0)
    hours = gpus if on_gpus else 1
    usd_epoch = epoch_s / 3600 * price.usd_per_gpu_hour * hours if price and epoch_s else None
    kwh_epoch, energy_note = _energy_per_epoch(summary, size)
    return Cost(
        run_id=summary.run_id,
        dataset_size=size,
        epochs=epochs,
        epoch_s=epoch_s,
        total_s=total_s,
        price=price,
        price_note=note,
        usd_per_epoch=usd_epoch,
        usd_total=usd_epoch * epochs if usd_epoch is not None else None,
        kwh_per_epoch=kwh_epoch,
        kwh_total=kwh_epoch * epochs if kwh_epoch is not None else None,
        energy_usd_total=kwh_epoch * epochs * price_per_kwh
        if kwh_epoch is not None and price_per_kwh is not None
        else None,
        energy_note=energy_note,
        price_unit="GPU-h" if on_gpus else "h (the machine)",
    )


def _energy_per_epoch(summary: StoredRun, size: int) -> tuple[float | None, str]:
    train = summary.telemetry.phase("train") if summary.telemetry else None
    per_image = train.images_per_joule if train else None
    if not train or not per_image:
        return None, "no energy counter on this machine (NVML energy or RAPL) for this run"
    devices = ", ".join(sorted(train.energy_j))
    return size / per_image / J_PER_KWH, f"measured: {devices}, train phase"
