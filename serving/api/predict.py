"""/predict/*: the product's own JSON API for digits, uploads, points and the curve; and what
every HTTP route shares: the call into the engine for one request (infer), JSON answers."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Query, Request
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.responses import Response

from models.preprocess import NoDigit, to_mnist
from models.spec import DEFAULT_FOR_FAMILY
from serving.api import schemas
from serving.api.gates import UPLOAD, gated, predict_json
from serving.api.json_decode import (
    check_json,
    check_keys,
    has_bool_token,
    in_range,
    model_name,
    parse_json,
    plain_numbers,
    plain_parse,
    to_array,
)
from serving.engine import infer as engine
from serving.engine.infer import DISCONNECTED
from serving.engine.registry import Entry
from serving.engine.tensors import item_shapes
from serving.errors import JSON, ApiError

router = APIRouter(prefix="/predict", tags=["predict"])
ERRORS = {c: {"model": schemas.ErrorBody} for c in (400, 401, 403, 404, 413, 415, 422, 503, 504)}
IMAGE_FORMATS = {"PNG", "JPEG", "BMP", "GIF", "WEBP"}


# ---- what every HTTP route shares (v2.py, models.py and admin.py too): the engine, JSON ------
async def _client_gone(request: Request) -> None:
    """Returns when the client disconnects (the body has been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def infer(
    request: Request,
    entry: Entry,
    x: np.ndarray,
    timeout_s: float,
    field: str = "inputs",
    bad_input: int = 422,
) -> Awaitable[np.ndarray]:
    """engine.infer for an HTTP request: the hang-up signal is the server's own where it gives
    one (then the engine's coroutine itself is returned: no await level of ours on the hot
    path), else a task waiting for `receive()` to say so."""
    request.scope["state"]["model"] = entry.spec.name  # for the metrics and the access log
    gone = request.scope.get("extensions", {}).get(DISCONNECTED)
    if gone is not None:
        return engine.infer(entry, x, timeout_s, gone, field, bad_input)
    return _watched(request, entry, x, timeout_s, field, bad_input)


async def _watched(
    request: Request, entry: Entry, x: np.ndarray, timeout_s: float, field: str, bad_input: int
) -> np.ndarray:
    watcher = asyncio.ensure_future(_client_gone(request))
    try:
        return await engine.infer(entry, x, timeout_s, watcher, field, bad_input)
    finally:
        watcher.cancel()


def json_response(content: dict[str, Any] | list[Any], status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type=JSON,
    )


def classes(probs: np.ndarray, key: str) -> list[dict[str, Any]]:
    """Per-item answers of a classifier: the class and its probability vector."""
    best = probs.argmax(axis=1).tolist()
    return [{key: b, "probabilities": p} for b, p in zip(best, probs, strict=True)]


# Every JSON prediction passes through the same steps: decode -> infer -> encode.
def _decode(request: Request, family: str, field: str) -> tuple[Entry, np.ndarray]:
    """The body -> the model asked for, and its inputs as float32 (N, *spec.input.shape)."""
    s = request.app.state.settings
    registry = request.app.state.registry
    body: bytes = request.scope["state"]["body"]  # read by the front door
    content_type = request.headers.get("content-type")
    check_json(body, content_type)
    if plain := plain_parse(body, field, {field, "model"}):  # the common case, fast
        model, items = plain
        entry = registry.get(DEFAULT_FOR_FAMILY[family] if model is None else model, family)
        spec = entry.spec
        x = plain_numbers(items, body, item_shapes(spec), s.max_items)
        if x is not None:
            return entry, in_range(x, field, spec.value_range).reshape(-1, *spec.input.shape)
    data = parse_json(body, content_type)
    check_keys(data, {field, "model"}, field)
    entry = registry.get(model_name(data, DEFAULT_FOR_FAMILY[family]), family)
    spec = entry.spec
    x = to_array(
        data[field],
        field,
        item_shapes(spec),
        spec.value_range,
        s.max_items,
        has_bool_token(body),
    )
    return entry, x.reshape(-1, *spec.input.shape)


def _timeout_s(request: Request) -> float:
    return float(request.app.state.settings.request_timeout_s)


def _answer(entry: Entry, **content: object) -> Response:
    return json_response({"model": entry.spec.name, "version": str(entry.version), **content})


@router.post(
    "/digits",
    response_model=schemas.DigitsResponse,
    responses=ERRORS,
    openapi_extra=schemas.body_schema(schemas.DigitsRequest),
    summary="Classify 28x28 digit images",
)
@gated(predict_json("digits"))
async def predict_digits(request: Request) -> Response:
    entry, x = _decode(request, "digits", "images")  # no coroutine: one await level fewer
    probs = await infer(request, entry, x, _timeout_s(request), "images")
    return _answer(entry, predictions=classes(probs, "digit"))


@router.post(
    "/digits/image",
    response_model=schemas.ImageResponse,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": "PNG, JPEG, BMP, GIF or WebP of one digit, "
                                "any size or polarity.",
                            }
                        },
                    }
                }
            },
        }
    },
    summary="Classify one uploaded photo or drawing of a digit",
)
@gated(UPLOAD)
async def predict_digit_image(
    request: Request,
    model: Annotated[
        str, Query(description=f"One of {schemas.DIGIT_MODELS}.")
    ] = DEFAULT_FOR_FAMILY["digits"],
) -> Response:
    s = request.app.state.settings
    entry = request.app.state.registry.get(model, "digits")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise ApiError(415, f"expected multipart/form-data, got {media or 'none'}", "content-type")
    form = await request.form(max_files=1, max_fields=4, max_part_size=s.max_upload_bytes)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(422, "field required: one image file", "file")
    data = await upload.read()
    await form.close()
    pixels = await request.app.state.decoder.run(decode_image, data, s.max_image_pixels)
    spec = entry.spec
    x = pixels.reshape(1, *spec.input.shape)
    probs = await infer(request, entry, x, s.request_timeout_s, "file")
    return _answer(entry, predictions=classes(probs, "digit"), image=pixels.astype(np.uint8))


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Uploaded bytes -> 28x28 MNIST-style pixels, or a 4xx naming the problem."""
    if not data:
        raise ApiError(422, "the file is empty", "file")
    try:
        img = Image.open(io.BytesIO(data))
        if img.format not in IMAGE_FORMATS:
            raise ApiError(
                415,
                f"unsupported image format {img.format}; send PNG, JPEG, BMP, GIF or WebP",
                "file",
            )
        w, h = img.size
        if w * h > max_pixels:
            raise ApiError(
                413, f"image is {w}x{h}, more than the limit of {max_pixels} pixels", "file"
            )
        img.load()
        return to_mnist(img)
    except ApiError:
        raise
    except NoDigit as e:
        raise ApiError(422, str(e), "file") from None
    except Image.DecompressionBombError:
        raise ApiError(413, "image has too many pixels", "file") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ApiError(
            422, "not a readable image (corrupt, truncated or unknown format)", "file"
        ) from None


@router.post(
    "/points",
    response_model=schemas.PointsResponse,
    responses=ERRORS,
    openapi_extra=schemas.body_schema(schemas.PointsRequest),
    summary="Classify 2-D points",
)
@gated(predict_json("points"))
async def predict_points(request: Request) -> Response:
    entry, x = _decode(request, "points", "points")
    probs = await infer(request, entry, x, _timeout_s(request), "points")
    return _answer(entry, predictions=classes(probs, "label"))


@router.post(
    "/curve",
    response_model=schemas.CurveResponse,
    responses=ERRORS,
    openapi_extra=schemas.body_schema(schemas.CurveRequest),
    summary="Evaluate the fitted curve",
)
@gated(predict_json("curve"))
async def predict_curve(request: Request) -> Response:
    entry, x = _decode(request, "curve", "x")
    y = await infer(request, entry, x, _timeout_s(request), "x")
    return _answer(entry, y=y.reshape(-1))
