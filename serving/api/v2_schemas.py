"""Pydantic models of the inference protocol's bodies: the OpenAPI schema of /v2 and its examples.

Only documentation: the infer endpoint reads its body with serving.protocol (orjson + numpy).
Every example is generated from models.spec through serving.api.v2_encode, so it is what the server
really accepts and answers (the tests post each one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

from models.spec import LENET, POINTS, SPECS, ModelSpec
from serving.api import v2_encode
from serving.errors import JSON

Parameters = dict[str, str | int | float | bool]


def example_request(spec: ModelSpec, n: int = 1) -> dict[str, Any]:
    """A JSON inference request for `spec`: n copies of its example item, nested as the shape."""
    x = np.repeat(spec.example()[None], n, axis=0)
    data = x.astype(int) if spec.value_range == v2_encode.PIXELS else x
    return {
        "id": f"{spec.name}-1",
        "inputs": [
            {
                "name": spec.input.name,
                "shape": list(x.shape),
                "datatype": "FP32",
                "data": data.tolist(),
            }
        ],
        "outputs": [{"name": t.name} for t in v2_encode.outputs_of(spec)],
    }


def example_response(spec: ModelSpec) -> dict[str, Any]:
    """What the server answers to example_request(spec), with made-up model outputs."""
    req = v2_encode.InferRequest(
        np.zeros(0), [(t, False) for t in v2_encode.outputs_of(spec)], f"{spec.name}-1"
    )
    y = np.full((1, spec.output.size), 1 / spec.output.size, np.float32)
    if spec.is_classifier:
        y[0, 0] += 0.5
        y /= y.sum()
    head, _ = v2_encode.response_parts(spec, 1, req, y)
    return orjson.loads(orjson.dumps(head, option=orjson.OPT_SERIALIZE_NUMPY))


class ServerMetadata(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "starter-serve", "version": "0.1.0", "extensions": v2_encode.EXTENSIONS}
            ]
        }
    )

    name: str
    version: str
    extensions: list[str] = Field(description="Protocol extensions this server speaks.")


class ServerLive(BaseModel):
    live: bool = Field(examples=[True])


class ServerReady(BaseModel):
    ready: bool = Field(examples=[True], description="Every configured model is loaded.")


class ModelReady(BaseModel):
    name: str = Field(examples=[LENET.name])
    ready: bool = Field(examples=[True])


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 marks the batch axis.")


class ModelMetadata(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [v2_encode.model_metadata(LENET, 1, "onnx")]}
    )

    name: str
    versions: list[str] = Field(description="Only the version being served.")
    platform: str = Field(description="onnxruntime_onnx or pytorch_libtorch, by backend.")
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class RequestInput(BaseModel):
    name: str
    shape: list[int] = Field(description="[N, *item shape]; N is the batch size.")
    datatype: str = Field(description="FP32; the digit models also take UINT8.")
    parameters: Parameters | None = Field(
        None, description="binary_data_size: the tensor follows the JSON as raw bytes."
    )
    data: list[Any] | None = Field(None, description="Row-major values, flat or nested.")


class RequestOutput(BaseModel):
    name: str
    parameters: Parameters | None = Field(
        None, description="binary_data: true answers this tensor as raw bytes after the JSON."
    )


class InferenceRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [example_request(POINTS, 2)]})

    id: str | None = Field(None, description="Echoed in the response.")
    parameters: Parameters | None = Field(
        None,
        description="binary_data_output: answer every output as binary data; "
        "timeout: microseconds to wait at most.",
    )
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(
        None, description="Which outputs to answer, in order; all of them when left out."
    )


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = Field(None, description="Row-major values, flat.")


class InferenceResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [example_response(POINTS)]})

    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


def infer_body() -> dict[str, Any]:
    """openapi_extra for the infer endpoints: the JSON body (one example per model) and binary."""
    schema = InferenceRequest.model_json_schema()
    schema = _inline(schema, schema.pop("$defs", {}))
    examples = {
        name: {"summary": f"{name}: {spec.description}", "value": example_request(spec)}
        for name, spec in SPECS.items()
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": schema, "examples": examples},
                "application/octet-stream": {
                    "schema": {
                        "type": "string",
                        "format": "binary",
                        "description": "Binary tensor data extension: the JSON request "
                        "(its length in the Inference-Header-Content-Length header), then each "
                        "input's bytes, little-endian, row-major. A header of 0 means the body is "
                        "only the input's FP32 bytes.",
                    }
                },
            },
        }
    }
