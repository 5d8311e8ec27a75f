"""What the gRPC side relies on, checked without a server: its imports point down only (to the
engine, never to the HTTP side), and the generated modules it takes from tritonclient have the
service, methods and messages it implements."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import serving
from serving.grpc import protos
from serving.grpc.rpcs import UNARY
from serving.grpc.servicer import Servicer

GRPC = Path(serving.__file__).parent / "grpc"
FORBIDDEN = ("serving.api", "serving.http", "serving.app", "fastapi", "starlette")


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(GRPC.glob("*.py")), ids=lambda p: p.name)
def test_grpc_imports_only_the_engine_and_below(path: Path) -> None:
    bad = {m for m in imports_of(path) if m.startswith(FORBIDDEN)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_layer_test_can_fail() -> None:
    """The walk above does see imports (a check that sees nothing passes everything)."""
    assert "serving.engine.registry" in imports_of(GRPC / "rpcs.py")
    ingress = Path(serving.__file__).parent / "http" / "ingress.py"
    assert any(m.startswith(FORBIDDEN) for m in imports_of(ingress))  # it imports serving.api


def test_the_generated_service_is_the_one_implemented() -> None:
    service = protos.service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == protos.SERVICE == "inference.GRPCInferenceService"
    methods = set(service.methods_by_name)
    implemented = {*UNARY, "ModelStreamInfer"}
    assert implemented <= methods
    for name in implemented:  # ours, not the generated base class's UNIMPLEMENTED stubs
        assert getattr(Servicer, name) is not getattr(protos.Servicer, name), name
    stream = service.methods_by_name["ModelStreamInfer"]
    assert stream.client_streaming and stream.server_streaming
    # Messages and fields read or written by serving/grpc/ (renamed fields would break it).
    pb = protos.service_pb2
    assert {"raw_input_contents", "inputs", "outputs", "parameters", "id"} <= set(
        pb.ModelInferRequest.DESCRIPTOR.fields_by_name
    )
    assert {"raw_output_contents", "outputs", "model_version"} <= set(
        pb.ModelInferResponse.DESCRIPTOR.fields_by_name
    )
    assert {"fp32_contents", "fp64_contents", "int_contents", "int64_contents"} <= set(
        pb.InferTensorContents.DESCRIPTOR.fields_by_name
    )
    assert {"max_batch_size", "input", "output", "dynamic_batching"} <= set(
        protos.model_config_pb2.ModelConfig.DESCRIPTOR.fields_by_name
    )
    assert callable(protos.add_servicer)


def test_the_messages_pickle() -> None:
    """Ray Serve's gRPC proxy pickles each request for its replica: the classes must be found
    by the module name they carry."""
    import pickle

    request = protos.service_pb2.ModelInferRequest(model_name="lenet", id="p")
    request.inputs.add(name="pixels", datatype="FP32", shape=[1, 784])
    assert pickle.loads(pickle.dumps(request)) == request
    config = protos.model_config_pb2.ModelConfig(name="lenet", max_batch_size=64)
    assert pickle.loads(pickle.dumps(config)) == config
