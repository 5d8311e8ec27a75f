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


# --------------------------------------------------------------------------- the no-model peers
# What grpc_noop.py and http_noop.py answer perf_analyzer: LeNet's config and metadata as this
# service builds them (serving/engine/model_config.py), and zeros of the outputs' shapes.


def lenet_config() -> dict:
    from models.spec import LENET
    from serving.engine.model_config import config_tensor
    from serving.engine.tensors import outputs_of

    return {
        "name": LENET.name,
        "platform": "none",
        "max_batch_size": 64,
        "input": [config_tensor(LENET.input)],
        "output": [config_tensor(t) for t in outputs_of(LENET)],
    }


def zero_outputs(n: int) -> list[tuple[str, str, list[int], bytes]]:
    """(name, datatype, shape, raw little-endian bytes) of each LeNet output for `n` items."""
    import numpy as np

    from models.spec import LENET
    from serving.engine.tensors import DTYPES, outputs_of

    out = []
    for t in outputs_of(LENET):
        shape = [n, *t.shape]
        out.append((t.name, t.datatype, shape, np.zeros(shape, DTYPES[t.datatype]).tobytes()))
    return out
