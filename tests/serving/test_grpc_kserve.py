"""KServe's own gRPC client, InferenceGRPCClient, against the server process: live, ready,
model ready, infer with raw and typed contents. kserve 0.21 needs protobuf < 7, which this
project's dependencies (grpcio-reflection 1.85) exclude, so it runs from a Python of its own:
KSERVE_PYTHON, which `make test` sets to the .venv-kserve it makes (kserve==0.21.0, see the
Makefile); skipped, saying so, without one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.serving.conftest import free_port, live_server

KSERVE_PYTHON = os.environ.get("KSERVE_PYTHON", "")
CLIENT = """
import asyncio, sys
import numpy as np
from kserve import InferenceGRPCClient, InferInput, InferRequest
async def main(address):
    c = InferenceGRPCClient(address, timeout=10)
    assert await c.is_server_live() and await c.is_server_ready()
    assert await c.is_model_ready("lenet")
    x = np.zeros((2, 1, 28, 28), np.float32)
    x[:, :, 4:24, 13:16] = 255
    answers = []
    for binary in (True, False):  # raw_input_contents, then typed contents
        inp = InferInput("pixels", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        r = await c.infer(InferRequest(model_name="lenet", infer_inputs=[inp], request_id="ks"))
        assert r.id == "ks", r.id
        answers.append({o.name: o.as_numpy() for o in r.outputs})
    raw, typed = answers
    assert raw["probabilities"].shape == (2, 10) and raw["label"].shape == (2, 1)
    assert np.abs(raw["probabilities"] - typed["probabilities"]).max() == 0
    print("labels", raw["label"].ravel().tolist())
    await c.close()
asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.skipif(
    not Path(KSERVE_PYTHON).is_file(), reason="no KSERVE_PYTHON (a Python with kserve==0.21.0)"
)
def test_kserve_inference_grpc_client(built_repo: Path) -> None:
    port = free_port()
    with live_server(built_repo, "--grpc-port", str(port), "--models", "lenet"):
        run = subprocess.run(
            [KSERVE_PYTHON, "-c", CLIENT, f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",  # its own packages only
        )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("labels ")
