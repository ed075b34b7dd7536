"""A trained model's weights on disk: dlbench's own format, read with ``weights_only=True`` so
that a file from elsewhere can never run code, and a damaged one is a clear one-line error."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlbench.errors import DataError

CHECKPOINT_FORMAT = "dlbench-checkpoint-1"


def read_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A dlbench checkpoint, loaded with weights_only=True: a checkpoint cannot run code."""
    try:
        with warnings.catch_warnings():  # torch's notes on foreign pickles: the error says it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=device, weights_only=True)  # noqa: TID251
    except pickle.UnpicklingError as exc:
        # torch's message carries advice to turn the safety off; only its finding is shown.
        found = _unpickler_finding(exc)
        if "Unsupported global" in found:
            raise DataError(
                f"{path} is not a plain weights checkpoint: it holds Python objects, which "
                "dlbench does not load (loading them could run any code)",
                "give a checkpoint saved by dlbench run --checkpoint FILE",
            ) from None
        raise DataError(f"{path}: cannot read this checkpoint ({found})") from None
    except (OSError, RuntimeError, EOFError) as exc:
        first = _first_line(exc)
        raise DataError(f"{path}: cannot read this checkpoint ({first})") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise DataError(
            f"{path}: not a dlbench checkpoint", "save one with dlbench run --checkpoint FILE"
        )
    return state


def _unpickler_finding(exc: BaseException) -> str:
    """What torch's weights-only unpickler found, without its advice around it."""
    text = str(exc)
    _, marker, after = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in after.splitlines() if line.strip()] if marker else []
    return lines[0] if lines else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def load_checkpoint(model: nn.Module, path: Path, device: torch.device) -> nn.Module:
    model.load_state_dict(read_checkpoint(path, device)["model"])
    return model
