"""The common JSON prediction body, decoded without one Python object per number.

orjson makes a Python int or float of each of a digit's 784 values and numpy then converts them
one at a time, the largest cost of a request. simdjson parses the body into its own tape and
`as_buffer` copies an array's numbers straight into a float64 buffer, several times faster
(bench/results/serve.md has the measurements).

`as_buffer` flattens whatever nesting it finds, ragged or not, so this module takes only the
plain case, where the flat numbers can only mean one thing: an object holding the allowed keys
once each, the items a list of one accepted shape, rectangular, numbers only. Two checks make
that so: the body holds exactly as many `[` as those items need (so no array hides anywhere
else, not even an empty one), and every list has the length its place in the shape says. For
anything else these functions return None and the caller takes the orjson path, which accepts
the same inputs and names any problem exactly (decode.py).
"""

from __future__ import annotations

import numpy as np
import simdjson

Array = simdjson.Array


def parse(body: bytes, field: str, allowed: set[str]) -> tuple[object, Array] | None:
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


def numbers(
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
