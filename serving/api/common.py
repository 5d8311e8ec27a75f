"""What every HTTP route shares: the call into the engine for one request, and JSON answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response

from serving.engine import infer as engine
from serving.engine.infer import DISCONNECTED
from serving.engine.registry import Entry
from serving.errors import JSON


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
