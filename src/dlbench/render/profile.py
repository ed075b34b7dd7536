"""What `dlbench show` prints of a profiled run: where a step's time goes, by operator category
and by layer."""

from __future__ import annotations

from rich.console import Group

from dlbench.measure.units import fmt
from dlbench.render.console import plain, table
from dlbench.store.measurements import StepProfile

LAYERS_SHOWN = 10


def profile_tables(profile: StepProfile | None) -> Group | str | None:
    """None when the run was not profiled (``--profile``)."""
    if profile is None:
        return None
    if not profile.available:
        return f"profile: not available ({plain(profile.reason)})"
    overhead = (
        f"; the profiler slowed a step by {profile.profiler_overhead:.0%}"
        if profile.profiler_overhead is not None
        else ""
    )
    categories = table(
        f"Where a step's time goes ({profile.steps} profiled steps, {profile.time_base}"
        f"{overhead}; shares applied to the timed step)",
        ("Category", "ms per step", "Share", "TFLOP/s"),
        [
            (
                kind,
                fmt(entry.seconds_per_step * 1e3, 2),
                f"{entry.share:.1%}",
                _tflops(entry.tflops),
            )
            for kind, entry in sorted(profile.categories.items(), key=lambda e: -e[1].share)
        ],
    )
    layers = table(
        f"Slowest layers (forward + backward per profiled step, top {LAYERS_SHOWN})",
        ("Layer", "Module", "Input", "Forward (ms)", "Backward (ms)", "Forward GFLOP"),
        [
            (
                layer.layer,
                layer.module,
                "x".join(map(str, layer.input_shape)) if layer.input_shape else None,
                fmt(layer.forward_s * 1e3, 2),
                fmt(layer.backward_s * 1e3, 2),
                fmt(layer.forward_gflop, 3),
            )
            for layer in profile.layers[:LAYERS_SHOWN]
        ],
    )
    return Group(categories, layers)


def _tflops(value: float | None) -> str | None:
    """A category's TFLOP/s: none where the profiler counted none; an element-wise one's
    few FLOPs over a memory-bound time say "<0.001", not a rounded 0.000."""
    if not value:
        return None
    return "<0.001" if value < 0.0005 else fmt(value, 3)
