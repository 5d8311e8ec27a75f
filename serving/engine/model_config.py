"""What the server and a model are, as Triton describes them: server extensions, model metadata
and the model configuration (Triton's ModelConfig, model_config.proto), as plain dicts built from
the model's one definition (models.spec) and the settings.

Both protocols answer these: REST as JSON (field names and enum names exactly as Triton's JSON
writes them, integers as numbers), gRPC through `google.protobuf.json_format.ParseDict`.
"""

from __future__ import annotations

from typing import Any

from models import store
from models.spec import ModelSpec, Tensor
from serving.engine.registry import Entry
from serving.engine.tensors import outputs_of
from serving.settings import Settings

# The protocol extensions this server speaks, by Triton's names.
EXTENSIONS = ("binary_tensor_data", "model_configuration", "statistics", "model_repository")
PLATFORMS = {"onnx": "onnxruntime_onnx", "torch": "pytorch_libtorch"}
BACKENDS = {"onnx": "onnxruntime", "torch": "pytorch"}
FILES = {"onnx": store.ONNX, "torch": store.STATE_DICT}


def tensor_metadata(t: Tensor) -> dict[str, Any]:
    return {"name": t.name, "datatype": t.datatype, "shape": [-1, *t.shape]}


def model_metadata(spec: ModelSpec, version: int, backend: str) -> dict[str, Any]:
    """The protocol's model metadata: {name, versions, platform, inputs, outputs}."""
    return {
        "name": spec.name,
        "versions": [str(version)],
        "platform": PLATFORMS.get(backend, backend),
        "inputs": [tensor_metadata(spec.input)],
        "outputs": [tensor_metadata(t) for t in outputs_of(spec)],
    }


def config_tensor(t: Tensor) -> dict[str, Any]:
    return {"name": t.name, "data_type": f"TYPE_{t.datatype}", "dims": list(t.shape)}


def model_config(entry: Entry, settings: Settings) -> dict[str, Any]:
    """Triton's ModelConfig of the model being served: inputs and outputs per item (dims without
    the batch axis), its batching (max_batch_size, the dynamic batcher's queue delay), one
    instance on the device it runs on, the one version served."""
    spec, backend = entry.spec, entry.runner.backend
    config: dict[str, Any] = {
        "name": spec.name,
        "platform": PLATFORMS[backend],
        "backend": BACKENDS[backend],
        "version_policy": {"latest": {"num_versions": 1}},
        "max_batch_size": settings.max_batch_size,
        "input": [config_tensor(spec.input)],
        "output": [config_tensor(t) for t in outputs_of(spec)],
        "instance_group": [{"name": f"{spec.name}_0", "kind": "KIND_CPU", "count": 1}],
        "default_model_filename": FILES[backend],
    }
    if entry.runner.device == "cuda":
        config["instance_group"][0].update(kind="KIND_GPU", gpus=[0])
    if settings.batching:
        config["dynamic_batching"] = {
            "max_queue_delay_microseconds": round(settings.max_wait_ms * 1000)
        }
    return config
