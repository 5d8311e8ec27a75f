"""The hyperparameters of a run, each model's tuned defaults, and the optimizer and schedule
they name."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adadelta", "adam", "adamw")
SCHEDULES = ("onecycle", "cosine", "constant")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class HParams:
    optimizer: str = "adam"
    lr: float = 1e-3  # the peak learning rate under onecycle
    batch_size: int = 128
    epochs: int = 10
    shuffle: bool = True
    drop_last: bool = False
    dropout: float = 0.0
    weight_decay: float = 0.0
    augment: bool = False  # random affine of image batches (MNIST models only)
    schedule: str = "onecycle"
    precision: str = "fp32"  # bf16: autocast the forward pass (weights and evaluation stay fp32)
    channels_last: bool = False  # conv nets: NHWC memory layout, faster convolutions and pooling
    seed: int = 1
    val_size: int = 5000
    train_size: int = 0  # synthetic sets only: how many training items to generate
    patience: int = 0  # stop after this many epochs without a better validation loss (0: never)


# Tuned per model on the validation split; every flag overrides its entry. The optimizers and
# activations each model uses are compared in bench/results/optimizers.md and activations.md.
DEFAULTS: dict[str, HParams] = {
    "curve": HParams(lr=1e-2, batch_size=128, epochs=20, val_size=2000, train_size=20_000),
    "points": HParams(lr=1e-2, batch_size=128, epochs=8, val_size=2000, train_size=10_000),
    # The tutorial's logistic regression: plain SGD; its loss is convex, so no schedule is needed.
    "logreg": HParams(
        optimizer="sgd", lr=0.1, batch_size=128, epochs=8, schedule="constant", val_size=2000,
        train_size=10_000,
    ),
    "mlp": HParams(
        optimizer="adamw", lr=3e-3, batch_size=128, epochs=20, dropout=0.1, weight_decay=1e-4,
        augment=True,
    ),
    "dnn": HParams(
        optimizer="adamw", lr=2e-3, batch_size=128, epochs=20, dropout=0.1, weight_decay=1e-4,
        augment=True,
    ),
    "lenet": HParams(
        optimizer="adamw", lr=5e-3, batch_size=128, epochs=15, weight_decay=1e-4, augment=True,
        channels_last=True,
    ),
}  # fmt: skip
TINY = ("curve", "points")  # families trained on one CPU thread: threads cost more than they gain


def defaults_for(name: str) -> HParams:
    """The tuned defaults of a built-in model (a variant takes its base model's)."""
    return DEFAULTS[name]


def with_overrides(base: HParams, flags: dict[str, Any]) -> HParams:
    """`base` with every flag that was given (not None) that names a hyperparameter."""
    fields = {f.name for f in dataclasses.fields(HParams)}
    return dataclasses.replace(
        base, **{k: v for k, v in flags.items() if k in fields and v is not None}
    )


def short(hp: HParams) -> str:
    extras = [
        ("augment", hp.augment),
        ("channels-last", hp.channels_last),
        ("bf16", hp.precision == "bf16"),
    ]
    return f"{hp.optimizer} lr {hp.lr:g}, batch {hp.batch_size}, {hp.epochs} epochs" + "".join(
        f", {name}" for name, on in extras if on
    )


def make_optimizer(hp: HParams, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    lr, wd = hp.lr, hp.weight_decay
    optim = torch.optim
    return {
        "sgd": lambda: optim.SGD(params, lr=lr, weight_decay=wd),
        "momentum": lambda: optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd),
        "adagrad": lambda: optim.Adagrad(params, lr=lr, weight_decay=wd),
        "rmsprop": lambda: optim.RMSprop(params, lr=lr, weight_decay=wd),
        "adadelta": lambda: optim.Adadelta(params, lr=lr, weight_decay=wd),
        "adam": lambda: optim.Adam(params, lr=lr, weight_decay=wd),
        "adamw": lambda: optim.AdamW(params, lr=lr, weight_decay=wd),
    }[hp.optimizer]()


def make_scheduler(
    optimizer: torch.optim.Optimizer, hp: HParams, steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Stepped once per batch; `steps` is the number of batches in the whole run."""
    if hp.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=hp.lr, total_steps=steps)
    if hp.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    return None
