"""The Open Inference Protocol (KServe v2 / Triton HTTP): /v2/*.

Health, server and model metadata, model readiness and inference, and Triton's extensions:
model configuration, statistics and the model repository (behind the admin key: its gate,
serving/api/gates.py). Every model route answers under the model's name and under the
version being served (another version is 404): one handler, registered on both paths.
Inference goes through the same pipeline as /predict: the model's dynamic batcher, its 503/504
and client-disconnect handling. What the answers hold is serving.engine's, shared with gRPC;
this module only translates to HTTP and JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from serving.api import v2_decode, v2_encode
from serving.api import v2_schemas as ps
from serving.api.gates import ADMIN, OPEN, V2_INFER, Gate, gated
from serving.api.predict import infer, json_response
from serving.api.schemas import ErrorBody
from serving.engine import repository
from serving.engine.model_config import EXTENSIONS, model_config, model_metadata
from serving.engine.registry import Entry, Registry
from serving.engine.statistics import model_stats, models_stats
from serving.errors import ApiError

router = APIRouter(prefix="/v2", tags=["inference protocol v2"])

Name = Annotated[str, Path(description="The model's name.", examples=["lenet"])]
Version = Annotated[str, Path(description="The version being served.", examples=["1"])]
Handler = Callable[..., Awaitable[Response]]
ERRORS: dict[int | str, Any] = {404: {"model": ErrorBody}, 503: {"model": ErrorBody}}
INFER_ERRORS = {c: {"model": ErrorBody} for c in (400, 401, 403, 404, 413, 415, 503, 504)}
ADMIN_ERRORS = {c: {"model": ErrorBody} for c in (400, 401, 403, 404, 413)}
INFER_DOC = """Runs the model on a batch of N items: JSON tensors, or the binary tensor data
extension (`Inference-Header-Content-Length`). Input: the model's one input as its metadata says,
in any numeric datatype (cast to FP32 when every value fits it: NaN, infinities and values out of
the model's range are refused), shape `[N, *item]`; the item may also drop its leading 1s or be
flat. Outputs: the model's output and, for classifiers, `label` (INT64 `[N, 1]`, the predicted
class), as JSON or binary (`binary_data`, `binary_data_output`). Bad requests answer 400
`{"error": ...}`; an unknown model or version 404."""


def _entry(request: Request, name: str, version: str | None) -> Entry:
    return request.app.state.registry.get_version(name, version)


def _model_route(
    method: str, tail: str, handler: Handler, gate: Gate, summary: str, **kw: Any
) -> None:
    """`handler(request, name, version)` on /models/{name}<tail> (version None: the one
    served) and on /models/{name}/versions/{version}<tail>, both behind `gate`."""

    async def served(request: Request, name: Name) -> Response:
        return await handler(request, name, None)

    async def versioned(request: Request, name: Name, version: Version) -> Response:
        return await handler(request, name, version)

    for path, endpoint, text in (
        (f"/models/{{name}}{tail}", served, summary),
        (f"/models/{{name}}/versions/{{version}}{tail}", versioned, f"{summary}: one version"),
    ):
        endpoint.__doc__ = handler.__doc__
        gated(gate)(endpoint)
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            name=f"{handler.__name__.strip('_')}{'_version' if '{version}' in path else ''}",
            summary=text,
            **kw,
        )


# ---- server -------------------------------------------------------------------------------
@router.get("", response_model=ps.ServerMetadata, summary="Server metadata")
@gated(OPEN)
async def server_metadata(request: Request) -> Response:
    app = request.app
    return json_response({"name": app.title, "version": app.version, "extensions": EXTENSIONS})


@router.get("/health/live", response_model=ps.ServerLive, summary="The server is live")
@gated(OPEN)
async def server_live() -> Response:
    return json_response({"live": True})


@router.get(
    "/health/ready",
    response_model=ps.ServerReady,
    responses={503: {"model": ps.ServerReady}},
    summary="Every model meant to be served is loaded (503 until then)",
)
@gated(OPEN)
async def server_ready(request: Request) -> Response:
    ready = request.app.state.registry.ready
    return json_response({"ready": ready}, 200 if ready else 503)


# ---- statistics of all models (before /models/{name}, which would take "stats" for a name) ---
@router.get(
    "/models/stats",
    response_model=ps.ModelStatsResponse,
    summary="Statistics of every model served (statistics extension)",
)
@gated(OPEN)
async def all_model_stats(request: Request) -> Response:
    registry: Registry = request.app.state.registry
    return json_response(models_stats(registry.entries.values()))


# ---- models -------------------------------------------------------------------------------
async def _metadata(request: Request, name: str, version: str | None) -> Response:
    """The model's name, the version served, its platform, inputs and outputs."""
    entry = _entry(request, name, version)
    return json_response(model_metadata(entry.spec, entry.version, entry.runner.backend))


async def _ready(request: Request, name: str, version: str | None) -> Response:
    """200 when the model (that version) is served, 503 while it is not."""
    try:
        _entry(request, name, version)
    except ApiError as e:
        if e.status != 503:
            raise
        return json_response({"name": name, "ready": False}, 503)
    return json_response({"name": name, "ready": True})


async def _config(request: Request, name: str, version: str | None) -> Response:
    """Triton's ModelConfig of the model, from its definition and the server's settings:
    max_batch_size, input and output dims (per item) and data_type, dynamic batching."""
    entry = _entry(request, name, version)
    return json_response(model_config(entry, request.app.state.settings))


async def _stats(request: Request, name: str, version: str | None) -> Response:
    """Triton's statistics of the version served: request counts and times (success, fail,
    queue, compute input/infer/output, in ns) and per batch size."""
    return json_response(model_stats(_entry(request, name, version)))


_model_route(
    "GET", "", _metadata, OPEN, "Model metadata", response_model=ps.ModelMetadata, responses=ERRORS
)
_model_route(
    "GET",
    "/ready",
    _ready,
    OPEN,
    "The model is loaded (503 until then)",
    response_model=ps.ModelReady,
    responses={404: {"model": ErrorBody}, 503: {"model": ps.ModelReady}},
)
_model_route(
    "GET",
    "/config",
    _config,
    OPEN,
    "Model configuration (model_configuration extension)",
    response_model=ps.ModelConfig,
    responses=ERRORS,
)
_model_route(
    "GET",
    "/stats",
    _stats,
    OPEN,
    "Model statistics (statistics extension)",
    response_model=ps.ModelStatsResponse,
    responses=ERRORS,
)


# ---- inference ----------------------------------------------------------------------------
async def _infer(request: Request, name: str, version: str | None = None) -> Response:
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


_infer.__doc__ = INFER_DOC
_model_route(
    "POST",
    "/infer",
    _infer,
    V2_INFER,
    "Inference",
    response_model=ps.InferenceResponse,
    responses=INFER_ERRORS,
    openapi_extra=ps.infer_body(),
)


# ---- the model repository (behind the admin key) -------------------------------------------
def _body(request: Request) -> dict[str, Any]:
    """A repository request's optional JSON object (read by the front door)."""
    body: bytes = request.scope["state"]["body"]
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ApiError(400, f"malformed JSON: {e}", "body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "expected a JSON object", "body")
    return data


def _check_parameters(data: dict[str, Any], *allowed: str) -> None:
    """Refuses what this server cannot do: a load with a config or files of its own."""
    params = data.get("parameters")
    if params is None:
        return
    if not isinstance(params, dict):
        raise ApiError(400, "expected an object", "parameters")
    for key in params:
        if key not in allowed:
            raise ApiError(
                400, f"{key!r} is not supported: models load from the repository", "parameters"
            )


@router.post(
    "/repository/index",
    response_model=list[ps.RepositoryModel],
    responses=ADMIN_ERRORS,
    openapi_extra=ps.repository_body(ready=True),
    summary="The models this server may serve and their state (model_repository extension)",
)
@gated(ADMIN)
async def repository_index(request: Request) -> Response:
    """READY (with the version served), LOADING, or UNAVAILABLE with the reason; with
    `{"ready": true}` only the ready ones."""
    ready = _body(request).get("ready", False)
    if not isinstance(ready, bool):
        raise ApiError(400, "expected true or false", "ready")
    return json_response(repository.index(request.app.state.registry, ready))


@router.post(
    "/repository/models/{name}/load",
    responses={**ADMIN_ERRORS, 200: {"description": "Serving the newest version"}},
    openapi_extra=ps.repository_body(),
    summary="Load the newest version of a model (model_repository extension)",
)
@gated(ADMIN)
async def repository_load(request: Request, name: Name) -> Response:
    """Verified (checksums), loaded and probed before it serves; a version that fails is
    refused (400) and the one serving, if any, stays. Already serving the newest version:
    nothing to do. With several worker processes this reaches only the worker that answers."""
    _check_parameters(_body(request))
    await repository.load(request.app.state.registry, name)
    return json_response({})


@router.post(
    "/repository/models/{name}/unload",
    responses={**ADMIN_ERRORS, 200: {"description": "No longer served"}},
    openapi_extra=ps.repository_body(False, "unload_dependents"),
    summary="Stop serving a model (model_repository extension)",
)
@gated(ADMIN)
async def repository_unload(request: Request, name: Name) -> Response:
    """Its requests answer 503 until it is loaded again; those already queued finish first."""
    _check_parameters(_body(request), "unload_dependents")
    await repository.unload(request.app.state.registry, name)
    return json_response({})
