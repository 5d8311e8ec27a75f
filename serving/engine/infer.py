"""What a prediction is, whatever protocol asked for it: inputs through the model's batcher.

    wire -> float32 array (the protocol's own folder)  ->  infer (here)  ->  wire

`infer` hands the array to the model's batcher and gives up cleanly when the caller goes away
(`gone` completes: the queued work is dropped, never computed), when the queue is full (503),
or when the answer takes longer than the timeout (504; the model itself is left alone). It knows
nothing of HTTP or gRPC: each protocol tells it of a hang-up through `gone`, and maps the
ApiError it may raise to its own status codes. Each request counts as a success or a failure
(with Triton's reason) in the model's statistics, with its time here.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from serving import metrics
from serving.engine.batching import NotFinite, Overloaded
from serving.engine.registry import Entry
from serving.engine.statistics import BACKEND, CANCELED, OTHER, REASON_OF_STATUS
from serving.errors import ApiError

# The ASGI scope extension in which a server puts a future done when the client hangs up: the
# engine's name for the news `gone` brings (serving/http/protocol.py sets it; servers that do
# not, e.g. Ray Serve's proxy, leave the route to watch `receive()` itself).
DISCONNECTED = "serving.disconnected"


async def infer(
    entry: Entry,
    x: np.ndarray,
    timeout_s: float,
    gone: asyncio.Future[None] | None = None,
    field: str = "inputs",
    bad_input: int = 422,
) -> np.ndarray:
    """x through the model's batcher: the answer rows, or 503 (full), 504 (slow), 499 (gone),
    or `bad_input` naming the first item the model has no finite answer for."""
    started = time.perf_counter_ns()
    name = entry.spec.name
    try:
        answer = entry.batcher.enqueue(x)
    except Overloaded as e:
        metrics.REJECTED.labels(name, "overloaded").inc()
        raise _failed(
            entry,
            started,
            ApiError(
                503, f"model {name!r} is overloaded: {e}; retry later", headers={"Retry-After": "1"}
            ),
        ) from None
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
    if gone is not None:
        gone.add_done_callback(hung_up)
    timer = asyncio.get_running_loop().call_later(timeout_s, expire)
    try:
        y = await answer
    except NotFinite as e:  # the batcher checks the answers (off the event loop)
        raise _failed(
            entry,
            started,
            ApiError(
                bad_input,
                "the model's answer overflowed for these values: send numbers of a sensible size",
                f"{field}[{e.row}]",
            ),
        ) from None
    except asyncio.CancelledError:
        if timed_out:
            metrics.REJECTED.labels(name, "timeout").inc()
            raise _failed(
                entry,
                started,
                ApiError(504, f"no answer within {timeout_s:g} s", headers={"Retry-After": "1"}),
            ) from None
        if gone is not None and gone.done() and not gone.cancelled():
            metrics.REJECTED.labels(name, "client_gone").inc()
            raise _failed(entry, started, ApiError(499, "client closed the request")) from None
        entry.stats.fail(time.perf_counter_ns() - started, CANCELED)
        raise  # this request itself is being cancelled (shutdown)
    except Exception:  # the model itself failed
        entry.stats.fail(time.perf_counter_ns() - started, BACKEND)
        raise
    finally:
        timer.cancel()
        if gone is not None:
            gone.remove_done_callback(hung_up)  # a hang-up from now on changes nothing
    entry.stats.success(time.perf_counter_ns() - started)
    return y


def _failed(entry: Entry, started: int, error: ApiError) -> ApiError:
    """The error, counted as a failure with Triton's reason for its status."""
    entry.stats.fail(time.perf_counter_ns() - started, REASON_OF_STATUS.get(error.status, OTHER))
    return error
