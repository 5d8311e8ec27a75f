"""The FastAPI floor: parse the same body with a pydantic model, run no model, answer a constant.

No server built on FastAPI + pydantic request models can beat this on /predict/digits, since it
does only the parsing and the framework's own work.

    python -m bench.peers.floor_server --port 8003
"""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from bench.peers.common import parse_args

ANSWER = {"predictions": [{"digit": 0, "probabilities": [1.0] + [0.0] * 9}]}


class DigitsRequest(BaseModel):
    images: list[list[list[float]]]


app = FastAPI(title="FastAPI floor")


@app.post("/predict/digits")
async def predict(body: DigitsRequest) -> dict:
    return ANSWER


def main() -> None:
    args = parse_args(__doc__ or "", model=False)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
