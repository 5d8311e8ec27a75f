"""The generated protobuf and gRPC modules of Triton's grpc_service.proto and model_config.proto.

They are the ones tritonclient ships (pinned in pyproject.toml), not a copy and not our own
generation: a client and this server in one process (the tests, a Ray replica) then share one
set of descriptors, where two generations of the same .proto would clash in protobuf's default
pool. tests/serving/test_grpc_layout.py checks what is relied on here.
"""

from __future__ import annotations

import sys

from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc

# The generated messages name their module as protoc saw the files, "grpc_service_pb2" and
# "model_config_pb2", not where tritonclient installs them; pickle finds a class by that name,
# and Ray Serve's gRPC proxy pickles each request to hand it to a replica. Both names resolve
# here, in every process that imports this module (Ray's proxy does, for GRPC_SERVICER).
sys.modules.setdefault("grpc_service_pb2", service_pb2)
sys.modules.setdefault("model_config_pb2", model_config_pb2)

SERVICE = "inference.GRPCInferenceService"
Servicer = service_pb2_grpc.GRPCInferenceServiceServicer
add_servicer = service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server

__all__ = ["SERVICE", "Servicer", "add_servicer", "model_config_pb2", "service_pb2"]
