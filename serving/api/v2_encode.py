"""The Open Inference Protocol (KServe v2 / Triton HTTP): responses.

What a model looks like through the protocol (its outputs, the classifier's `label`, datatypes)
is serving.engine.tensors', shared with gRPC; requests are read by serving.api.v2_decode.
Responses are JSON tensors or Triton's binary tensor data extension (the JSON, its length in
Inference-Header-Content-Length, then each binary tensor little-endian, row-major), built with
numpy and orjson only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from models.spec import ModelSpec, Tensor
from serving.engine.tensors import DTYPES, model_outputs
from serving.errors import JSON

HEADER_LENGTH = "inference-header-content-length"


@dataclass
class InferRequest:
    x: np.ndarray  # float32 (N, *spec.input.shape), finite, inside spec.value_range
    outputs: list[tuple[Tensor, bool]]  # what to answer, in order, and whether as binary
    id: str | None = None
    timeout_s: float | None = None  # the client's own deadline ("timeout" in microseconds)


def response_parts(
    spec: ModelSpec, version: int, req: InferRequest, y: np.ndarray
) -> tuple[dict[str, Any], list[bytes]]:
    """The response's JSON object (numpy arrays in `data`) and its binary tensors, in order."""
    tensors = model_outputs(spec, y)
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
