"""gRPC on Ray Serve, checked without starting Ray: the config's gRPC proxy adds the generated
inference service, the deployment answers every RPC as a method of its own (Ray calls them by
name, with its gRPC context), a replica starts no gRPC server of its own, and the methods give
the answers and status codes of `python -m serving`'s gRPC server."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import yaml

from serving.grpc import protos
from serving.grpc.rpcs import UNARY, Rpcs
from tests.serving.conftest import Service, built_repo, settings_for  # noqa: F401 (fixture)
from tests.serving.test_v2 import items

serve = pytest.importorskip("ray.serve", reason="Ray Serve is not installed (ray[serve])")
from ray.serve.config import gRPCOptions  # noqa: E402
from ray.serve.schema import ServeDeploySchema  # noqa: E402

from serving import ray_app, ray_grpc  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
pb = protos.service_pb2


class RayContext:
    """What the deployment uses of Ray's RayServegRPCContext."""

    def __init__(self, metadata: list[tuple[str, str]] | None = None) -> None:
        self.metadata = metadata or []
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailing: list[tuple[str, str]] = []

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self.metadata

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details

    def set_trailing_metadata(self, trailing: list[tuple[str, str]]) -> None:
        self.trailing = trailing


def test_the_serve_config_starts_the_grpc_proxy_with_our_service() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "ray" / "serve-config.yaml").read_text())
    schema = ServeDeploySchema.model_validate(config)
    options = gRPCOptions(**schema.grpc_options.model_dump())
    assert options.port == 8001
    assert options.grpc_servicer_functions == [ray_grpc.GRPC_SERVICER]
    assert options.grpc_servicer_func_callable == [protos.add_servicer]  # it imports
    assert protos.add_servicer.__name__ == "add_GRPCInferenceServiceServicer_to_server"
    assert ray_grpc.grpc_options(8001) == {
        "port": 8001,
        "grpc_servicer_functions": [ray_grpc.GRPC_SERVICER],
    }
    assert ray_grpc.grpc_options(0) is None


def test_the_deployment_has_every_rpc_with_ray_grpc_context() -> None:
    user_class = ray_app.StarterServe.func_or_class
    for method in (*UNARY, "ModelStreamInfer"):
        fn = getattr(user_class, method)
        assert "grpc_context" in inspect.signature(fn).parameters, method  # Ray passes it by name
    assert inspect.isasyncgenfunction(user_class.ModelStreamInfer)


def test_a_replica_starts_no_grpc_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVING_GRPC_PORT", "8001")
    # The class as written (Ray's ingress wraps it in a subclass that needs a running Ray).
    wrapped = ray_app.StarterServe.func_or_class
    ours = next(c for c in wrapped.__mro__ if "__serve_build_asgi_app__" in vars(c))
    replica = object.__new__(ours)
    ours.__init__(replica, {"grpc_port": 9999})
    assert replica.settings.grpc_port == 0
    assert "grpc_port" not in ray_app.bound_settings(ray_app.Settings(grpc_port=8001))


class Methods(ray_grpc.GrpcMethods):
    def __init__(self, rpcs: Rpcs) -> None:
        self.rpcs = rpcs


@pytest.mark.anyio
async def test_the_methods_answer_as_the_grpc_server_does(built_repo: Path) -> None:  # noqa: F811
    settings = settings_for(built_repo, models=["lenet"], api_keys=["k"])
    async with Service(settings) as svc:
        methods = Methods(Rpcs(settings, lambda: svc.registry, "starter-serve", "0.1.0"))
        ctx = RayContext()
        ready = await methods.ServerReady(pb.ServerReadyRequest(), grpc_context=ctx)
        assert ready.ready and ctx.code is None
        x = items("lenet", 2)
        request = pb.ModelInferRequest(model_name="lenet", id="ray")
        request.inputs.add(name="pixels", datatype="FP32", shape=[2, 1, 28, 28])
        request.raw_input_contents.append(x.tobytes())
        ctx = RayContext([("authorization", "Bearer k"), ("x-request-id", "rid-1")])
        answer = await methods.ModelInfer(request, grpc_context=ctx)
        assert ctx.code is None and ("x-request-id", "rid-1") in ctx.trailing
        probs = np.frombuffer(answer.raw_output_contents[0], np.float32).reshape(2, 10)
        want = svc.registry.entries["lenet"].runner(x)
        np.testing.assert_allclose(probs, want, rtol=0, atol=1e-6)
        # Errors: the code on Ray's context, and an empty answer of the right type.
        ctx = RayContext()
        empty = await methods.ModelInfer(request, grpc_context=ctx)
        assert ctx.code == grpc.StatusCode.UNAUTHENTICATED and empty == pb.ModelInferResponse()
        ctx = RayContext()
        meta = await methods.ModelMetadata(pb.ModelMetadataRequest(name="nope"), grpc_context=ctx)
        assert ctx.code == grpc.StatusCode.NOT_FOUND and "nope" in ctx.details
        assert isinstance(meta, pb.ModelMetadataResponse)

        async def stream() -> Any:
            yield request
            bad = pb.ModelInferRequest(model_name="lenet", id="bad")
            bad.inputs.add(name="pixels", datatype="FP32", shape=[1, 5])
            yield bad

        ctx = RayContext([("authorization", "Bearer k")])
        answers = [a async for a in methods.ModelStreamInfer(stream(), grpc_context=ctx)]
        assert answers[0].infer_response.id == "ray" and not answers[0].error_message
        assert answers[1].infer_response.id == "bad" and "shape" in answers[1].error_message
