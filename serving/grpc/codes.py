"""The service's errors as gRPC status codes, as Triton maps them."""

from __future__ import annotations

import grpc

from serving.errors import ApiError

CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,  # no key
    403: grpc.StatusCode.UNAUTHENTICATED,  # a key, but not one of ours: still no valid credentials
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def code_of(status: int) -> grpc.StatusCode:
    return CODES.get(status, grpc.StatusCode.INTERNAL)


def details_of(e: ApiError) -> str:
    """The message, prefixed with the field as the JSON `error` is: 'inputs[0].shape: ...'."""
    return f"{e.field}: {e.message}" if e.field else e.message
