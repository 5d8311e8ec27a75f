"""A deliberately slow stand-in for the curve model, built by the tests (never by the product).

Same interface as `curve` (x [N, 1] -> y [N, 1]) but each input costs a chain of 512x512 matrix
products, tens of milliseconds on one thread, so requests pile up behind it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models import store
from models.spec import CURVE

SIDE = 512


def slow_curve_onnx(path: Path, layers: int = 6) -> None:
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((SIDE, SIDE)) / np.sqrt(SIDE)).astype(np.float32)
    inits = [
        numpy_helper.from_array(weight, "w"),
        numpy_helper.from_array(np.array([-1, 1, 1], dtype=np.int64), "col"),
        numpy_helper.from_array(np.array([1, SIDE, SIDE], dtype=np.int64), "tile"),
        numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "out_shape"),
    ]
    nodes = [
        helper.make_node("Reshape", ["x", "col"], ["x3"]),
        helper.make_node("Tile", ["x3", "tile"], ["h0"]),
    ]
    for i in range(layers):
        nodes += [
            helper.make_node("MatMul", [f"h{i}", "w"], [f"m{i}"]),
            helper.make_node("Tanh", [f"m{i}"], [f"h{i + 1}"]),
        ]
    nodes += [
        helper.make_node("ReduceMean", [f"h{layers}"], ["r"], axes=[1, 2], keepdims=0),
        helper.make_node("Reshape", ["r", "out_shape"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "slow_curve",
        [helper.make_tensor_value_info(CURVE.input.name, TensorProto.FLOAT, ["batch", 1])],
        [helper.make_tensor_value_info(CURVE.output.name, TensorProto.FLOAT, ["batch", 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def publish_slow_curve(root: Path, layers: int = 6) -> Path:
    def write(folder: Path, version: int) -> None:
        slow_curve_onnx(folder / store.ONNX, layers)
        store.write_json(
            folder / store.CARD,
            {
                **CURVE.card_fields(),
                "version": version,
                "sha256": {store.ONNX: store.sha256(folder / store.ONNX)},
            },
        )

    return store.publish(root, CURVE.name, write, keep=0)


def record_computed(batcher: Any) -> list[tuple[int, float]]:
    """Wraps the batcher's model call; the list fills with (input number, when its batch
    started) for every input the model computes, an input's number being its value x 1000."""
    computed: list[tuple[int, float]] = []
    run = batcher._run

    def recording(x: np.ndarray) -> np.ndarray:
        started = time.monotonic()
        computed.extend((round(v * 1000), started) for v in x.ravel().tolist())
        return run(x)

    batcher._run = recording
    return computed
