"""Open Inference Protocol requests to one validated float32 batch (N, *spec.input.shape).

Reads the JSON tensor form and Triton's binary tensor data extension (binary_data_size on
inputs, the Inference-Header-Content-Length header; a header of 0 is a raw binary request),
undoes Content-Encoding gzip/deflate; the tensor itself (datatype, shape, every value) is checked
and cast by serving.engine.tensors, the rules gRPC applies too. The happy path is orjson + numpy:
no Python loop ever walks the values. Every problem with a request is a 400 whose `error` names
the field (413/415 for the HTTP-level body size and encoding).
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np
import orjson

from models.spec import ModelSpec, Tensor
from serving.api.v2_encode import InferRequest
from serving.engine import tensors
from serving.engine.tensors import DTYPES, BadRequest, check_batch, outputs_of
from serving.errors import ApiError, BodyTooLarge


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding gzip or deflate (as tritonclient sends), never past `limit`."""
    enc = (encoding or "identity").strip().lower()
    if enc == "identity":
        return body
    if enc not in ("gzip", "deflate"):
        raise ApiError(
            415, f"unsupported encoding {enc!r}; use gzip or deflate", "content-encoding"
        )
    d = zlib.decompressobj(31 if enc == "gzip" else 15)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error:
        raise BadRequest(f"body is not valid {enc} data", "content-encoding") from None
    if len(out) > limit:
        raise BodyTooLarge(limit)
    if not d.eof or d.unused_data:
        raise BadRequest(f"body is truncated or has data after the {enc} stream", "body")
    return out


def parse_request(
    body: bytes, header_length: str | None, spec: ModelSpec, max_items: int
) -> InferRequest:
    view = memoryview(body)
    if header_length is None:
        head, binary = view, view[:0]
    else:
        text = header_length.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 19):
            raise BadRequest("must be a non-negative integer", "Inference-Header-Content-Length")
        n = int(text)
        if n > len(body):
            raise BadRequest(
                f"{n} is more than the {len(body)} bytes of the body",
                "Inference-Header-Content-Length",
            )
        if n == 0:  # raw binary request: the body is the one input's FP32 data, nothing else
            return _raw_request(view, spec, max_items)
        head, binary = view[:n], view[n:]
    try:
        data = orjson.loads(head)
    except orjson.JSONDecodeError as e:
        hint = ""
        if header_length is None and b"binary_data_size" in body:
            hint = "; binary tensor data needs the Inference-Header-Content-Length header"
        raise BadRequest(f"malformed JSON: {e}{hint}", "body") from None
    if not isinstance(data, dict):
        raise BadRequest("expected a JSON object", "body")
    req_id = data.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise BadRequest("expected a string", "id")
    params = _object(data.get("parameters"), "parameters")
    x = _inputs(data.get("inputs"), binary, spec, max_items, header_length is not None)
    default_binary = _flag(params.get("binary_data_output"), "parameters.binary_data_output")
    return InferRequest(
        x, _outputs(data.get("outputs"), spec, default_binary), req_id, _timeout(params)
    )


def _object(v: object, field: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise BadRequest("expected an object", field)
    return v


def _flag(v: object, field: str, default: bool = False) -> bool:
    if v is None:
        return default
    if not isinstance(v, bool):
        raise BadRequest("expected true or false", field)
    return v


def _timeout(params: dict[str, Any]) -> float | None:
    t = params.get("timeout")
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise BadRequest("expected a whole number of microseconds", "parameters.timeout")
    return t / 1e6 if t else None


def _raw_request(body: memoryview, spec: ModelSpec, max_items: int) -> InferRequest:
    size = spec.input.size * DTYPES["FP32"].itemsize
    if not body or len(body) % size:
        raise BadRequest(
            f"a raw binary body must hold whole FP32 {spec.input.name!r} items of {size} bytes, "
            f"got {len(body)} bytes",
            "body",
        )
    n = len(body) // size
    check_batch(n, max_items, "body")
    arr = np.frombuffer(body, DTYPES["FP32"])
    x = tensors.to_model(arr, "FP32", [n, *spec.input.shape], spec, "body")
    return InferRequest(x, [(t, True) for t in outputs_of(spec)])


def _inputs(
    inputs: object, binary: memoryview, spec: ModelSpec, max_items: int, has_header: bool
) -> np.ndarray:
    name = spec.input.name
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest(f"expected a list holding the input tensor {name!r}", "inputs")
    for i, t in enumerate(inputs):  # one entry per tensor, not per value
        if not isinstance(t, dict):
            raise BadRequest("expected an input tensor object", f"inputs[{i}]")
        if t.get("name") != name:
            got = t.get("name")
            problem = f"unknown input {got!r}" if isinstance(got, str) else "expected a name"
            raise BadRequest(f"{problem}; model {spec.name!r} takes {name!r}", f"inputs[{i}].name")
    if len(inputs) > 1:
        raise BadRequest(f"input {name!r} is given {len(inputs)} times", "inputs")
    t, field = inputs[0], "inputs[0]"
    datatype, shape = t.get("datatype"), t.get("shape")
    dtype = tensors.check_input(datatype, shape, spec, max_items, field)
    params = _object(t.get("parameters"), f"{field}.parameters")
    if "shared_memory_region" in params:
        raise BadRequest("the shared-memory extension is not supported", f"{field}.parameters")
    count = math.prod(shape)
    size = params.get("binary_data_size")
    if size is None:
        arr = _json_data(t, f"{field}.data")
        used = 0
    else:
        where = f"{field}.parameters.binary_data_size"
        if "data" in t:
            raise BadRequest("give either data or binary_data_size, not both", where)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise BadRequest("expected a non-negative integer", where)
        if not has_header:
            raise BadRequest("binary data needs the Inference-Header-Content-Length header", where)
        if size != count * dtype.itemsize:
            raise BadRequest(
                f"{size} bytes do not hold a {datatype} tensor of shape {shape} "
                f"({count * dtype.itemsize} bytes)",
                where,
            )
        if size > len(binary):
            raise BadRequest(
                f"binary data is shorter than declared: {len(binary)} of {size} bytes", "body"
            )
        arr, used = np.frombuffer(binary, dtype, count), size
    if used != len(binary):
        raise BadRequest(
            f"binary data is longer than declared: {len(binary) - used} byte(s) left over", "body"
        )
    return tensors.to_model(arr, datatype, shape, spec, f"{field}.data")


def _json_data(t: dict[str, Any], field: str) -> np.ndarray:
    """The JSON numbers as numpy holds them (int64, uint64 or float64): tensors.to_model checks
    that they are values of the declared datatype."""
    data = t.get("data")
    if not isinstance(data, list):
        raise BadRequest("expected a list of numbers (or binary_data_size)", field)
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        raise BadRequest("expected numbers nested as a regular array", field) from None
    return arr


def _outputs(requested: object, spec: ModelSpec, default: bool) -> list[tuple[Tensor, bool]]:
    known = {t.name: t for t in outputs_of(spec)}
    if requested is None or requested == []:
        return [(t, default) for t in known.values()]
    if not isinstance(requested, list):
        raise BadRequest("expected a list of requested output tensors", "outputs")
    chosen: list[tuple[Tensor, bool]] = []
    for j, o in enumerate(requested):  # one entry per output tensor
        field = f"outputs[{j}]"
        if not isinstance(o, dict):
            raise BadRequest("expected an output object", field)
        name = o.get("name")
        if not isinstance(name, str) or name not in known:
            raise BadRequest(
                f"unknown output {name!r}; model {spec.name!r} gives {', '.join(known)}",
                f"{field}.name",
            )
        if any(t.name == name for t, _ in chosen):
            raise BadRequest(f"output {name!r} is requested twice", f"{field}.name")
        params = _object(o.get("parameters"), f"{field}.parameters")
        for ext in ("classification", "shared_memory_region"):
            if ext in params:
                raise BadRequest(f"the {ext} extension is not supported", f"{field}.parameters")
        chosen.append(
            (known[name], _flag(params.get("binary_data"), f"{field}.parameters", default))
        )
    return chosen
