"""gRPC on Ray Serve: inference.GRPCInferenceService through Ray Serve's own gRPC proxy.

Ray's proxy adds the generated servicer (grpc_options with GRPC_SERVICER, the generated
add_..._to_server) and calls the deployment's methods by name; each RPC is such a method
(GrpcMethods) over serving/grpc/rpcs.py, as `python -m serving` serves it with grpc.aio. The
deployment in serving/ray_app.py inherits these methods; a replica never starts a gRPC server
of its own (grpc_port 0 there). Nothing here imports ray.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from serving.errors import ApiError
from serving.grpc import protos
from serving.grpc.call import REQUEST_ID, Call
from serving.grpc.codes import code_of, details_of
from serving.grpc.rpcs import UNARY, Rpcs

log = logging.getLogger("serving.ray")

# For Ray's gRPC proxy (grpc_options.grpc_servicer_functions): the generated function that adds
# inference.GRPCInferenceService to a server; Ray then calls the deployment's methods by name.
GRPC_SERVICER = "serving.grpc.protos.add_servicer"
DEFAULT_GRPC_PORT = 8001


def _response_type(method: str) -> type[Any]:
    service = protos.service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    return getattr(protos.service_pb2, service.methods_by_name[method].output_type.name)


class GrpcMethods:
    """inference.GRPCInferenceService as methods of the deployment, for Ray Serve's gRPC proxy:
    each is the RPC of serving/grpc/rpcs.py, its ApiError set on Ray's gRPC context as the
    status code (as serving/grpc/servicer.py does for grpc.aio). Ray gives no hang-up signal
    of its own: it cancels the replica's task when the client goes away, which drops queued
    work as well."""

    rpcs: Rpcs

    async def _unary(self, method: str, request: Any, grpc_context: Any) -> Any:
        call = Call(grpc_context.invocation_metadata())
        grpc_context.set_trailing_metadata([(REQUEST_ID, call.request_id)])
        try:
            return await getattr(self.rpcs, method)(request, call)
        except ApiError as e:
            grpc_context.set_code(code_of(e.status))
            grpc_context.set_details(details_of(e))
            return _response_type(method)()

    async def ModelStreamInfer(self, requests: Any, grpc_context: Any) -> AsyncIterator[Any]:
        """Each request answered in turn; a failed one with its error_message, as Triton."""
        pb = protos.service_pb2
        call = Call(grpc_context.invocation_metadata())
        async for request in requests:
            try:
                answer = await self.rpcs.ModelInfer(request, call)
                yield pb.ModelStreamInferResponse(infer_response=answer)
            except ApiError as e:
                failed = pb.ModelInferResponse(model_name=request.model_name, id=request.id)
                yield pb.ModelStreamInferResponse(
                    error_message=details_of(e), infer_response=failed
                )


def _grpc_method(method: str) -> Any:
    async def rpc(self: GrpcMethods, request: Any, grpc_context: Any) -> Any:
        return await self._unary(method, request, grpc_context)

    rpc.__name__ = rpc.__qualname__ = method
    return rpc


for _method in UNARY:
    setattr(GrpcMethods, _method, _grpc_method(_method))


def grpc_options(port: int) -> dict[str, Any] | None:
    """Ray Serve's gRPC proxy on `port` with the inference service; None (no proxy) for 0.
    Ray binds it on every interface ([::]), so without API keys say so."""
    if not port:
        return None
    if not os.environ.get("SERVING_API_KEYS"):
        log.warning(
            "Ray's gRPC proxy listens on port %d of every interface, and no API key is set: "
            "anyone who can reach this machine can use it; set SERVING_API_KEYS or "
            "--grpc-port 0",
            port,
        )
    return {"port": port, "grpc_servicer_functions": [GRPC_SERVICER]}
