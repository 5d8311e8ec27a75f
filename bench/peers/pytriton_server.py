"""PyTriton (NVIDIA's Triton Inference Server with a Python model) serving the same LeNet ONNX.

    .venv-pytriton/bin/python -m bench.peers.pytriton_server --port 8010 --grpc-port 8011

The model is ONNX Runtime on models/repository/lenet/<newest>/model.onnx, one intra-op thread,
sequential, all graph optimizations (as serving/backends.py runs it), behind Triton's dynamic
batcher (max_batch_size 64, no queue delay: like this service's defaults). Its inputs and outputs
are named, shaped and typed as this service's /v2/models/lenet says: `pixels` FP32 [-1, 1, 28,
28] in, `probabilities` FP32 [-1, 10] and `label` INT64 [-1, 1] out. HTTP, gRPC and metrics
listen on 127.0.0.1 only.

nvidia-pytriton 0.7.0 needs numpy < 2, so it lives in its own venv (`make .venv-pytriton/.ok`); this
module imports only numpy, onnxruntime, pytriton and the numpy-only models.spec/models.store.
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

import numpy as np

try:
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig
except ImportError:
    sys.exit("nvidia-pytriton is not installed here: `make .venv-pytriton/.ok` (see mk/bench.mk).")

from models.spec import LENET
from models.store import ONNX, version_dir

MAX_BATCH = 64


def make_infer(models_dir: str, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    path = version_dir(Path(models_dir), LENET.name) / ONNX
    session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    outputs = [LENET.output.name]

    @batch
    def infer(pixels: np.ndarray) -> dict[str, np.ndarray]:
        probs = session.run(outputs, {LENET.input.name: pixels.astype(np.float32, copy=False)})[0]
        return {"probabilities": probs, "label": probs.argmax(axis=1, keepdims=True)}

    return infer


def stub_sees_this_python() -> None:
    """Triton's Python-backend stub links libpython3.X.so.1.0 and runs this interpreter's stdlib;
    where it would find another build's libpython first (Debian's 3.11.2 under a pyenv 3.11.7:
    multiprocessing then fails with "'_thread.RLock' object has no attribute
    '_recursion_count'"), put this interpreter's own library folder first on its search path."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    ldlib = sysconfig.get_config_var("LDLIBRARY") or ""
    if libdir and ldlib.endswith(".so") and (Path(libdir) / f"{ldlib}.1.0").exists():
        rest = os.environ.get("LD_LIBRARY_PATH")
        os.environ["LD_LIBRARY_PATH"] = libdir + (f":{rest}" if rest else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8010, help="HTTP port.")
    p.add_argument("--grpc-port", type=int, default=8011)
    p.add_argument("--metrics-port", type=int, default=0, help="0: metrics off.")
    p.add_argument("--models-dir", default="models/repository")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads.")
    p.add_argument("--max-queue-delay-us", type=int, default=0, help="Dynamic batcher delay.")
    p.add_argument("--log-verbose", type=int, default=0, help="Triton's --log-verbose.")
    args = p.parse_args()
    config = TritonConfig(
        http_address=args.host,
        http_port=args.port,
        grpc_address=args.host,
        grpc_port=args.grpc_port,
        allow_metrics=args.metrics_port > 0,
        metrics_address=args.host if args.metrics_port else None,
        metrics_port=args.metrics_port or None,
        allow_gpu_metrics=False,
        log_verbose=args.log_verbose or None,
        exit_on_error=True,
    )
    shape = LENET.input.shape
    stub_sees_this_python()
    # PyTriton 0.7.0 puts statistics behind an access token by default; perf_analyzer reads them
    # (its Server: section), so they stay open. Shared memory, repository and trace stay closed.
    security = TritonSecurityConfig(
        restricted_endpoints=["shared-memory", "model-repository", "trace"]
    )
    with Triton(config=config, security_config=security) as triton:
        triton.bind(
            model_name=LENET.name,
            infer_func=make_infer(args.models_dir, args.threads),
            inputs=[Tensor(name=LENET.input.name, dtype=np.float32, shape=shape)],
            outputs=[
                Tensor(name=LENET.output.name, dtype=np.float32, shape=LENET.output.shape),
                Tensor(name="label", dtype=np.int64, shape=(1,)),
            ],
            config=ModelConfig(
                max_batch_size=MAX_BATCH,
                batcher=DynamicBatcher(max_queue_delay_microseconds=args.max_queue_delay_us),
            ),
            strict=False,
        )
        triton.serve()


if __name__ == "__main__":
    main()
