"""Everything one version holds, written into the folder that `store.publish` hands over."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from models import store
from models.spec import ModelSpec
from training import card, distributed, export, plots
from training.data import Data

if TYPE_CHECKING:
    from training.train import HParams, Result


def write_version(
    folder: Path,
    version: int,
    spec: ModelSpec,
    result: Result,
    data: Data,
    hp: HParams,
    device: torch.device,
) -> None:
    """state_dict, checked ONNX export, plots, then the card; raises if anything fails to check."""
    net = result.net.eval()  # nets.build's layout does not depend on dropout: nets.load fits
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save(state, folder / store.STATE_DICT)
    parity = export.export_onnx(net, spec, folder / store.ONNX)
    (folder / "plots").mkdir()
    drawn = [p.relative_to(folder).as_posix() for p in draw(folder / "plots", spec, result, data)]
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
        plots=drawn,
    )
    me = distributed.current()  # how many processes trained it (1 without torchrun)
    info["distributed"] = {
        "processes": me.world_size,
        "backend": distributed.backend_for(device) if me.world_size > 1 else None,
        "global_batch_size": hp.batch_size * me.world_size,
    }
    store.write_json(folder / store.CARD, info)
    store.verify(folder)


def draw(folder: Path, spec: ModelSpec, result: Result, data: Data) -> list[Path]:
    out = [plots.history(result.history, folder / "history.png", spec.name)]
    test_x, test_y = data.test.x.cpu().numpy(), data.test.y.cpu().numpy()
    if spec.name == "curve":
        x, y = data.train.x.cpu().numpy(), data.train.y.cpu().numpy()
        pred = result.test_outputs.cpu().numpy()
        out.append(plots.curve_fit(x, y, test_x, pred, test_y, folder / "fit.png"))
    elif spec.name == "points":
        net = copy.deepcopy(result.net).cpu().eval()

        def predict(points: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return torch.softmax(net(torch.from_numpy(points)), 1)[:, 1].numpy()

        out.append(
            plots.decision_regions(test_x, test_y, predict, spec.labels, folder / "regions.png")
        )
    else:
        probs = torch.softmax(result.test_outputs.float(), 1).cpu().numpy()
        out.append(plots.confusion(test_y, probs.argmax(1), spec.labels, folder / "confusion.png"))
        out.append(plots.misclassified(test_x, test_y, probs, folder / "misclassified.png"))
    return out
