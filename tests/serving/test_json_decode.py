"""The simdjson fast path takes only bodies it reads exactly as the orjson path does; everything
else falls back (returns None) and the orjson path answers, with its named errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.spec import SPECS
from serving.api import json_decode
from serving.api.json_decode import to_array
from serving.engine.tensors import item_shapes
from tests.serving.conftest import Service, settings_for

DIGIT_SHAPES = item_shapes(SPECS["lenet"])  # (28, 28), (1, 28, 28) or (784,)
ALLOWED = {"images", "model"}
ROW = [0] * 28


def fast(body: bytes, shapes: tuple[tuple[int, ...], ...] = DIGIT_SHAPES) -> np.ndarray | None:
    parsed = json_decode.plain_parse(body, "images", ALLOWED)
    if parsed is None:
        return None
    return json_decode.plain_numbers(parsed[1], body, shapes, max_items=1024)


def slow(body: bytes, shapes: tuple[tuple[int, ...], ...] = DIGIT_SHAPES) -> np.ndarray:
    return to_array(orjson.loads(body)["images"], "images", shapes, None, 1024)


def image(fill: list[int] | None = None) -> list[list[int]]:
    return [list(fill or ROW) for _ in range(28)]


@pytest.mark.parametrize(
    ("why", "body"),
    [
        # Ragged rows whose total is still 784: as_buffer alone would take them.
        ("ragged rows", {"images": [[[0] * 27, [0] * 29, *image()[2:]]]}),
        ("ragged items", {"images": [[0] * 783, [0] * 785]}),
        # An empty array and a pair in one row: still 28 elements, still 784 numbers in all.
        ("hidden arrays", {"images": [[[[], *[0] * 26, [1, 2]], *image()[1:]]]}),
        ("mixed item shapes", {"images": [image(), [0] * 784]}),
        ("boolean", {"images": [[True, *[0] * 783]]}),
        ("null", {"images": [[None, *[0] * 783]]}),
        ("string", {"images": [["0", *[0] * 783]]}),
        ("no items", {"images": []}),
        ("not a list", {"images": 3}),
        ("unknown key", {"images": [[0] * 784], "extra": 1}),
        ("model not a string", {"images": [[0] * 784], "model": 7}),
        ("bracket in a string", {"images": [[0] * 784], "model": "le[net"}),
        ("wrong length", {"images": [[0] * 10]}),
    ],
)
def test_unusual_bodies_fall_back(why: str, body: object) -> None:
    assert fast(json.dumps(body).encode()) is None, why


def test_duplicate_keys_fall_back() -> None:
    # orjson keeps the last of twin keys, simdjson the first: such a body is orjson's to read.
    body = b'{"images": [' + json.dumps([0] * 784).encode() + b'], "images": [[1]]}'
    assert fast(body) is None


@pytest.mark.parametrize(
    "text", [b"", b"[1, 2]", b'{"images": [[0, 1e999]]}', b'{"images": [[NaN]]}', b"{"]
)
def test_not_plain_json_falls_back(text: bytes) -> None:
    assert fast(text, ((2,),)) is None


numbers = st.one_of(
    st.integers(-(2**53), 2**53),
    st.floats(-3e38, 3e38, allow_nan=False, width=64),
)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3),
    shape=st.sampled_from([(28, 28), (784,), (2,), ()]),
    data=st.data(),
    spaced=st.booleans(),
)
def test_fast_path_reads_what_orjson_reads(
    n: int, shape: tuple[int, ...], data: st.DataObject, spaced: bool
) -> None:
    values = np.array(data.draw(st.lists(numbers, min_size=1, max_size=50)), dtype=object)
    flat = np.resize(values, n * int(np.prod(shape, dtype=int))).reshape(n, *shape).tolist()
    text = json.dumps({"images": flat}, separators=None if spaced else (",", ":")).encode()
    shapes = DIGIT_SHAPES if shape in DIGIT_SHAPES else (shape,)
    got = fast(text, shapes)
    assert got is not None
    want = slow(text, shapes)
    np.testing.assert_array_equal(got.astype(np.float32), want)


def test_hidden_arrays_are_refused_by_the_service(repo: Path) -> None:
    """End to end: the body as_buffer alone would read as a valid digit gets the orjson path's
    422 naming the offending value."""
    import anyio

    body = {"images": [[[[], *[0] * 26, [1, 2]], *image()[1:]]]}

    async def go() -> tuple[int, dict[str, str]]:
        async with Service(settings_for(repo)) as svc:
            r = await svc.client.post("/predict/digits", json=body)
            ok = await svc.client.post("/predict/digits", json={"images": [image()]})
            assert ok.status_code == 200
            # An empty model name is a name like any other (404), not "use the default".
            unnamed = await svc.client.post(
                "/predict/digits", json={"images": [image()], "model": ""}
            )
            assert unnamed.status_code == 404, unnamed.text
        return r.status_code, r.json()

    status, err = anyio.run(go)
    assert status == 422
    assert err["field"] == "images[0][0][0]", err
