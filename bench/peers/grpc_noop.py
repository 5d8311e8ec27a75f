"""The floor of any grpc.aio server: inference.GRPCInferenceService with no model behind it.

    python -m bench.peers.grpc_noop --port 8021

ModelInfer answers at once with zeros of the right shape (raw_output_contents), without reading
the input; ServerMetadata, ModelMetadata, ModelConfig and ModelStatistics answer what
perf_analyzer asks before and after a run, built from the LeNet spec as this service builds them
(serving/engine/model_config.py). Same grpc.aio, same uvloop, same generated servicer as
serving/grpc/: whatever this answers per second on one core is the most any grpc.aio service can
answer there, this one included (bench/grpc_bench.py measures it beside the real servers).
"""

from __future__ import annotations

import argparse
from typing import Any

import uvloop
from google.protobuf import json_format
from grpc import aio

from bench.peers.common import lenet_config, zero_outputs
from models.spec import LENET
from serving.engine.model_config import model_metadata
from serving.grpc import protos
from serving.grpc.protos import model_config_pb2
from serving.grpc.protos import service_pb2 as pb

CONFIG = lenet_config()


class NoModel(protos.Servicer):
    async def ServerLive(self, request: Any, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)

    async def ModelReady(self, request: Any, context: Any) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=True)

    async def ServerMetadata(self, request: Any, context: Any) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name="grpc-noop", version="0")

    async def ModelMetadata(self, request: Any, context: Any) -> pb.ModelMetadataResponse:
        return json_format.ParseDict(model_metadata(LENET, 1, "none"), pb.ModelMetadataResponse())

    async def ModelConfig(self, request: Any, context: Any) -> pb.ModelConfigResponse:
        config = json_format.ParseDict(CONFIG, model_config_pb2.ModelConfig())
        return pb.ModelConfigResponse(config=config)

    async def ModelStatistics(self, request: Any, context: Any) -> pb.ModelStatisticsResponse:
        return pb.ModelStatisticsResponse()

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Any
    ) -> pb.ModelInferResponse:
        n = request.inputs[0].shape[0] if request.inputs else 1
        answer = pb.ModelInferResponse(model_name=LENET.name, model_version="1", id=request.id)
        for name, datatype, shape, raw in zero_outputs(n):
            answer.outputs.add(name=name, datatype=datatype, shape=shape)
            answer.raw_output_contents.append(raw)
        return answer


async def serve(host: str, port: int) -> None:
    server = aio.server()
    protos.add_servicer(NoModel(), server)
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"grpc-noop on {host}:{port}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.peers.grpc_noop", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args()
    uvloop.run(serve(a.host, a.port))  # as uvicorn runs the service's loop


if __name__ == "__main__":
    main()
