"""What is served and whether it is ready: /models, /healthz, /readyz."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from serving import schemas
from serving.pipeline import json_response

router = APIRouter(tags=["models"])


@router.get("/models", response_model=schemas.ModelsResponse, summary="The models served")
async def list_models(request: Request) -> Response:
    registry = request.app.state.registry
    return json_response(
        {"models": [e.describe() for e in registry.entries.values()], "failed": registry.failures}
    )


@router.get(
    "/healthz", response_model=schemas.Health, tags=["health"], summary="The process is alive"
)
async def healthz() -> Response:
    return json_response({"status": "alive"})


@router.get(
    "/readyz",
    response_model=schemas.Health,
    tags=["health"],
    responses={503: {"model": schemas.Health}},
    summary="Every configured model is loaded and answered its probe",
)
async def readyz(request: Request) -> Response:
    registry = request.app.state.registry
    body = {
        "status": "ready" if registry.ready else "not ready",
        "models": sorted(registry.entries),
        "failed": registry.failures,
        "loading": sorted(registry.loading),
    }
    return json_response(body, 200 if registry.ready else 503)
