"""What ``dlbench predict``, ``calibrate`` and ``insights`` print (Rich), and their JSON."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Console, Group
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from dlbench.measure.units import fmt
from dlbench.render.console import hms, plain, table
from dlbench.render.run import QUALITY_STYLE

SPLIT_ORDER = ("random 5-fold", "leave one family out")


def quality_markup(verdict: str) -> str:
    return f"[{QUALITY_STYLE.get(verdict, 'white')}]{plain(verdict)}[/]"


def _band(values: tuple[float, float, float], show: Any) -> tuple[str, str]:
    main, low, high = values
    return str(show(main)), f"{show(low)} - {show(high)}"


def prediction(answer: Any, label: str) -> Group:
    plans = answer.plan
    rows = [
        ("step time (ms)", *_band(answer.step_s, lambda v: f"{v * 1e3:,.2f}")),
        ("epoch", *_band(tuple(p.epoch_s for p in plans), hms)),
        ("total", *_band(tuple(p.total_s for p in plans), hms)),
    ]
    if plans[0].usd is not None:
        rows.append(("cost (USD)", *_band(tuple(p.usd for p in plans), lambda v: f"{v:,.2f}")))
    d = answer.descriptors
    head = table(
        f"{label} on {answer.device}: batch {d['batch_size']}, {d['precision']}, "
        f"{d['flops_per_step'] / 1e9:,.2f} GFLOP per step, {d['params'] / 1e6:,.2f} M params",
        ("", "Predicted", "90% interval"),
        rows,
    )
    startup = (
        f"start-up {answer.startup_s:.1f} s (the nearest stored runs' process start to model ready)"
        if answer.startup_s is not None
        else "start-up not counted (the nearest stored runs did not measure it)"
    )
    notes = [f"{plans[0].steps_per_epoch:,} steps per epoch; {startup}"]
    if answer.price_source:
        notes.append(f"price: {plain(answer.price_source)}")
    elif plans[0].usd is None:
        notes.append("no price for this device: give --price-per-hour for a cost")
    if answer.transfer is not None:
        notes.append(plain(transfer_line(answer.transfer)))
    notes += [f"[yellow]warning: {plain(line)}[/]" for line in answer.extrapolation]
    nearest = table(
        "nearest stored runs",
        ("Run", "Workload", "Batch", "GFLOP/step", "Step (ms)"),
        [
            (
                r["run_id"],
                r["workload"],
                int(r["batch_size"]),
                f"{r['flops'] / 1e9:,.2f}",
                f"{r['step_s'] * 1e3:,.2f}",
            )
            for r in answer.nearest
        ],
    )
    return Group(head, "\n".join(notes), plain(predictor(answer.predictor)), nearest)


def transfer_line(moved: Any) -> str:
    if moved.method == "operator classes":
        return (
            f"transferred: {moved.target} has operator measurements but too few runs of its "
            f"own, so this is {moved.source}'s operator-level prediction with each operator's "
            f"time scaled by the measured ratio of its class ({', '.join(moved.references)}): "
            f"x {moved.ratio:.3f} for this model; the interval is widened by the ratios' "
            f"spread ({moved.spread * 100:.0f}%)"
        )
    datasheet = []
    if moved.peak_ratio:
        datasheet.append(f"peak FLOP/s ratio {moved.peak_ratio:.2f}")
    if moved.bandwidth_ratio:
        datasheet.append(f"memory bandwidth ratio {moved.bandwidth_ratio:.2f}")
    return (
        f"transferred: {moved.target} has too few runs of its own, so this is {moved.source}'s "
        f"prediction x {moved.ratio:.3f}, the measured step-time ratio on "
        f"{', '.join(moved.references)}"
        + (f" (datasheet: {', '.join(datasheet)})" if datasheet else "")
        + f"; the interval is widened by the references' spread ({moved.spread * 100:.0f}%)"
    )


def predictor(found: Any) -> str:
    t = found.training
    families = ", ".join(f"{f} {n}" for f, n in t["families"].items())
    errors = "; ".join(
        f"{split}: MAPE {e['mape']:.1f}%, median {e['median_ape']:.1f}%, P90 {e['p90_ape']:.1f}%"
        for split in (*SPLIT_ORDER, *(s for s in found.errors if s not in SPLIT_ORDER))
        if (e := found.errors.get(split))
    )
    kept = "kept in the store" if not found.reused else "reused from the store"
    left = t.get("left_out_contended") or 0
    taken = t.get("included_contended") or 0
    skipped = f", {left} contended run(s) left out" if left else ""
    if taken:
        skipped += (
            f", {taken} of them measured contended and learned from all the same "
            "(--include-contended: the predictions may be slower than this device is)"
        )
    operators = t.get("operator_measurements")
    name = (
        f"{found.name} (each operator's measured time, {operators} operator shapes, composed "
        "by a fit on whole-model runs)"
        if operators
        else found.name
    )
    others = "; ".join(f"{n} {m:.1f}%" for n, m in found.alternatives.items())
    return (
        f"predictor for {found.device}: {name} ({kept}), learned from {t['runs']} runs"
        f"{skipped} "
        f"({families}; batch {t['batch_size'][0]:g}-{t['batch_size'][1]:g}, "
        f"{t['gflop_per_step'][0]:.3g}-{t['gflop_per_step'][1]:.3g} GFLOP/step). "
        f"Cross-validated errors: {errors}"
        + (f". Whole-model predictors, random 5-fold MAPE: {others}" if others else "")
    )


def calibration_lines(found: Any, device: str, where: str) -> str:
    """What a calibration made, and whether the device has a predictor from it."""
    from dlbench.predict.fitting import MIN_RUNS

    device, where = plain(device), plain(where)
    lines = [
        f"{found.made} run(s) started now; {found.calibrated} calibration run(s) of {device} "
        f"stored ok in {where}"
    ]
    if found.left_out_contended:
        lines.append(
            f"[yellow]{found.left_out_contended} contended run(s) on {device} left out of the "
            "fit[/] (dlbench runs --quality contended lists them; --cpus auto measures on the "
            "idle CPUs, --include-contended learns from them, said beside every answer)"
        )
    if not found.enough:
        left = f" (left out: {plain(found.left_out)})" if found.left_out else ""
        lines.append(
            f"[yellow]warning: a predictor needs at least {MIN_RUNS} calibration runs that "
            f"ended ok on {device}; there are {found.calibrated}{left}: give a larger "
            "--budget, or run dlbench calibrate again to continue[/]"
        )
        return "\n".join(lines)
    if found.made == 0:
        lines.append("no new run this time (the budget was spent, or the design is complete):")
    lines.append(plain(predictor(found.predictor)))
    return "\n".join(lines)


def _plan_json(answer: Any) -> dict[str, Any]:
    def three(values: Any) -> dict[str, Any]:
        main, low, high = values
        return {"predicted": main, "low": low, "high": high}

    plans = answer.plan
    return {
        "device": answer.device,
        "step_s": three(answer.step_s),
        "epoch_s": three(tuple(p.epoch_s for p in plans)),
        "total_s": three(tuple(p.total_s for p in plans)),
        "usd": three(tuple(p.usd for p in plans)) if plans[0].usd is not None else None,
        "steps_per_epoch": plans[0].steps_per_epoch,
        "startup_s": answer.startup_s,
        "price_source": answer.price_source,
        "coverage": 0.9,
    }


def answer_json(answer: Any) -> dict[str, Any]:
    p = answer.predictor
    moved = answer.transfer
    return {
        **_plan_json(answer),
        "descriptors": answer.descriptors,
        "predictor": {
            "device": p.device,
            "model": p.name,
            "errors": p.errors,
            "training": p.training,
            "reused": p.reused,
            "alternatives": p.alternatives,
        },
        "transfer": None
        if moved is None
        else {
            "source": moved.source,
            "ratio": moved.ratio,
            "references": list(moved.references),
            "spread": moved.spread,
            "method": moved.method,
            "peak_ratio": moved.peak_ratio,
            "bandwidth_ratio": moved.bandwidth_ratio,
            "note": transfer_line(moved),
        },
        "nearest": [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in answer.nearest
        ],
        "extrapolation": list(answer.extrapolation),
    }


def comparison_json(answers: list[Any], refused: dict[str, str]) -> dict[str, Any]:
    from dlbench.predict.calculator import by_cost

    return {
        "by_time": [answer_json(a) for a in answers],
        "by_cost": [a.device for a in by_cost(answers)],
        "refused": refused,
    }


def comparison(answers: list[Any], refused: dict[str, str], label: str) -> Group:
    from dlbench.predict.calculator import by_cost

    cheapest = {a.device: i + 1 for i, a in enumerate(by_cost(answers))}
    d = answers[0].descriptors
    rows = [
        (
            a.device,
            i + 1,
            cheapest[a.device],
            hms(a.plan[0].total_s),
            f"{hms(a.plan[1].total_s)} - {hms(a.plan[2].total_s)}",
            fmt(a.plan[0].usd, 2) if a.plan[0].usd is not None else None,
            "transfer" if a.transfer else f"own runs ({a.runs_used})",
        )
        for i, a in enumerate(answers)
    ]
    head = table(
        f"{label}, batch {d['batch_size']}, {d['precision']}: every stored device",
        ("Device", "Rank by time", "Rank by cost", "Total", "90% interval", "USD", "From"),
        rows,
    )
    notes = [plain(transfer_line(a.transfer)) for a in answers if a.transfer]
    notes += [plain(f"{device}: not predicted ({why})") for device, why in refused.items()]
    return Group(head, *notes)


def insights(found: list[Any]) -> Group:
    from dlbench.analysis.insights import strongest
    from dlbench.analysis.stats import format_p

    tables: list[Any] = []
    for family in dict.fromkeys(c.family for c in found):
        mine = [c for c in found if c.family == family]
        best = strongest(found, family)
        title = f"{family} ({mine[0].runs} runs)" + (
            f": with batch fixed, {best.descriptor} goes most with step time"
            if best is not None
            else ""
        )
        tables.append(
            table(
                title,
                ("Descriptor", "Spearman ρ", "p", "Partial ρ (batch fixed)", "p "),
                [
                    (
                        c.descriptor,
                        f"{c.spearman:+.2f}",
                        format_p(c.spearman_p),
                        None if c.partial is None else f"{c.partial:+.2f}",
                        None if c.partial_p is None else format_p(c.partial_p),
                    )
                    for c in sorted(mine, key=lambda c: -abs(c.partial or c.spearman))
                ],
            )
        )
        if any(c.partial is None and c.descriptor != "batch_size" for c in mine):
            tables.append("  —: moves with batch size in these runs, so batch cannot be held fixed")
    if not tables:
        return Group("too few runs for correlations: at least 5 of one family, with step times")
    return Group(*tables)


class CalibrationProgress:
    """One bar over the calibration's time budget: the configuration being run, runs stored,
    time spent and left (the budget is the ETA: no run starts after it)."""

    def __init__(self, budget_s: float, console: Console) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[runs]} run(s)"),
            TimeElapsedColumn(),
            TextColumn("of {task.fields[budget]}, at most"),
            console=console,
            disable=not console.is_terminal,
        )
        self.task = self.bar.add_task("calibrate", total=budget_s, runs=0, budget=hms(budget_s))
        self.console = console
        self.runs = 0
        self._began = 0.0
        self._run_began = 0.0

    def __enter__(self) -> CalibrationProgress:
        self._began = time.monotonic()
        self.bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.bar.stop()

    @staticmethod
    def label(spec: Any) -> str:
        size = f"{spec.seq_len} tokens" if spec.seq_len else f"{spec.image_size}px"
        return (
            f"{spec.workload} depth {spec.depth} width {spec.width} {size} "
            f"batch {spec.batch_size} #{spec.repeat}"
        )

    def start(self, spec: Any) -> None:
        self._run_began = time.monotonic()
        self.bar.update(self.task, description=plain(self.label(spec)))

    def end(self, spec: Any, status: str, verdict: str | None = None) -> None:
        """One run ended: its status, its quality verdict (a contended one is rerun or left
        out of the fit, so the line says so) and how long it took."""
        now = time.monotonic()
        self.runs += 1
        self.bar.update(self.task, completed=now - self._began, runs=self.runs)
        said = plain(status) + (f", {quality_markup(verdict)}" if verdict else "")
        self.console.print(f"{plain(self.label(spec))}: {said} ({now - self._run_began:,.0f} s)")

    def block(self, shapes: int, verdict: str) -> None:
        """One block of operator shapes timed (``calibrate --ops``)."""
        now = time.monotonic()
        self.runs += shapes
        self.bar.update(self.task, completed=now - self._began, runs=self.runs)
        self.console.print(f"{shapes} operator shape(s) timed: {plain(verdict)}")


def op_calibration_lines(found: Any, device: str, where: str) -> str:
    """What ``calibrate --ops`` left: shapes timed, by kind, and the blocks' verdicts."""
    device, where = plain(device), plain(where)
    if not found.stored:
        return f"no operator measurements of {device} in {where}: the budget ran out first"
    kinds = plain(", ".join(f"{k} {n}" for k, n in sorted(found.kinds.items())))
    verdicts = ", ".join(f"{n} {v}" for v, n in sorted(found.verdicts.items())) or "none"
    return (
        f"{found.measured} operator shape(s) timed now ({verdicts} block(s)); {found.stored} "
        f"usable for {device} in {where}: {kinds}\n"
        "dlbench predict now adds a model up from its operators (with whole-model runs of "
        "this device to fit how they compose: dlbench calibrate)"
    )
