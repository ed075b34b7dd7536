"""The calculator's commands: ``dlbench predict``, ``dlbench calibrate``, ``dlbench insights``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from dlbench.cli.common import (
    MAX_SECONDS,
    DbOption,
    IncludeContendedOption,
    JsonFlag,
    PricePerHourOption,
    RequireQuietOption,
    WaitQuietOption,
    app,
    err,
    finite,
    out,
    plain,
    quiet_policy,
)
from dlbench.cli.spec_options import spec_option
from dlbench.config.limits import (
    MAX_BATCH,
    MAX_CLASSES,
    MAX_DATASET,
    MAX_EPOCHS,
    MAX_LAYERS,
    MAX_PROCESSES,
    MAX_SIDE,
    MAX_WIDTH,
)
from dlbench.errors import ConfigError, DlbenchError, require


@app.command()
def predict(
    dataset_size: Annotated[int, typer.Option(help="Images per epoch.", min=1, max=MAX_DATASET)],
    workload: Annotated[
        str | None,
        typer.Argument(
            help="A classification workload from dlbench list (or use --family / --model-file)."
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Epochs to train.", min=1, max=MAX_EPOCHS)] = 1,
    device: Annotated[
        str | None,
        typer.Option(
            help="cpu, cuda, cuda:N (this machine's), or part of a stored device name "
            "[default: this machine's]."
        ),
    ] = None,
    family: Annotated[
        str | None, typer.Option(help="Describe the model: mlp, vgg, resnet or inception.")
    ] = None,
    depth: Annotated[
        int | None, typer.Option(help="Weight layers (with --family).", min=1, max=MAX_LAYERS)
    ] = None,
    width: Annotated[
        int | None,
        typer.Option(help="Base channels or units (with --family).", min=1, max=MAX_WIDTH),
    ] = None,
    model_file: Annotated[
        str | None,
        typer.Option(help="Your own model: FILE.py:FUNCTION returning a torch.nn.Module."),
    ] = None,
    input_size: Annotated[
        int | None,
        typer.Option(
            "--input",
            "--image-size",
            help="Square input side in pixels; a language model's sequence length in tokens.",
            min=1,
            max=MAX_SIDE,
        ),
    ] = None,
    channels: Annotated[
        int, typer.Option(help="Input channels (with --model-file).", min=1, max=MAX_WIDTH)
    ] = 3,
    num_classes: Annotated[
        int | None, typer.Option(help="Output classes.", min=1, max=MAX_CLASSES)
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch", "--batch-size", "-b", min=1, max=MAX_BATCH)
    ] = None,
    precision: Annotated[str, typer.Option(help="fp32, tf32, amp-fp16 or amp-bf16.")] = "fp32",
    gpus: Annotated[int, typer.Option(help="GPUs (data parallel).", min=1, max=MAX_PROCESSES)] = 1,
    val_size: Annotated[
        int, typer.Option(help="Images validated after each epoch.", min=0, max=MAX_DATASET)
    ] = 0,
    price_per_hour: PricePerHourOption = None,
    prices: Annotated[Path | None, typer.Option(help="Your own price table (YAML).")] = None,
    compare_devices: Annotated[
        bool, typer.Option("--compare-devices", help="Rank every stored device by time and cost.")
    ] = False,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Never write to the database.")
    ] = False,
    include_contended: IncludeContendedOption = False,
    json_flag: JsonFlag = False,
    db: DbOption = None,
) -> None:
    """Predict step, epoch and total training time (and cost) from the stored runs."""
    require("sklearn", "predict", "dlbench predict")
    from dlbench.analysis.cost import load_prices
    from dlbench.engines.pytorch.describe import describe_question as describe
    from dlbench.engines.pytorch.describe import run_operators
    from dlbench.predict import calculator
    from dlbench.predict.question import Question
    from dlbench.render import calculator as render_calculator
    from dlbench.store.database import Store

    question = Question(
        workload=workload,
        family=family,
        depth=depth,
        width=width,
        input_size=input_size,
        batch_size=batch_size,
        model_file=model_file,
        channels=channels,
        num_classes=num_classes,
        precision=precision,
    )
    table = load_prices(prices)
    descriptors = describe(question)
    store = Store(db, create=False, read_only=read_only)
    if compare_devices:
        answers, refused = calculator.compare_devices(
            store, descriptors, dataset_size, epochs, price_per_hour, gpus, val_size, table,
            operators_of=run_operators, include_contended=include_contended,
        )  # fmt: skip
        if not answers:
            raise DlbenchError(
                "no stored device can be predicted: "
                + "; ".join(f"{d}: {why}" for d, why in refused.items()),
                "run dlbench calibrate on a device first",
            )
        if json_flag:
            out.print_json(data=render_calculator.comparison_json(answers, refused))
        else:
            out.print(render_calculator.comparison(answers, refused, question.label()))
        return
    from dlbench.config.limits import DEVICE_PATTERN
    from dlbench.engines import get_engine

    # As for run and calibrate, a device spec means this machine's device; anything else is
    # part of a stored device name.
    if device is None or DEVICE_PATTERN.match(device):
        name = get_engine("pytorch").resolve_device(device or "auto").device_name
    else:
        name = device
    found = calculator.answer(
        store, descriptors, name, dataset_size, epochs, price_per_hour, gpus, val_size, table,
        calculator.stored_table(store, include_contended), operators_of=run_operators,
    )  # fmt: skip
    if json_flag:
        out.print_json(data=render_calculator.answer_json(found))
    else:
        out.print(render_calculator.prediction(found, question.label()))


@app.command()
def calibrate(
    families: Annotated[
        str,
        typer.Option(
            help="Comma-separated: vgg, resnet, inception, mlp (with --ops: whose models' "
            "operator shapes are timed beside the grids)."
        ),
    ] = "vgg,resnet,inception,mlp",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    budget: Annotated[
        float, typer.Option(help="Minutes to spend.", callback=finite(0.01, MAX_SECONDS / 60))
    ] = 20.0,
    repeats: Annotated[int, typer.Option(help="Runs of each configuration.", min=1, max=100)] = 2,
    ops: Annotated[
        bool,
        typer.Option(
            "--ops", help="Time operators (convolution, linear, norms...) instead of models."
        ),
    ] = False,
    precisions: Annotated[
        str | None,
        typer.Option(help="With --ops: comma-separated [default: all the device runs]."),
    ] = None,
    cpus: str | None = spec_option("cpus"),
    include_contended: IncludeContendedOption = False,
    wait_quiet: WaitQuietOption = None,
    require_quiet: RequireQuietOption = False,
    db: DbOption = None,
) -> None:
    """Benchmark a space-filling design of model shapes (or, with --ops, of operator shapes)
    here, for dlbench predict."""
    require("sklearn", "predict", "dlbench calibrate")
    from dlbench.api import preflight_device
    from dlbench.config import build_spec
    from dlbench.predict.question import FAMILIES
    from dlbench.render import calculator as render_calculator
    from dlbench.render.console import QuietConsole
    from dlbench.store.database import Store
    from dlbench.tools.calibrate import calibrate as run_design
    from dlbench.tools.calibrate import outcome as calibration_outcome
    from dlbench.tools.calibrate import sweep_name

    chosen = tuple(f.strip() for f in families.split(",") if f.strip())
    unknown = [f for f in chosen if f not in FAMILIES]
    if unknown or not chosen:
        raise ConfigError(
            f"--families {families!r}: unknown {unknown}", f"of {FAMILIES}", option="--families"
        )
    if ops:  # the operator shapes of these families' calibration models are timed too
        _calibrate_ops(device, budget, precisions, chosen, wait_quiet, require_quiet, db)
        return
    from dlbench.launch.cpus import check as check_cpus
    from dlbench.tools.calibrate import Choices

    quiet = quiet_policy(wait_quiet, require_quiet)
    info = preflight_device(build_spec(workload="param-mlp", device=device, cpus=cpus))
    check_cpus(cpus)
    store = Store(db)
    store.check_writable()
    out.print(
        f"calibrating {', '.join(chosen)} on {plain(info.device_name)} for {budget:g} min "
        f"(sweep {plain(sweep_name(info.device_name))}; rerun to continue)"
    )
    with render_calculator.CalibrationProgress(budget * 60, err) as bar:
        made = run_design(
            store,
            chosen,
            info.device,
            info.device_name,
            budget * 60,
            repeats,
            on_run=bar.end,
            on_start=bar.start,
            quiet=quiet,
            report=QuietConsole(err),
            choices=Choices(cpus=cpus, include_contended=include_contended),
        )
    found = calibration_outcome(store, info.device_name, made, include_contended)
    out.print(render_calculator.calibration_lines(found, info.device_name, store.describe()))
    raise typer.Exit(0 if found.enough else 1)


def _calibrate_ops(
    device: str,
    budget: float,
    precisions: str | None,
    families: tuple[str, ...],
    wait_quiet: float | None,
    require_quiet: bool,
    db: str | None,
) -> None:
    from dlbench import sysinfo
    from dlbench.api import preflight_device
    from dlbench.config import build_spec
    from dlbench.engines import get_engine
    from dlbench.engines.pytorch import op_timing as torch_ops
    from dlbench.launch.quiet import QuietGate
    from dlbench.measure.peaks import device_peak, gpu_bandwidth
    from dlbench.render import calculator as render_calculator
    from dlbench.render.console import QuietConsole
    from dlbench.store.database import Store
    from dlbench.telemetry.interference import InterferenceMeter
    from dlbench.tools import op_calibrate

    info = preflight_device(build_spec(workload="param-mlp", device=device))
    engine = get_engine("pytorch")
    runs_here = torch_ops.supported_precisions(info.kind, lambda p: engine.check_precision(info, p))
    chosen = (
        tuple(p.strip() for p in precisions.split(",") if p.strip()) if precisions else runs_here
    )
    refused = [p for p in chosen if p not in runs_here]
    if refused or not chosen:
        raise ConfigError(
            f"--precisions {precisions!r}: {info.device_name} does not run {refused or 'none'}",
            f"of {', '.join(runs_here)}",
            option="--precisions",
        )
    store = Store(db)
    store.check_writable()
    hardware = sysinfo.collect()
    bandwidth = gpu_bandwidth(info.device_name) if info.kind == "cuda" else None
    peaks = {
        p: (device_peak(info.kind, info.device_name, p, hardware).tflops, bandwidth) for p in chosen
    }
    gpus = (int(info.device.partition(":")[2] or 0),) if info.kind == "cuda" else ()
    QuietGate(quiet_policy(wait_quiet, require_quiet), QuietConsole(err), gpus).before()
    out.print(
        f"timing operators on {plain(info.device_name)} at {', '.join(chosen)} for {budget:g} min "
        "(rerun to continue)"
    )
    with render_calculator.CalibrationProgress(budget * 60, err) as bar:
        found = op_calibrate.calibrate_ops(
            store,
            info.device_name,
            info.kind,
            chosen,
            budget * 60,
            torch_ops.operator_timer(
                info.device, op_calibrate.REPEATS, op_calibrate.SHAPE_BUDGET_S
            ),
            peaks,
            f"pytorch {hardware.get('torch') or ''}".strip(),
            on_block=bar.block,
            meter=lambda: InterferenceMeter(os.getpid(), gpus).start(),
            model_shapes=op_calibrate.design_shapes(families, info.device),
        )
    out.print(render_calculator.op_calibration_lines(found, info.device_name, store.describe()))
    raise typer.Exit(0 if found.stored else 1)


@app.command()
def insights(
    family: Annotated[str | None, typer.Option(help="Only this family.")] = None,
    device: Annotated[str | None, typer.Option(help="Only runs on this device.")] = None,
    sweep: Annotated[str | None, typer.Option(help="Only runs of this sweep.")] = None,
    json_flag: JsonFlag = False,
    db: DbOption = None,
) -> None:
    """How each model descriptor goes with step time (Spearman, and partial for batch)."""
    require("sklearn", "predict", "dlbench insights")
    from dataclasses import asdict

    from dlbench.analysis.insights import correlations
    from dlbench.predict.calculator import match_device, stored_table
    from dlbench.predict.features import left_out_text
    from dlbench.render import calculator as render_calculator
    from dlbench.store.database import Store

    table = stored_table(Store(db, read_only=True))
    left = left_out_text(table, match_device(table, device)) if device else ""
    if device:
        table = table[table["device"] == match_device(table, device)]
    if sweep:
        table = table[table["sweep"] == sweep]
    if family:
        table = table[table["family"] == family]
    found = correlations(table)
    if not found:
        raise DlbenchError(
            f"{len(table)} stored run(s) with descriptors match"
            + (f" (left out: {left})" if left else "")
            + "; correlations need at least 5 of one family whose descriptors vary",
            "run dlbench calibrate, or widen the filters",
        )
    if json_flag:
        out.print_json(data=[asdict(c) for c in found])
    else:
        out.print(render_calculator.insights(found))
