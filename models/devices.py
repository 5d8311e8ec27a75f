"""Which device a model runs on: one rule for training and serving.

`auto` picks CUDA when the given backend can use it, else the CPU. Only that backend is asked:
the ONNX path never imports torch (a few hundred MiB of resident memory).
"""

from __future__ import annotations


def resolve(device: str, backend: str = "torch") -> str:
    """'cpu', 'cuda' or 'auto' -> 'cpu' or 'cuda'."""
    if device != "auto":
        return device
    if backend == "onnx":
        import onnxruntime as ort

        # onnxruntime-gpu lists its CUDA provider even where no GPU or driver is present.
        cuda = "CUDAExecutionProvider" in ort.get_available_providers() and _cuda_driver()
        return "cuda" if cuda else "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _cuda_driver() -> bool:
    """Whether the NVIDIA driver library loads (a GPU is visible to this process)."""
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True
