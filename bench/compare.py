"""The tutorials' optimizers and activations, compared on a fixed budget of steps.

`make compare-optimizers` (python -m bench.compare) trains

- the `mlp` on MNIST and the `curve`, each with SGD, SGD with momentum 0.9, Adagrad, RMSprop,
  Adadelta and Adam, once at each optimizer's commonly used learning rate and once at one shared
  rate (the tutorials' 0.01): bench/results/optimizers.md and optimizers.png;
- the deep MLP (`dnn`, 784-400-200-100-10) with ReLU, sigmoid and tanh between its layers, all
  with Adam at 1e-3: bench/results/activations.md and activations.png.

Every run of one model starts from the same initial weights (same seed) and sees the same batches
in the same order; the learning rate is constant (no schedule), there is no dropout, no
augmentation, and one CPU thread, so the optimizer (or the activation) is the only difference.
Test accuracy (MSE against the curve's true mean, for the curve) is measured every `--eval-every`
steps, for "steps to target"; wall time counts the training steps only.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from models import nets
from models.spec import CURVE, DNN, MLP, ModelSpec
from training import config, data, datasets, train
from training.data import Data

RESULTS = Path(__file__).resolve().parent / "results"
OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adadelta", "adam")
LABELS = {
    "sgd": "SGD",
    "momentum": "SGD + momentum 0.9",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adadelta": "Adadelta",
    "adam": "Adam",
}
# The rates each is commonly used at (PyTorch's defaults where it has one; SGD has none).
COMMON_LR = {
    "sgd": 0.1,
    "momentum": 0.01,
    "adagrad": 0.01,
    "rmsprop": 0.001,
    "adadelta": 1.0,
    "adam": 0.001,
}
SHARED_LR = 0.01  # the one rate the tutorials give all of them
ACTIVATION_LR = 1e-3
TARGETS = {"mlp": ("accuracy", 0.95), "curve": ("mse", 1e-3), "dnn": ("accuracy", 0.95)}


@dataclass
class Run:
    label: str
    lr: float
    losses: list[float] = field(default_factory=list)  # training loss at every step
    evals: list[tuple[int, float]] = field(default_factory=list)  # (step, test metric)
    seconds: float = 0.0

    @property
    def final(self) -> float:
        return self.evals[-1][1]

    def final_loss(self, last: int = 50) -> float:
        """Mean training loss over the last `last` steps (one batch's loss is noisy)."""
        return float(np.mean(self.losses[-last:]))

    def steps_to(self, metric: str, target: float) -> int | None:
        for step, value in self.evals:
            if (value >= target) if metric == "accuracy" else (value <= target):
                return step
        return None


def batch_order(n: int, batch_size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """The batches of every run: reshuffled each epoch from one seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    out: list[torch.Tensor] = []
    while len(out) < steps:
        order = data.epoch_order(n, True, gen)
        out += list(data.batches(order, batch_size, drop_last=True))
    return out[:steps]


def score(net: torch.nn.Module, d: Data, spec: ModelSpec) -> float:
    metrics, _ = train.test(net, d.test, spec)
    return metrics["accuracy"] if spec.is_classifier else metrics["loss"]


def run_one(
    spec: ModelSpec,
    d: Data,
    batches: list[torch.Tensor],
    hp: config.HParams,
    label: str,
    eval_every: int,
    seed: int,
) -> Run:
    torch.manual_seed(seed)
    net = nets.build(spec)
    optimizer = config.make_optimizer(hp, net.parameters())
    run = Run(label, hp.lr)
    for step, idx in enumerate(batches, 1):
        t = time.perf_counter()
        net.train()
        loss = train.loss_fn(net(d.train.x[idx]), d.train.y[idx], spec)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        run.seconds += time.perf_counter() - t
        run.losses.append(value if np.isfinite(value) else float("nan"))
        if step % eval_every == 0 or step == len(batches):
            run.evals.append((step, score(net, d, spec)))
    return run


def compare(
    spec: ModelSpec,
    d: Data,
    steps: int,
    eval_every: int,
    seed: int,
    runs: list[tuple[str, config.HParams]],
    log: Callable[[str], None],
    done: dict[tuple[str, str, float], Run] | None = None,
) -> list[Run]:
    """Each run of `runs` on `spec`; a run already in `done` (same model, optimizer and rate:
    the same computation) is reused, not repeated; its wall time is then shown twice."""
    batches = batch_order(len(d.train), 128, steps, seed)
    done = {} if done is None else done
    out = []
    for label, hp in runs:
        key = (spec.name + spec.activation, hp.optimizer, hp.lr)
        if key not in done:
            done[key] = run_one(spec, d, batches, hp, label, eval_every, seed)
            r = done[key]
            metric = TARGETS[spec.name][0]
            log(f"{spec.name:<6} {label:<28} lr {hp.lr:<6g} final {metric} {r.final:.5g}  "
                f"loss {r.final_loss():.4g}  {r.seconds:.1f}s")  # fmt: skip
        out.append(done[key])
    return out


def smooth(values: list[float], k: int = 20) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if len(v) < k:
        return v
    return np.convolve(v, np.ones(k) / k, mode="valid")


def plot(panels: list[tuple[str, list[Run], bool]], path: Path, cols: int) -> None:
    """Training loss per step (a 20-step moving mean), one line per run, one panel per case."""
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(6 * cols, 4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (title, runs, log_y) in zip(axes, panels, strict=False):
        for r in runs:
            y = smooth(r.losses)
            ax.plot(np.arange(len(y)) + 1, y, lw=1.2, label=f"{r.label} (lr {r.lr:g})")
        ax.set(xlabel="step", ylabel="training loss", title=title)
        if log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=90)


def table(spec: ModelSpec, runs: list[Run]) -> list[str]:
    metric, target = TARGETS[spec.name]
    head = "test accuracy" if metric == "accuracy" else "test MSE (vs x² + 0.1)"
    rows = [
        f"| run | lr | final training loss | {head} | steps to {metric} "
        f"{'≥' if metric == 'accuracy' else '≤'} {target:g} | wall time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    best = (
        max(runs, key=lambda r: r.final)
        if metric == "accuracy"
        else min(runs, key=lambda r: r.final)
    )
    for r in runs:
        value = f"{r.final:.2%}" if metric == "accuracy" else f"{r.final:.3g}"
        if r is best:
            value = f"**{value}**"
        reached = r.steps_to(metric, target)
        rows.append(
            f"| {r.label} | {r.lr:g} | {r.final_loss():.4g} | {value} | "
            f"{reached if reached is not None else 'not reached'} | {r.seconds:.1f} s |"
        )
    return rows


def winner(spec: ModelSpec, runs: list[Run]) -> Run:
    metric = TARGETS[spec.name][0]
    return (
        max(runs, key=lambda r: r.final)
        if metric == "accuracy"
        else min(runs, key=lambda r: r.final)
    )


def machine() -> str:
    from training import card

    load = os.getloadavg()[0]
    return (
        f"{card.cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s); one-minute load average at start {load:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=datasets.default_data_dir())
    p.add_argument("--mnist-steps", type=int, default=1500, help="steps of batch 128 on MNIST")
    p.add_argument("--curve-steps", type=int, default=2000, help="steps of batch 128 on the curve")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    started, t0 = dt.datetime.now(dt.timezone.utc), time.perf_counter()
    where = machine()
    print(where, flush=True)
    try:
        mnist = data.mnist(args.data_dir, 5000)
    except datasets.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    curve = data.curve(20_000, 2000)
    base = config.HParams(schedule="constant", dropout=0.0)
    by_lr = {
        mode: [(LABELS[o], dataclasses.replace(base, optimizer=o, lr=rate(o))) for o in OPTIMIZERS]
        for mode, rate in (("common", COMMON_LR.__getitem__), ("shared", lambda _: SHARED_LR))
    }
    results: dict[tuple[str, str], list[Run]] = {}
    done: dict[tuple[str, str, float], Run] = {}
    for spec, d, steps in ((MLP, mnist, args.mnist_steps), (CURVE, curve, args.curve_steps)):
        for mode, runs in by_lr.items():
            results[(spec.name, mode)] = compare(
                spec, d, steps, args.eval_every, args.seed, runs, print, done
            )
    acts = [
        (a, dataclasses.replace(base, optimizer="adam", lr=ACTIVATION_LR))
        for a in ("relu", "sigmoid", "tanh")
    ]
    act_runs: list[Run] = []
    for name, hp in acts:
        spec = DNN.variant("dnn", activation=name)
        act_runs += compare(
            spec, mnist, args.mnist_steps, args.eval_every, args.seed, [(name, hp)], print
        )
    total = time.perf_counter() - t0

    args.out.mkdir(parents=True, exist_ok=True)
    plot(
        [
            ("mlp on MNIST, each at its common lr", results[("mlp", "common")], True),
            (f"mlp on MNIST, all at lr {SHARED_LR:g}", results[("mlp", "shared")], True),
            ("curve, each at its common lr", results[("curve", "common")], True),
            (f"curve, all at lr {SHARED_LR:g}", results[("curve", "shared")], True),
        ],
        args.out / "optimizers.png",
        cols=2,
    )
    plot(
        [("dnn 784-400-200-100-10 on MNIST, Adam 1e-3", act_runs, True)],
        args.out / "activations.png",
        1,
    )
    command = "make compare-optimizers  # python -m bench.compare --data-dir DATA"
    head = [
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- machine: {where}",
        f"- command: `{command}` (all of this file, activations.md and both figures in one run of "
        f"{total:.0f} s)",
        f"- budget: {args.mnist_steps} steps on MNIST, {args.curve_steps} on the curve, batch 128, "
        f"seed {args.seed} (same initial weights and batch order for every run of a model), "
        "constant learning rate, no dropout or augmentation; test metric every "
        f"{args.eval_every} steps; final training loss = mean of the last 50 steps",
        "",
    ]
    md = ["# Optimizers: the tutorials' six on a fixed budget", "", *head]
    md += ["![loss curves](optimizers.png)", ""]
    for spec in (MLP, CURVE):
        for mode, what in (
            ("common", "each at its commonly used rate"),
            ("shared", f"all at lr {SHARED_LR:g}"),
        ):
            md += [f"## {spec.name}, {what}", "", *table(spec, results[(spec.name, mode)]), ""]
    md += ["## Winners", ""]
    for spec in (MLP, CURVE):
        for mode in ("common", "shared"):
            w = winner(spec, results[(spec.name, mode)])
            value = f"{w.final:.2%}" if spec.is_classifier else f"{w.final:.3g}"
            metric = TARGETS[spec.name][0]
            md.append(f"- {spec.name}, {mode} rates: **{w.label}** (lr {w.lr:g}), {metric} {value}")
    md.append("")
    (args.out / "optimizers.md").write_text("\n".join(md))
    w = winner(DNN, act_runs)
    amd = ["# Activations: ReLU, sigmoid and tanh in the deep MLP", "", *head]
    amd += ["![loss curves](activations.png)", "", "## dnn, Adam lr 0.001", ""]
    amd += [*table(DNN, act_runs), "", f"Winner: **{w.label}**, test accuracy {w.final:.2%}.", ""]
    (args.out / "activations.md").write_text("\n".join(amd))
    print(f"wrote {args.out}/optimizers.md, .png, activations.md, .png in {total:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
