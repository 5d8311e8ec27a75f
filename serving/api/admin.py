"""/admin/*: operator actions, behind the admin key (see serving.auth)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from serving.api import schemas
from serving.api.gates import ADMIN, gated
from serving.api.predict import json_response
from serving.errors import ApiError

router = APIRouter(prefix="/admin", tags=["admin"])


class ReloadResponse(BaseModel):
    results: dict[str, dict[str, str]] = Field(
        examples=[
            {
                "lenet": {"status": "loaded", "version": "2"},
                "mlp": {"status": "unchanged", "version": "1"},
            }
        ]
    )


@router.post(
    "/reload",
    response_model=ReloadResponse,
    responses={
        401: {"model": schemas.ErrorBody},
        403: {"model": schemas.ErrorBody},
        404: {"model": schemas.ErrorBody},
        409: {"model": ReloadResponse},
    },
    summary="Load the newest version of one model, or of all",
)
@gated(ADMIN)
async def reload(
    request: Request,
    model: Annotated[str | None, Query(description="One model; all when left out.")] = None,
) -> Response:
    """Each new version is verified (checksums), loaded and probed before it replaces the one
    serving; requests in flight finish on the version they started with. A version that fails
    is refused (409) and the previous one keeps serving. With several worker processes this
    reaches only the worker that answers: use `SERVING_WATCH=true` there instead."""
    registry = request.app.state.registry
    if model is not None and model not in registry.settings.models:
        raise ApiError(404, f"unknown model {model!r}", "model")
    names = registry.settings.models if model is None else [model]
    results = await registry.reload(names)
    refused = any(r["status"] == "refused" for r in results.values())
    return json_response({"results": results}, 409 if refused else 200)
