"""The single definition of each model: what goes in, what comes out, what the labels mean.

Training, ONNX export, serving, the OpenAPI examples and the inference-protocol metadata all read
these objects; nothing about a model is written anywhere else. This module needs only numpy, so a
server that runs ONNX Runtime alone can import it without torch.

The architecture is data too (`layers`, `hidden`, `activation`, `logistic`): `models.nets.build`
makes the network from these fields alone, the card records them, and `spec_from_card` turns a
card back into a spec, so a variant trained under a new name (`python -m training mlp --name wide
--hidden 400,200 --activation tanh`) is served from its card with no code change (`specs_in`).
Adding a built-in model is one more entry in `SPECS`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from models import store
from models.samples import EXAMPLES

Family = Literal["digits", "points", "curve"]
Activation = Literal["relu", "sigmoid", "tanh"]
ACTIVATIONS: tuple[str, ...] = ("relu", "sigmoid", "tanh")


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
    family: Family  # the /predict/<family> endpoint that serves it, and the data it learns
    task: Literal["classification", "regression"]
    description: str
    architecture: str  # for people; the fields below are what the network is built from
    input: Tensor
    output: Tensor  # probabilities for a classifier, the value for a regressor
    hidden: tuple[int, ...] = ()  # widths of the hidden layers (LeNet: of its dense layers)
    labels: tuple[str, ...] = ()
    value_range: tuple[float, float] | None = None  # valid raw input values, inclusive
    normalization: Normalization | None = None
    layers: Literal["mlp", "lenet"] = "mlp"
    activation: Activation = "relu"  # between the layers
    # One logit z and P(class 1) = sigmoid(z), trained with binary cross-entropy: logistic
    # regression when `hidden` is empty. Served as (1 - p, p), like every other classifier.
    logistic: bool = False

    @property
    def is_classifier(self) -> bool:
        return self.task == "classification"

    @property
    def n_logits(self) -> int:
        """Outputs of the last layer: one for a logistic model, else the output's size."""
        return 1 if self.logistic else self.output.size

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
            "family": self.family,
            "layers": self.layers,
            "hidden": list(self.hidden),
            "activation": self.activation,
            "logistic": self.logistic,
        }

    def variant(
        self, name: str, hidden: tuple[int, ...] | None = None, activation: str | None = None
    ) -> ModelSpec:
        """This model under another name, with other hidden layers and/or activation."""
        hidden = self.hidden if hidden is None else tuple(hidden)
        act = self.activation if activation is None else activation
        if act not in ACTIVATIONS:
            raise ValueError(f"activation {act!r} is not one of {ACTIVATIONS}")
        if self.layers == "lenet" and len(hidden) != 2:
            raise ValueError("LeNet has exactly two hidden dense layers")
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden layer widths must be positive, got {hidden}")
        if (name, hidden, act) == (self.name, self.hidden, self.activation):
            return self
        return dataclasses.replace(
            self,
            name=name,
            hidden=hidden,
            activation=act,  # type: ignore[arg-type]
            architecture=describe_layers(self, hidden, act),
            description=f"{self.description} Variant of {self.name}.",
        )


def describe_layers(spec: ModelSpec, hidden: tuple[int, ...], activation: str) -> str:
    if spec.layers == "lenet":
        return f"LeNet-5 with dense layers {hidden[0]}, {hidden[1]}; {activation}"
    sizes = "-".join(str(n) for n in (spec.input.size, *hidden, spec.n_logits))
    kind = "logistic regression" if spec.logistic and not hidden else "MLP"
    return f"{kind} {sizes}, {activation}" + (", sigmoid output" if spec.logistic else "")


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
    layers="lenet",
)

LOGREG = ModelSpec(
    name="logreg",
    family="points",
    task="classification",
    description="Logistic regression on the two clusters of `points`: y = sigmoid(wx + b).",
    architecture="logistic regression 2-1, sigmoid output",
    input=Tensor("points", (2,)),
    output=Tensor("probabilities", (2,)),
    labels=POINTS.labels,
    logistic=True,
)
DNN = ModelSpec(
    name="dnn",
    family="digits",
    task="classification",
    description="MNIST digits with the tutorials' deeper multi-layer network.",
    architecture="MLP 784-400-200-100-10, ReLU, dropout",
    input=Tensor("pixels", (1, 28, 28)),
    output=Tensor("probabilities", (10,)),
    hidden=(400, 200, 100),
    labels=DIGIT_LABELS,
    value_range=(0.0, 255.0),
    normalization=MNIST_NORMALIZATION,
)

SPECS: dict[str, ModelSpec] = {s.name: s for s in (CURVE, POINTS, MLP, LENET, LOGREG, DNN)}
DEFAULT_FOR_FAMILY = {"digits": "lenet", "points": "points", "curve": "curve"}


def spec_from_card(card: dict[str, Any]) -> ModelSpec:
    """The spec a card describes (cards written since the architecture became data).

    Raises ValueError for a card that does not record its architecture.
    """
    try:
        inp, out, norm = card["input"], card["output"], card.get("normalization")
        value_range = inp.get("range")
        return ModelSpec(
            name=card["name"],
            family=card["family"],
            task=card["task"],
            description=card.get("description", ""),
            architecture=card.get("architecture", ""),
            input=Tensor(inp["name"], tuple(inp["shape"][1:]), inp.get("datatype", "FP32")),
            output=Tensor(out["name"], tuple(out["shape"][1:]), out.get("datatype", "FP32")),
            hidden=tuple(int(h) for h in card["hidden"]),
            labels=tuple(card.get("labels", ())),
            value_range=None if value_range is None else (value_range[0], value_range[1]),
            normalization=None if norm is None else Normalization(**norm),
            layers=card["layers"],
            activation=card["activation"],
            logistic=bool(card.get("logistic", False)),
        )
    except (KeyError, TypeError, IndexError) as e:
        raise ValueError(f"the card does not describe an architecture ({e!r})") from e


def specs_in(root: Path | str | None) -> dict[str, ModelSpec]:
    """Every model that can be served from `root`: the built-in ones, then each model whose newest
    card there describes its architecture (a variant trained under its own name)."""
    found = dict(SPECS)
    folder = Path(root) if root is not None else None
    if folder is None or not folder.is_dir():
        return found
    for model in sorted(folder.iterdir()):
        if model.name in found or not model.is_dir():
            continue
        numbered = store.versions(folder, model.name)  # skips what is not a version
        if not numbered:
            continue
        try:
            card = json.loads((model / str(numbered[-1]) / store.CARD).read_text())
            spec = spec_from_card(card)
        except (OSError, ValueError):
            continue  # not a model this service can describe; loading it would be refused
        if spec.name == model.name:
            found[spec.name] = spec
    return found
