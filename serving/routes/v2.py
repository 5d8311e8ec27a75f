"""The Open Inference Protocol (KServe v2 / Triton HTTP): /v2/*. Filled in by issue 4."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v2", tags=["inference protocol v2"])
