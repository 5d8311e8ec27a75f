"""ONNX export of the served module, checked before it may be published.

`export_onnx` writes one self-contained file (no external data) with a dynamic batch axis and the
spec's tensor names, runs `onnx.checker`, and compares ONNX Runtime's outputs with PyTorch's on
random batches; any failure raises `ExportError`, so `store.publish` keeps the previous version.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx.external_data_helper import uses_external_data
from torch import nn

from models import nets
from models.spec import ModelSpec

ATOL = 1e-4
PARITY_BATCHES = (1, 37)  # sizes other than the export example's, to exercise the dynamic axis


class ExportError(Exception):
    """The ONNX file is malformed or does not answer what the PyTorch module answers."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter logs and warns a lot (e.g. that torchvision's ops are skipped)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(net: nn.Module, spec: ModelSpec, path: Path, seed: int = 0) -> dict[str, float]:
    """Export `for_inference(net)` to `path`, check it, and return the parity it reached."""
    module = nets.for_inference(copy.deepcopy(net).cpu().float(), spec)
    example = torch.from_numpy(np.stack([spec.example()] * 2))
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[spec.input.name],
            output_names=[spec.output.name],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    opset = check_model(path, spec)
    diff = parity(module, path, spec, seed)
    return {"opset": opset, "max_abs_diff": diff, "atol": ATOL, "batches": list(PARITY_BATCHES)}


def check_model(path: Path, spec: ModelSpec) -> int:
    """onnx.checker, a single file, the spec's names and a symbolic batch axis; the opset."""
    extra = sorted(p.name for p in Path(path).parent.iterdir() if p.name.startswith(path.name))
    if extra != [path.name]:
        raise ExportError(f"the export wrote more than one file: {extra}")
    model = onnx.load(str(path), load_external_data=False)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"onnx.checker rejects {path.name}: {e}") from e
    external = [t.name for t in model.graph.initializer if uses_external_data(t)]
    if external:
        raise ExportError(f"{path.name} keeps weights outside the file: {external}")
    for tensors, want in ((model.graph.input, spec.input), (model.graph.output, spec.output)):
        names = [t.name for t in tensors]
        if names != [want.name]:
            raise ExportError(f"tensor names {names}, expected [{want.name!r}]")
        dims = tensors[0].type.tensor_type.shape.dim
        if not dims[0].dim_param or [d.dim_value for d in dims[1:]] != list(want.shape):
            raise ExportError(f"{want.name}: shape {dims} is not [batch, *{want.shape}]")
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def random_batch(spec: ModelSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Valid raw inputs: uniform over the spec's range, else spread around the training data."""
    shape = (n, *spec.input.shape)
    if spec.value_range is not None:
        return rng.uniform(*spec.value_range, size=shape).astype(np.float32)
    return (rng.standard_normal(shape) * 2.0).astype(np.float32)


def parity(module: nn.Module, path: Path, spec: ModelSpec, seed: int = 0) -> float:
    """Largest |ONNX Runtime - PyTorch| over random batches; raises above ATOL."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    for n in PARITY_BATCHES:
        x = random_batch(spec, n, rng)
        (got,) = session.run([spec.output.name], {spec.input.name: x})
        with torch.no_grad():
            want = module(torch.from_numpy(x)).numpy()
        if got.shape != want.shape:
            raise ExportError(f"ONNX answers shape {got.shape}, PyTorch {want.shape}")
        worst = max(worst, float(np.max(np.abs(got - want))))
    if not worst <= ATOL:  # also catches NaN
        raise ExportError(f"ONNX Runtime differs from PyTorch by {worst:.3g} (> {ATOL})")
    return worst
