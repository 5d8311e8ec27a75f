"""The Open Inference Protocol (KServe v2 / Triton HTTP): what a model looks like through it,
and its responses.

Everything about a model comes from models.spec; the only thing added here is the `label`
output of a classifier (its predicted class). Requests are read by serving.api.v2_decode.
Responses are JSON tensors or Triton's binary tensor data extension (the JSON, its length in
Inference-Header-Content-Length, then each binary tensor little-endian, row-major), built with
numpy and orjson only.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from models.spec import ModelSpec, Tensor
from serving.errors import JSON, ApiError

EXTENSIONS = ("binary_tensor_data",)
PLATFORMS = {"onnx": "onnxruntime_onnx", "torch": "pytorch_libtorch"}
LABEL = "label"  # a classifier's predicted class index, beside its probabilities
DTYPES = {"FP32": np.dtype("<f4"), "UINT8": np.dtype("u1"), "INT64": np.dtype("<i8")}
HEADER_LENGTH = "inference-header-content-length"
PIXELS = (0.0, 255.0)  # a model whose raw inputs are 8-bit pixels also takes UINT8


class BadRequest(ApiError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(400, message, field)


# ---- what a model looks like through the protocol ------------------------------------------
@functools.cache
def outputs_of(spec: ModelSpec) -> tuple[Tensor, ...]:
    if spec.is_classifier:
        return (spec.output, Tensor(LABEL, (1,), "INT64"))
    return (spec.output,)


def input_datatypes(spec: ModelSpec) -> tuple[str, ...]:
    return ("FP32", "UINT8") if spec.value_range == PIXELS else ("FP32",)


def item_shapes(spec: ModelSpec) -> tuple[tuple[int, ...], ...]:
    """Accepted per-item shapes: the spec's, without leading 1s (28x28, or a scalar x), flat."""
    return _item_shapes(spec.input.shape)


@functools.cache  # keyed by the shape: hashing a whole ModelSpec costs more than this does
def _item_shapes(shape: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    squeezed = shape
    while squeezed and squeezed[0] == 1:
        squeezed = squeezed[1:]
    return tuple(dict.fromkeys((shape, squeezed, (math.prod(shape),))))


def tensor_metadata(t: Tensor) -> dict[str, Any]:
    return {"name": t.name, "datatype": t.datatype, "shape": [-1, *t.shape]}


def model_metadata(spec: ModelSpec, version: int, backend: str) -> dict[str, Any]:
    return {
        "name": spec.name,
        "versions": [str(version)],
        "platform": PLATFORMS.get(backend, backend),
        "inputs": [tensor_metadata(spec.input)],
        "outputs": [tensor_metadata(t) for t in outputs_of(spec)],
    }


# ---- requests -----------------------------------------------------------------------------
@dataclass
class InferRequest:
    x: np.ndarray  # float32 (N, *spec.input.shape), finite, inside spec.value_range
    outputs: list[tuple[Tensor, bool]]  # what to answer, in order, and whether as binary
    id: str | None = None
    timeout_s: float | None = None  # the client's own deadline ("timeout" in microseconds)


# ---- responses ----------------------------------------------------------------------------
def response_parts(
    spec: ModelSpec, version: int, req: InferRequest, y: np.ndarray
) -> tuple[dict[str, Any], list[bytes]]:
    """The response's JSON object (numpy arrays in `data`) and its binary tensors, in order."""
    y = np.asarray(y, dtype=np.float32)
    tensors = {spec.output.name: y.reshape(len(y), *spec.output.shape)}
    if spec.is_classifier:
        tensors[LABEL] = y.argmax(axis=1).reshape(-1, 1)
    head: dict[str, Any] = {"model_name": spec.name, "model_version": str(version)}
    if req.id is not None:
        head["id"] = req.id
    outputs, blobs = [], []
    for t, binary in req.outputs:
        arr = np.ascontiguousarray(tensors[t.name], dtype=DTYPES[t.datatype])
        out: dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": list(arr.shape)}
        if binary:
            blobs.append(arr.tobytes())
            out["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            out["data"] = arr.reshape(-1)
        outputs.append(out)
    head["outputs"] = outputs
    return head, blobs


def respond(spec: ModelSpec, version: int, req: InferRequest, y: np.ndarray) -> Response:
    head, blobs = response_parts(spec, version, req, y)
    text = orjson.dumps(head, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return Response(text, media_type=JSON)
    return Response(
        b"".join((text, *blobs)),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(text))},
    )
