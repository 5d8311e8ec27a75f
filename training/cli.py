"""The flags of `python -m training`, and the choices made from them (device, threads)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from models import devices, store
from models.spec import ACTIVATIONS, SPECS, ModelSpec
from training import datasets
from training.config import (
    DEFAULTS,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    HParams,
    short,
    with_overrides,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the models of models/spec.py and publish their artifacts "
        "(state_dict, ONNX, model card, plots) as a new version in the model repository.",
        epilog="Unset flags take the model's tuned defaults: "
        + "; ".join(f"{n}: {short(h)}" for n, h in DEFAULTS.items()),
    )
    p.add_argument("model", choices=[*SPECS, "all"], help="which model to train")
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--lr", type=float, help="learning rate (the peak under onecycle)")
    p.add_argument("--batch-size", type=int,
                   help="items per step per process (under torchrun the global batch is "
                   "nproc times this)")  # fmt: skip
    p.add_argument("--epochs", type=int)
    p.add_argument("--patience", type=int,
                   help="stop after this many epochs without a better validation loss")  # fmt: skip
    p.add_argument("--shuffle", action=argparse.BooleanOptionalAction, help="reshuffle each epoch")
    p.add_argument("--drop-last", action=argparse.BooleanOptionalAction)
    p.add_argument("--dropout", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, help="random affine")
    p.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule per batch")
    p.add_argument("--precision", choices=PRECISIONS, help="bf16: mixed-precision training")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                   help="NHWC layout for convolutions")  # fmt: skip
    p.add_argument("--seed", type=int)
    p.add_argument("--val-size", type=int, help="items held out of training for validation")
    p.add_argument("--train-size", type=int, help="synthetic models: training items generated")
    arch = p.add_argument_group("architecture (a variant of the model, published under --name)")
    arch.add_argument("--hidden", type=_widths, metavar="N,N,...",
                      help="hidden layer widths, e.g. 400,200,100")  # fmt: skip
    arch.add_argument("--activation", choices=ACTIVATIONS, help="between the layers")
    arch.add_argument("--name", help="publish under this model name (default: the model's own)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--data-dir", type=Path, default=datasets.default_data_dir(),
                   help="folder holding MNIST/raw/ (default: $MNIST_DATA_DIR or data)")  # fmt: skip
    p.add_argument("--download", action="store_true", help="fetch MNIST with torchvision first")
    p.add_argument("--models-dir", type=Path, default=store.REPOSITORY,
                   help="model repository to publish into (default: %(default)s)")  # fmt: skip
    p.add_argument("--keep", type=int, default=2, help="versions kept per model (0: all)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (default 0: the cores that look idle)")  # fmt: skip
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--tensorboard", type=Path, metavar="DIR",
                   help="TensorBoard logs under DIR/<model>: scalars, graph, confusion, "
                   "sample predictions")  # fmt: skip
    args = p.parse_args(argv)
    for flag in ("epochs", "batch_size", "val_size", "train_size"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.model == "all" and (args.name or args.hidden or args.activation):
        p.error("--name, --hidden and --activation make a variant of one model, not of all")
    if args.name is not None and not _is_name(args.name):
        p.error("--name: letters, digits, '-' and '_' only, starting with a letter")
    if args.name in SPECS and args.name != args.model:
        p.error(f"--name {args.name} is a built-in model; pick another name")
    if args.name is None and (args.hidden or args.activation):
        p.error("--hidden/--activation change the architecture: give the variant a --name")
    try:
        if args.model != "all":
            specs(args)
    except ValueError as e:
        p.error(str(e))
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda, but torch sees no CUDA device")
    return args


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of ints") from e
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError("hidden layer widths must be positive")
    return widths


def _is_name(name: str) -> bool:
    return name[:1].isalpha() and all(c.isalnum() or c in "-_" for c in name) and len(name) <= 64


def specs(args: argparse.Namespace) -> list[ModelSpec]:
    """The models this run trains: all, one, or one variant under its --name."""
    if args.model == "all":
        return list(SPECS.values())
    base = SPECS[args.model]
    return [base.variant(args.name or base.name, args.hidden, args.activation)]


def hparams(name: str, args: argparse.Namespace) -> HParams:
    """The tuned defaults of built-in model `name`, with the flags given on top."""
    return with_overrides(DEFAULTS[name], vars(args))


def resolve_device(name: str) -> torch.device:
    return torch.device(devices.resolve(name))


def pick_threads(requested: int, processes: int = 1) -> int:
    """--threads if given, else the cores that look idle (one-minute load average) shared among
    this machine's `processes` (torchrun's local world size), at least 1.

    OpenMP threads wait for each other at every parallel region, so on a CPU shared with other
    busy processes more threads than idle cores is far slower, not faster: on this 2-core machine
    under load, two threads trained LeNet 4-10x slower than one.
    """
    if requested > 0:
        return requested
    idle = (os.cpu_count() or 1) - os.getloadavg()[0]
    return max(1, min(torch.get_num_threads(), round(idle / max(1, processes))))
