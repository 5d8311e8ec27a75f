"""Pydantic models of the inference protocol's bodies: the OpenAPI schema of /v2 and its examples.

Only documentation: the infer endpoint reads its body with serving.protocol (orjson + numpy).
Every example is generated from models.spec through serving.engine, so it is what the server
really accepts and answers (the tests post each one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

from models.spec import LENET, POINTS, SPECS, ModelSpec
from serving.api import v2_encode
from serving.engine.model_config import EXTENSIONS, model_metadata
from serving.engine.tensors import DTYPES, PIXELS, outputs_of
from serving.errors import JSON

Parameters = dict[str, str | int | float | bool]


def example_request(spec: ModelSpec, n: int = 1) -> dict[str, Any]:
    """A JSON inference request for `spec`: n copies of its example item, nested as the shape."""
    x = np.repeat(spec.example()[None], n, axis=0)
    data = x.astype(int) if spec.value_range == PIXELS else x
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
        "outputs": [{"name": t.name} for t in outputs_of(spec)],
    }


def example_response(spec: ModelSpec) -> dict[str, Any]:
    """What the server answers to example_request(spec), with made-up model outputs."""
    req = v2_encode.InferRequest(
        np.zeros(0), [(t, False) for t in outputs_of(spec)], f"{spec.name}-1"
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
            "examples": [{"name": "starter-serve", "version": "0.1.0", "extensions": EXTENSIONS}]
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
    model_config = ConfigDict(json_schema_extra={"examples": [model_metadata(LENET, 1, "onnx")]})

    name: str
    versions: list[str] = Field(description="Only the version being served.")
    platform: str = Field(description="onnxruntime_onnx or pytorch_libtorch, by backend.")
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class RequestInput(BaseModel):
    name: str
    shape: list[int] = Field(description="[N, *item shape]; N is the batch size.")
    datatype: str = Field(
        description=f"Any numeric datatype ({', '.join(DTYPES)}), cast to the model's FP32 "
        "when every value fits it."
    )
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


# ---- Triton's extensions: model configuration, statistics, model repository ------------------
class ConfigTensor(BaseModel):
    name: str
    data_type: str = Field(examples=["TYPE_FP32"], description="Triton's TYPE_* name.")
    dims: list[int] = Field(examples=[[1, 28, 28]], description="Per item: no batch axis.")


class ModelConfig(BaseModel):
    """Triton's ModelConfig (model_config.proto), as Triton's JSON writes it."""

    model_config = ConfigDict(extra="allow")

    name: str
    platform: str = Field(examples=["onnxruntime_onnx"])
    backend: str = Field(examples=["onnxruntime"])
    max_batch_size: int = Field(examples=[64])
    input: list[ConfigTensor]
    output: list[ConfigTensor]
    version_policy: dict[str, Any]
    instance_group: list[dict[str, Any]]
    dynamic_batching: dict[str, Any] | None = Field(
        None, description="max_queue_delay_microseconds: the batcher's wait; absent: no batching."
    )


class Duration(BaseModel):
    count: int = Field(ge=0)
    ns: int = Field(ge=0, description="Cumulative nanoseconds.")


class InferStats(BaseModel):
    success: Duration
    fail: Duration
    queue: Duration
    compute_input: Duration
    compute_infer: Duration
    compute_output: Duration
    cache_hit: Duration
    cache_miss: Duration


class BatchStats(BaseModel):
    batch_size: int
    compute_input: Duration
    compute_infer: Duration
    compute_output: Duration


class ModelStats(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    last_inference: int = Field(description="Milliseconds since the epoch; 0: none yet.")
    inference_count: int = Field(description="Inputs computed (each item of a batch counts).")
    execution_count: int = Field(description="Model executions (batches).")
    inference_stats: InferStats
    batch_stats: list[BatchStats]


class ModelStatsResponse(BaseModel):
    model_stats: list[ModelStats]


class RepositoryModel(BaseModel):
    name: str
    version: str
    state: str = Field(examples=["READY"], description="READY, LOADING or UNAVAILABLE.")
    reason: str = Field(description="Why it is unavailable; empty otherwise.")


def repository_body(ready: bool = False, *parameters: str) -> dict[str, Any]:
    """openapi_extra of a repository request: an optional JSON object, with these parameters."""
    params = {p: {"type": "boolean"} for p in parameters}
    properties: dict[str, Any] = {
        "parameters": {"type": "object", "properties": params, "additionalProperties": False}
    }
    if ready:
        properties["ready"] = {"type": "boolean", "description": "Only the ready models."}
    schema = {"type": "object", "properties": properties}
    return {"requestBody": {"required": False, "content": {"application/json": {"schema": schema}}}}
