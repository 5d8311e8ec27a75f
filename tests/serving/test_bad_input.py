"""Every kind of bad input gets a 4xx JSON error naming the field and the problem."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.serving.conftest import Service, settings_for

pytestmark = pytest.mark.anyio

ROW = [0] * 28
IMG = [ROW] * 28


def img_with(value: object, at: tuple[int, int] = (3, 5)) -> list[list[object]]:
    rows = [list(ROW) for _ in range(28)]
    rows[at[0]][at[1]] = value
    return rows


JSON = {"content-type": "application/json"}
CASES = [
    # (path, raw body, headers, status, field, words in the message)
    ("/predict/digits", b'{"images": [', JSON, 400, "body", "malformed JSON"),
    ("/predict/digits", b"", JSON, 400, "body", "empty"),
    (
        "/predict/digits",
        b'{"images": []}',
        {"content-type": "text/plain"},
        415,
        "content-type",
        "application/json",
    ),
    ("/predict/digits", b"[1, 2]", JSON, 422, "body", "JSON object"),
    ("/predict/digits", b'{"pictures": []}', JSON, 422, "images", "required"),
    ("/predict/digits", b'{"images": [], "extra": 1}', JSON, 422, "extra", "unknown field"),
    ("/predict/digits", b'{"images": []}', JSON, 422, "images", "at least one"),
    ("/predict/digits", b'{"images": "abc"}', JSON, 422, "images", "expected a list"),
    ("/predict/digits", b'{"images": [[1, 2, 3]]}', JSON, 422, "images[0]", "expected"),
    ("/predict/digits", b'{"images": [null]}', JSON, 422, "images[0]", "null"),
    ("/predict/digits", b'{"images": [[[0]]]}', JSON, 422, "images[0][0]", "expected 28"),
    (
        "/predict/digits",
        b'{"images": [' + str(IMG).encode() + b'], "model": 7}',
        JSON,
        422,
        "model",
        "model name",
    ),
    (
        "/predict/digits",
        b'{"images": [' + str(IMG).encode() + b'], "model": "resnet"}',
        JSON,
        404,
        "model",
        "unknown model",
    ),
    (
        "/predict/digits",
        b'{"images": [' + str(IMG).encode() + b'], "model": "curve"}',
        JSON,
        422,
        "model",
        "does not answer digits",
    ),
    ("/predict/points", b'{"points": [[1, 2], [3]]}', JSON, 422, "points[1]", "expected 2"),
    ("/predict/points", b'{"points": [[1, "2"]]}', JSON, 422, "points[0][1]", "string"),
    ("/predict/points", b'{"points": [[1, null]]}', JSON, 422, "points[0][1]", "null"),
    ("/predict/points", b'{"points": [[1, NaN]]}', JSON, 422, "points[0][1]", "finite"),
    ("/predict/points", b'{"points": [[Infinity, 1]]}', JSON, 422, "points[0][0]", "finite"),
    ("/predict/points", b'{"points": [[-Infinity, 1]]}', JSON, 422, "points[0][0]", "finite"),
    ("/predict/points", b'{"points": [[1e999, 1]]}', JSON, 422, "points[0][0]", "finite"),
    ("/predict/points", b'{"points": [[true, 1]]}', JSON, 422, "points[0][0]", "boolean"),
    ("/predict/curve", b'{"x": [0.5, "a"]}', JSON, 422, "x[1]", "string"),
    ("/predict/curve", b'{"x": 0.5}', JSON, 422, "x", "expected a list"),
    ("/predict/curve", b'{"x": [[0.5, 0.6]]}', JSON, 422, "x[0]", "expected 1 values"),
    ("/predict/curve", b'{"x": [{"v": 1}]}', JSON, 422, "x[0]", "object"),
]


@pytest.mark.parametrize(("path", "body", "headers", "status", "field", "words"), CASES)
async def test_bad_json(
    repo: Path, path: str, body: bytes, headers: dict[str, str], status: int, field: str, words: str
) -> None:
    async with Service(settings_for(repo)) as svc:
        r = await svc.client.post(path, content=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    err = r.json()
    assert err["field"] == field, err
    assert err["error"].startswith(f"{field}: ") and words.lower() in err["error"].lower(), err


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (256, "outside 0-255"),
        (-1, "outside 0-255"),
        ("7", "string"),
        (None, "null"),
        ([1], "list"),
    ],
)
async def test_bad_pixel_is_named(repo: Path, value: object, words: str) -> None:
    async with Service(settings_for(repo)) as svc:
        r = await svc.client.post(
            "/predict/digits", json={"images": [IMG, img_with(value, (3, 5))]}
        )
    assert r.status_code == 422
    assert r.json()["field"] == "images[1][3][5]"
    assert words in r.json()["error"]


async def chunks() -> AsyncIterator[bytes]:
    """A body sent without Content-Length."""
    for part in (b'{"x": [', b"0.5, " * 20_000, b"1]}"):
        yield part


async def test_limits_answer_413(repo: Path) -> None:
    async with Service(settings_for(repo, max_items=4, max_body_bytes=64 * 1024)) as svc:
        many = await svc.client.post("/predict/points", json={"points": [[0, 0]] * 5})
        big = await svc.client.post("/predict/curve", json={"x": [0.125] * 20_000})
        chunked = await svc.client.post("/predict/curve", headers=JSON, content=chunks())
        ok = await svc.client.post("/predict/points", json={"points": [[0, 0]] * 4})
    assert many.status_code == 413 and many.json()["field"] == "points"
    assert big.status_code == 413 and big.json()["field"] == "body"
    assert chunked.status_code == 413
    assert ok.status_code == 200


def png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


async def test_bad_uploads(repo: Path) -> None:
    good = png(Image.new("L", (40, 40), 255))
    async with Service(settings_for(repo, max_image_pixels=1_000_000)) as svc:
        post = svc.client.post

        async def upload(data: bytes, name: str = "d.png", **kw: object) -> tuple[int, dict]:
            r = await post("/predict/digits/image", files={"file": (name, data)}, **kw)
            return r.status_code, r.json()

        assert (await upload(b"not an image"))[0] == 422
        assert (await upload(good[: len(good) // 2]))[0] == 422  # truncated
        assert (await upload(b""))[1]["field"] == "file"
        status, body = await upload(good)  # all paper, no ink
        assert status == 422 and "no visible ink" in body["error"]
        tiff = png(Image.new("L", (30, 30)), "TIFF")
        status, body = await upload(tiff, "d.tiff")
        assert status == 415 and "TIFF" in body["error"]
        bomb = png(Image.new("1", (3000, 3000)))  # 9 Mpx, a few KB compressed
        status, body = await upload(bomb)
        assert status == 413 and "pixels" in body["error"]
        r = await post("/predict/digits/image", files={"other": ("d.png", good)})
        assert r.status_code == 422 and r.json()["field"] == "file"
        r = await post("/predict/digits/image", content=good, headers={"content-type": "image/png"})
        assert r.status_code == 415
        r = await post("/predict/digits/image?model=nope", files={"file": ("d.png", good)})
        assert r.status_code == 404


async def test_unknown_route_and_method_are_json(repo: Path) -> None:
    async with Service(settings_for(repo)) as svc:
        r1 = await svc.client.get("/predict/digits")
        r2 = await svc.client.get("/nothing/here")
    assert r1.status_code == 405 and "error" in r1.json()
    assert r2.status_code == 404 and "error" in r2.json()


async def test_internal_fault_is_500_without_details(repo: Path) -> None:
    async with Service(settings_for(repo)) as svc:
        entry = svc.registry.entries["curve"]

        def broken(x: np.ndarray) -> np.ndarray:
            raise RuntimeError("/secret/path exploded")

        entry.batcher._run = broken
        r = await svc.client.post("/predict/curve", json={"x": [0.5]})
    assert r.status_code == 500
    assert "secret" not in r.text and "Traceback" not in r.text
    assert r.headers["x-request-id"] in r.json()["error"]


async def test_overflowing_answer_is_refused_not_served(repo: Path) -> None:
    """Values within float32 yet so large that the network overflows: a 422 naming the item,
    never a 200 carrying NaN."""
    big = 3.0e38
    async with Service(settings_for(repo)) as svc:
        r = await svc.client.post("/predict/points", json={"points": [[1, 2], [big, -big]]})
        ok = await svc.client.post("/predict/points", json={"points": [[1e6, -1e6]]})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "points[1]" and "overflowed" in r.json()["error"]
    assert ok.status_code == 200
