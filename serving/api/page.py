"""The web page at / and its static files (no build step; nothing fetched at run time)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, Response

from serving.api.gates import OPEN, gated

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
@gated(OPEN)
async def index() -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


static_files = StaticFiles(directory=STATIC)
