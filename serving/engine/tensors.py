"""The tensor rules of the Open Inference Protocol, the same over REST and gRPC.

What a model looks like as tensors (its input, its outputs: a classifier's probabilities and its
`label`), which wire datatypes are accepted and how a tensor of any of them becomes the model's
float32 batch. Plain numpy: each protocol reads its own wire form into an array of the declared
datatype (`np.frombuffer(raw, DTYPES[datatype])`, or the numbers of a JSON body or of typed
gRPC contents) and calls `model_input`.

Every numeric datatype is accepted and cast to FP32 when each value survives the cast: integers
exactly (|v| above 2**24 only where FP32 holds it), floats without overflow; NaN, infinities and
values outside the model's range are refused. A wider array than the declared datatype (a JSON
body's int64/float64 numbers, gRPC's int32 contents of an INT8 tensor) must hold values of the
declared datatype. Every refusal is a 400 naming the field: `<field>.datatype`, `<field>.shape`,
or `<field>.data` for the values.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from models.spec import ModelSpec, Tensor
from serving.errors import ApiError

LABEL = "label"  # a classifier's predicted class index, beside its probabilities
PIXELS = (0.0, 255.0)  # the range of the models whose raw inputs are 8-bit pixels
# The wire form of each numeric datatype: little-endian, as both protocols send raw data.
# BF16 has no numpy type: its raw data are read as the 16-bit patterns (the high half of FP32);
# model_input also takes ml_dtypes.bfloat16 arrays.
DTYPES: dict[str, np.dtype] = {
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
    "BF16": np.dtype("<u2"),
}
FLOATS = frozenset({"FP16", "FP32", "FP64", "BF16"})
FLOAT32_MAX = float(np.finfo(np.float32).max)
EXACT_IN_FP32 = 2**24  # every integer up to this magnitude is an FP32 value
FP16_MAX = float(np.finfo(np.float16).max)


class BadRequest(ApiError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(400, message, field)


# ---- what a model looks like as tensors ------------------------------------------------------
@functools.cache
def outputs_of(spec: ModelSpec) -> tuple[Tensor, ...]:
    """The model's outputs through the protocol: its own, and a classifier's `label`."""
    if spec.is_classifier:
        return (spec.output, Tensor(LABEL, (1,), "INT64"))
    return (spec.output,)


def input_datatypes(spec: ModelSpec) -> tuple[str, ...]:
    """The datatypes the model's input may be sent as: every numeric one."""
    return tuple(DTYPES)


def item_shapes(spec: ModelSpec) -> tuple[tuple[int, ...], ...]:
    """The shapes one input item may take, over any protocol: without its leading 1s first
    (28x28, or a scalar x), then as the spec has it, then flat."""
    return _item_shapes(spec.input.shape)


@functools.cache  # keyed by the shape: hashing a whole ModelSpec costs more than this does
def _item_shapes(shape: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    squeezed = shape
    while squeezed and squeezed[0] == 1:
        squeezed = squeezed[1:]
    return tuple(dict.fromkeys((squeezed, shape, (math.prod(shape),))))


def model_outputs(spec: ModelSpec, y: np.ndarray) -> dict[str, np.ndarray]:
    """The model's answer (N, *spec.output.shape) as every output tensor, in outputs_of order,
    each of its own datatype: {name: array (N, *shape)}."""
    y = np.asarray(y, dtype=np.float32).reshape(len(y), *spec.output.shape)
    tensors = {spec.output.name: y}
    if spec.is_classifier:
        tensors[LABEL] = y.argmax(axis=1).astype(np.int64, copy=False).reshape(-1, 1)
    return tensors


# ---- a wire tensor -> the model's batch -------------------------------------------------------
def too_many(n: int, max_items: int, field: str) -> None:
    """The one limit on inputs per request, whatever the protocol: 413 past max_items."""
    if n > max_items:
        raise ApiError(413, f"{n} items is more than the limit of {max_items}; split it", field)


def first_outside(x: np.ndarray, value_range: tuple[float, float] | None) -> int | None:
    """The one rule on input values: each a finite number inside the model's range (float32's
    when it has none). The flat index of the first value that is not, or None. On the happy
    path only min and max are looked at (NaN fails both comparisons)."""
    lo, hi = value_range or (-FLOAT32_MAX, FLOAT32_MAX)
    if lo <= x.min() and x.max() <= hi:
        return None
    bad = ~np.isfinite(x) | (x < lo) | (x > hi)
    return int(np.flatnonzero(bad.reshape(-1))[0])


def check_batch(n: int, max_items: int, field: str) -> None:
    if n < 1:
        raise BadRequest("the batch dimension must be at least 1", field)
    too_many(n, max_items, field)


def check_input(
    datatype: object, shape: object, spec: ModelSpec, max_items: int, field: str
) -> np.dtype:
    """The declared datatype and shape of the model's input tensor `field`: the datatype's wire
    dtype, or a 400 naming `<field>.datatype` / `<field>.shape`."""
    name = spec.input.name
    if not isinstance(shape, list | tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest("expected a list of non-negative integers", f"{field}.shape")
    accepted = item_shapes(spec)
    if not shape or tuple(shape[1:]) not in accepted:
        options = " or ".join(str(["N", *s]).replace("'", "") for s in accepted)
        raise BadRequest(
            f"shape {list(shape)} does not fit {name!r}: expected {options}", f"{field}.shape"
        )
    check_batch(shape[0], max_items, f"{field}.shape")
    dtype = DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise BadRequest(
            f"datatype {datatype!r} is not accepted for {name!r}: use a numeric one "
            f"({', '.join(DTYPES)}); it is cast to FP32",
            f"{field}.datatype",
        )
    return dtype


def model_input(
    arr: np.ndarray, datatype: str, shape: list[int], spec: ModelSpec, max_items: int, field: str
) -> np.ndarray:
    """A wire tensor `field` (flat, or shaped as declared) of `datatype` and `shape` as the
    model's float32 batch (N, *spec.input.shape): finite, inside spec.value_range. Anything else
    is ApiError(400) naming `<field>.datatype`, `<field>.shape` or `<field>.data`."""
    check_input(datatype, shape, spec, max_items, field)
    return to_model(arr, datatype, list(shape), spec, f"{field}.data")


def to_model(
    arr: np.ndarray, datatype: str, shape: list[int], spec: ModelSpec, field: str
) -> np.ndarray:
    """The values of a tensor whose datatype and shape check_input accepted, as the model's
    float32 batch; a 400 naming `field` for any value the model cannot take."""
    count = math.prod(shape)
    if arr.size != count or (arr.ndim != 1 and list(arr.shape) != shape):
        raise BadRequest(
            f"holds {arr.size} values in shape {list(arr.shape)}; shape {shape} needs {count}, "
            "flat or nested as the shape",
            field,
        )
    if datatype == "BF16" and arr.dtype.name == "bfloat16":  # an ml_dtypes array: its bits
        arr = arr.view(DTYPES["BF16"])
    kind = arr.dtype.kind
    if datatype in FLOATS:
        if kind not in "iuf":
            raise BadRequest(f"expected {datatype} data: numbers only", field)
    elif kind not in "iu":
        raise BadRequest(f"expected {datatype} data: integers only", field)
    wire = DTYPES[datatype]
    if datatype == "BF16" and arr.dtype == wire:  # the raw bits: the high half of an FP32
        x = (arr.astype(np.uint32) << 16).view(np.float32)
        arr = x
    else:
        if arr.dtype != wire:
            _check_declared(arr, datatype, shape, field)
        if kind in "iu" and arr.dtype.itemsize > 2 and _may_be_inexact(spec):
            _check_exact(arr, shape, field)
        with np.errstate(over="ignore", invalid="ignore"):
            x = arr.astype(np.float32)
    return _finish(x.reshape(shape[0], *spec.input.shape), arr, shape, spec, field)


def _may_be_inexact(spec: ModelSpec) -> bool:
    """Whether an integer the model takes can be one FP32 does not hold exactly: not where
    the range refuses every integer past 2**24 anyway (the digit nets' 0-255)."""
    r = spec.value_range
    return r is None or max(abs(r[0]), abs(r[1])) > EXACT_IN_FP32


def _where(arr: np.ndarray, flat_index: int, shape: list[int]) -> str:
    value = arr.reshape(-1)[flat_index]
    text = f"{int(value)}" if arr.dtype.kind in "iu" else f"{float(value):g}"
    return f"value {text} at {[int(i) for i in np.unravel_index(flat_index, shape)]}"


def _check_declared(arr: np.ndarray, datatype: str, shape: list[int], field: str) -> None:
    """Values sent in a wider type than declared must be values of the declared datatype."""
    if datatype in FLOATS:
        if datatype != "FP16" or arr.dtype == np.float16:
            return  # FP32/FP64/BF16 numbers: the cast to FP32 below checks them
        bad = ~(np.abs(arr) <= FP16_MAX)
    else:
        info = np.iinfo(DTYPES[datatype])
        if arr.dtype.kind == "f":
            raise BadRequest(f"expected {datatype} data: integers only", field)
        if int(arr.min()) >= info.min and int(arr.max()) <= info.max:
            return
        bad = (arr < info.min) | (arr > info.max)
    if bad.any():
        first = int(np.flatnonzero(bad.reshape(-1))[0])
        raise BadRequest(f"{_where(arr, first, shape)} is not a value of {datatype}", field)


def _check_exact(arr: np.ndarray, shape: list[int], field: str) -> None:
    """Integers above 2**24 in magnitude: FP32 holds those of at most 24 significant bits."""
    flat = arr.reshape(-1)
    if arr.dtype.kind == "i":
        magnitude = np.abs(flat.astype(np.int64)).astype(np.uint64)  # |INT64 min| wraps right
    else:
        magnitude = flat.astype(np.uint64)
    big = magnitude > EXACT_IN_FP32
    if not big.any():
        return
    v = magnitude[big]
    lowest_bit = v & (~v + np.uint64(1))
    inexact = (v // lowest_bit) >= EXACT_IN_FP32
    if inexact.any():
        first = int(np.flatnonzero(big)[int(np.argmax(inexact))])
        raise BadRequest(f"{_where(arr, first, shape)} is not exactly an FP32 value", field)


def _finish(
    x: np.ndarray, source: np.ndarray, shape: list[int], spec: ModelSpec, field: str
) -> np.ndarray:
    """x (the float32 batch) checked like /predict checks its inputs: every value finite and
    inside the model's range; a problem names the first value, as it was sent."""
    first = first_outside(x, spec.value_range)
    if first is None:
        return x
    if not np.isfinite(x.reshape(-1)[first]):
        if np.isfinite(source.reshape(-1)[first]):  # finite as sent: the cast overflowed
            raise BadRequest(f"{_where(source, first, shape)} does not fit FP32", field)
        raise BadRequest(f"{_where(x, first, shape)} is not a finite number", field)
    lo, hi = spec.value_range or (-FLOAT32_MAX, FLOAT32_MAX)
    raise BadRequest(f"{_where(source, first, shape)} is outside {lo:g}-{hi:g}", field)
