"""LitServe serving the same LeNet (torch eager), with or without its dynamic batching.

    python -m bench.peers.litserve_server --port 8002 --models-dir models/repository
    python -m bench.peers.litserve_server --port 8002 --batch 32 --batch-timeout 0.002

One inference worker and one API server process (LitServe's defaults for one CPU device);
requests of several digits are batched by concatenation and split back by their sizes.
"""

from __future__ import annotations

import sys
from typing import Any

try:
    import litserve as ls
except ImportError:  # the bench extra is not installed
    sys.exit("litserve is not installed: `.venv/bin/pip install litserve` (the bench extra).")
import torch

from bench.peers.common import load_lenet, parse_args

Batch = tuple[torch.Tensor, list[int]]


class LeNetAPI(ls.LitAPI):
    def __init__(self, models_dir: str, threads: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.models_dir = models_dir
        self.threads = threads

    def setup(self, device: str) -> None:
        self.model = load_lenet(self.models_dir, self.threads).to(device)

    # Unannotated on purpose: LitServe then hands over the parsed JSON (its fastest path), where
    # an annotation would be taken for a query parameter or a pydantic body model.
    def decode_request(self, request) -> torch.Tensor:  # type: ignore[no-untyped-def]
        return torch.tensor(request["images"], dtype=torch.float32).reshape(-1, 1, 28, 28)

    def batch(self, inputs: list[torch.Tensor]) -> Batch:
        return torch.cat(inputs), [len(x) for x in inputs]

    def predict(self, x: torch.Tensor | Batch) -> torch.Tensor | Batch:
        with torch.inference_mode():
            if isinstance(x, tuple):
                return self.model(x[0]), x[1]
            return self.model(x)

    def unbatch(self, output: Batch) -> list[torch.Tensor]:
        probs, sizes = output
        return list(torch.split(probs, sizes))

    def encode_response(self, output: torch.Tensor) -> dict[str, Any]:
        return {
            "predictions": [{"digit": int(p.argmax()), "probabilities": p.tolist()} for p in output]
        }


def main() -> None:
    import argparse

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--batch", type=int, default=1, help="max_batch_size; 1: no batching.")
    extra.add_argument("--batch-timeout", type=float, default=0.0, help="Seconds to fill one.")
    extra.add_argument("--fast-queue", action="store_true", help="LitServe's ZeroMQ queue.")
    own = extra.parse_known_args()[0]
    args = parse_args(__doc__ or "")
    api = LeNetAPI(
        args.models_dir,
        args.threads,
        max_batch_size=own.batch,
        batch_timeout=own.batch_timeout,
        api_path="/predict/digits",
    )
    server = ls.LitServer(api, accelerator="cpu", devices=1, fast_queue=own.fast_queue)
    server.run(
        host=args.host,
        port=args.port,
        log_level="warning",
        generate_client_file=False,
        access_log=False,
    )


if __name__ == "__main__":
    main()
