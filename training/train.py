"""Train one model or all four: `python -m training <curve|points|mlp|lenet|all> [flags]`.

Reads top to bottom like pytorch/examples' mnist/main.py: `train()` runs one epoch, `evaluate()`
scores a split, `fit()` runs the epochs and keeps the best one on the validation split, and
`main()` parses the flags, loads the data and publishes each model's artifacts.

Metrics are accumulated as sums in one tensor (loss * n, correct, n) so that under DDP a single
all-reduce of that tensor gives the global numbers.

Under `torchrun --nproc-per-node N -m training <model>` (training/distributed.py) the network is
wrapped in DistributedDataParallel, each rank trains on its shard of every epoch with
--batch-size items per step (the global batch is N times that; the peak learning rate is kept and
the schedule spans the per-rank steps), validation is sharded and all-reduced so every rank picks
the same best epoch, and rank 0 alone tests, writes and publishes while the others wait.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from models import nets, store
from models.spec import SPECS, ModelSpec
from training import data, datasets, distributed
from training.data import Data, Split

TINY = ("curve", "points")  # trained on one CPU thread: threading costs them more than it gains
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


# Tuned per model on the validation split; every flag overrides its entry.
DEFAULTS: dict[str, HParams] = {
    "curve": HParams(lr=1e-2, batch_size=128, epochs=20, val_size=2000, train_size=20_000),
    "points": HParams(lr=1e-2, batch_size=128, epochs=8, val_size=2000, train_size=10_000),
    "mlp": HParams(
        optimizer="adamw", lr=3e-3, batch_size=128, epochs=20, dropout=0.1, weight_decay=1e-4,
        augment=True,
    ),
    "lenet": HParams(
        optimizer="adamw", lr=5e-3, batch_size=128, epochs=15, weight_decay=1e-4, augment=True,
        channels_last=True,
    ),
}  # fmt: skip


@dataclass
class Result:
    net: nn.Module  # the network of the best validation epoch (the `build()` network)
    history: list[dict[str, float]]  # one row of metrics per epoch
    best_epoch: int
    test: dict[str, float]
    test_outputs: torch.Tensor  # the network's outputs on the test split, for the plots
    seconds: float


def loss_fn(
    out: torch.Tensor, y: torch.Tensor, spec: ModelSpec, reduction: str = "mean"
) -> torch.Tensor:
    if spec.is_classifier:
        return F.cross_entropy(out, y, reduction=reduction)
    return F.mse_loss(out, y, reduction=reduction)


def means(sums: torch.Tensor, spec: ModelSpec) -> dict[str, float]:
    """(loss * n, correct, n) to mean loss and accuracy; under DDP all-reduce `sums` first."""
    loss, correct, n = sums.tolist()
    return {"loss": loss / n, "accuracy": correct / n} if spec.is_classifier else {"loss": loss / n}


def train(
    net: nn.Module,
    split: Split,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    spec: ModelSpec,
    hp: HParams,
    generator: torch.Generator,
    desc: str,
    progress: bool = True,
) -> dict[str, float]:
    """One epoch over this rank's shard of the training split; the mean loss (and accuracy)
    over all ranks."""
    net.train()
    me = distributed.current()
    order = data.epoch_order(len(split), hp.shuffle, generator)
    order = distributed.shard(order, me.rank, me.world_size).to(split.x.device)
    sums = torch.zeros(3, device=split.x.device)
    total = data.n_batches(len(order), hp.batch_size, hp.drop_last)
    bar = tqdm(total=total, desc=desc, leave=False, disable=not progress, dynamic_ncols=True)
    for step, idx in enumerate(data.batches(order, hp.batch_size, hp.drop_last)):
        x, y = split.x[idx], split.y[idx]
        if hp.augment:
            x = data.augment(x)
        with torch.autocast(x.device.type, torch.bfloat16, enabled=hp.precision == "bf16"):
            out = net(x)
            loss = loss_fn(out.float(), y, spec)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        with torch.no_grad():
            sums[0] += loss.detach() * len(idx)
            if spec.is_classifier:
                sums[1] += (out.argmax(1) == y).sum()
            sums[2] += len(idx)
        bar.update()
        if progress and (step % 25 == 0 or step == total - 1):  # .tolist() waits for the GPU
            bar.set_postfix({k: f"{v:.4f}" for k, v in means(sums, spec).items()}, refresh=False)
    bar.close()
    return means(distributed.all_reduce_sum(sums), spec)


@torch.no_grad()
def evaluate(
    net: nn.Module, split: Split, spec: ModelSpec, batch_size: int = 2000
) -> tuple[dict[str, float], torch.Tensor]:
    """Mean loss (and accuracy) on a split, and the network's outputs (logits or values)."""
    sums, out = _sums(net, split, spec, batch_size)
    return means(sums, spec), out


@torch.no_grad()
def evaluate_sharded(net: nn.Module, split: Split, spec: ModelSpec) -> dict[str, float]:
    """`evaluate` with each rank scoring every world_size-th item and the sums all-reduced:
    the same numbers on every rank (and exactly `evaluate`'s on one process)."""
    me = distributed.current()
    if me.world_size > 1:
        idx = torch.arange(me.rank, len(split), me.world_size, device=split.x.device)
        split = Split(split.x[idx], split.y[idx])
    sums, _ = _sums(net, split, spec)
    return means(distributed.all_reduce_sum(sums), spec)


def _sums(
    net: nn.Module, split: Split, spec: ModelSpec, batch_size: int = 2000
) -> tuple[torch.Tensor, torch.Tensor]:
    net.eval()
    out = torch.cat([net(split.x[i : i + batch_size]) for i in range(0, len(split), batch_size)])
    correct = (out.argmax(1) == split.y).sum() if spec.is_classifier else out.new_zeros(())
    n = out.new_tensor(len(out))
    return torch.stack([loss_fn(out, split.y, spec, "sum"), correct.float(), n]), out


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


def fit(
    spec: ModelSpec,
    d: Data,
    hp: HParams,
    progress: bool = True,
    log: Callable[[str], None] = print,
    after_epoch: Callable[[nn.Module, int], bool] | None = None,
) -> Result:
    """Train for hp.epochs and return the network of the best validation epoch, tested.

    `after_epoch(net, epoch)` returning True stops early (the benchmark uses it; under DDP it
    must answer the same on every rank). Under DDP every rank returns the same network; only
    rank 0 scores the test split (the others' Result has an empty `test`).
    """
    me = distributed.current()
    if not me.is_main:
        progress, log = False, _quiet
    torch.manual_seed(hp.seed)
    device = d.train.x.device
    net = nets.build(spec, hp.dropout).to(device)
    if hp.channels_last:  # same weights and function; only the layout of 4-D tensors changes
        net = net.to(memory_format=torch.channels_last)
    model: nn.Module = net
    if me.enabled:  # broadcasts rank 0's initial weights, then all-reduces the gradients
        model = DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)
        if me.rank:  # each rank its own augmentations and dropout masks
            torch.manual_seed(hp.seed + me.rank)
    optimizer = make_optimizer(hp, net.parameters())
    per_rank = distributed.shard_len(len(d.train), me.world_size)
    steps = hp.epochs * data.n_batches(per_rank, hp.batch_size, hp.drop_last)
    scheduler = make_scheduler(optimizer, hp, steps)
    generator = torch.Generator().manual_seed(hp.seed)
    history: list[dict[str, float]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    start = time.perf_counter()
    for epoch in range(1, hp.epochs + 1):
        t = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        desc = f"{spec.name} {epoch}/{hp.epochs}"
        tr = train(model, d.train, optimizer, scheduler, spec, hp, generator, desc, progress)
        va = evaluate_sharded(net, d.val, spec)
        row = {"epoch": epoch, "lr": lr, **{f"train_{k}": v for k, v in tr.items()}}
        row |= {f"val_{k}": v for k, v in va.items()} | {"seconds": time.perf_counter() - t}
        history.append(row)
        log(format_row(row, desc))
        score = -va["loss"]  # smoother than accuracy on a few thousand items
        if best is None or score >= best[0]:  # a tie goes to the later epoch
            best = (score, epoch, {k: v.detach().clone() for k, v in net.state_dict().items()})
        if after_epoch is not None and after_epoch(net, epoch):
            break
    seconds = time.perf_counter() - start
    assert best is not None
    net.load_state_dict(best[2])
    if not me.is_main:
        return Result(net, history, best[1], {}, torch.empty(0), seconds)
    test, out = evaluate(net, d.test, spec)
    if not spec.is_classifier:  # the curve's test targets are the true mean: loss is that MSE
        test = {"mse": test["loss"]}
    test["n"] = len(d.test)
    return Result(net, history, best[1], test, out, seconds)


def _quiet(_: str) -> None:
    pass


def format_row(row: dict[str, float], desc: str) -> str:
    parts = [f"{desc:<14}", f"lr {row['lr']:.2e}"]
    for split in ("train", "val"):
        parts.append(f"{split} loss {row[f'{split}_loss']:.5f}")
        if f"{split}_accuracy" in row:
            parts.append(f"acc {row[f'{split}_accuracy']:.2%}")
    return "  ".join([*parts, f"{row['seconds']:.1f}s"])


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the models of models/spec.py and publish their artifacts "
        "(state_dict, ONNX, model card, plots) as a new version in the model repository.",
        epilog="Unset flags take the model's tuned defaults: "
        + "; ".join(f"{n}: {_short(h)}" for n, h in DEFAULTS.items()),
    )
    p.add_argument("model", choices=[*SPECS, "all"], help="which model to train")
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--lr", type=float, help="learning rate (the peak under onecycle)")
    p.add_argument("--batch-size", type=int,
                   help="items per step per process (under torchrun the global batch is "
                   "nproc times this)")  # fmt: skip
    p.add_argument("--epochs", type=int)
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
    args = p.parse_args(argv)
    for flag in ("epochs", "batch_size", "val_size", "train_size"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda, but torch sees no CUDA device")
    return args


def _short(hp: HParams) -> str:
    extras = [
        ("augment", hp.augment),
        ("channels-last", hp.channels_last),
        ("bf16", hp.precision == "bf16"),
    ]
    return f"{hp.optimizer} lr {hp.lr:g}, batch {hp.batch_size}, {hp.epochs} epochs" + "".join(
        f", {name}" for name, on in extras if on
    )


def hparams(name: str, args: argparse.Namespace) -> HParams:
    fields = {f.name for f in dataclasses.fields(HParams)}
    overrides = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    return dataclasses.replace(DEFAULTS[name], **overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    me, device = distributed.setup(resolve_device(args.device))
    try:
        return _main(args, device, me)
    finally:
        distributed.cleanup()


def _main(args: argparse.Namespace, device: torch.device, me: distributed.Dist) -> int:
    names = list(SPECS) if args.model == "all" else [args.model]
    threads = pick_threads(args.threads, me.local_world_size)
    try:
        if args.download:
            datasets.download(args.data_dir)
        cache: dict[str, Data] = {}
        plan = [(n, hparams(n, args)) for n in names]
        loaded = {n: data.load(n, h.val_size, h.train_size, args.data_dir, cache) for n, h in plan}
    except datasets.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, hp in plan:
        tiny = name in TINY and not args.threads  # threads only cost time on these
        torch.set_num_threads(1 if tiny else threads)
        publish(SPECS[name], hp, loaded[name].to(device), device, args)
    return 0


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


def publish(
    spec: ModelSpec, hp: HParams, d: Data, device: torch.device, args: argparse.Namespace
) -> Path | None:
    """Train one model and publish its artifacts as a new version (rank 0 only: the others wait
    at a barrier and return None)."""
    from training import artifacts  # export and plotting libraries load only when needed

    me = distributed.current()
    where = f"{device}, {torch.get_num_threads()} CPU threads"
    if me.world_size > 1:
        where += f", {me.world_size} processes (DDP, {distributed.backend_for(device)})"
    if me.is_main:
        print(f"== {spec.name}: {dataclasses.asdict(hp)} on {where}", flush=True)
    result = fit(spec, d, hp, progress=args.progress)
    if not me.is_main:
        distributed.barrier()  # rank 0 is writing
        return None

    def write(folder: Path, version: int) -> None:
        artifacts.write_version(folder, version, spec, result, d, hp, device)

    folder = store.publish(args.models_dir, spec.name, write, keep=args.keep)
    summary = ", ".join(f"{k} {v:.6g}" for k, v in result.test.items())
    print(f"== {spec.name}: test {summary}; trained in {result.seconds:.1f}s -> {folder}")
    distributed.barrier()
    return folder
