"""The two ways to run a model: ONNX Runtime on the .onnx file, or torch on the state_dict.

Both take a float32 batch shaped (N, *spec.input.shape) and return (N, *spec.output.shape).
They are called from a worker thread, never on the event loop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from models import store
from models.spec import ModelSpec


class Runner(Protocol):
    backend: str
    device: str

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class OnnxRunner:
    backend = "onnx"

    def __init__(self, spec: ModelSpec, folder: Path, device: str, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(
            str(folder / store.ONNX), sess_options=opts, providers=providers
        )
        self.device = "cuda" if self.session.get_providers()[0].startswith("CUDA") else "cpu"
        if device == "cuda" and self.device != "cuda":
            raise RuntimeError("ONNX Runtime has no CUDA execution provider here")
        self.input_name = spec.input.name
        self.output_names = [spec.output.name]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(self.output_names, {self.input_name: x})[0]


class TorchRunner:
    backend = "torch"

    def __init__(self, spec: ModelSpec, folder: Path, device: str, threads: int) -> None:
        import torch

        from models import nets

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = device
        self.module = nets.load(spec, str(folder / store.STATE_DICT), device)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            out = self.module(self.torch.from_numpy(x).to(self.device, non_blocking=True))
        return out.float().cpu().numpy()


def default_threads(workers: int) -> int:
    """Each worker's share of the cores this process may use: its CPU affinity, capped by a
    cgroup CPU limit (`docker run --cpus`, a Kubernetes CPU limit) where one is set."""
    try:
        cores = float(len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        cores = float(os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, int(quota) / int(period))
    except (OSError, ValueError):
        pass
    return max(1, int(cores // max(1, workers)))


def make_runner(spec: ModelSpec, folder: Path, backend: str, device: str, threads: int) -> Runner:
    cls = OnnxRunner if backend == "onnx" else TorchRunner
    return cls(spec, folder, device, threads)


def files_for(backend: str) -> tuple[str, ...]:
    """The artifact files a backend reads (and so must pass their checksum)."""
    return (store.ONNX,) if backend == "onnx" else (store.STATE_DICT,)
