"""The model card: what a version is, how it was trained, how well it does, and its checksums."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch

from models import store
from models.spec import ModelSpec


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_device(device: torch.device) -> dict[str, object]:
    if device.type == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(device)}
    return {
        "type": "cpu",
        "name": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def make_card(
    folder: Path,
    *,
    spec: ModelSpec,
    version: int,
    hyperparameters: dict[str, object],
    data: dict[str, object],
    history: list[dict[str, float]],
    best_epoch: int,
    test: dict[str, float],
    training_seconds: float,
    device: torch.device,
    onnx_parity: dict[str, object],
    plots: list[str],
) -> dict[str, object]:
    """The card of the version being written in `folder` (its .pt and .onnx already there)."""
    return {
        "version": version,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **spec.card_fields(),
        "test_metrics": test,
        "validation": {
            "selected_epoch": best_epoch,
            "selected_by": "lowest validation loss",
            "per_epoch": [{k: float(f"{v:.6g}") for k, v in row.items()} for row in history],
        },
        "hyperparameters": hyperparameters,
        "data": data,
        "training_seconds": round(training_seconds, 3),
        "device": describe_device(device),
        "versions": library_versions(),
        "onnx_parity": onnx_parity,
        "plots": plots,
        "sha256": {name: store.sha256(folder / name) for name in (store.STATE_DICT, store.ONNX)},
    }
