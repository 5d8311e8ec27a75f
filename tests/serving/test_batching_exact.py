"""Batching is exact (issue 11): whatever mix of requests shares a batch, each answer equals the
model run on that request alone and carries exactly its own items, in order.

Hypothesis draws the mix: models, /predict JSON or protocol JSON or protocol binary, 1 to 12
items each, which outputs are asked for (and whether binary), and the batch size limit. All
requests of one example are sent at once, so the batcher merges them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import store
from models.spec import SPECS
from tests.serving.conftest import Service, settings_for
from tests.serving.test_v2 import binary_body, decode, items, json_input

PATHS = ("predict", "v2-json", "v2-binary")
OUTPUTS = ("all", "main", "label", "main-binary", "label-binary")

request = st.fixed_dictionaries(
    {
        "model": st.sampled_from(sorted(SPECS)),
        "path": st.sampled_from(PATHS),
        "n": st.integers(1, 12),
        "seed": st.integers(0, 2**31 - 1),
        "outputs": st.sampled_from(OUTPUTS),
    }
)
MERGED = {"requests": 0, "batches": 0}


def alone(repo: Path, name: str, x: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """The model run by hand on this request's inputs only."""
    if name not in cache:
        cache[name] = ort.InferenceSession(str(store.version_dir(repo, name) / store.ONNX))
    return cache[name].run(None, {SPECS[name].input.name: x})[0]


def protocol_request(r: dict[str, Any], x: np.ndarray) -> tuple[dict[str, Any], bytes, bool]:
    spec = SPECS[r["model"]]
    names = {
        "all": None,
        "main": [spec.output.name],
        "main-binary": [spec.output.name],
        "label": ["label"],
        "label-binary": ["label"],
    }[r["outputs"]]
    if names == ["label"] and not spec.is_classifier:
        names = [spec.output.name]
    head: dict[str, Any] = {"id": f"req-{r['seed']}"}
    binary_out = r["outputs"].endswith("binary")
    if names is not None:
        head["outputs"] = [{"name": n, "parameters": {"binary_data": binary_out}} for n in names]
    blob = b""
    if r["path"] == "v2-binary":
        blob = x.astype("<f4").tobytes()
        head["inputs"] = [
            {
                "name": spec.input.name,
                "shape": list(x.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(blob)},
            }
        ]
    else:
        head["inputs"] = [json_input(r["model"], x)]
    return head, blob, names is None or spec.output.name in names


async def send(svc: Service, r: dict[str, Any], x: np.ndarray) -> tuple[np.ndarray | None, Any]:
    """(main output or None if not asked for, labels or None)."""
    spec = SPECS[r["model"]]
    if r["path"] == "predict":
        if spec.family == "curve":
            resp = await svc.client.post("/predict/curve", json={"x": x.ravel().tolist()})
            return np.array(resp.json()["y"], np.float32)[:, None], None
        key = "images" if spec.family == "digits" else "points"
        data = x.reshape(len(x), 784) if spec.family == "digits" else x
        resp = await svc.client.post(
            f"/predict/{spec.family}", json={key: data.tolist(), "model": spec.name}
        )
        assert resp.status_code == 200, resp.text
        preds = resp.json()["predictions"]
        probs = np.array([p["probabilities"] for p in preds], np.float32)
        return probs, [p["digit" if spec.family == "digits" else "label"] for p in preds]
    head, blob, main = protocol_request(r, x)
    if r["path"] == "v2-binary":
        body, headers = binary_body(head, blob)
        resp = await svc.client.post(f"/v2/models/{spec.name}/infer", content=body, headers=headers)
    else:
        resp = await svc.client.post(f"/v2/models/{spec.name}/infer", json=head)
    meta, arrays = decode(resp)
    assert meta["id"] == head["id"] and meta["model_name"] == spec.name
    labels = arrays["label"].ravel().tolist() if "label" in arrays else None
    return (arrays[spec.output.name] if main else None), labels


@pytest.mark.slow
@given(
    requests=st.lists(request, min_size=1, max_size=16), max_batch=st.sampled_from([1, 3, 8, 64])
)
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_equals_its_request_alone(
    built_repo: Path, requests: list[dict[str, Any]], max_batch: int
) -> None:
    sessions: dict[str, Any] = {}
    inputs = [items(r["model"], r["n"], r["seed"]) for r in requests]

    async def run() -> list[tuple[np.ndarray | None, Any]]:
        async with Service(settings_for(built_repo, max_batch_size=max_batch)) as svc:
            answers = await asyncio.gather(
                *(send(svc, r, x) for r, x in zip(requests, inputs, strict=True))
            )
            stats = [e.batcher.stats for e in svc.registry.entries.values()]
        MERGED["requests"] += len(requests)
        MERGED["batches"] += sum(s.batches for s in stats)
        return answers

    for r, x, (main, labels) in zip(requests, inputs, asyncio.run(run()), strict=True):
        want = alone(built_repo, r["model"], x, sessions)
        if main is not None:
            assert main.shape == want.shape  # exactly its own items
            np.testing.assert_allclose(main, want, atol=1e-6, rtol=0)
        if labels is not None:
            assert list(labels) == want.argmax(axis=1).tolist()


def test_the_mixes_really_were_merged() -> None:
    """Runs after the property test: its requests shared model calls."""
    if not MERGED["requests"]:
        pytest.skip("the property test did not run")
    assert MERGED["batches"] < MERGED["requests"]
