"""Train one model or all of them: `python -m training <model|all> [flags]`.

Reads top to bottom like pytorch/examples' mnist/main.py: the loss, `train()` (one epoch),
`test()` (score a split), `fit()` (the epochs, keeping the best on the validation split), and
`main()`: flags (training/cli.py), data (training/data.py), model (models/nets.py, built from
models/spec.py), training, save (training/artifacts.py publishes the version).

Elsewhere, where a reader would look for them: the hyperparameters and each model's tuned
defaults, the optimizers and schedules (training/config.py); best-epoch keeping and early
stopping (training/selection.py); the lines printed and the run's Result (training/summary.py);
DistributedDataParallel (training/distributed.py); TensorBoard (training/board.py).

Metrics are accumulated as sums in one tensor (loss * n, correct, n) so that under DDP a single
all-reduce of that tensor gives the global numbers. Under `torchrun --nproc-per-node N -m
training <model>` each rank trains on its shard of every epoch with --batch-size items per step
(the global batch is N times that), validation is sharded and all-reduced so every rank picks the
same best epoch, and rank 0 alone tests, writes and publishes while the others wait.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from models import nets
from models.spec import ModelSpec
from training import cli, config, data, datasets, distributed
from training.cli import hparams, parse_args, pick_threads, resolve_device
from training.config import DEFAULTS, OPTIMIZERS, PRECISIONS, HParams, make_optimizer
from training.data import Data, Split
from training.selection import BestEpoch
from training.summary import Result, format_row

__all__ = ["DEFAULTS", "OPTIMIZERS", "PRECISIONS", "HParams", "Result", "fit", "hparams", "main"]
__all__ += ["make_optimizer", "parse_args", "pick_threads", "resolve_device", "test"]


def loss_fn(
    out: torch.Tensor, y: torch.Tensor, spec: ModelSpec, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy over the classes; binary cross-entropy on a logistic model's one logit
    (BCEWithLogitsLoss: -(y log p + (1 - y) log(1 - p)), computed stably from z); MSE."""
    if spec.logistic:
        return F.binary_cross_entropy_with_logits(out[:, 0], y.float(), reduction=reduction)
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
                sums[1] += (nets.predicted_labels(out, spec) == y).sum()
            sums[2] += len(idx)
        bar.update()
        if progress and (step % 25 == 0 or step == total - 1):  # .tolist() waits for the GPU
            bar.set_postfix({k: f"{v:.4f}" for k, v in means(sums, spec).items()}, refresh=False)
    bar.close()
    return means(distributed.all_reduce_sum(sums), spec)


@torch.no_grad()
def test(
    net: nn.Module, split: Split, spec: ModelSpec, batch_size: int = 2000
) -> tuple[dict[str, float], torch.Tensor]:
    """Mean loss (and accuracy) on a split, and the network's outputs (logits or values)."""
    sums, out = _sums(net, split, spec, batch_size)
    return means(sums, spec), out


evaluate = test  # the name the benchmarks use


@torch.no_grad()
def test_sharded(net: nn.Module, split: Split, spec: ModelSpec) -> dict[str, float]:
    """`test` with each rank scoring its share and the sums all-reduced: the same numbers on
    every rank (and exactly `test`'s on one process)."""
    sums, _ = _sums(net, Split(*distributed.rank_share(split.x, split.y)), spec)
    return means(distributed.all_reduce_sum(sums), spec)


def _sums(
    net: nn.Module, split: Split, spec: ModelSpec, batch_size: int = 2000
) -> tuple[torch.Tensor, torch.Tensor]:
    net.eval()
    out = torch.cat([net(split.x[i : i + batch_size]) for i in range(0, len(split), batch_size)])
    labels = nets.predicted_labels(out, spec) if spec.is_classifier else None
    correct = (labels == split.y).sum() if labels is not None else out.new_zeros(())
    n = out.new_tensor(len(out))
    return torch.stack([loss_fn(out, split.y, spec, "sum"), correct.float(), n]), out


def fit(
    spec: ModelSpec,
    d: Data,
    hp: HParams,
    progress: bool = True,
    log: Callable[[str], None] = print,
    after_epoch: Callable[[nn.Module, int], bool] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> Result:
    """Train for hp.epochs and return the network of the best validation epoch, tested.

    `on_epoch(row)` sees each epoch's metrics (TensorBoard). `after_epoch(net, epoch)` returning
    True stops early (the benchmark uses it; under DDP it must answer the same on every rank), as
    does hp.patience. Under DDP every rank returns the same network; only rank 0 scores the test
    split (the others' Result has an empty `test`).
    """
    me = distributed.current()
    if not me.is_main:
        progress, log = False, _quiet
    torch.manual_seed(hp.seed)
    device = d.train.x.device
    net = nets.build(spec, hp.dropout).to(device)
    if hp.channels_last:  # same weights and function; only the layout of 4-D tensors changes
        net = net.to(memory_format=torch.channels_last)
    model = distributed.wrap(net, device, hp.seed)
    optimizer = config.make_optimizer(hp, net.parameters())
    per_rank = distributed.shard_len(len(d.train), me.world_size)
    steps = hp.epochs * data.n_batches(per_rank, hp.batch_size, hp.drop_last)
    scheduler = config.make_scheduler(optimizer, hp, steps)
    generator = torch.Generator().manual_seed(hp.seed)
    history: list[dict[str, float]] = []
    best = BestEpoch(hp.patience)
    start = time.perf_counter()
    for epoch in range(1, hp.epochs + 1):
        t = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        desc = f"{spec.name} {epoch}/{hp.epochs}"
        tr = train(model, d.train, optimizer, scheduler, spec, hp, generator, desc, progress)
        va = test_sharded(net, d.val, spec)
        row = {"epoch": epoch, "lr": lr, **{f"train_{k}": v for k, v in tr.items()}}
        row |= {f"val_{k}": v for k, v in va.items()} | {"seconds": time.perf_counter() - t}
        history.append(row)
        log(format_row(row, desc))
        if on_epoch is not None:
            on_epoch(row)
        best.update(net, epoch, va["loss"])
        if best.should_stop or (after_epoch is not None and after_epoch(net, epoch)):
            break
    seconds = time.perf_counter() - start
    best.restore(net)
    if not me.is_main:
        return Result(net, history, best.epoch, {}, torch.empty(0), seconds)
    scores, out = test(net, d.test, spec)
    if not spec.is_classifier:  # the curve's test targets are the true mean: loss is that MSE
        scores = {"mse": scores["loss"]}
    scores["n"] = len(d.test)
    return Result(net, history, best.epoch, scores, out, seconds)


def _quiet(_: str) -> None:
    pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # flags
    me, device = distributed.setup(resolve_device(args.device))
    try:
        threads = pick_threads(args.threads, me.local_world_size)
        try:  # data
            if args.download:
                datasets.download(args.data_dir)
            cache: dict[str, Data] = {}
            plan = [(spec, hparams(args.model if args.name else spec.name, args))
                    for spec in cli.specs(args)]  # fmt: skip
            loaded = [data.load(s, h.val_size, h.train_size, args.data_dir, cache) for s, h in plan]
        except datasets.DataError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for (spec, hp), d in zip(plan, loaded, strict=True):
            tiny = spec.family in config.TINY and not args.threads  # threads only cost time here
            torch.set_num_threads(1 if tiny else threads)
            run(spec, hp, d.to(device), device, args)
        return 0
    finally:
        distributed.cleanup()


def run(
    spec: ModelSpec, hp: HParams, d: Data, device: torch.device, args: argparse.Namespace
) -> None:
    """Model, training, save: one model trained and published (rank 0 writes, the others wait)."""
    from training import artifacts  # export and plotting libraries load only when needed

    me = distributed.current()
    where = f"{device}, {torch.get_num_threads()} CPU threads"
    if me.world_size > 1:
        where += f", {me.world_size} processes (DDP, {distributed.backend_for(device)})"
    if me.is_main:
        print(f"== {spec.name}: {dataclasses.asdict(hp)} on {where}", flush=True)
    board = None
    if me.is_main and args.tensorboard is not None:
        from training import board as tb

        board = tb.Board(args.tensorboard, spec)
    try:
        on_epoch = board.epoch if board is not None else None
        result = fit(spec, d, hp, progress=args.progress, on_epoch=on_epoch)
        if board is not None:
            board.finish(result, d)
    finally:
        if board is not None:
            board.close()
    artifacts.publish(spec, hp, result, d, device, args)
