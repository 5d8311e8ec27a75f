"""The PyTorch modules, built from each spec. Training, export and the torch backend use them."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from models.spec import ModelSpec, Normalization


class Normalize(nn.Module):
    """Raw input (e.g. pixels 0-255) to the standardised values the layers were trained on."""

    def __init__(self, norm: Normalization) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(norm.mean / norm.scale))
        self.register_buffer("factor", torch.tensor(norm.scale / norm.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) * self.factor


def _mlp(sizes: list[int], dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            # Always present (p may be 0): the layer indices, and so the state_dict's keys,
            # must not depend on a training choice.
            layers.append(nn.Dropout(dropout))
    return layers


def _lenet(spec: ModelSpec, dropout: float) -> list[nn.Module]:
    c, _, _ = spec.input.shape
    f1, f2 = spec.hidden
    return [
        nn.Conv2d(c, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 6 x 14 x 14
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 16 x 5 x 5
        nn.Flatten(),
        *_mlp([16 * 5 * 5, f1, f2, spec.output.size], dropout),
    ]


def build(spec: ModelSpec, dropout: float = 0.0) -> nn.Sequential:
    """The trainable network: raw input in, logits (classifier) or the value (regressor) out."""
    layers: list[nn.Module] = []
    if spec.normalization is not None:
        layers.append(Normalize(spec.normalization))
    if spec.name == "lenet":
        layers += _lenet(spec, dropout)
    else:
        if len(spec.input.shape) > 1:
            layers.append(nn.Flatten())
        layers += _mlp([spec.input.size, *spec.hidden, spec.output.size], dropout)
    return nn.Sequential(*layers)


def for_inference(net: nn.Module, spec: ModelSpec) -> nn.Module:
    """What is served and exported: a classifier answers probabilities, a regressor its value."""
    head = nn.Sequential(net, nn.Softmax(dim=1)) if spec.is_classifier else nn.Sequential(net)
    return head.eval()


def load(spec: ModelSpec, state_path: str, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the network from its spec and load a state_dict, never running pickled code."""
    net = build(spec)
    state = torch.load(state_path, map_location=device, weights_only=True)
    net.load_state_dict(state)
    return for_inference(net, spec).to(device)
