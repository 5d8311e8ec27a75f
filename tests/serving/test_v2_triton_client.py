"""A real client nobody here wrote, tritonclient[http], against the real server process: every
call it makes works, and its answers equal /predict's."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from models.spec import SPECS
from serving.engine.tensors import outputs_of
from tests.serving.test_v2 import items

NAMES = list(SPECS)


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(url=server.removeprefix("http://"), network_timeout=30)
    yield c
    c.close()


def predict(server: str, name: str, x: np.ndarray) -> np.ndarray:
    """/predict's answer for the same inputs: probabilities (N, C), or y (N, 1)."""
    family = SPECS[name].family
    if family == "curve":
        r = httpx.post(f"{server}/predict/curve", json={"x": x.reshape(-1).tolist()})
        return np.array(r.json()["y"], np.float32)[:, None]
    key = "images" if family == "digits" else "points"
    data = x.reshape(len(x), 28, 28) if family == "digits" else x
    r = httpx.post(f"{server}/predict/{family}", json={key: data.tolist(), "model": name})
    assert r.status_code == 200, r.text
    return np.array([p["probabilities"] for p in r.json()["predictions"]], np.float32)


def check(name: str, result: triton.InferResult, want: np.ndarray) -> None:
    spec = SPECS[name]
    got = result.as_numpy(spec.output.name)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)
    if spec.is_classifier:
        label = result.as_numpy("label")
        assert label.dtype == np.int64 and label.shape == (len(want), 1)
        assert label.ravel().tolist() == want.argmax(axis=1).tolist()


def inputs_for(name: str, x: np.ndarray, binary: bool, datatype: str = "FP32") -> list:
    inp = triton.InferInput(SPECS[name].input.name, list(x.shape), datatype)
    inp.set_data_from_numpy(x, binary_data=binary)
    return [inp]


def test_server_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "starter-serve"
    for extension in ("binary_tensor_data", "model_configuration", "statistics"):
        assert extension in meta["extensions"]


@pytest.mark.parametrize("name", NAMES)
def test_model_readiness_and_metadata(client: triton.InferenceServerClient, name: str) -> None:
    spec = SPECS[name]
    assert client.is_model_ready(name)
    assert client.is_model_ready(name, "1")
    assert not client.is_model_ready(name, "2")
    for version in ("", "1"):
        meta = client.get_model_metadata(name, version)
        assert meta["name"] == name and meta["versions"] == ["1"]
        assert meta["platform"] == "onnxruntime_onnx"
        assert meta["inputs"] == [
            {"name": spec.input.name, "datatype": "FP32", "shape": [-1, *spec.input.shape]}
        ]
        assert [o["name"] for o in meta["outputs"]] == [t.name for t in outputs_of(spec)]


def test_unknown_model(client: triton.InferenceServerClient) -> None:
    assert not client.is_model_ready("nope")
    with pytest.raises(InferenceServerException) as e:
        client.get_model_metadata("nope")
    assert e.value.status() == "404"
    with pytest.raises(InferenceServerException) as e:
        client.infer("nope", inputs_for("curve", items("curve", 1, 0), True))
    assert e.value.status() == "404"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("in_binary", [True, False], ids=["in-binary", "in-json"])
@pytest.mark.parametrize("out_binary", [True, False], ids=["out-binary", "out-json"])
def test_infer_equals_predict(
    client: triton.InferenceServerClient, server: str, name: str, in_binary: bool, out_binary: bool
) -> None:
    x = items(name, 3, seed=NAMES.index(name))
    outputs = [
        triton.InferRequestedOutput(t.name, binary_data=out_binary) for t in outputs_of(SPECS[name])
    ]
    result = client.infer(name, inputs_for(name, x, in_binary), outputs=outputs, request_id="r-1")
    assert result.get_response()["id"] == "r-1"
    assert result.get_response()["model_version"] == "1"
    for t in outputs_of(SPECS[name]):
        assert ("data" in result.get_output(t.name)) != out_binary
    check(name, result, predict(server, name, x))


@pytest.mark.parametrize("name", NAMES)
def test_infer_with_defaults_and_version(
    client: triton.InferenceServerClient, server: str, name: str
) -> None:
    """No requested outputs (the client then asks for all, binary) and the versioned path."""
    x = items(name, 2, seed=10)
    result = client.infer(name, inputs_for(name, x, True), model_version="1")
    check(name, result, predict(server, name, x))


@pytest.mark.parametrize("binary", [True, False])
def test_uint8_pixels(client: triton.InferenceServerClient, server: str, binary: bool) -> None:
    x = items("lenet", 4, seed=11)
    result = client.infer("lenet", inputs_for("lenet", x.astype(np.uint8), binary, "UINT8"))
    check("lenet", result, predict(server, "lenet", x))


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests_and_options(
    client: triton.InferenceServerClient, server: str, algorithm: str
) -> None:
    x = items("mlp", 3, seed=12)
    result = client.infer(
        "mlp",
        inputs_for("mlp", x, True),
        request_compression_algorithm=algorithm,
        response_compression_algorithm=algorithm,
        timeout=10_000_000,
        priority=1,
    )
    check("mlp", result, predict(server, "mlp", x))


def test_bad_requests_are_400(client: triton.InferenceServerClient) -> None:
    x = items("lenet", 1, seed=13)
    wrong = [
        inputs_for("lenet", x.reshape(1, 784)[:, :700].copy(), True),  # shape
        inputs_for("lenet", x > 0, True, "BOOL"),  # datatype
        [triton.InferInput("input-0", [1, 784], "FP32")],  # name
    ]
    wrong[2][0].set_data_from_numpy(x.reshape(1, 784))
    for inputs in wrong:
        with pytest.raises(InferenceServerException) as e:
            client.infer("lenet", inputs)
        assert e.value.status() == "400" and e.value.message()
    with pytest.raises(InferenceServerException) as e:
        client.infer(
            "lenet", inputs_for("lenet", x, True), outputs=[triton.InferRequestedOutput("nope")]
        )
    assert e.value.status() == "400"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.int64, np.uint16])
def test_numpy_arrays_of_other_dtypes(
    client: triton.InferenceServerClient, server: str, binary: bool, dtype: type
) -> None:
    """A client's numpy default is float64: tritonclient sends it as FP64, and it is cast."""
    from tritonclient.utils import np_to_triton_dtype

    x = items("lenet", 2, seed=14)
    result = client.infer(
        "lenet", inputs_for("lenet", x.astype(dtype), binary, np_to_triton_dtype(dtype))
    )
    check("lenet", result, predict(server, "lenet", x))


def test_bf16(client: triton.InferenceServerClient, server: str) -> None:
    """tritonclient sends BF16 from ml_dtypes.bfloat16 arrays; 0-255 are exact BF16 values."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = items("mlp", 2, seed=15)
    result = client.infer("mlp", inputs_for("mlp", x.astype(ml_dtypes.bfloat16), True, "BF16"))
    check("mlp", result, predict(server, "mlp", x))


def test_values_that_fp32_cannot_take_are_400(client: triton.InferenceServerClient) -> None:
    for x in (np.array([[np.nan, 1.0]]), np.array([[1e39, 1.0]])):
        with pytest.raises(InferenceServerException) as e:
            client.infer("points", inputs_for("points", x, True, "FP64"))
        assert e.value.status() == "400" and "inputs[0].data" in e.value.message()
