"""What is served and whether it is ready: /models, /healthz, /readyz."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from models.samples import SAMPLERS
from serving.api import schemas
from serving.api.gates import OPEN, gated
from serving.api.predict import json_response
from serving.errors import ApiError

router = APIRouter(tags=["models"])
NOT_FOUND = {404: {"model": schemas.ErrorBody}}


@router.get("/models", response_model=schemas.ModelsResponse, summary="The models served")
@gated(OPEN)
async def list_models(request: Request) -> Response:
    registry = request.app.state.registry
    return json_response(
        {"models": [e.describe() for e in registry.entries.values()], "failed": registry.failures}
    )


@router.get(
    "/models/{name}",
    response_model=schemas.ModelInfo,
    responses=NOT_FOUND,
    summary="One model served",
)
@gated(OPEN)
async def get_model(request: Request, name: str) -> Response:
    return json_response(request.app.state.registry.get(name).describe())


@router.get(
    "/models/{name}/data",
    response_model=schemas.SampleResponse,
    responses=NOT_FOUND,
    summary="A sample of a synthetic model's training data (curve, points)",
)
@gated(OPEN)
async def get_sample(
    request: Request, name: str, n: Annotated[int, Query(ge=1, le=2000)] = 200
) -> Response:
    entry = request.app.state.registry.get(name)
    data = entry.card.get("data", {})
    make = SAMPLERS.get(entry.spec.family)
    if make is None or "seed" not in data:
        raise ApiError(404, f"model {name!r} has no synthetic training data to sample", "name")
    total = int(data.get("train", 0)) + int(data.get("validation", 0))
    x, y = make(max(total, n), int(data["seed"]))  # regenerated exactly as training drew it
    x, y = x[:n], y[:n]
    if entry.spec.family == "curve":
        return json_response({"x": x.reshape(-1), "y": y.reshape(-1)})
    return json_response({"points": x, "labels": y})


@router.get(
    "/healthz", response_model=schemas.Health, tags=["health"], summary="The process is alive"
)
@gated(OPEN)
async def healthz() -> Response:
    return json_response({"status": "alive"})


@router.get(
    "/readyz",
    response_model=schemas.Health,
    tags=["health"],
    responses={503: {"model": schemas.Health}},
    summary="Every configured model is loaded and answered its probe",
)
@gated(OPEN)
async def readyz(request: Request) -> Response:
    registry = request.app.state.registry
    body = {"status": "ready" if registry.ready else "not ready", "models": registry.states()}
    return json_response(body, 200 if registry.ready else 503)
