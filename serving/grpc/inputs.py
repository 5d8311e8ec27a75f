"""A ModelInferRequest to the model's float32 batch and the outputs asked for.

The input comes as typed `contents` (the field of its datatype) or as `raw_input_contents`
(little-endian, row-major bytes); any numeric datatype, cast to what the model takes by the
same rule as over REST. Every problem is a 400 (INVALID_ARGUMENT) naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.spec import ModelSpec, Tensor
from serving.errors import ApiError
from serving.grpc.interim import model_input, outputs_of
from serving.grpc.protos import service_pb2 as pb

DTYPES = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
# The InferTensorContents field that carries each datatype (FP16 has none: raw only).
CONTENTS = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


class BadRequest(ApiError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(400, message, field)


@dataclass
class Request:
    x: np.ndarray  # float32 (N, *spec.input.shape), checked
    outputs: list[Tensor]  # what to answer, in order
    raw: bool  # answer in raw_output_contents (the request used raw_input_contents)
    timeout_s: float | None = None  # the request's own `timeout` parameter


def item_shapes(spec: ModelSpec) -> tuple[tuple[int, ...], ...]:
    """Accepted per-item shapes, as over REST: the spec's, without leading 1s, or flat."""
    shape = squeezed = spec.input.shape
    while squeezed and squeezed[0] == 1:
        squeezed = squeezed[1:]
    return tuple(dict.fromkeys((shape, squeezed, (math.prod(shape),))))


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
    accepted = item_shapes(spec)
    if not shape or shape[0] < 0 or tuple(shape[1:]) not in accepted:
        options = " or ".join(str(["N", *s]).replace("'", "") for s in accepted)
        raise BadRequest(
            f"shape {shape} does not fit {name!r}: expected {options}", f"{field}.shape"
        )
    if not 1 <= shape[0] <= max_items:
        raise BadRequest(
            f"a batch of {shape[0]} is outside 1-{max_items}; split it", f"{field}.shape"
        )
    dtype = DTYPES.get(t.datatype)
    if dtype is None:
        raise BadRequest(
            f"datatype {t.datatype!r} is not a numeric datatype of the protocol "
            f"({', '.join(DTYPES)})",
            f"{field}.datatype",
        )
    count = math.prod(shape)
    raw = len(request.raw_input_contents) > 0
    arr = _raw(request, t, dtype, shape, count) if raw else _typed(t, dtype, count, field)
    x = model_input(arr.reshape(shape), t.datatype, shape, spec, max_items, f"{field}.contents")
    return Request(x, _outputs(request, spec), raw, _timeout(request))


def _raw(
    request: pb.ModelInferRequest,
    t: pb.ModelInferRequest.InferInputTensor,
    dtype: np.dtype,
    shape: list[int],
    count: int,
) -> np.ndarray:
    if len(request.raw_input_contents) != 1:
        raise BadRequest(
            f"{len(request.raw_input_contents)} raw_input_contents for 1 input",
            "raw_input_contents",
        )
    if t.HasField("contents"):
        raise BadRequest("give contents or raw_input_contents, not both", "inputs[0].contents")
    data = request.raw_input_contents[0]
    if len(data) != count * dtype.itemsize:
        raise BadRequest(
            f"{len(data)} bytes do not hold a {t.datatype} tensor of shape {shape} "
            f"({count * dtype.itemsize} bytes)",
            "raw_input_contents[0]",
        )
    return np.frombuffer(data, dtype, count)


def _typed(
    t: pb.ModelInferRequest.InferInputTensor, dtype: np.dtype, count: int, field: str
) -> np.ndarray:
    where = CONTENTS.get(t.datatype)
    if where is None:
        raise BadRequest(f"{t.datatype} data goes in raw_input_contents", f"{field}.contents")
    values = getattr(t.contents, where)
    if len(values) != count:
        raise BadRequest(
            f"{len(values)} values in {where}; shape {list(t.shape)} needs {count}",
            f"{field}.contents.{where}",
        )
    wide = np.asarray(values, dtype=np.float64 if dtype.kind == "f" else None)
    if dtype.kind in "iu" and wide.size:
        info = np.iinfo(dtype)
        if wide.min() < info.min or wide.max() > info.max:
            raise BadRequest(
                f"{t.datatype} values must be {info.min}-{info.max}", f"{field}.contents.{where}"
            )
    return wide


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
