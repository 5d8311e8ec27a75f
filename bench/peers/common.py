"""What the peers share: their command line and the LeNet they serve, as torch eager."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def parse_args(description: str, model: bool = True) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    if model:
        p.add_argument(
            "--models-dir", default="models/repository", help="Repository with lenet/<version>."
        )
        p.add_argument("--threads", type=int, default=1, help="torch intra-op threads.")
    return p.parse_known_args()[0]


def load_lenet(models_dir: str, threads: int):
    """The newest LeNet version as torch eager in eval mode, as the tutorials serve it.

    Built with the dropout it was trained with (the card says): dropout layers shift the
    indices of a state_dict's keys, so the plain architecture would not load it.
    """
    import torch

    from models.nets import build, for_inference
    from models.spec import LENET
    from models.store import CARD, STATE_DICT, version_dir

    torch.set_num_threads(threads)
    folder = version_dir(Path(models_dir), LENET.name)
    card = json.loads((folder / CARD).read_text())
    dropout = float(card.get("hyperparameters", {}).get("dropout", 0.0))
    net = build(LENET, dropout)
    net.load_state_dict(torch.load(folder / STATE_DICT, map_location="cpu", weights_only=True))
    return for_inference(net, LENET)
