"""The single definition of each model: what goes in, what comes out, what the labels mean.

Training, ONNX export, serving, the OpenAPI examples and the inference-protocol metadata all read
these objects; nothing about a model is written anywhere else. This module needs only numpy, so a
server that runs ONNX Runtime alone can import it without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Tensor:
    """One named tensor, as the Open Inference Protocol describes it (per item: no batch axis)."""

    name: str
    shape: tuple[int, ...]
    datatype: str = "FP32"

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Normalization:
    """Applied inside the network (first layer), so callers always send raw values."""

    scale: float  # raw value * scale, then (v - mean) / std
    mean: float
    std: float


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: Literal["digits", "points", "curve"]  # the /predict/<family> endpoint that serves it
    task: Literal["classification", "regression"]
    description: str
    architecture: str
    input: Tensor
    output: Tensor  # probabilities for a classifier, the value for a regressor
    hidden: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()
    value_range: tuple[float, float] | None = None  # valid raw input values, inclusive
    normalization: Normalization | None = None

    @property
    def is_classifier(self) -> bool:
        return self.task == "classification"

    def example(self) -> np.ndarray:
        """One valid input item (for OpenAPI examples, probes and smoke tests)."""
        return EXAMPLES[self.family]().astype(np.float32).reshape(self.input.shape)

    def card_fields(self) -> dict[str, object]:
        """What a model card says about the model's interface."""
        return {
            "name": self.name,
            "task": self.task,
            "description": self.description,
            "architecture": self.architecture,
            "input": {
                "name": self.input.name,
                "datatype": self.input.datatype,
                "shape": [-1, *self.input.shape],
                "range": self.value_range,
            },
            "output": {
                "name": self.output.name,
                "datatype": self.output.datatype,
                "shape": [-1, *self.output.shape],
            },
            "labels": list(self.labels),
            "normalization": None if self.normalization is None else vars(self.normalization),
        }


def _example_digit() -> np.ndarray:
    """A plain '1': a bright vertical stroke on black, as MNIST draws it."""
    img = np.zeros((28, 28), dtype=np.float32)
    img[4:24, 13:16] = 255.0
    return img


EXAMPLES = {
    "digits": _example_digit,
    "points": lambda: np.array([1.5, 2.0]),
    "curve": lambda: np.array([0.5]),
}

# MNIST pixels are 0-255; the network scales to [0, 1] and standardises with MNIST's own moments.
MNIST_NORMALIZATION = Normalization(scale=1 / 255, mean=0.1307, std=0.3081)
DIGIT_LABELS = tuple(str(d) for d in range(10))

CURVE = ModelSpec(
    name="curve",
    family="curve",
    task="regression",
    description="Regresses y = x^2 + 0.2*U(0,1) for x in [-1, 1]; predicts E[y] = x^2 + 0.1.",
    architecture="MLP 1-64-64-1, ReLU",
    input=Tensor("x", (1,)),
    output=Tensor("y", (1,)),
    hidden=(64, 64),
)
POINTS = ModelSpec(
    name="points",
    family="points",
    task="classification",
    description="Classifies 2-D points from two Gaussian clusters centred at (2, 2) and (-2, -2).",
    architecture="MLP 2-16-2, ReLU",
    input=Tensor("points", (2,)),
    output=Tensor("probabilities", (2,)),
    hidden=(16,),
    labels=("cluster (2, 2)", "cluster (-2, -2)"),
)
MLP = ModelSpec(
    name="mlp",
    family="digits",
    task="classification",
    description="MNIST digits with a multi-layer perceptron.",
    architecture="MLP 784-128-64-10, ReLU, dropout",
    input=Tensor("pixels", (1, 28, 28)),
    output=Tensor("probabilities", (10,)),
    hidden=(128, 64),
    labels=DIGIT_LABELS,
    value_range=(0.0, 255.0),
    normalization=MNIST_NORMALIZATION,
)
LENET = ModelSpec(
    name="lenet",
    family="digits",
    task="classification",
    description="MNIST digits with LeNet-5.",
    architecture="LeNet-5: conv 6@5x5 pad 2, maxpool, conv 16@5x5, maxpool, 120, 84, 10; ReLU",
    input=Tensor("pixels", (1, 28, 28)),
    output=Tensor("probabilities", (10,)),
    hidden=(120, 84),
    labels=DIGIT_LABELS,
    value_range=(0.0, 255.0),
    normalization=MNIST_NORMALIZATION,
)

SPECS: dict[str, ModelSpec] = {s.name: s for s in (CURVE, POINTS, MLP, LENET)}
DEFAULT_FOR_FAMILY = {"digits": "lenet", "points": "points", "curve": "curve"}
