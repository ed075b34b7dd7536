"""The rows of a generation run (``dlbench generate``) in ``dlbench show``."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from dlbench.measure.generation import Figure
from dlbench.measure.units import ms_with_ci
from dlbench.store.stored import StoredRun


def generation_rows(run: StoredRun) -> list[tuple[str, Any]]:
    found = run.generation
    if found is None:
        return []
    stats = found.stats
    asked = (
        f"{found.prompt_len} prompt + {found.gen_len} generated tokens x {found.batch} "
        f"sequences, greedy; {stats.requests} timed requests"
    )
    same = (
        Text("the same tokens at every request")
        if found.deterministic
        else Text("the tokens differed between requests: not deterministic", style="red")
    )
    rows: list[tuple[str, Any]] = [
        ("generation", asked),
        ("output", same),
        ("time to first token (ms)", latency_text(stats.ttft_s)),
        ("time per output token (ms)", latency_text(stats.tpot_s)),
        ("inter-token latency (ms)", latency_text(stats.itl_s)),
        ("end-to-end latency (ms)", latency_text(stats.e2e_s)),
        ("prefill (tokens/s)", _rate(stats.prefill_tokens_per_s)),
        ("decode (tokens/s)", _rate(stats.decode_tokens_per_s)),
        ("KV cache", f"{found.kv_cache_bytes / 2**20:,.1f} MiB"),
    ]
    energy = _energy_per_token(run)
    if energy is not None:
        rows.append(("energy per output token (J)", f"{energy:.4g}"))
    return rows


def latency_text(found: Figure | None) -> str:
    shown = ms_with_ci(found)
    if found is None or shown is None:
        return "n/a (one token per request, or all in one chunk)"
    if found.p50 is not None and found.p95 is not None and found.p99 is not None:
        shown += (
            f"; p50 {found.p50 * 1e3:,.2f}, p95 {found.p95 * 1e3:,.2f}, p99 {found.p99 * 1e3:,.2f}"
        )
    return shown


def _rate(found: Figure | None) -> str:
    if found is None:
        return "n/a"
    shown = f"{found.mean:,.0f}"
    if found.ci95:
        shown += f" ({found.ci95[0]:,.0f}–{found.ci95[1]:,.0f})"
    return shown


def _energy_per_token(run: StoredRun) -> float | None:
    """The timed phase's energy over the tokens it generated, where the device reports it."""
    found, telemetry = run.generation, run.telemetry
    phase = telemetry.phase("generate") if telemetry else None
    if found is None or phase is None or not phase.total_energy_j:
        return None
    tokens = found.stats.requests * found.batch * found.gen_len
    return phase.total_energy_j / tokens if tokens else None
