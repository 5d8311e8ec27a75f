"""The tutorial-style server: FastAPI, a pydantic body model, torch eager on every request.

This is the server the FastAPI and PyTorch tutorials build: the body is validated into Python
lists by pydantic, turned into a tensor, run through the model under no_grad in the request
handler (no batching), and the answer is a dict that FastAPI serialises. Access logs are off, as
they are for every server in the benchmark.

    python -m bench.peers.tutorial_server --port 8001 --models-dir models/repository
"""

from __future__ import annotations

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from bench.peers.common import load_lenet, parse_args


class DigitsRequest(BaseModel):
    images: list[list[list[float]]]


class Prediction(BaseModel):
    digit: int
    probabilities: list[float]


class DigitsResponse(BaseModel):
    predictions: list[Prediction]


def make_app(model: torch.nn.Module) -> FastAPI:
    app = FastAPI(title="tutorial LeNet")

    @app.post("/predict/digits", response_model=DigitsResponse)
    async def predict(body: DigitsRequest) -> DigitsResponse:
        x = torch.tensor(body.images, dtype=torch.float32).unsqueeze(1)
        with torch.no_grad():
            probs = model(x)
        return DigitsResponse(
            predictions=[Prediction(digit=int(p.argmax()), probabilities=p.tolist()) for p in probs]
        )

    return app


def main() -> None:
    args = parse_args(__doc__ or "")
    app = make_app(load_lenet(args.models_dir, args.threads))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
