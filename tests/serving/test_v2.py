"""The Open Inference Protocol endpoints (/v2), in process: metadata from the specs, the JSON and
binary tensor forms, answers equal to /predict's, and a 400 for every kind of bad request."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import store
from models.spec import SPECS
from serving.api import v2_schemas as ps
from serving.api.v2_decode import parse_request
from serving.errors import ApiError
from tests.serving.conftest import Service, settings_for

pytestmark = pytest.mark.anyio
HEADER = "Inference-Header-Content-Length"


# ---- helpers --------------------------------------------------------------------------------
def items(name: str, n: int, seed: int = 0) -> np.ndarray:
    """n valid float32 inputs for `name`, shaped (n, *spec.input.shape)."""
    spec, rng = SPECS[name], np.random.default_rng(seed)
    shape = (n, *spec.input.shape)
    if spec.family == "digits":
        return rng.integers(0, 256, size=shape).astype(np.float32)
    if spec.family == "points":
        return rng.normal(0, 2.5, size=shape).astype(np.float32)
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


async def predict(client: httpx.AsyncClient, name: str, x: np.ndarray) -> np.ndarray:
    """The same inputs through /predict: probabilities (N, C), or y (N, 1)."""
    family = SPECS[name].family
    if family == "curve":
        r = await client.post("/predict/curve", json={"x": x.reshape(-1).tolist()})
        assert r.status_code == 200, r.text
        return np.array(r.json()["y"], np.float32)[:, None]
    key = "images" if family == "digits" else "points"
    data = x.reshape(len(x), 28, 28) if family == "digits" else x
    r = await client.post(f"/predict/{family}", json={key: data.tolist(), "model": name})
    assert r.status_code == 200, r.text
    return np.array([p["probabilities"] for p in r.json()["predictions"]], np.float32)


def json_input(name: str, x: np.ndarray, datatype: str = "FP32", nested: bool = False) -> dict:
    data = x.astype(np.uint8 if datatype == "UINT8" else np.float64)
    return {
        "name": SPECS[name].input.name,
        "shape": list(x.shape),
        "datatype": datatype,
        "data": data.tolist() if nested else data.reshape(-1).tolist(),
    }


def binary_body(head: dict[str, Any], *blobs: bytes) -> tuple[bytes, dict[str, str]]:
    text = orjson.dumps(head)
    return b"".join((text, *blobs)), {HEADER: str(len(text))}


def decode(r: httpx.Response) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A protocol response, JSON or binary, as (JSON object, {output name: array})."""
    assert r.status_code == 200, r.text
    n = int(r.headers.get(HEADER, len(r.content)))
    head, rest, arrays = orjson.loads(r.content[:n]), r.content[n:], {}
    dtypes = {"FP32": "<f4", "INT64": "<i8"}
    for out in head["outputs"]:
        size = out.get("parameters", {}).get("binary_data_size")
        if size is None:
            arr = np.array(out["data"], dtype=dtypes[out["datatype"]])
        else:
            arr, rest = np.frombuffer(rest[:size], dtype=dtypes[out["datatype"]]), rest[size:]
        arrays[out["name"]] = arr.reshape(out["shape"])
    assert rest == b""
    return head, arrays


def check(name: str, arrays: dict[str, np.ndarray], want: np.ndarray) -> None:
    """The protocol's outputs carry exactly what /predict answered."""
    spec = SPECS[name]
    got = arrays[spec.output.name]
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)
    if spec.is_classifier:
        assert arrays["label"].shape == (len(want), 1)
        assert arrays["label"].ravel().tolist() == want.argmax(axis=1).tolist()


@pytest.fixture
async def svc(built_repo: Path):
    async with Service(settings_for(built_repo, max_items=8)) as service:
        yield service


# ---- server and model metadata --------------------------------------------------------------
async def test_server_health_and_metadata(svc: Service) -> None:
    c = svc.client
    meta = (await c.get("/v2")).json()
    assert meta == {
        "name": "starter-serve",
        "version": "0.1.0",
        "extensions": [
            "binary_tensor_data",
            "model_configuration",
            "statistics",
            "model_repository",
        ],
    }
    live, ready = await c.get("/v2/health/live"), await c.get("/v2/health/ready")
    assert (live.status_code, live.json()) == (200, {"live": True})
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


@pytest.mark.parametrize("name", list(SPECS))
async def test_model_metadata_comes_from_the_spec(svc: Service, name: str) -> None:
    spec = SPECS[name]
    outputs = [{"name": spec.output.name, "datatype": "FP32", "shape": [-1, *spec.output.shape]}]
    if spec.is_classifier:
        outputs.append({"name": "label", "datatype": "INT64", "shape": [-1, 1]})
    want = {
        "name": name,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": spec.input.name, "datatype": "FP32", "shape": [-1, *spec.input.shape]}],
        "outputs": outputs,
    }
    for path in (f"/v2/models/{name}", f"/v2/models/{name}/versions/1"):
        r = await svc.client.get(path)
        assert (r.status_code, r.json()) == (200, want)
        ready = await svc.client.get(f"{path}/ready")
        assert (ready.status_code, ready.json()) == (200, {"name": name, "ready": True})


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v2/models/nope"),
        ("GET", "/v2/models/nope/ready"),
        ("GET", "/v2/models/lenet/versions/2"),
        ("GET", "/v2/models/lenet/versions/2/ready"),
        ("GET", "/v2/models/lenet/versions/latest"),
        ("POST", "/v2/models/nope/infer"),
        ("POST", "/v2/models/lenet/versions/2/infer"),
    ],
)
async def test_unknown_model_or_version_is_404(svc: Service, method: str, path: str) -> None:
    body = {"inputs": [json_input("lenet", items("lenet", 1))]}
    r = await svc.client.request(method, path, json=body if method == "POST" else None)
    assert r.status_code == 404 and isinstance(r.json()["error"], str)


async def test_a_model_that_failed_to_load_is_not_ready(repo: Path) -> None:
    (store.version_dir(repo, "curve") / store.ONNX).write_bytes(b"not a model")
    async with Service(settings_for(repo)) as svc:
        c = svc.client
        assert (await c.get("/v2/health/ready")).status_code == 503
        r = await c.get("/v2/models/curve/ready")
        assert (r.status_code, r.json()) == (503, {"name": "curve", "ready": False})
        body = {"inputs": [json_input("curve", items("curve", 1))]}
        assert (await c.post("/v2/models/curve/infer", json=body)).status_code == 503
        assert (await c.get("/v2/models/lenet/ready")).status_code == 200


async def test_torch_backend(built_repo: Path) -> None:
    x = items("mlp", 3, seed=4)
    async with Service(settings_for(built_repo, backend="torch")) as svc:
        meta = (await svc.client.get("/v2/models/mlp")).json()
        r = await svc.client.post("/v2/models/mlp/infer", json={"inputs": [json_input("mlp", x)]})
        check("mlp", decode(r)[1], await predict(svc.client, "mlp", x))
    assert meta["platform"] == "pytorch_libtorch"


# ---- inference: same answers as /predict -----------------------------------------------------
async def test_kserve_documentation_request(svc: Service) -> None:
    """The request body exactly as KServe's documentation writes one (nested data, no outputs)."""
    body = b"""{
      "inputs": [
        {
          "name": "points",
          "shape": [2, 2],
          "datatype": "FP32",
          "data": [[6.8, 2.8], [-2.0, -3.4]]
        }
      ]
    }"""
    r = await svc.client.post(
        "/v2/models/points/infer", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.headers["content-type"] == "application/json" and HEADER not in r.headers
    head, arrays = decode(r)
    assert head["model_name"] == "points" and head["model_version"] == "1" and "id" not in head
    assert [o["name"] for o in head["outputs"]] == ["probabilities", "label"]
    x = np.array([[6.8, 2.8], [-2.0, -3.4]], np.float32)
    check("points", arrays, await predict(svc.client, "points", x))


async def test_protocol_specification_example(svc: Service) -> None:
    """The specification's example: an id, flattened data, one requested output."""
    body = {
        "id": "42",
        "inputs": [{"name": "x", "shape": [3, 1], "datatype": "FP32", "data": [0.1, -0.5, 1]}],
        "outputs": [{"name": "y"}],
    }
    r = await svc.client.post("/v2/models/curve/versions/1/infer", json=body)
    head, arrays = decode(r)
    assert head["id"] == "42" and [o["name"] for o in head["outputs"]] == ["y"]
    x = np.array([[0.1], [-0.5], [1.0]], np.float32)
    check("curve", arrays, await predict(svc.client, "curve", x))


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("nested", [False, True])
async def test_json_answers_equal_predict(svc: Service, name: str, nested: bool) -> None:
    x = items(name, 5, seed=1)
    body = {"inputs": [json_input(name, x, nested=nested)]}
    r = await svc.client.post(f"/v2/models/{name}/infer", json=body)
    check(name, decode(r)[1], await predict(svc.client, name, x))


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("out_binary", [False, True])
async def test_binary_answers_equal_predict(svc: Service, name: str, out_binary: bool) -> None:
    x = items(name, 4, seed=2)
    inp = {**json_input(name, x), "parameters": {"binary_data_size": x.nbytes}}
    del inp["data"]
    # "model_name" in the body as in Triton's binary example (ignored: the URL names the model)
    head = {"model_name": name, "inputs": [inp], "parameters": {"binary_data_output": out_binary}}
    content, headers = binary_body(head, x.astype("<f4").tobytes())
    r = await svc.client.post(f"/v2/models/{name}/infer", content=content, headers=headers)
    assert (HEADER in r.headers) == out_binary
    check(name, decode(r)[1], await predict(svc.client, name, x))


@pytest.mark.parametrize("shape", [(1, 28, 28), (28, 28), (784,)])
@pytest.mark.parametrize("datatype", ["FP32", "UINT8"])
async def test_digit_shapes_and_uint8_pixels(svc: Service, shape: tuple, datatype: str) -> None:
    x = items("lenet", 3, seed=3)
    want = await predict(svc.client, "lenet", x)
    xs = x.reshape(3, *shape)
    r = await svc.client.post(
        "/v2/models/lenet/infer", json={"inputs": [json_input("lenet", xs, datatype)]}
    )
    check("lenet", decode(r)[1], want)
    raw = xs.astype(np.uint8 if datatype == "UINT8" else "<f4").tobytes()
    inp = {"name": "pixels", "shape": [3, *shape], "datatype": datatype}
    inp["parameters"] = {"binary_data_size": len(raw)}
    content, headers = binary_body({"inputs": [inp]}, raw)
    r = await svc.client.post("/v2/models/lenet/infer", content=content, headers=headers)
    check("lenet", decode(r)[1], want)


async def test_curve_takes_a_flat_batch(svc: Service) -> None:
    x = items("curve", 6, seed=5)
    body = {"inputs": [{"name": "x", "shape": [6], "datatype": "FP32", "data": x.ravel().tolist()}]}
    r = await svc.client.post("/v2/models/curve/infer", json=body)
    check("curve", decode(r)[1], await predict(svc.client, "curve", x))


async def test_requested_outputs_order_and_binary_flags(svc: Service) -> None:
    x = items("mlp", 2, seed=6)
    body = {
        "id": "abc",
        "inputs": [json_input("mlp", x)],
        "parameters": {"binary_data_output": True},
        "outputs": [
            {"name": "label"},
            {"name": "probabilities", "parameters": {"binary_data": False}},
        ],
    }
    r = await svc.client.post("/v2/models/mlp/infer", json=body)
    assert r.headers["content-type"] == "application/octet-stream"
    head, arrays = decode(r)
    assert head["id"] == "abc"
    label, probs = head["outputs"]
    assert label["name"] == "label" and label["parameters"] == {"binary_data_size": 16}
    assert "data" not in label and "data" in probs and "parameters" not in probs
    check("mlp", arrays, await predict(svc.client, "mlp", x))
    only = {"inputs": [json_input("mlp", x)], "outputs": [{"name": "label"}]}
    head, arrays = decode(await svc.client.post("/v2/models/mlp/infer", json=only))
    assert list(arrays) == ["label"]


async def test_raw_binary_request(svc: Service) -> None:
    """Inference-Header-Content-Length 0: the body is only the input's FP32 bytes."""
    x = items("lenet", 2, seed=7)
    headers = {HEADER: "0", "Content-Type": "application/octet-stream"}
    r = await svc.client.post("/v2/models/lenet/infer", content=x.tobytes(), headers=headers)
    head, arrays = decode(r)
    assert all("binary_data_size" in o["parameters"] for o in head["outputs"])
    check("lenet", arrays, await predict(svc.client, "lenet", x))


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_request(svc: Service, encoding: str) -> None:
    x = items("points", 3, seed=8)
    raw = orjson.dumps({"inputs": [json_input("points", x)]})
    content = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    r = await svc.client.post(
        "/v2/models/points/infer", content=content, headers={"Content-Encoding": encoding}
    )
    check("points", decode(r)[1], await predict(svc.client, "points", x))


async def test_concurrent_mixed_requests_each_get_their_own_answer(svc: Service) -> None:
    """Many JSON and binary requests at once, through the batcher: each gets its own rows."""
    cases = []
    for i in range(24):
        name = list(SPECS)[i % len(SPECS)]
        x = items(name, 1 + i % 5, seed=100 + i)
        if i % 2:
            inp = {**json_input(name, x), "parameters": {"binary_data_size": x.nbytes}}
            del inp["data"]
            content, headers = binary_body({"inputs": [inp]}, x.tobytes())
        else:
            content, headers = orjson.dumps({"inputs": [json_input(name, x)]}), {}
        cases.append((name, x, content, headers))
    before = {n: svc.registry.entries[n].batcher.stats.items for n in SPECS}
    answers = await asyncio.gather(
        *(
            svc.client.post(f"/v2/models/{name}/infer", content=content, headers=headers)
            for name, _, content, headers in cases
        )
    )
    for name in SPECS:  # every input went through the model's batcher
        sent = sum(len(x) for n, x, _, _ in cases if n == name)
        assert svc.registry.entries[name].batcher.stats.items - before[name] == sent
    for (name, x, _, _), r in zip(cases, answers, strict=True):
        check(name, decode(r)[1], await predict(svc.client, name, x))


async def test_timeout_parameter(svc: Service) -> None:
    body = {
        "inputs": [json_input("curve", items("curve", 1))],
        "parameters": {"timeout": 5_000_000},
    }
    assert (await svc.client.post("/v2/models/curve/infer", json=body)).status_code == 200


# ---- bad requests ---------------------------------------------------------------------------
def _lenet(**change: Any) -> dict[str, Any]:
    inp = json_input("lenet", items("lenet", 1))
    inp.update(change)
    return {k: v for k, v in inp.items() if v is not None}


def _bin(inp: dict[str, Any], blob: bytes, **head: Any) -> tuple[bytes, dict[str, str]]:
    return binary_body({"inputs": [inp], **head}, blob)


def _bin_input(size: int, datatype: str = "FP32") -> dict[str, Any]:
    return _lenet(data=None, datatype=datatype, parameters={"binary_data_size": size})


PIX = items("lenet", 1).tobytes()  # 3136 bytes: one FP32 digit
NAN = np.full((1, 1, 28, 28), np.nan, "<f4").tobytes()
J = orjson.dumps
BAD: dict[str, tuple[bytes, dict[str, str]]] = {
    "empty body": (b"", {}),
    "malformed JSON": (b'{"inputs": [', {}),
    "NaN literal": (
        b'{"inputs":[{"name":"pixels","shape":[1,1],"datatype":"FP32","data":[NaN]}]}',
        {},
    ),
    "not an object": (b"[1, 2]", {}),
    "no inputs": (J({}), {}),
    "inputs empty": (J({"inputs": []}), {}),
    "inputs not a list": (J({"inputs": {"name": "pixels"}}), {}),
    "input not an object": (J({"inputs": [1]}), {}),
    "unknown input name": (J({"inputs": [_lenet(name="input-0")]}), {}),
    "input without name": (J({"inputs": [_lenet(name=None)]}), {}),
    "input given twice": (J({"inputs": [_lenet(), _lenet()]}), {}),
    "datatype BOOL": (J({"inputs": [_lenet(datatype="BOOL")]}), {}),
    "datatype BYTES": (J({"inputs": [_lenet(datatype="BYTES")]}), {}),
    "INT32 floats": (J({"inputs": [_lenet(datatype="INT32", data=[1.5] * 784)]}), {}),
    "datatype lowercase": (J({"inputs": [_lenet(datatype="fp32")]}), {}),
    "datatype missing": (J({"inputs": [_lenet(datatype=None)]}), {}),
    "shape missing": (J({"inputs": [_lenet(shape=None)]}), {}),
    "shape not a list": (J({"inputs": [_lenet(shape="1,784")]}), {}),
    "shape empty": (J({"inputs": [_lenet(shape=[])]}), {}),
    "shape negative": (J({"inputs": [_lenet(shape=[-1, 784])]}), {}),
    "shape of floats": (J({"inputs": [_lenet(shape=[1.0, 784.0])]}), {}),
    "shape of booleans": (J({"inputs": [_lenet(shape=[True, 784])]}), {}),
    "shape wrong item": (J({"inputs": [_lenet(shape=[1, 785])]}), {}),
    "shape without batch": (J({"inputs": [_lenet(shape=[1, 28, 28, 1])]}), {}),
    "batch of zero": (J({"inputs": [_lenet(shape=[0, 784], data=[])]}), {}),
    "batch over max_items": (J({"inputs": [_lenet(shape=[9, 784])]}), {}),
    "data missing": (J({"inputs": [_lenet(data=None)]}), {}),
    "data not a list": (J({"inputs": [_lenet(data=5)]}), {}),
    "data too short": (J({"inputs": [_lenet(data=[1.0] * 783)]}), {}),
    "data too long": (J({"inputs": [_lenet(data=[1.0] * 785)]}), {}),
    "data nested unlike shape": (J({"inputs": [_lenet(data=[[1.0] * 784])]}), {}),
    "data ragged": (J({"inputs": [_lenet(shape=[1, 28, 28], data=[[1] * 28] * 27 + [[1]])]}), {}),
    "data strings": (J({"inputs": [_lenet(data=["1"] * 784)]}), {}),
    "data with null": (J({"inputs": [_lenet(data=[None] + [1] * 783)]}), {}),
    "data booleans": (J({"inputs": [_lenet(data=[True] * 784)]}), {}),
    "data huge integer": (J({"inputs": [_lenet(data=[2**64 - 1] + [1] * 783)]}), {}),
    "data bigger than int64": (
        J({"inputs": [_lenet(data=[7] + [1] * 783)]}).replace(b"[7,", b"[1" + b"0" * 30 + b","),
        {},
    ),
    "value above range": (J({"inputs": [_lenet(data=[300] + [1] * 783)]}), {}),
    "value below range": (J({"inputs": [_lenet(data=[1] * 783 + [-1])]}), {}),
    "value overflows FP32": (J({"inputs": [_lenet(data=[1e39] + [1] * 783)]}), {}),
    "UINT8 floats": (J({"inputs": [_lenet(datatype="UINT8", data=[1.5] * 784)]}), {}),
    "UINT8 over 255": (J({"inputs": [_lenet(datatype="UINT8", data=[256] * 784)]}), {}),
    "binary size unlike shape": _bin(_bin_input(3000), PIX[:3000]),
    "binary body shorter": _bin(_bin_input(3136), PIX[:3000]),
    "binary body longer": _bin(_bin_input(3136), PIX + b"\0\0\0\0"),
    "binary trailing after JSON": binary_body({"inputs": [_lenet()]}, b"\0"),
    "binary without header": (J({"inputs": [_bin_input(3136)]}) + PIX, {}),
    "binary and data": _bin(_lenet(parameters={"binary_data_size": 3136}), PIX),
    "binary size negative": _bin(_bin_input(-1), PIX),
    "binary size a string": _bin(_bin_input("3136"), PIX),  # type: ignore[arg-type]
    "binary NaN": _bin(_bin_input(3136), NAN),
    "binary UINT8 size of FP32": _bin(_bin_input(3136, "UINT8"), PIX),
    "header not a number": (J({"inputs": [_lenet()]}), {HEADER: "ten"}),
    "header past the body": (J({"inputs": [_lenet()]}), {HEADER: "999999"}),
    "raw binary partial item": (PIX[:100], {HEADER: "0"}),
    "raw binary empty": (b"", {HEADER: "0"}),
    "raw binary NaN": (NAN, {HEADER: "0"}),
    "id not a string": (J({"id": 42, "inputs": [_lenet()]}), {}),
    "parameters not an object": (J({"inputs": [_lenet()], "parameters": [1]}), {}),
    "binary_data_output not a bool": (
        J({"inputs": [_lenet()], "parameters": {"binary_data_output": "yes"}}),
        {},
    ),
    "timeout negative": (J({"inputs": [_lenet()], "parameters": {"timeout": -1}}), {}),
    "input parameters not an object": (J({"inputs": [_lenet(parameters=3)]}), {}),
    "shared memory input": (
        J({"inputs": [_lenet(data=None, parameters={"shared_memory_region": "r"})]}),
        {},
    ),
    "outputs not a list": (J({"inputs": [_lenet()], "outputs": {"name": "label"}}), {}),
    "output not an object": (J({"inputs": [_lenet()], "outputs": ["label"]}), {}),
    "unknown output": (J({"inputs": [_lenet()], "outputs": [{"name": "output0"}]}), {}),
    "output twice": (J({"inputs": [_lenet()], "outputs": [{"name": "label"}] * 2}), {}),
    "classification extension": (
        J(
            {
                "inputs": [_lenet()],
                "outputs": [{"name": "label", "parameters": {"classification": 3}}],
            }
        ),
        {},
    ),
    "binary_data not a bool": (
        J({"inputs": [_lenet()], "outputs": [{"name": "label", "parameters": {"binary_data": 1}}]}),
        {},
    ),
    "gzip corrupt": (b"\x1f\x8b not gzip", {"Content-Encoding": "gzip"}),
    "gzip truncated": (
        gzip.compress(J({"inputs": [_lenet()]}))[:-12],
        {"Content-Encoding": "gzip"},
    ),
}


# The field each bad request names (the error is '<field>: <problem>').
FIELD = {
    "empty body": "body",
    "malformed JSON": "body",
    "NaN literal": "body",
    "not an object": "body",
    "no inputs": "inputs",
    "inputs empty": "inputs",
    "inputs not a list": "inputs",
    "input not an object": "inputs[0]",
    "unknown input name": "inputs[0].name",
    "input without name": "inputs[0].name",
    "input given twice": "inputs",
    "datatype BOOL": "inputs[0].datatype",
    "datatype BYTES": "inputs[0].datatype",
    "INT32 floats": "inputs[0].data",
    "datatype lowercase": "inputs[0].datatype",
    "datatype missing": "inputs[0].datatype",
    "shape missing": "inputs[0].shape",
    "shape not a list": "inputs[0].shape",
    "shape empty": "inputs[0].shape",
    "shape negative": "inputs[0].shape",
    "shape of floats": "inputs[0].shape",
    "shape of booleans": "inputs[0].shape",
    "shape wrong item": "inputs[0].shape",
    "shape without batch": "inputs[0].shape",
    "batch of zero": "inputs[0].shape",
    "batch over max_items": "inputs[0].shape",
    "data missing": "inputs[0].data",
    "data not a list": "inputs[0].data",
    "data too short": "inputs[0].data",
    "data too long": "inputs[0].data",
    "data nested unlike shape": "inputs[0].data",
    "data ragged": "inputs[0].data",
    "data strings": "inputs[0].data",
    "data with null": "inputs[0].data",
    "data booleans": "inputs[0].data",
    "data huge integer": "inputs[0].data",
    "data bigger than int64": "inputs[0].data",
    "value above range": "inputs[0].data",
    "value below range": "inputs[0].data",
    "value overflows FP32": "inputs[0].data",
    "UINT8 floats": "inputs[0].data",
    "UINT8 over 255": "inputs[0].data",
    "binary size unlike shape": "inputs[0].parameters.binary_data_size",
    "binary body shorter": "body",
    "binary body longer": "body",
    "binary trailing after JSON": "body",
    "binary without header": "body",
    "binary and data": "inputs[0].parameters.binary_data_size",
    "binary size negative": "inputs[0].parameters.binary_data_size",
    "binary size a string": "inputs[0].parameters.binary_data_size",
    "binary NaN": "inputs[0].data",
    "binary UINT8 size of FP32": "inputs[0].parameters.binary_data_size",
    "header not a number": "Inference-Header-Content-Length",
    "header past the body": "Inference-Header-Content-Length",
    "raw binary partial item": "body",
    "raw binary empty": "body",
    "raw binary NaN": "body",
    "id not a string": "id",
    "parameters not an object": "parameters",
    "binary_data_output not a bool": "parameters.binary_data_output",
    "timeout negative": "parameters.timeout",
    "input parameters not an object": "inputs[0].parameters",
    "shared memory input": "inputs[0].parameters",
    "outputs not a list": "outputs",
    "output not an object": "outputs[0]",
    "unknown output": "outputs[0].name",
    "output twice": "outputs[1].name",
    "classification extension": "outputs[0].parameters",
    "binary_data not a bool": "outputs[0].parameters",
    "gzip corrupt": "content-encoding",
    "gzip truncated": "body",
}


@pytest.mark.parametrize("case", list(BAD))
async def test_bad_request_is_400(svc: Service, case: str) -> None:
    content, headers = BAD[case]
    r = await svc.client.post("/v2/models/lenet/infer", content=content, headers=headers)
    too_many = case == "batch over max_items"  # the one limit on items: 413 over any protocol
    assert r.status_code == (413 if too_many else 400), (case, r.text)
    assert r.headers["content-type"] == "application/json"
    assert r.json()["field"] == FIELD[case], (case, r.text)
    assert r.json()["error"].startswith(f"{FIELD[case]}: ")


async def test_http_level_limits(built_repo: Path) -> None:
    """Body size (413) and an unknown Content-Encoding (415) are HTTP's, as on /predict."""
    async with Service(settings_for(built_repo, max_body_bytes=4096)) as svc:
        big = orjson.dumps({"inputs": [json_input("lenet", items("lenet", 2))]})
        r = await svc.client.post("/v2/models/lenet/infer", content=big)
        assert r.status_code == 413 and "error" in r.json()
        bomb = gzip.compress(b" " * 100_000)
        r = await svc.client.post(
            "/v2/models/lenet/infer", content=bomb, headers={"Content-Encoding": "gzip"}
        )
        assert r.status_code == 413
        r = await svc.client.post(
            "/v2/models/lenet/infer", content=b"{}", headers={"Content-Encoding": "br"}
        )
        assert r.status_code == 415 and "error" in r.json()


# ---- the OpenAPI document --------------------------------------------------------------------
async def test_openapi_examples_work(svc: Service) -> None:
    doc = (await svc.client.get("/openapi.json")).json()
    paths = {p for p in doc["paths"] if p.startswith("/v2")}
    assert paths == {
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/versions/{version}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
        "/v2/models/{name}/config",
        "/v2/models/{name}/versions/{version}/config",
        "/v2/models/{name}/stats",
        "/v2/models/{name}/versions/{version}/stats",
        "/v2/models/stats",
        "/v2/repository/index",
        "/v2/repository/models/{name}/load",
        "/v2/repository/models/{name}/unload",
    }
    assert (
        "$ref"
        not in orjson.dumps(doc["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]).decode()
    )
    examples = doc["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]
    assert set(examples) == set(SPECS)
    for name, example in examples.items():  # every documented request works as documented
        r = await svc.client.post(f"/v2/models/{name}/infer", json=example["value"])
        head, _ = decode(r)
        ps.InferenceResponse.model_validate(head)
        ps.InferenceRequest.model_validate(example["value"])
        for path in (f"/v2/models/{name}", f"/v2/models/{name}/versions/1"):
            ps.ModelMetadata.model_validate((await svc.client.get(path)).json())
            ps.ModelReady.model_validate((await svc.client.get(f"{path}/ready")).json())
    ps.ServerMetadata.model_validate((await svc.client.get("/v2")).json())
    ps.ServerLive.model_validate((await svc.client.get("/v2/health/live")).json())
    ps.ServerReady.model_validate((await svc.client.get("/v2/health/ready")).json())
    for model in (ps.ServerMetadata, ps.ModelMetadata, ps.InferenceRequest, ps.InferenceResponse):
        for example in model.model_json_schema()["examples"]:
            model.model_validate(example)


# ---- any body at all: a 400 or a valid batch, never anything else -----------------------------
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
SPOTS = [
    ("id",),
    ("parameters",),
    ("parameters", "binary_data_output"),
    ("parameters", "timeout"),
    ("inputs",),
    ("inputs", 0),
    ("inputs", 0, "name"),
    ("inputs", 0, "shape"),
    ("inputs", 0, "shape", 0),
    ("inputs", 0, "datatype"),
    ("inputs", 0, "data"),
    ("inputs", 0, "data", 0),
    ("inputs", 0, "parameters"),
    ("inputs", 0, "parameters", "binary_data_size"),
    ("outputs",),
    ("outputs", 0),
    ("outputs", 0, "name"),
    ("outputs", 0, "parameters"),
    ("outputs", 0, "parameters", "binary_data"),
]


@given(
    name=st.sampled_from(list(SPECS)),
    spot=st.sampled_from(SPOTS),
    value=JSON,
    binary=st.booleans(),
    tail=st.binary(max_size=16),
    header_shift=st.integers(-3, 3),
)
@settings(max_examples=300, deadline=None)
def test_any_request_is_a_batch_or_a_400(
    name: str, spot: tuple, value: Any, binary: bool, tail: bytes, header_shift: int
) -> None:
    spec = SPECS[name]
    x = items(name, 2, seed=9)
    inp = json_input(name, x)
    inp["parameters"] = {}
    if binary:
        inp["parameters"] = {"binary_data_size": x.nbytes}
        del inp["data"]
    request: Any = {
        "id": "i",
        "parameters": {"binary_data_output": False},
        "inputs": [inp],
        "outputs": [{"name": spec.output.name, "parameters": {"binary_data": True}}],
    }
    target = request
    for key in spot[:-1]:
        target = target.get(key) if isinstance(target, dict) else target[key]
        if not isinstance(target, dict | list):
            break
    else:
        if isinstance(target, dict) or spot[-1] < len(target):
            target[spot[-1]] = value
    head = orjson.dumps(request)
    body = head + (x.tobytes() if binary else b"") + tail
    header = str(len(head) + header_shift) if binary or tail else None
    try:
        req = parse_request(body, header, spec, max_items=8)
    except ApiError as e:
        assert e.status == 400 and e.message
    else:
        assert req.x.dtype == np.float32 and req.x.shape[1:] == spec.input.shape
        assert np.isfinite(req.x).all() and 1 <= len(req.x) <= 8
