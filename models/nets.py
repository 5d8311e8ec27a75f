"""The PyTorch modules, built from each spec. Training, export and the torch backend use them.

Only state_dicts are saved and loaded (`torch.load(..., weights_only=True)`): unpickling a whole
saved network (`torch.save(net)`) runs whatever code the file names, so a model file from
anywhere could run anything on the server. The network is rebuilt from its spec instead (for a
variant, from its card: `load_from_card`), then the weights are loaded into it.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from models.spec import SPECS, ModelSpec, Normalization, spec_from_card

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class Normalize(nn.Module):
    """Raw input (e.g. pixels 0-255) to the standardised values the layers were trained on."""

    def __init__(self, norm: Normalization) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(norm.mean / norm.scale))
        self.register_buffer("factor", torch.tensor(norm.scale / norm.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) * self.factor


class TwoClass(nn.Module):
    """One logit z -> (1 - sigmoid(z), sigmoid(z)): P(class) for both classes."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(z[:, :1])
        return torch.cat([1 - p, p], dim=1)


def _mlp(sizes: list[int], dropout: float, activation: str = "relu") -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
            # Always present (p may be 0): the layer indices, and so the state_dict's keys,
            # must not depend on a training choice.
            layers.append(nn.Dropout(dropout))
    return layers


def _lenet(spec: ModelSpec, dropout: float) -> list[nn.Module]:
    c, _, _ = spec.input.shape
    f1, f2 = spec.hidden
    act = ACTIVATIONS[spec.activation]
    return [
        nn.Conv2d(c, 6, 5, padding=2),
        act(),
        nn.MaxPool2d(2),  # 6 x 14 x 14
        nn.Conv2d(6, 16, 5),
        act(),
        nn.MaxPool2d(2),  # 16 x 5 x 5
        nn.Flatten(),
        *_mlp([16 * 5 * 5, f1, f2, spec.n_logits], dropout, spec.activation),
    ]


def build(spec: ModelSpec, dropout: float = 0.0) -> nn.Sequential:
    """The trainable network: raw input in, logits (classifier; one for a logistic model) or the
    value (regressor) out. Built from the spec's fields alone."""
    layers: list[nn.Module] = []
    if spec.normalization is not None:
        layers.append(Normalize(spec.normalization))
    if spec.layers == "lenet":
        layers += _lenet(spec, dropout)
    else:
        if len(spec.input.shape) > 1:
            layers.append(nn.Flatten())
        layers += _mlp([spec.input.size, *spec.hidden, spec.n_logits], dropout, spec.activation)
    return nn.Sequential(*layers)


def probabilities(out: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """The trainable network's outputs (logits) as P(class), one column per class."""
    return TwoClass()(out) if spec.logistic else torch.softmax(out, dim=1)


def predicted_labels(out: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """The class each row of logits picks (a logistic model: z > 0, i.e. p > 0.5)."""
    return (out[:, 0] > 0).long() if spec.logistic else out.argmax(1)


def for_inference(net: nn.Module, spec: ModelSpec) -> nn.Module:
    """What is served and exported: a classifier answers probabilities, a regressor its value."""
    if not spec.is_classifier:
        return nn.Sequential(net).eval()
    head = TwoClass() if spec.logistic else nn.Softmax(dim=1)
    return nn.Sequential(net, head).eval()


def load(spec: ModelSpec, state_path: str, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the network from its spec and load a state_dict, never running pickled code."""
    net = build(spec)
    state = torch.load(state_path, map_location=device, weights_only=True)
    net.load_state_dict(state)
    return for_inference(net, spec).to(device)


def load_from_card(
    card: dict, state_path: str, device: str | torch.device = "cpu"
) -> tuple[ModelSpec, nn.Module]:
    """The exact network a card describes (built-in name: its spec), with its weights loaded."""
    name = card.get("name", "")
    spec = SPECS[name] if name in SPECS and "layers" not in card else spec_from_card(card)
    return spec, load(spec, state_path, device)
