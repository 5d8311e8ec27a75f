"""The floor of any uvicorn server: the Open Inference Protocol over HTTP with no model behind it.

    python -m bench.peers.http_noop --port 8020

A bare ASGI callable (no framework, no validation) under uvicorn with httptools and uvloop, as
this service runs: POST /v2/models/lenet/infer reads the whole body, takes the batch size from
the JSON header (binary tensor data) and answers zeros of the outputs' shapes as binary data;
GET /v2, /v2/models/lenet, its /config and /stats answer what perf_analyzer asks before and after
a run. Whatever this answers per second on one core is the most any uvicorn service can answer
there, this one included (bench/grpc_bench.py measures it beside the real servers).
"""

from __future__ import annotations

import json
from typing import Any

import uvicorn

from bench.peers.common import lenet_config, parse_args, zero_outputs
from models.spec import LENET
from serving.api.v2_encode import HEADER_LENGTH
from serving.engine.model_config import model_metadata

INFER = f"/v2/models/{LENET.name}/infer"
GETS = {
    "/v2": {"name": "http-noop", "version": "0", "extensions": []},
    f"/v2/models/{LENET.name}": model_metadata(LENET, 1, "none"),
    f"/v2/models/{LENET.name}/config": lenet_config(),
    f"/v2/models/{LENET.name}/stats": {"model_stats": []},
}


def batch_size(body: bytes, header_length: str | None) -> int:
    """The input's first dimension, from the JSON part of the request."""
    head = json.loads(body[: int(header_length)] if header_length else body)
    return int(head["inputs"][0]["shape"][0])


def answer(n: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    outputs = zero_outputs(n)
    head = {
        "model_name": LENET.name,
        "model_version": "1",
        "outputs": [
            {
                "name": name,
                "datatype": dt,
                "shape": shape,
                "parameters": {"binary_data_size": len(raw)},
            }
            for name, dt, shape, raw in outputs
        ],
    }
    text = json.dumps(head, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/octet-stream"),
        (HEADER_LENGTH.encode(), str(len(text)).encode()),
    ]
    return text + b"".join(raw for *_, raw in outputs), headers


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    status, json_type = 200, [(b"content-type", b"application/json")]
    if scope["method"] == "POST" and scope["path"] == INFER:
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        body, extra = answer(batch_size(b"".join(chunks), headers.get(HEADER_LENGTH)))
    elif scope["path"] in GETS:
        body, extra = json.dumps(GETS[scope["path"]]).encode(), json_type
    else:
        status, body, extra = 404, b'{"error":"not found"}', json_type
    length = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": extra + length})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    args = parse_args(__doc__ or "", model=False)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
