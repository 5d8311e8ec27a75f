"""Request bodies to validated float32 arrays, in one pass, with errors that name the field.

The fast path is orjson + one numpy conversion. Only when something is wrong does Python walk
the input to say exactly where (e.g. `images[3][27]: expected a number, got a string`).

The common body takes a faster way still (`plain_parse`, `plain_numbers`). orjson makes a Python
int or float of each of a digit's 784 values and numpy then converts them one at a time, the
largest cost of a request; simdjson parses the body into its own tape and `as_buffer` copies an
array's numbers straight into a float64 buffer, several times faster (bench/results/serve.md).
`as_buffer` flattens whatever nesting it finds, ragged or not, so only the plain case goes that
way, where the flat numbers can only mean one thing: an object holding the allowed keys once
each, the items a list of one accepted shape, rectangular, numbers only. Two checks make that
so: the body holds exactly as many `[` as those items need (so no array hides anywhere else, not
even an empty one), and every list has the length its place in the shape says. For anything else
those functions return None and the caller takes the orjson path, which accepts the same inputs
and names any problem exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pydantic_core
import simdjson

from serving.engine.tensors import first_outside, too_many
from serving.errors import JSON, ApiError


def check_json(body: bytes, content_type: str | None) -> None:
    """A 415 unless the body says it is JSON, a 400 when it is empty."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != JSON and not media.endswith("+json"):
        raise ApiError(415, f"expected Content-Type {JSON}, got {media or 'none'}", "content-type")
    if not body:
        raise ApiError(400, "request body is empty", "body")


def parse_json(body: bytes, content_type: str | None) -> dict[str, Any]:
    """A JSON object, or a 415/400 that says what is wrong."""
    check_json(body, content_type)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        try:  # NaN and Infinity are not JSON, but some clients send them: name where they are
            data = pydantic_core.from_json(body, allow_inf_nan=True)
        except ValueError:
            raise ApiError(400, f"malformed JSON: {e}", "body") from None
    if not isinstance(data, dict):
        raise ApiError(422, f"expected a JSON object, got {_kind(data)}", "body")
    return data


def _kind(v: object) -> str:
    if v is None:
        return "null"
    return {
        bool: "a boolean",
        str: "a string",
        list: "a list",
        dict: "an object",
        int: "a number",
        float: "a number",
    }.get(type(v), type(v).__name__)


def _find_problem(v: object, path: str, shape: tuple[int, ...]) -> tuple[str, str] | None:
    """Walk v against the expected shape; the first (field, problem) found, or None."""
    if not shape:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return path, f"expected a number, got {_kind(v)}"
        return None
    if not isinstance(v, list):
        return path, f"expected a list of {shape[0]}, got {_kind(v)}"
    if len(v) != shape[0]:
        return path, f"expected {shape[0]} values, got {len(v)}"
    for i, item in enumerate(v):
        found = _find_problem(item, f"{path}[{i}]", shape[1:])
        if found:
            return found
    return None


def _has_bool(v: object) -> bool:
    if isinstance(v, list):
        return any(_has_bool(i) for i in v)
    return isinstance(v, bool)


def has_bool_token(body: bytes) -> bool:
    """Cheap pre-check on the raw body: could any value be a JSON boolean?"""
    return b"true" in body or b"false" in body


def _item_by_item(
    items: list[object], field: str, shapes: tuple[tuple[int, ...], ...]
) -> np.ndarray:
    """The slow path: name the first bad value, or stack items of different accepted shapes
    (e.g. one image as 28x28 and one flat) in the first shape."""

    def aim(item: object) -> tuple[int, ...]:  # the accepted shape this item goes for
        for shape in shapes:
            if isinstance(item, list) and shape and len(item) == shape[0]:
                return shape
        return shapes[0]

    accepted = " or ".join(" x ".join(map(str, shape)) for shape in shapes if shape)
    for i, item in enumerate(items):
        if (
            isinstance(item, list)
            and len(shapes) > 1
            and not any(shape and len(item) == shape[0] for shape in shapes)
        ):
            raise ApiError(422, f"expected {accepted} values, got {len(item)}", f"{field}[{i}]")
        found = _find_problem(item, f"{field}[{i}]", aim(item))
        if found:
            raise ApiError(422, found[1], found[0])
    try:
        return np.stack([np.asarray(item, dtype=np.float64).reshape(shapes[0]) for item in items])
    except (ValueError, OverflowError):
        raise ApiError(422, "values must be numbers within range", field) from None


def to_array(
    items: object,
    field: str,
    shapes: tuple[tuple[int, ...], ...],
    value_range: tuple[float, float] | None,
    max_items: int,
    maybe_bools: bool = True,
) -> np.ndarray:
    """A JSON list of items, each of one of `shapes`, as float32 (N, *shapes[0]).

    Items may take any of the accepted shapes (e.g. 28x28 or 784 flat) but all must take the
    same one. Checks: a non-empty list, at most max_items (413), every value a finite number,
    every value inside value_range. numpy would read `true` as 1, so when the body holds any
    JSON boolean (`maybe_bools`; callers test the raw bytes) the values are walked for them.
    """
    if not isinstance(items, list):
        raise ApiError(422, f"expected a list, got {_kind(items)}", field)
    if not items:
        raise ApiError(422, "must hold at least one item", field)
    too_many(len(items), max_items, field)
    try:
        arr = np.array(items)
    except (ValueError, TypeError):
        arr = None
    if (
        arr is None
        or arr.dtype.kind not in "iuf"
        or arr.shape[1:] not in shapes
        or (maybe_bools and _has_bool(items))
    ):
        arr = _item_by_item(items, field, shapes)
    return in_range(arr, field, value_range)


def in_range(arr: np.ndarray, field: str, value_range: tuple[float, float] | None) -> np.ndarray:
    """arr as float32 when every value passes the engine's rule (finite, inside the model's
    range); else a 422 naming the first value that does not, as a JSON path. Checked before
    the cast, so that float32 cannot overflow on the way."""
    first = first_outside(arr, value_range)
    if first is None:
        return arr.astype(np.float32, copy=False)
    index = tuple(int(i) for i in np.unravel_index(first, arr.shape))
    where = field + "".join(f"[{i}]" for i in index)
    value = arr[index]
    if not np.isfinite(value):
        raise ApiError(422, f"expected a finite number, got {value}", where)
    limits = f"{value_range[0]:g}-{value_range[1]:g}" if value_range else "the float32 range"
    raise ApiError(422, f"value {value:g} is outside {limits}", where)


def model_name(data: dict[str, Any], default: str) -> str:
    name = data.get("model", default)
    if name is None:
        return default
    if not isinstance(name, str):
        raise ApiError(422, f"expected a model name, got {_kind(name)}", "model")
    return name


def check_keys(data: dict[str, Any], allowed: set[str], required: str) -> None:
    if required not in data:
        raise ApiError(422, "field required", required)
    extra = sorted(set(data) - allowed)
    if extra:
        raise ApiError(422, f"unknown field (expected {', '.join(sorted(allowed))})", extra[0])


# ---- the plain body, without a Python object per number ------------------------------------
Array = simdjson.Array


def plain_parse(body: bytes, field: str, allowed: set[str]) -> tuple[object, Array] | None:
    """(the "model" value or None, the field's array) of a plain body, else None."""
    try:
        doc = simdjson.Parser().parse(body)
    except (ValueError, RuntimeError):  # not JSON, or numbers simdjson cannot hold: orjson decides
        return None
    if not isinstance(doc, simdjson.Object):
        return None
    keys = list(doc.keys())
    if len(set(keys)) != len(keys) or not allowed.issuperset(keys):  # orjson keeps the last twin
        return None
    items = doc.get(field)
    model = doc.get("model")
    if not isinstance(items, Array) or not (model is None or isinstance(model, str)):
        return None
    return model, items


def plain_numbers(
    items: Array, body: bytes, shapes: tuple[tuple[int, ...], ...], max_items: int
) -> np.ndarray | None:
    """The items as float64 (N, *shape) when all take one of `shapes`, else None."""
    n = len(items)
    if not 0 < n <= max_items:
        return None
    first = items[0]
    for shape in shapes:
        if (not shape and not isinstance(first, Array)) or (
            shape and isinstance(first, Array) and len(first) == shape[0]
        ):
            break
    else:
        return None
    if _brackets(body) != 1 + n * _arrays_per_item(shape) or not _rectangular(items, shape):
        return None
    try:
        flat = items.as_buffer(of_type="d")
    except (TypeError, ValueError, RuntimeError):  # a string, boolean or null among the numbers
        return None
    return np.frombuffer(flat, np.float64).reshape(n, *shape)


def _brackets(body: bytes) -> int:
    """How many `[` the body holds (numpy counts a large body ~6x faster than bytes.count)."""
    if len(body) < 8192:
        return body.count(b"[")
    return int(np.count_nonzero(np.frombuffer(body, np.uint8) == ord("[")))


def _arrays_per_item(shape: tuple[int, ...]) -> int:
    """How many JSON arrays one item of this shape is: (28, 28) -> 1 + 28, (784,) -> 1, () -> 0."""
    count, width = 0, 1
    for size in shape:
        count += width
        width *= size
    return count


def _rectangular(arrays: Array, shape: tuple[int, ...]) -> bool:
    """Every element of `arrays` is an array of shape[0] elements, and so on down the shape."""
    if not shape:
        return True
    size = shape[0]
    for a in arrays:
        if not isinstance(a, Array) or len(a) != size:
            return False
    return len(shape) == 1 or all(_rectangular(a, shape[1:]) for a in arrays)
