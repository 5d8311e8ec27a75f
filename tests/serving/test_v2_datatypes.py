"""Every numeric datatype of the protocol, cast safely to the model's FP32: the same answers as
FP32 over JSON and binary bodies, and a 400 naming the field for any value that does not survive
the cast (NaN, infinities, out of range, not of its datatype, not exactly an FP32). Also
engine.tensors.model_input itself, as the gRPC side calls it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from models.spec import SPECS
from serving.engine.tensors import DTYPES, model_input
from serving.errors import ApiError
from tests.serving.conftest import Service, settings_for
from tests.serving.test_v2 import HEADER, binary_body, check, decode, items, predict

pytestmark = pytest.mark.anyio
NUMPY = {
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 values whose low 16 bits are zero as their BF16 bit patterns."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32)
    assert not (bits & 0xFFFF).any(), "not exact BF16 values"
    return (bits >> 16).astype("<u2")


def wire(x: np.ndarray, datatype: str) -> bytes:
    if datatype == "BF16":
        return bf16_bits(x).tobytes()
    return x.astype(DTYPES[datatype]).tobytes()


def request(name: str, x: np.ndarray, datatype: str, binary: bool) -> tuple[bytes, dict]:
    inp: dict[str, Any] = {
        "name": SPECS[name].input.name,
        "shape": list(x.shape),
        "datatype": datatype,
    }
    if not binary:
        values = x.astype(NUMPY.get(datatype, np.float32)).reshape(-1)
        return orjson.dumps({"inputs": [{**inp, "data": values.tolist()}]}), {}
    raw = wire(x, datatype)
    return binary_body({"inputs": [{**inp, "parameters": {"binary_data_size": len(raw)}}]}, raw)


@pytest.fixture
async def svc(built_repo: Path):
    async with Service(settings_for(built_repo)) as service:
        yield service


@pytest.mark.parametrize("datatype", list(DTYPES))
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
async def test_every_numeric_datatype_answers_as_fp32(
    svc: Service, datatype: str, binary: bool
) -> None:
    x = items("lenet", 3, seed=21)
    if datatype == "INT8":
        x = np.minimum(x, 127)  # INT8 holds pixels up to 127
    want = await predict(svc.client, "lenet", x)
    content, headers = request("lenet", x, datatype, binary)
    r = await svc.client.post("/v2/models/lenet/infer", content=content, headers=headers)
    check("lenet", decode(r)[1], want)


@pytest.mark.parametrize("datatype", ["FP64", "FP16", "INT32", "INT64", "BF16"])
async def test_signed_values_for_the_models_that_take_them(svc: Service, datatype: str) -> None:
    x = np.array([[2.0, -3.0], [-0.5, 4.0]], np.float32)
    if datatype.startswith("INT"):
        x = np.round(x)
    want = await predict(svc.client, "points", x)
    for binary in (False, True):
        content, headers = request("points", x, datatype, binary)
        r = await svc.client.post("/v2/models/points/infer", content=content, headers=headers)
        check("points", decode(r)[1], want)


def json_body(name: str, datatype: str, data: list, shape: list[int]) -> bytes:
    inp = {"name": SPECS[name].input.name, "shape": shape, "datatype": datatype, "data": data}
    return orjson.dumps({"inputs": [inp]})


def raw_body(name: str, datatype: str, arr: np.ndarray) -> tuple[bytes, dict[str, str]]:
    inp = {"name": SPECS[name].input.name, "shape": list(arr.shape), "datatype": datatype}
    raw = arr.astype(DTYPES[datatype]).tobytes()
    return binary_body({"inputs": [{**inp, "parameters": {"binary_data_size": len(raw)}}]}, raw)


NAN_BF16 = np.array([[0x7FC0, 0x3F80]], "<u2")  # NaN, 1.0
REFUSED: dict[str, tuple[str, bytes, dict[str, str], str]] = {
    "FP64 NaN": ("points", *raw_body("points", "FP64", np.array([[np.nan, 1.0]])), "finite"),
    "FP64 infinity": ("points", *raw_body("points", "FP64", np.array([[1, np.inf]])), "finite"),
    "FP64 past FP32": ("points", json_body("points", "FP64", [1e39, 1], [1, 2]), {}, "fit FP32"),
    "FP64 binary past FP32": (
        "points",
        *raw_body("points", "FP64", np.array([[-1e300, 1]])),
        "fit FP32",
    ),
    "FP16 infinity": ("points", *raw_body("points", "FP16", np.array([[np.inf, 1]])), "finite"),
    "FP16 JSON past FP16": (
        "points",
        json_body("points", "FP16", [70000, 1], [1, 2]),
        {},
        "not a value of FP16",
    ),
    "BF16 NaN": ("points", *raw_body("points", "BF16", NAN_BF16), "finite"),
    "FP64 above range": (
        "lenet",
        *raw_body("lenet", "FP64", np.full((1, 784), 255.5)),
        "outside 0-255",
    ),
    "INT16 below range": (
        "lenet",
        *raw_body("lenet", "INT16", np.full((1, 784), -1)),
        "outside 0-255",
    ),
    "UINT64 above range": (
        "lenet",
        json_body("lenet", "UINT64", [2**64 - 1] * 784, [1, 784]),
        {},
        "outside 0-255",
    ),
    "INT8 JSON past INT8": (
        "lenet",
        json_body("lenet", "INT8", [200] * 784, [1, 784]),
        {},
        "not a value of INT8",
    ),
    "UINT16 JSON negative": (
        "points",
        json_body("points", "UINT16", [-1, 2], [1, 2]),
        {},
        "not a value of UINT16",
    ),
    "INT64 JSON past INT64": (
        "points",
        json_body("points", "INT64", [2**63, 2**63], [1, 2]),
        {},
        "not a value of INT64",
    ),
    "INT64 not exact in FP32": (
        "points",
        *raw_body("points", "INT64", np.array([[2**24 + 1, 1]])),
        "not exactly an FP32",
    ),
    "INT32 JSON not exact in FP32": (
        "points",
        json_body("points", "INT32", [1, 2**31 - 1], [1, 2]),
        {},
        "not exactly an FP32",
    ),
    "INT64 floats": ("points", json_body("points", "INT64", [1.5, 2], [1, 2]), {}, "integers"),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_values_that_do_not_survive_the_cast_are_400(svc: Service, case: str) -> None:
    name, content, headers, problem = REFUSED[case]
    r = await svc.client.post(f"/v2/models/{name}/infer", content=content, headers=headers)
    assert r.status_code == 400, (case, r.text)
    assert r.json()["field"] == "inputs[0].data", r.json()
    assert problem in r.json()["error"], r.json()


async def test_exact_large_integers_are_taken(svc: Service) -> None:
    """2**30 is an FP32 value, 2**30 + 1 is not: only the second is refused."""
    x = np.array([[2**30, -(2**30)]], np.int64)
    want = await predict(svc.client, "points", x.astype(np.float32))
    content, headers = raw_body("points", "INT64", x)
    r = await svc.client.post("/v2/models/points/infer", content=content, headers=headers)
    check("points", decode(r)[1], want)
    content, headers = raw_body("points", "INT64", x + 1)
    r = await svc.client.post("/v2/models/points/infer", content=content, headers=headers)
    assert r.status_code == 400 and "2**30" not in r.text and "1073741825" in r.text


async def test_raw_binary_request_stays_fp32(svc: Service) -> None:
    """Inference-Header-Content-Length 0 names no datatype: the body is FP32, checked alike."""
    nan = np.full((1, 2), np.nan, "<f4").tobytes()
    r = await svc.client.post("/v2/models/points/infer", content=nan, headers={HEADER: "0"})
    assert r.status_code == 400 and r.json()["field"] == "body"


# ---- model_input, as the gRPC side calls it ----------------------------------------------------
LENET = SPECS["lenet"]


def test_model_input_casts_each_datatype_to_the_model_batch() -> None:
    x = items("lenet", 2, seed=3)
    for datatype in DTYPES:
        values = np.minimum(x, 127)
        arr = np.frombuffer(wire(values, datatype), DTYPES[datatype])
        got = model_input(arr, datatype, [2, 784], LENET, 8, "inputs[0]")
        assert got.dtype == np.float32 and got.shape == (2, 1, 28, 28)
        np.testing.assert_array_equal(got, values)
    shaped = model_input(x.astype(np.float64), "FP64", [2, 1, 28, 28], LENET, 8, "inputs[0]")
    np.testing.assert_array_equal(shaped, x)
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf16 = model_input(x.astype(ml_dtypes.bfloat16), "BF16", [2, 1, 28, 28], LENET, 8, "inputs[0]")
    np.testing.assert_array_equal(bf16, x)


def test_model_input_checks_wider_contents_against_the_declared_datatype() -> None:
    """gRPC sends INT8/INT16 tensors as int32 contents: their values must be INT8 values."""
    ok = np.full(784, 100, np.int32)
    assert model_input(ok, "INT8", [1, 784], LENET, 8, "inputs[0]").max() == 100
    with pytest.raises(ApiError) as e:
        model_input(np.full(784, 200, np.int32), "INT8", [1, 784], LENET, 8, "inputs[0]")
    assert e.value.status == 400 and e.value.field == "inputs[0].data"


@pytest.mark.parametrize(
    "arr, datatype, shape, field",
    [
        (np.zeros(784, np.float32), "BOOL", [1, 784], "inputs[0].datatype"),
        (np.zeros(784, np.float32), "BYTES", [1, 784], "inputs[0].datatype"),
        (np.zeros(784, np.float32), "FP32", [1, 783], "inputs[0].shape"),
        (np.zeros(784, np.float32), "FP32", [1, -784], "inputs[0].shape"),
        (np.zeros(0, np.float32), "FP32", [0, 784], "inputs[0].shape"),
        (np.zeros(784 * 9, np.float32), "FP32", [9, 784], "inputs[0].shape"),
        (np.zeros(700, np.float32), "FP32", [1, 784], "inputs[0].data"),
        (np.zeros((2, 392), np.float32), "FP32", [1, 784], "inputs[0].data"),
        (np.full(784, np.nan, np.float32), "FP32", [1, 784], "inputs[0].data"),
        (np.full(784, 256, np.float32), "FP32", [1, 784], "inputs[0].data"),
        (np.full(784, True), "FP32", [1, 784], "inputs[0].data"),
        (np.full(784, 1.5), "INT32", [1, 784], "inputs[0].data"),
    ],
)
def test_model_input_refusals_name_the_field(
    arr: np.ndarray, datatype: str, shape: list[int], field: str
) -> None:
    with pytest.raises(ApiError) as e:
        model_input(arr, datatype, shape, LENET, 8, "inputs[0]")
    too_many = shape[0] > 8  # the one limit on items per request: 413, over any protocol
    assert e.value.status == (413 if too_many else 400)
    assert e.value.field == field and e.value.message
