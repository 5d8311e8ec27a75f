"""A ModelInferRequest to the model's float32 batch and the outputs asked for.

The input comes as typed `contents` (the field of its datatype) or as `raw_input_contents`
(little-endian, row-major bytes); the datatype, shape and values are checked, and cast to what
the model takes, by the engine's one rule for both protocols (serving/engine/tensors.py). Every
problem is a 400 (INVALID_ARGUMENT) naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.spec import ModelSpec, Tensor
from serving.engine.tensors import BadRequest, check_input, outputs_of, to_model
from serving.grpc.protos import service_pb2 as pb

# The InferTensorContents field that carries each datatype, and the numpy type its values take
# there (FP16 and BF16 have none: raw only).
CONTENTS: dict[str, tuple[str, np.dtype]] = {
    "UINT8": ("uint_contents", np.dtype(np.uint32)),
    "UINT16": ("uint_contents", np.dtype(np.uint32)),
    "UINT32": ("uint_contents", np.dtype(np.uint32)),
    "UINT64": ("uint64_contents", np.dtype(np.uint64)),
    "INT8": ("int_contents", np.dtype(np.int32)),
    "INT16": ("int_contents", np.dtype(np.int32)),
    "INT32": ("int_contents", np.dtype(np.int32)),
    "INT64": ("int64_contents", np.dtype(np.int64)),
    "FP32": ("fp32_contents", np.dtype(np.float32)),
    "FP64": ("fp64_contents", np.dtype(np.float64)),
}


@dataclass
class Request:
    x: np.ndarray  # float32 (N, *spec.input.shape), checked
    outputs: list[Tensor]  # what to answer, in order
    raw: bool  # answer in raw_output_contents (the request used raw_input_contents)
    timeout_s: float | None = None  # the request's own `timeout` parameter


def parse(request: pb.ModelInferRequest, spec: ModelSpec, max_items: int) -> Request:
    name = spec.input.name
    if len(request.inputs) != 1:
        raise BadRequest(
            f"expected one input tensor, {name!r}; got {len(request.inputs)}", "inputs"
        )
    t, field = request.inputs[0], "inputs[0]"
    if t.name != name:
        raise BadRequest(f"unknown input {t.name!r}; model {spec.name!r} takes {name!r}", field)
    if "shared_memory_region" in t.parameters:
        raise BadRequest("the shared-memory extension is not supported", f"{field}.parameters")
    shape = list(t.shape)
    dtype = check_input(t.datatype, shape, spec, max_items, field)
    raw = len(request.raw_input_contents) > 0
    if raw:
        arr, where = _raw(request, t, dtype), "raw_input_contents[0]"
    else:
        arr, where = _typed(t, field)
    x = to_model(arr, t.datatype, shape, spec, where)
    return Request(x, _outputs(request, spec), raw, _timeout(request))


def _raw(
    request: pb.ModelInferRequest, t: pb.ModelInferRequest.InferInputTensor, dtype: np.dtype
) -> np.ndarray:
    if len(request.raw_input_contents) != 1:
        raise BadRequest(
            f"{len(request.raw_input_contents)} raw_input_contents for 1 input",
            "raw_input_contents",
        )
    if t.HasField("contents"):
        raise BadRequest("give contents or raw_input_contents, not both", "inputs[0].contents")
    data = request.raw_input_contents[0]
    count = math.prod(t.shape)
    if len(data) != count * dtype.itemsize:
        raise BadRequest(
            f"{len(data)} bytes do not hold a {t.datatype} tensor of shape {list(t.shape)} "
            f"({count * dtype.itemsize} bytes)",
            "raw_input_contents[0]",
        )
    return np.frombuffer(data, dtype, count)


def _typed(t: pb.ModelInferRequest.InferInputTensor, field: str) -> tuple[np.ndarray, str]:
    if t.datatype not in CONTENTS:
        raise BadRequest(f"{t.datatype} data goes in raw_input_contents", f"{field}.contents")
    name, dtype = CONTENTS[t.datatype]
    where = f"{field}.contents.{name}"
    return np.asarray(getattr(t.contents, name), dtype=dtype), where


def _outputs(request: pb.ModelInferRequest, spec: ModelSpec) -> list[Tensor]:
    known = {t.name: t for t in outputs_of(spec)}
    if not request.outputs:
        return list(known.values())
    chosen: list[Tensor] = []
    for j, o in enumerate(request.outputs):
        field = f"outputs[{j}]"
        if o.name not in known:
            raise BadRequest(
                f"unknown output {o.name!r}; model {spec.name!r} gives {', '.join(known)}",
                f"{field}.name",
            )
        if known[o.name] in chosen:
            raise BadRequest(f"output {o.name!r} is requested twice", f"{field}.name")
        for ext in ("classification", "shared_memory_region"):
            if ext in o.parameters:
                raise BadRequest(f"the {ext} extension is not supported", f"{field}.parameters")
        chosen.append(known[o.name])
    return chosen


def _timeout(request: pb.ModelInferRequest) -> float | None:
    """The `timeout` parameter (microseconds), as tritonclient's `timeout=` sends it."""
    if "timeout" not in request.parameters:
        return None
    p = request.parameters["timeout"]
    kind = p.WhichOneof("parameter_choice")
    if kind not in ("int64_param", "uint64_param") or getattr(p, kind) < 0:
        raise BadRequest("expected a whole number of microseconds", "parameters.timeout")
    return getattr(p, kind) / 1e6 or None
