"""The Open Inference Protocol (KServe v2 / Triton HTTP): /v2/*.

Health, server and model metadata, model readiness and inference, each model under its name and
under the version being served (another version is 404). Inference goes through the same
pipeline as /predict: the model's dynamic batcher, its 503/504 and client-disconnect handling.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from serving.api import v2_decode, v2_encode
from serving.api import v2_schemas as ps
from serving.api.common import infer, json_response
from serving.api.gates import OPEN, V2_INFER, gated
from serving.api.schemas import ErrorBody
from serving.engine.registry import Entry
from serving.errors import ApiError

router = APIRouter(prefix="/v2", tags=["inference protocol v2"])

Name = Annotated[str, Path(description="The model's name.", examples=["lenet"])]
Version = Annotated[str, Path(description="The version being served.", examples=["1"])]
ERRORS = {404: {"model": ErrorBody}, 503: {"model": ErrorBody}}
INFER_ERRORS = {c: {"model": ErrorBody} for c in (400, 401, 403, 404, 413, 415, 503, 504)}
INFER_DOC = """Runs the model on a batch of N items: JSON tensors, or the binary tensor data
extension (`Inference-Header-Content-Length`). Input: the model's one input as its metadata says,
FP32 (models of 8-bit pixels also UINT8), shape `[N, *item]`; the item may also drop its leading
1s or be flat. Outputs: the model's output and, for classifiers, `label` (INT64 `[N, 1]`, the
predicted class), as JSON or binary (`binary_data`, `binary_data_output`). Bad requests answer
400 `{"error": ...}`; an unknown model or version 404."""


def _entry(request: Request, name: str, version: str | None) -> Entry:
    entry: Entry = request.app.state.registry.get(name)
    if version is not None and version != str(entry.version):
        raise ApiError(
            404, f"model {name!r} has no version {version!r} (serving {entry.version})", "version"
        )
    return entry


# ---- server -------------------------------------------------------------------------------
@router.get("", response_model=ps.ServerMetadata, summary="Server metadata")
@gated(OPEN)
async def server_metadata(request: Request) -> Response:
    app = request.app
    return json_response(
        {"name": app.title, "version": app.version, "extensions": list(v2_encode.EXTENSIONS)}
    )


@router.get("/health/live", response_model=ps.ServerLive, summary="The server is live")
@gated(OPEN)
async def server_live() -> Response:
    return json_response({"live": True})


@router.get(
    "/health/ready",
    response_model=ps.ServerReady,
    responses={503: {"model": ps.ServerReady}},
    summary="Every configured model is loaded (503 until then)",
)
@gated(OPEN)
async def server_ready(request: Request) -> Response:
    ready = request.app.state.registry.ready
    return json_response({"ready": ready}, 200 if ready else 503)


# ---- models -------------------------------------------------------------------------------
async def _metadata(request: Request, name: str, version: str | None) -> Response:
    entry = _entry(request, name, version)
    return json_response(v2_encode.model_metadata(entry.spec, entry.version, entry.runner.backend))


@router.get(
    "/models/{name}", response_model=ps.ModelMetadata, responses=ERRORS, summary="Model metadata"
)
@gated(OPEN)
async def model_metadata(request: Request, name: Name) -> Response:
    return await _metadata(request, name, None)


@router.get(
    "/models/{name}/versions/{version}",
    response_model=ps.ModelMetadata,
    responses=ERRORS,
    summary="Model metadata of one version",
)
@gated(OPEN)
async def model_version_metadata(request: Request, name: Name, version: Version) -> Response:
    return await _metadata(request, name, version)


async def _ready(request: Request, name: str, version: str | None) -> Response:
    try:
        _entry(request, name, version)
    except ApiError as e:
        if e.status != 503:
            raise
        return json_response({"name": name, "ready": False}, 503)
    return json_response({"name": name, "ready": True})


READY_RESPONSES = {404: {"model": ErrorBody}, 503: {"model": ps.ModelReady}}


@router.get(
    "/models/{name}/ready",
    response_model=ps.ModelReady,
    responses=READY_RESPONSES,
    summary="The model is loaded (503 until then)",
)
@gated(OPEN)
async def model_ready(request: Request, name: Name) -> Response:
    return await _ready(request, name, None)


@router.get(
    "/models/{name}/versions/{version}/ready",
    response_model=ps.ModelReady,
    responses=READY_RESPONSES,
    summary="That version of the model is loaded",
)
@gated(OPEN)
async def model_version_ready(request: Request, name: Name, version: Version) -> Response:
    return await _ready(request, name, version)


# ---- inference ----------------------------------------------------------------------------
async def _infer(request: Request, name: str, version: str | None) -> Response:
    entry = _entry(request, name, version)
    s = request.app.state.settings
    body: bytes = request.scope["state"]["body"]  # read by the front door
    body = v2_decode.decompress(body, request.headers.get("content-encoding"), s.max_body_bytes)
    req = v2_decode.parse_request(
        body, request.headers.get(v2_encode.HEADER_LENGTH), entry.spec, s.max_items
    )
    timeout_s = min(s.request_timeout_s, req.timeout_s or s.request_timeout_s)
    y = await infer(request, entry, req.x, timeout_s, "inputs", bad_input=400)
    return v2_encode.respond(entry.spec, entry.version, req, y)


@router.post(
    "/models/{name}/infer",
    response_model=ps.InferenceResponse,
    responses=INFER_ERRORS,
    openapi_extra=ps.infer_body(),
    summary="Inference",
    description=INFER_DOC,
)
@gated(V2_INFER)
async def model_infer(request: Request, name: Name) -> Response:
    return await _infer(request, name, None)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=ps.InferenceResponse,
    responses=INFER_ERRORS,
    openapi_extra=ps.infer_body(),
    summary="Inference on one version",
    description=INFER_DOC,
)
@gated(V2_INFER)
async def model_version_infer(request: Request, name: Name, version: Version) -> Response:
    return await _infer(request, name, version)
