"""The no-model peers (bench/peers/http_noop.py, grpc_noop.py) answer what perf_analyzer asks:
the config and metadata of LeNet, and zeros of the outputs' shapes for the batch sent."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np

from bench import harness
from bench.peers import grpc_noop, http_noop
from serving.grpc.protos import service_pb2 as pb


def test_http_noop_answers_the_batch_sent_as_binary_data() -> None:
    body, headers = harness.v2_binary(np.zeros((3, 28, 28), np.float32))

    async def go() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=http_noop.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            infer = await c.post(http_noop.INFER, content=body, headers=headers)
            return infer, await c.get("/v2/models/lenet/config"), await c.get("/nope")

    infer, config, missing = asyncio.run(go())
    assert infer.status_code == 200
    n = int(infer.headers[http_noop.HEADER_LENGTH])
    head = json.loads(infer.content[:n])
    assert [o["shape"] for o in head["outputs"]] == [[3, 10], [3, 1]]
    sizes = sum(o["parameters"]["binary_data_size"] for o in head["outputs"])
    assert len(infer.content) == n + sizes == n + 3 * 10 * 4 + 3 * 8
    assert config.json()["max_batch_size"] == 64 and missing.status_code == 404


def test_grpc_noop_answers_the_batch_sent_in_raw_contents() -> None:
    request = pb.ModelInferRequest(model_name="lenet")
    request.inputs.add(name="pixels", datatype="FP32", shape=[5, 1, 28, 28])
    answer = asyncio.run(grpc_noop.NoModel().ModelInfer(request, None))
    assert [list(o.shape) for o in answer.outputs] == [[5, 10], [5, 1]]
    assert [len(r) for r in answer.raw_output_contents] == [5 * 10 * 4, 5 * 8]
