"""Stand-ins for serving.engine.tensors (being written on another branch), used by the gRPC side
only until that lands: the classifier's extra `label` output, and one numeric tensor to the
model's float32 batch with the value checks /predict applies. Replaced, not kept, on merge."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from models.spec import ModelSpec, Tensor
from serving.errors import ApiError

LABEL = "label"  # a classifier's predicted class index, beside its probabilities


@functools.cache
def outputs_of(spec: ModelSpec) -> tuple[Tensor, ...]:
    if spec.is_classifier:
        return (spec.output, Tensor(LABEL, (1,), "INT64"))
    return (spec.output,)


def model_input(
    arr: np.ndarray, datatype: str, shape: list[int], spec: ModelSpec, max_items: int, field: str
) -> np.ndarray:
    """`arr` (any numeric dtype, `shape` [N, *item]) as a fresh float32 (N, *spec.input.shape),
    finite and inside the model's value range, or a 400 naming the first bad value."""
    n = shape[0]
    if not 1 <= n <= max_items:
        raise ApiError(400, f"a batch of {n} is outside 1-{max_items}; split it", f"{field}.shape")
    with np.errstate(over="ignore", invalid="ignore"):
        x = arr.astype(np.float32).reshape(n, *spec.input.shape)
    lo, hi = spec.value_range or (-np.inf, np.inf)
    bad = ~np.isfinite(x) | (x < lo) | (x > hi)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        value = float(arr.reshape(-1)[first])
        where = (
            f"value {value:g} ({datatype}) at {[int(i) for i in np.unravel_index(first, shape)]}"
        )
        if not np.isfinite(value) or not np.isfinite(x.reshape(-1)[first]):
            raise ApiError(400, f"{where} is not a finite FP32 number", field)
        raise ApiError(400, f"{where} is outside {lo:g}-{hi:g}", field)
    return x


PLATFORMS = {"onnx": "onnxruntime_onnx", "torch": "pytorch_libtorch"}
BACKENDS = {"onnx": "onnxruntime", "torch": "pytorch"}


def model_config(entry: Any, settings: Any) -> dict[str, Any]:
    """A Triton ModelConfig (its JSON names) for the model an Entry serves."""
    spec: ModelSpec = entry.spec
    backend = entry.runner.backend

    def tensor(t: Tensor) -> dict[str, Any]:
        return {"name": t.name, "data_type": f"TYPE_{t.datatype}", "dims": list(t.shape)}

    config: dict[str, Any] = {
        "name": spec.name,
        "platform": PLATFORMS.get(backend, backend),
        "backend": BACKENDS.get(backend, backend),
        "version_policy": {"specific": {"versions": [entry.version]}},
        "max_batch_size": settings.max_batch_size,
        "input": [tensor(spec.input)],
        "output": [tensor(t) for t in outputs_of(spec)],
    }
    if settings.batching:
        delay = round(settings.max_wait_ms * 1000)
        config["dynamic_batching"] = {"max_queue_delay_microseconds": delay}
    return config


def model_stats(entry: Any) -> dict[str, Any]:
    """Triton's statistics (its JSON names), from what the batcher counts."""
    stats = entry.batcher.stats
    return {
        "name": entry.spec.name,
        "version": str(entry.version),
        "inference_count": stats.items,
        "execution_count": stats.batches,
    }
