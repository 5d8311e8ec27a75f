"""Save: everything one version holds, written into the folder that `store.publish` hands over,
and the publishing of it (rank 0 only under DDP)."""

from __future__ import annotations

import argparse
import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models import nets, store
from models.spec import SPECS, ModelSpec
from training import card, distributed, export, plots
from training.config import HParams
from training.data import Data
from training.summary import Result, final_line


def publish(
    spec: ModelSpec,
    hp: HParams,
    result: Result,
    d: Data,
    device: torch.device,
    args: argparse.Namespace,
) -> Path | None:
    """Publish a trained model as a new version (rank 0; the others wait at a barrier and
    return None)."""
    if not distributed.current().is_main:
        distributed.barrier()  # rank 0 is writing
        return None
    beside = _reference_for(spec, args.models_dir)

    def write(folder: Path, version: int) -> None:
        write_version(folder, version, spec, result, d, hp, device, beside)

    folder = store.publish(args.models_dir, spec.name, write, keep=args.keep)
    print(final_line(spec.name, result, folder))
    distributed.barrier()
    return folder


def _reference_for(spec: ModelSpec, root: Path) -> tuple[str, nn.Module] | None:
    """For a points-family model other than `points`: the newest `points` network in the same
    repository, whose decision regions its plot shows beside its own."""
    ref = SPECS["points"]
    if spec.family != "points" or spec.name == ref.name or not store.versions(root, ref.name):
        return None
    folder = store.version_dir(root, ref.name)
    try:
        store.verify(folder, (store.STATE_DICT,))
        return ref.name, nets.load(ref, str(folder / store.STATE_DICT))
    except (store.ArtifactError, RuntimeError, OSError):
        return None  # no usable reference: the plot shows this model alone


def write_version(
    folder: Path,
    version: int,
    spec: ModelSpec,
    result: Result,
    data: Data,
    hp: HParams,
    device: torch.device,
    beside: tuple[str, nn.Module] | None = None,
) -> None:
    """state_dict, checked ONNX export, plots, then the card; raises if anything fails to check."""
    net = result.net.eval()  # nets.build's layout does not depend on dropout: nets.load fits
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save(state, folder / store.STATE_DICT)
    parity = export.export_onnx(net, spec, folder / store.ONNX)
    (folder / "plots").mkdir()
    drawn = draw(folder / "plots", spec, result, data, beside)
    info = card.make_card(
        folder,
        spec=spec,
        version=version,
        hyperparameters=dataclasses.asdict(hp),
        data=data.info,
        history=result.history,
        best_epoch=result.best_epoch,
        test=result.test,
        training_seconds=result.seconds,
        device=device,
        onnx_parity=parity,
        plots=[p.relative_to(folder).as_posix() for p in drawn],
    )
    me = distributed.current()  # how many processes trained it (1 without torchrun)
    info["distributed"] = {
        "processes": me.world_size,
        "backend": distributed.backend_for(device) if me.world_size > 1 else None,
        "global_batch_size": hp.batch_size * me.world_size,
    }
    store.write_json(folder / store.CARD, info)
    store.verify(folder)


def _p1(net: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """(N, 2) points -> P(class 1) from a served (probabilities) module."""
    served = copy.deepcopy(net).cpu().eval()

    def predict(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return served(torch.from_numpy(points))[:, 1].numpy()

    return predict


def draw(
    folder: Path,
    spec: ModelSpec,
    result: Result,
    data: Data,
    beside: tuple[str, nn.Module] | None = None,
) -> list[Path]:
    out = [plots.history(result.history, folder / "history.png", spec.name)]
    test_x, test_y = data.test.x.cpu().numpy(), data.test.y.cpu().numpy()
    if spec.family == "curve":
        x, y = data.train.x.cpu().numpy(), data.train.y.cpu().numpy()
        pred = result.test_outputs.cpu().numpy()
        out.append(plots.curve_fit(x, y, test_x, pred, test_y, folder / "fit.png"))
    elif spec.family == "points":
        panels = [(f"{spec.name} ({spec.architecture})", _p1(nets.for_inference(result.net, spec)))]
        if beside is not None:
            name, module = beside
            panels.append((f"{name} ({SPECS[name].architecture})", _p1(module)))
        out.append(
            plots.decision_regions(test_x, test_y, panels, spec.labels, folder / "regions.png")
        )
    else:
        probs = nets.probabilities(result.test_outputs.float(), spec).cpu().numpy()
        out.append(plots.confusion(test_y, probs.argmax(1), spec.labels, folder / "confusion.png"))
        out.append(plots.misclassified(test_x, test_y, probs, folder / "misclassified.png"))
    return out
