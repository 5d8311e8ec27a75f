"""inference.GRPCInferenceService for grpc.aio: each RPC of rpcs.py with what every call gets.

Per call: the request id (metadata `x-request-id`, else a new one; sent back in the trailing
metadata), admission for inference (past `max_in_flight` at once, UNAVAILABLE at once), the
hang-up (a cancelled RPC, or one whose deadline passed, completes the `gone` future, so work
still queued for it is dropped, never computed), errors as gRPC status codes, and metrics
(serving_requests_total / serving_request_seconds, endpoint `grpc:<Method>`, status the code's
name).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import grpc
from grpc import aio

from serving import metrics
from serving.errors import ApiError
from serving.grpc import protos
from serving.grpc.call import REQUEST_ID, Call
from serving.grpc.codes import code_of, details_of
from serving.grpc.protos import service_pb2 as pb
from serving.grpc.rpcs import UNARY, Rpcs

log = logging.getLogger("serving")
access = logging.getLogger("serving.access")
ENDPOINTS = {m: f"grpc:{m}" for m in (*UNARY, "ModelStreamInfer")}  # the metrics' endpoint label


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Take a finished task's outcome, so that an abandoned one is never reported unretrieved."""
    if not task.cancelled():
        task.exception()


async def cancellable(coro: Coroutine[Any, Any, Any], call: Call) -> Any:
    """Run `coro` (which passes call.gone to the engine) so that a cancelled RPC says so through
    call.gone: grpc.aio cancels the handler's task when the client cancels or its deadline
    passes, and the engine then drops the call's queued work and counts it as the client's
    hang-up (499). The work runs in a task of its own, shielded, so that the engine learns of
    the cancellation from `gone`, not from being cancelled itself (which it reads as shutdown)."""
    work = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        if call.gone is not None and not call.gone.done():
            call.gone.set_result(None)
        work.add_done_callback(_retrieve)  # it ends at once: its answer is cancelled
        raise


class Servicer(protos.Servicer):
    def __init__(self, rpcs: Rpcs) -> None:
        self.rpcs = rpcs
        self.max_in_flight = rpcs.settings.max_in_flight
        self.access_log = rpcs.settings.access_log
        self.in_flight = 0

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        if self.in_flight >= self.max_in_flight:
            metrics.REJECTED.labels("", "busy").inc()
            raise ApiError(503, "the server is busy; retry later")
        self.in_flight += 1
        metrics.IN_FLIGHT.inc()
        try:
            yield
        finally:
            self.in_flight -= 1
            metrics.IN_FLIGHT.dec()

    def record(self, method: str, call: Call, code: grpc.StatusCode, started: float) -> None:
        seconds = time.perf_counter() - started
        endpoint = ENDPOINTS[method]
        counter, latency = metrics.REQUEST_CHILDREN[endpoint, call.model, code.name]
        counter.inc()
        latency.observe(seconds)
        if self.access_log:
            access.info(
                "gRPC %s",
                method,
                extra={
                    "request_id": call.request_id,
                    "endpoint": endpoint,
                    "status": code.name,
                    "model": call.model,
                    "seconds": round(seconds, 6),
                },
            )

    @staticmethod
    def fault(e: Exception, call: Call, method: str) -> str:
        """Log an internal fault by its type only; the message that names its request id."""
        log.error(
            "internal error: %s",
            type(e).__name__,
            extra={"request_id": call.request_id, "endpoint": f"grpc:{method}"},
        )
        return f"internal error (request id {call.request_id})"

    async def unary(self, method: str, request: Any, context: aio.ServicerContext) -> Any:
        started = time.perf_counter()
        call = Call(context.invocation_metadata())
        trailer = ((REQUEST_ID, call.request_id),)
        code = grpc.StatusCode.OK
        try:
            if method == "ModelInfer":
                call.gone = asyncio.get_running_loop().create_future()
                with self.admitted():
                    response = await cancellable(self.rpcs.ModelInfer(request, call), call)
            else:
                response = await getattr(self.rpcs, method)(request, call)
            context.set_trailing_metadata(trailer)
            return response
        except ApiError as e:
            code = code_of(e.status)
            await context.abort(code, details_of(e), trailing_metadata=trailer)
        except asyncio.CancelledError:  # the client cancelled, or its deadline passed
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as e:  # an internal fault: the request id, no trace, no paths
            code = grpc.StatusCode.INTERNAL
            await context.abort(code, self.fault(e, call, method), trailing_metadata=trailer)
        finally:
            self.record(method, call, code, started)

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[pb.ModelInferRequest], context: aio.ServicerContext
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        """Each request of the stream is answered as soon as its answer is ready (requests run
        concurrently, so they meet in batches); a failed one is answered with its
        `error_message`, and the stream goes on, as Triton does."""
        call = Call(context.invocation_metadata(), asyncio.get_running_loop().create_future())
        context.set_trailing_metadata(((REQUEST_ID, call.request_id),))
        if self.rpcs.keys:
            try:
                call.check_key(self.rpcs.keys)
            except ApiError as e:
                await context.abort(code_of(e.status), details_of(e))
        answers: asyncio.Queue[pb.ModelStreamInferResponse | None] = asyncio.Queue()
        running: set[asyncio.Task[None]] = set()

        async def answer(request: pb.ModelInferRequest) -> None:
            started, code = time.perf_counter(), grpc.StatusCode.OK
            one = Call(call.metadata.items(), call.gone)
            try:
                with self.admitted():
                    response = await self.rpcs.ModelInfer(request, one)
                answers.put_nowait(pb.ModelStreamInferResponse(infer_response=response))
            except Exception as e:
                if isinstance(e, ApiError):
                    code, message = code_of(e.status), details_of(e)
                else:  # an internal fault: the request id, no trace, no paths
                    code, message = grpc.StatusCode.INTERNAL, self.fault(e, one, "ModelStreamInfer")
                failed = pb.ModelInferResponse(model_name=request.model_name, id=request.id)
                answers.put_nowait(
                    pb.ModelStreamInferResponse(error_message=message, infer_response=failed)
                )
            finally:
                self.record("ModelStreamInfer", one, code, started)

        async def read() -> None:
            try:
                async for request in request_iterator:
                    task = asyncio.ensure_future(answer(request))
                    running.add(task)
                    task.add_done_callback(running.discard)
                while running:
                    await asyncio.wait(set(running))
            finally:
                answers.put_nowait(None)

        reader = asyncio.ensure_future(read())
        try:
            while (item := await answers.get()) is not None:
                yield item
            await reader  # re-raises what ended the reading, if anything did
        finally:
            # Ended early (the client cancelled, or its deadline passed): what is still queued
            # is dropped, as a hang-up.
            if not call.gone.done():
                call.gone.set_result(None)
            reader.cancel()
            for task in list(running):
                task.add_done_callback(_retrieve)


def _bind(method: str) -> Callable[..., Any]:
    async def rpc(self: Servicer, request: Any, context: aio.ServicerContext) -> Any:
        return await self.unary(method, request, context)

    rpc.__name__ = rpc.__qualname__ = method
    return rpc


for _method in UNARY:
    setattr(Servicer, _method, _bind(_method))
