"""/predict/*: the product's own JSON API for digits, uploads, points and the curve."""

from __future__ import annotations

import io
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.responses import Response

from models.preprocess import NoDigit, to_mnist
from models.spec import DEFAULT_FOR_FAMILY
from serving import schemas
from serving.decode import (
    check_keys,
    has_bool_token,
    model_name,
    parse_json,
    read_body,
    to_array,
)
from serving.errors import ApiError
from serving.pipeline import classes, infer, json_response

router = APIRouter(prefix="/predict", tags=["predict"])
ERRORS = {c: {"model": schemas.ErrorBody} for c in (400, 401, 403, 404, 413, 415, 422, 503, 504)}
IMAGE_FORMATS = {"PNG", "JPEG", "BMP", "GIF", "WEBP"}


async def _json(request: Request) -> tuple[dict, bool]:
    """The JSON object, and whether any of its values could be a boolean."""
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    return parse_json(body, request.headers.get("content-type")), has_bool_token(body)


@router.post(
    "/digits",
    response_model=schemas.DigitsResponse,
    responses=ERRORS,
    openapi_extra=schemas.body_schema(schemas.DigitsRequest),
    summary="Classify 28x28 digit images",
)
async def predict_digits(request: Request) -> Response:
    data, bools = await _json(request)
    check_keys(data, {"images", "model"}, "images")
    entry = request.app.state.registry.get(model_name(data, DEFAULT_FOR_FAMILY["digits"]), "digits")
    spec, s = entry.spec, request.app.state.settings
    x = to_array(
        data["images"],
        "images",
        (spec.input.shape[1:], (spec.input.size,)),
        spec.value_range,
        s.max_items,
        bools,
    )
    x = x.reshape(-1, *spec.input.shape)
    probs = await infer(request, entry, x, s.request_timeout_s, "images")
    return json_response(
        {
            "model": spec.name,
            "version": str(entry.version),
            "predictions": classes(entry, probs, "digit"),
        }
    )


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
    form = await request.form(max_files=1, max_fields=4, max_part_size=s.max_body_bytes)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(422, "field required: one image file", "file")
    data = await upload.read()
    await form.close()
    pixels = decode_image(data, s.max_image_pixels)
    spec = entry.spec
    x = pixels.reshape(1, *spec.input.shape)
    probs = await infer(request, entry, x, s.request_timeout_s, "file")
    return json_response(
        {
            "model": spec.name,
            "version": str(entry.version),
            "predictions": classes(entry, probs, "digit"),
            "image": pixels.astype(np.uint8),
        }
    )


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
async def predict_points(request: Request) -> Response:
    data, bools = await _json(request)
    check_keys(data, {"points", "model"}, "points")
    entry = request.app.state.registry.get(model_name(data, DEFAULT_FOR_FAMILY["points"]), "points")
    s = request.app.state.settings
    x = to_array(data["points"], "points", (entry.spec.input.shape,), None, s.max_items, bools)
    probs = await infer(request, entry, x, s.request_timeout_s, "points")
    return json_response(
        {
            "model": entry.spec.name,
            "version": str(entry.version),
            "predictions": classes(entry, probs, "label"),
        }
    )


@router.post(
    "/curve",
    response_model=schemas.CurveResponse,
    responses=ERRORS,
    openapi_extra=schemas.body_schema(schemas.CurveRequest),
    summary="Evaluate the fitted curve",
)
async def predict_curve(request: Request) -> Response:
    data, bools = await _json(request)
    check_keys(data, {"x", "model"}, "x")
    entry = request.app.state.registry.get(model_name(data, DEFAULT_FOR_FAMILY["curve"]), "curve")
    s = request.app.state.settings
    x = to_array(data["x"], "x", ((),), None, s.max_items, bools)
    y = await infer(
        request, entry, x.reshape(-1, *entry.spec.input.shape), s.request_timeout_s, "x"
    )
    return json_response(
        {"model": entry.spec.name, "version": str(entry.version), "y": y.reshape(-1)}
    )
