"""The gRPC inference protocol against the real server process (`python -m serving`), with real
clients nobody here wrote: tritonclient.grpc (sync and asyncio), grpc_health, server reflection,
and the plain generated stub for what tritonclient never sends (typed contents)."""

from __future__ import annotations

import asyncio
import contextlib
import queue
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
import tritonclient.grpc.aio as triton_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc
from tritonclient.utils import InferenceServerException

from models.spec import SPECS
from tests.serving.conftest import free_port, live_server
from tests.serving.test_v2 import items

KEY, ADMIN = "grpc-test-key", "grpc-admin-key"
AUTH = {"authorization": f"Bearer {KEY}"}
LIMIT = 1024 * 1024  # SERVING_MAX_BODY_BYTES for this module: 1 MiB
NAMES = list(SPECS)


@pytest.fixture(scope="module")
def service(built_repo: Path) -> Iterator[tuple[str, str]]:
    """(REST base URL, gRPC address) of one server process with keys and a 1 MiB limit."""
    port = free_port()
    env = {
        "SERVING_API_KEYS": KEY,
        "SERVING_ADMIN_KEY": ADMIN,
        "SERVING_MAX_BODY_BYTES": str(LIMIT),
    }
    with live_server(built_repo, "--grpc-port", str(port), env=env) as (url, _):
        yield url, f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def client(service: tuple[str, str]) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(service[1])
    yield c
    c.close()


@pytest.fixture(scope="module")
def stub(service: tuple[str, str]) -> Iterator[service_pb2_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(service[1]) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def rest(url: str, name: str, x: np.ndarray) -> np.ndarray:
    """/predict's answer for the same inputs: probabilities (N, C), or y (N, 1)."""
    family = SPECS[name].family
    if family == "curve":
        r = httpx.post(f"{url}/predict/curve", json={"x": x.reshape(-1).tolist()}, headers=AUTH)
        return np.array(r.json()["y"], np.float32)[:, None]
    key = "images" if family == "digits" else "points"
    data = x.reshape(len(x), 28, 28) if family == "digits" else x
    r = httpx.post(
        f"{url}/predict/{family}", json={key: data.tolist(), "model": name}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    return np.array([p["probabilities"] for p in r.json()["predictions"]], np.float32)


def infer_input(name: str, x: np.ndarray, datatype: str = "FP32") -> triton.InferInput:
    inp = triton.InferInput(SPECS[name].input.name, list(x.shape), datatype)
    inp.set_data_from_numpy(x)
    return inp


def code_of(call: object, *args: object, **kwargs: object) -> tuple[str, str]:
    """The gRPC status a tritonclient call ended with, and its message."""
    with pytest.raises(InferenceServerException) as e:
        call(*args, **kwargs)  # type: ignore[operator]
    return e.value.status(), e.value.message()


# ---- health and metadata ---------------------------------------------------------------------
def test_live_ready_and_server_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata(as_json=True)
    assert meta["name"] == "starter-serve" and meta["version"] == "0.1.0"
    assert {"model_configuration", "statistics", "model_repository"} <= set(meta["extensions"])


@pytest.mark.parametrize("name", NAMES)
def test_model_ready_and_metadata(client: triton.InferenceServerClient, name: str) -> None:
    spec = SPECS[name]
    assert client.is_model_ready(name) and client.is_model_ready(name, "1")
    assert not client.is_model_ready(name, "2") and not client.is_model_ready("nope")
    for version in ("", "1"):
        meta = client.get_model_metadata(name, version, as_json=True)
        assert meta["name"] == name and meta["versions"] == ["1"]
        assert meta["platform"] == "onnxruntime_onnx"
        assert meta["inputs"] == [
            {
                "name": spec.input.name,
                "datatype": "FP32",
                "shape": ["-1", *map(str, spec.input.shape)],
            }
        ]
        want = [spec.output.name, *(["label"] if spec.is_classifier else [])]
        assert [o["name"] for o in meta["outputs"]] == want


def test_model_config(client: triton.InferenceServerClient) -> None:
    config = client.get_model_config("lenet", as_json=True)["config"]
    assert config["name"] == "lenet" and config["platform"] == "onnxruntime_onnx"
    assert config["max_batch_size"] == 64 and "dynamic_batching" in config
    assert config["input"] == [
        {"name": "pixels", "data_type": "TYPE_FP32", "dims": ["1", "28", "28"]}
    ]
    assert [(o["name"], o["data_type"]) for o in config["output"]] == [
        ("probabilities", "TYPE_FP32"),
        ("label", "TYPE_INT64"),
    ]
    assert code_of(client.get_model_config, "nope")[0] == "StatusCode.NOT_FOUND"


def test_health_service_and_reflection(service: tuple[str, str]) -> None:
    with grpc.insecure_channel(service[1]) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "inference.GRPCInferenceService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as e:
            health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        answer = next(iter(reflect.ServerReflectionInfo(iter([ask]), timeout=5)))
        names = {s.name for s in answer.list_services_response.service}
        assert {"inference.GRPCInferenceService", "grpc.health.v1.Health"} <= names
        ask = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="inference.GRPCInferenceService"
        )
        answer = next(iter(reflect.ServerReflectionInfo(iter([ask]), timeout=5)))
        assert answer.file_descriptor_response.file_descriptor_proto  # grpcurl can describe it


# ---- inference ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_raw_infer_equals_predict(
    client: triton.InferenceServerClient, service: tuple[str, str], name: str
) -> None:
    x = items(name, 5, seed=3)
    result = client.infer(name, [infer_input(name, x)], headers=AUTH, request_id="r-1")
    spec, want = SPECS[name], rest(service[0], name, x)
    got = result.as_numpy(spec.output.name)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    if spec.is_classifier:
        label = result.as_numpy("label")
        assert label.dtype == np.int64 and label.ravel().tolist() == want.argmax(1).tolist()
    response = result.get_response()
    assert response.id == "r-1" and response.model_version == "1"
    assert len(response.raw_output_contents) == len(response.outputs)


def test_typed_contents_infer_equals_predict(
    stub: service_pb2_grpc.GRPCInferenceServiceStub, service: tuple[str, str]
) -> None:
    x = items("lenet", 3, seed=4)
    request = pb.ModelInferRequest(model_name="lenet", id="typed")
    t = request.inputs.add(name="pixels", datatype="FP32", shape=[3, 28, 28])  # dropped 1s
    t.contents.fp32_contents.extend(x.ravel().tolist())
    answer, call = stub.ModelInfer.with_call(
        request, metadata=[*AUTH.items(), ("x-request-id", "typed-rid")], timeout=10
    )
    assert not answer.raw_output_contents  # typed in, typed out
    probs, label = answer.outputs
    assert (probs.name, probs.datatype, list(probs.shape)) == ("probabilities", "FP32", [3, 10])
    assert (label.name, label.datatype, list(label.shape)) == ("label", "INT64", [3, 1])
    got = np.array(probs.contents.fp32_contents, np.float32).reshape(3, 10)
    want = rest(service[0], "lenet", x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert list(label.contents.int64_contents) == want.argmax(1).tolist()
    assert ("x-request-id", "typed-rid") in call.trailing_metadata()


NUMPY = {"UINT8": np.uint8, "INT64": np.int64, "FP64": np.float64}


@pytest.mark.parametrize(
    ("datatype", "field"),
    [("UINT8", "uint_contents"), ("INT64", "int64_contents"), ("FP64", "fp64_contents")],
)
def test_numeric_datatypes_are_cast(
    stub: service_pb2_grpc.GRPCInferenceServiceStub,
    client: triton.InferenceServerClient,
    datatype: str,
    field: str,
) -> None:
    """Typed and raw, an input of another numeric datatype gives the FP32 input's answer."""
    x = items("lenet", 2, seed=5)  # whole pixel values: exact in every datatype
    want = client.infer("lenet", [infer_input("lenet", x)], headers=AUTH).as_numpy("probabilities")
    typed = x.astype(NUMPY[datatype])
    request = pb.ModelInferRequest(model_name="lenet")
    t = request.inputs.add(name="pixels", datatype=datatype, shape=[2, 1, 28, 28])
    getattr(t.contents, field).extend(typed.ravel().tolist())
    got = stub.ModelInfer(request, metadata=list(AUTH.items()), timeout=10).outputs[0]
    np.testing.assert_allclose(
        np.array(got.contents.fp32_contents).reshape(2, 10), want, rtol=0, atol=1e-6
    )
    raw = client.infer("lenet", [infer_input("lenet", typed, datatype)], headers=AUTH)
    np.testing.assert_allclose(raw.as_numpy("probabilities"), want, rtol=0, atol=1e-6)


def test_requested_outputs_and_version(client: triton.InferenceServerClient) -> None:
    x = items("mlp", 2)
    only = [triton.InferRequestedOutput("label")]
    result = client.infer(
        "mlp", [infer_input("mlp", x)], model_version="1", outputs=only, headers=AUTH
    )
    assert [o.name for o in result.get_response().outputs] == ["label"]
    assert result.as_numpy("probabilities") is None and result.as_numpy("label").shape == (2, 1)


def test_asyncio_client(service: tuple[str, str]) -> None:
    async def run() -> None:
        async with triton_aio.InferenceServerClient(service[1]) as c:
            assert await c.is_server_live() and await c.is_server_ready()
            assert await c.is_model_ready("lenet")
            meta = await c.get_model_metadata("lenet", as_json=True)
            assert meta["name"] == "lenet"
            x = items("lenet", 4, seed=9)
            inp = triton_aio.InferInput("pixels", list(x.shape), "FP32")
            inp.set_data_from_numpy(x)
            results = await asyncio.gather(
                *(c.infer("lenet", [inp], headers=AUTH) for _ in range(8))
            )
            first = results[0].as_numpy("probabilities")
            assert all(np.array_equal(r.as_numpy("probabilities"), first) for r in results)
            want = rest(service[0], "lenet", x)
            np.testing.assert_allclose(first, want, rtol=0, atol=1e-6)
            stats = await c.get_inference_statistics("lenet", as_json=True)
            assert int(stats["model_stats"][0]["inference_count"]) >= 32
            index = await c.get_model_repository_index(as_json=True)
            assert {m["name"] for m in index["models"]} == set(NAMES)

    asyncio.run(run())


def test_stream_infer(client: triton.InferenceServerClient) -> None:
    answers: queue.Queue[tuple[object, object]] = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)), headers=AUTH)
    try:
        x = items("lenet", 2)
        for i in range(4):
            client.async_stream_infer("lenet", [infer_input("lenet", x)], request_id=f"s{i}")
        bad = infer_input("lenet", np.zeros((1, 27, 28), np.float32))
        client.async_stream_infer("lenet", [bad], request_id="bad")
        got = [answers.get(timeout=10) for _ in range(5)]
    finally:
        client.stop_stream()
    ok = {r.get_response().id: r for r, e in got if e is None}
    errors = [e for r, e in got if e is not None]
    assert set(ok) == {"s0", "s1", "s2", "s3"}
    assert all(r.as_numpy("probabilities").shape == (2, 10) for r in ok.values())
    assert len(errors) == 1 and "inputs[0].shape" in errors[0].message()


def test_statistics_count_inference(client: triton.InferenceServerClient) -> None:
    def count() -> int:
        stats = client.get_inference_statistics("points", as_json=True)["model_stats"]
        assert [s["name"] for s in stats] == ["points"] and stats[0]["version"] == "1"
        return int(stats[0].get("inference_count", 0))

    before = count()
    client.infer("points", [infer_input("points", items("points", 3))], headers=AUTH)
    assert count() == before + 3
    stats = client.get_inference_statistics("points", as_json=True)["model_stats"][0]
    assert int(stats["inference_stats"]["success"]["count"]) >= 1  # Triton's own fields
    assert int(stats["inference_stats"]["success"]["ns"]) > 0
    everything = client.get_inference_statistics(as_json=True)["model_stats"]
    assert {s["name"] for s in everything} == set(NAMES)


def test_repository_index(client: triton.InferenceServerClient) -> None:
    index = client.get_model_repository_index(as_json=True)["models"]
    assert sorted((m["name"], m["version"], m["state"]) for m in index) == sorted(
        (n, "1", "READY") for n in NAMES
    )


# ---- refusals, each with its code ------------------------------------------------------------
def test_bad_inputs_and_their_codes(client: triton.InferenceServerClient) -> None:
    x = items("lenet", 2)
    infer = client.infer
    cases = {
        "wrong shape": (("lenet", [infer_input("lenet", x.reshape(2, 28, 28)[:, :27])]), {}),
        "unknown output": (
            ("lenet", [infer_input("lenet", x)]),
            {"outputs": [triton.InferRequestedOutput("logits")]},
        ),
        "unknown model": (("nope", [infer_input("lenet", x)]), {}),
        "unknown version": (("lenet", [infer_input("lenet", x)]), {"model_version": "7"}),
        "NaN": (("lenet", [infer_input("lenet", np.full_like(x, np.nan))]), {}),
        "out of range": (("lenet", [infer_input("lenet", x + 300)]), {}),
        "BYTES": (("lenet", [triton.InferInput("pixels", [1, 784], "BYTES")]), {}),
    }
    want = {
        "wrong shape": ("INVALID_ARGUMENT", "inputs[0].shape"),
        "unknown output": ("INVALID_ARGUMENT", "outputs[0].name: unknown output 'logits'"),
        "unknown model": ("NOT_FOUND", "unknown model 'nope'"),
        "unknown version": ("NOT_FOUND", "has no version '7'"),
        "NaN": ("INVALID_ARGUMENT", "is not a finite"),
        "out of range": ("INVALID_ARGUMENT", "is outside 0-255"),
        "BYTES": ("INVALID_ARGUMENT", "inputs[0].datatype"),
    }
    cases["BYTES"][0][1][0].set_data_from_numpy(np.array([[b"x"] * 784], dtype=object))
    for case, (args, kwargs) in cases.items():
        code, message = code_of(infer, *args, headers=AUTH, **kwargs)
        assert code == f"StatusCode.{want[case][0]}", (case, code, message)
        assert want[case][1] in message, (case, message)


def test_a_message_over_the_limit_is_resource_exhausted(
    client: triton.InferenceServerClient,
) -> None:
    n = LIMIT // (784 * 4) + 1  # just past SERVING_MAX_BODY_BYTES
    code, _ = code_of(
        client.infer, "lenet", [infer_input("lenet", items("lenet", n))], headers=AUTH
    )
    assert code == "StatusCode.RESOURCE_EXHAUSTED"
    below = items("lenet", n - 2)  # and just under it is answered
    assert client.infer("lenet", [infer_input("lenet", below)], headers=AUTH).as_numpy(
        "label"
    ).shape == (n - 2, 1)
    # The limit holds for what a compressed message becomes, not what it was on the wire.
    zeros = [infer_input("lenet", np.zeros((n, 1, 28, 28), np.float32))]
    code, message = code_of(
        client.infer, "lenet", zeros, headers=AUTH, compression_algorithm="gzip"
    )
    assert code == "StatusCode.RESOURCE_EXHAUSTED", message


def test_more_items_than_max_items_is_resource_exhausted(
    client: triton.InferenceServerClient,
) -> None:
    """The item-count limit (SERVING_MAX_ITEMS, 1024), the REST 413, small as the message is."""
    code, message = code_of(
        client.infer, "curve", [infer_input("curve", items("curve", 1025))], headers=AUTH
    )
    assert code == "StatusCode.RESOURCE_EXHAUSTED" and "1024" in message, message


def test_keys(
    client: triton.InferenceServerClient, stub: service_pb2_grpc.GRPCInferenceServiceStub
) -> None:
    inp = [infer_input("lenet", items("lenet", 1))]
    for headers in (
        {},
        {"authorization": "Bearer wrong"},
        {"x-api-key": "wrong"},
        {"authorization": KEY},
    ):
        code, message = code_of(client.infer, "lenet", inp, headers=headers)
        assert code == "StatusCode.UNAUTHENTICATED", (headers, code, message)
        assert KEY not in message
    assert client.infer("lenet", inp, headers={"x-api-key": KEY}).as_numpy("label").shape == (1, 1)
    # Streams too: refused as a whole without a key.
    errors: queue.Queue[object] = queue.Queue()
    client.start_stream(callback=lambda result, error: errors.put(error))
    try:
        with contextlib.suppress(InferenceServerException):  # the stream may be closed already
            client.async_stream_infer("lenet", inp)
        error = errors.get(timeout=10)
    finally:
        client.stop_stream()
    assert error is not None and error.status() == "StatusCode.UNAUTHENTICATED"
    # Metadata, health and the repository index stay open, as over REST.
    assert client.is_server_ready() and client.get_model_metadata("lenet")


def test_repository_load_needs_the_admin_key(client: triton.InferenceServerClient) -> None:
    for headers in ({}, AUTH, {"authorization": "Bearer wrong"}):
        code, _ = code_of(client.load_model, "lenet", headers=headers)
        assert code == "StatusCode.UNAUTHENTICATED"
        code, _ = code_of(client.unload_model, "lenet", headers=headers)
        assert code == "StatusCode.UNAUTHENTICATED"
    admin = {"authorization": f"Bearer {ADMIN}"}
    client.load_model("lenet", headers=admin)  # already the newest: unchanged, still ready
    assert client.is_model_ready("lenet")
    code, _ = code_of(client.load_model, "nope", headers=admin)
    assert code == "StatusCode.NOT_FOUND"


def test_metrics_count_grpc_calls(
    client: triton.InferenceServerClient, service: tuple[str, str]
) -> None:
    client.infer("curve", [infer_input("curve", items("curve", 1))], headers=AUTH)
    code_of(client.infer, "nope", [infer_input("curve", items("curve", 1))], headers=AUTH)
    text = httpx.get(f"{service[0]}/metrics").text
    assert 'serving_requests_total{endpoint="grpc:ModelInfer",model="curve",status="OK"}' in text
    # A name the registry does not know never becomes a label (clients could mint them
    # without bound): the refusal is counted without one, as over HTTP.
    assert 'endpoint="grpc:ModelInfer",model="",status="NOT_FOUND"' in text
    assert 'model="nope"' not in text
    assert 'serving_request_seconds_count{endpoint="grpc:ModelInfer"}' in text
    # Triton's own names count gRPC requests too (the engine records them for both protocols).
    success = next(
        ln
        for ln in text.splitlines()
        if ln.startswith('nv_inference_request_success{model="curve"')
    )
    assert float(success.rsplit(" ", 1)[1]) >= 1


def test_what_is_not_implemented_says_so(stub: service_pb2_grpc.GRPCInferenceServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as e:
        stub.SystemSharedMemoryStatus(pb.SystemSharedMemoryStatusRequest(), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unload_then_load(client: triton.InferenceServerClient) -> None:
    """RepositoryModelUnload stops serving a model (UNAVAILABLE, not ready, UNAVAILABLE in the
    index), RepositoryModelLoad brings it back; both behind the admin key."""
    admin = {"authorization": f"Bearer {ADMIN}"}
    inp = [infer_input("mlp", items("mlp", 1))]
    client.unload_model("mlp", headers=admin)
    try:
        assert not client.is_model_ready("mlp")
        assert client.is_server_ready()  # as Triton: only the models meant to be loaded count
        code, message = code_of(client.infer, "mlp", inp, headers=AUTH)
        assert code == "StatusCode.UNAVAILABLE", message
        (mlp,) = [
            m
            for m in client.get_model_repository_index(as_json=True)["models"]
            if m["name"] == "mlp"
        ]
        assert mlp["state"] == "UNAVAILABLE" and mlp["reason"] == "unloaded"
    finally:
        client.load_model("mlp", headers=admin)
    assert client.is_model_ready("mlp") and client.is_server_ready()
    assert client.infer("mlp", inp, headers=AUTH).as_numpy("label").shape == (1, 1)
