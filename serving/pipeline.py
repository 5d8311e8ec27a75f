"""The steps every prediction request passes through, whatever its endpoint or protocol:

    decode (endpoint-specific: body -> float32 array)  ->  infer (here)  ->  encode (endpoint)

`infer` hands the array to the model's batcher, and gives up cleanly when the client goes away
(the queued work is dropped, never computed), when the queue is full (503), or when the answer
takes longer than the request timeout (504; the model itself is left alone).
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response

from serving import metrics
from serving.batching import Overloaded
from serving.errors import ApiError
from serving.http_protocol import DISCONNECTED
from serving.registry import Entry


async def _client_gone(request: Request) -> None:
    """Returns when the client disconnects (the body has been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _client_left(request: Request) -> asyncio.Future[None]:
    """Done when the client hangs up: the server's own signal where it gives one (`python -m
    serving`, http_protocol.py), else a task waiting for `receive()` to say so."""
    left = request.scope.get("extensions", {}).get(DISCONNECTED)
    return left if left is not None else asyncio.ensure_future(_client_gone(request))


async def infer(
    request: Request,
    entry: Entry,
    x: np.ndarray,
    timeout_s: float,
    field: str = "inputs",
    bad_input: int = 422,
) -> np.ndarray:
    """x through the model's batcher: the answer rows, or 503 (full), 504 (slow), 499 (gone),
    or `bad_input` naming the first item the model has no finite answer for."""
    y = await _run(request, entry, x, timeout_s)
    if not np.isfinite(y).all():
        i = int(np.argmin(np.isfinite(y).reshape(len(y), -1).all(axis=1)))
        raise ApiError(
            bad_input,
            "the model's answer overflowed for these values: send numbers of a sensible size",
            f"{field}[{i}]",
        )
    return y


async def _run(request: Request, entry: Entry, x: np.ndarray, timeout_s: float) -> np.ndarray:
    name = entry.spec.name
    request.scope["state"]["model"] = name  # for the metrics and the access log
    try:
        answer = entry.batcher.enqueue(x)
    except Overloaded as e:
        metrics.REJECTED.labels(name, "overloaded").inc()
        raise ApiError(
            503, f"model {name!r} is overloaded: {e}; retry later", headers={"Retry-After": "1"}
        ) from None
    loop = asyncio.get_running_loop()
    timed_out = False

    def expire() -> None:
        nonlocal timed_out
        timed_out = True
        answer.cancel()

    def hung_up(left: asyncio.Future[None]) -> None:
        if not left.cancelled():
            answer.cancel()

    # Either event cancels the answer at once, which takes the inputs out of the queue if they
    # are still waiting; a batch already running finishes on its own.
    gone = _client_left(request)
    gone.add_done_callback(hung_up)
    timer = loop.call_later(timeout_s, expire)
    try:
        return await answer
    except asyncio.CancelledError:
        if timed_out:
            metrics.REJECTED.labels(name, "timeout").inc()
            raise ApiError(
                504, f"no answer within {timeout_s:g} s", headers={"Retry-After": "1"}
            ) from None
        if gone.done() and not gone.cancelled():  # 499 is for logs and metrics (nginx's code)
            metrics.REJECTED.labels(name, "client_gone").inc()
            raise ApiError(499, "client closed the request") from None
        raise  # this request itself is being cancelled (shutdown)
    finally:
        timer.cancel()
        gone.remove_done_callback(hung_up)  # a hang-up from now on changes nothing
        if isinstance(gone, asyncio.Task):  # our watcher; the server's own signal is not ours
            gone.cancel()


def json_response(content: dict[str, Any], status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )


def classes(entry: Entry, probs: np.ndarray, key: str) -> list[dict[str, Any]]:
    """Per-item answers of a classifier: the class and its probability vector."""
    best = probs.argmax(axis=1).tolist()
    return [{key: b, "probabilities": p} for b, p in zip(best, probs, strict=True)]
