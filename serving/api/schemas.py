"""Pydantic models of every request and response: the OpenAPI schema and its examples.

Shapes, ranges and examples come from models.spec. The hot path decodes bodies with
serving.decode (same rules, one numpy pass); these models document that contract and are
checked against real answers by the tests.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from models.spec import CURVE, DEFAULT_FOR_FAMILY, LENET, POINTS, SPECS
from serving.engine.tensors import FLOAT32_MAX
from serving.errors import JSON

DIGIT_MODELS = [s.name for s in SPECS.values() if s.family == "digits"]
POINT_MODELS = [s.name for s in SPECS.values() if s.family == "points"]
_side = LENET.input.shape[-1]
_lo, _hi = LENET.value_range or (0.0, 255.0)

Float32 = Annotated[float, Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]  # models take float32
Pixel = Annotated[float, Field(ge=_lo, le=_hi)]
Image28 = Annotated[
    list[Annotated[list[Pixel], Field(min_length=_side, max_length=_side)]],
    Field(min_length=_side, max_length=_side),
]
ImageFlat = Annotated[list[Pixel], Field(min_length=_side * _side, max_length=_side * _side)]


def _example_image() -> list[list[int]]:
    return LENET.example().reshape(_side, _side).astype(int).tolist()


class DigitsRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"images": [_example_image()], "model": DEFAULT_FOR_FAMILY["digits"]}]
        },
    )

    images: list[Image28 | ImageFlat] = Field(
        min_length=1,
        description=f"{_side}x{_side} grayscale images (or flat lists of {_side * _side}), "
        f"values {_lo:g}-{_hi:g}, bright ink on a dark background as in MNIST.",
    )
    model: str = Field(DEFAULT_FOR_FAMILY["digits"], description=f"One of {DIGIT_MODELS}.")


class DigitPrediction(BaseModel):
    digit: int = Field(ge=0, le=9)
    probabilities: list[float] = Field(min_length=10, max_length=10)


class DigitsResponse(BaseModel):
    model: str
    version: str
    predictions: list[DigitPrediction]


class ImageResponse(DigitsResponse):
    image: list[list[int]] = Field(
        description="The 28x28 image the model saw, after MNIST-style normalisation."
    )


class PointsRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"points": [POINTS.example().tolist(), [-1.0, -2.5]]},
                *({"points": [POINTS.example().tolist()], "model": m} for m in POINT_MODELS[1:]),
            ]
        },
    )

    points: list[Annotated[list[Float32], Field(min_length=2, max_length=2)]] = Field(
        min_length=1, description="(x, y) points; finite numbers."
    )
    model: str = Field(DEFAULT_FOR_FAMILY["points"], description=f"One of {POINT_MODELS}.")


class PointPrediction(BaseModel):
    label: int = Field(ge=0)
    probabilities: list[float]


class PointsResponse(BaseModel):
    model: str
    version: str
    predictions: list[PointPrediction]


class CurveRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"x": [-1.0, CURVE.example().item(), 0.0, 1.0]}]},
    )

    x: list[Float32] = Field(min_length=1, description="Inputs; finite numbers, best in [-1, 1].")
    model: str = Field(DEFAULT_FOR_FAMILY["curve"])


class CurveResponse(BaseModel):
    model: str
    version: str
    y: list[float]


class ModelInfo(BaseModel):
    name: str
    version: str
    family: str
    task: str
    backend: str
    device: str
    input: dict[str, Any] | None
    output: dict[str, Any] | None
    labels: list[str]
    metrics: dict[str, Any]
    load_seconds: float


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    failed: dict[str, str] = Field(description="Models that could not be loaded, and why.")


class SampleResponse(BaseModel):
    x: list[float] | None = Field(None, description="curve: inputs")
    y: list[float] | None = Field(None, description="curve: noisy targets")
    points: list[list[float]] | None = Field(None, description="points: (x, y) pairs")
    labels: list[int] | None = Field(None, description="points: their cluster")


class ModelState(BaseModel):
    state: str = Field(examples=["ready"], description="ready, loading or failed")
    version: str | None = Field(None, examples=["1"], description="The version serving.")
    reason: str | None = Field(None, description="Why it failed (or why a newer one was refused).")


class Health(BaseModel):
    status: str
    models: dict[str, ModelState] = {}


class ErrorBody(BaseModel):
    error: str = Field(examples=["images[0][3]: value 300 is outside 0-255"])
    field: str | None = Field(None, examples=["images[0][3]"])


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """openapi_extra for an endpoint that reads its JSON body itself (the lean path)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": model.model_json_schema(ref_template="#/components/schemas/{model}")
                }
            },
        }
    }
