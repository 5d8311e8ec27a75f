"""The cached metric children each answered request is counted with (serving.metrics)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from serving import metrics


def test_children_are_the_labelled_metrics_and_are_looked_up_once() -> None:
    counter, latency = metrics.REQUEST_CHILDREN["grpc:ModelInfer", "lenet", "OK"]
    assert counter is metrics.REQUESTS.labels("grpc:ModelInfer", "lenet", "OK")
    assert latency is metrics.LATENCY.labels("grpc:ModelInfer")
    again = metrics.REQUEST_CHILDREN["grpc:ModelInfer", "lenet", "OK"]
    assert again[0] is counter and again[1] is latency
    # An HTTP status is given as a number and labelled as text.
    counter, _ = metrics.REQUEST_CHILDREN["/predict/digits", "lenet", 200]
    assert counter is metrics.REQUESTS.labels("/predict/digits", "lenet", "200")


def test_the_cache_of_label_sets_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Labels come partly from requests (the model name, once known): a stream of new label
    sets must not grow the cache without bound; past it, each lookup still counts right."""
    monkeypatch.setattr(metrics, "MAX_LABEL_SETS", 5)
    monkeypatch.setattr(metrics, "REQUEST_CHILDREN", metrics.RequestChildren())
    for i in range(20):
        counter, _ = metrics.REQUEST_CHILDREN["test:bounded", f"m{i}", 200]
        counter.inc()
    assert len(metrics.REQUEST_CHILDREN) == 5
    labels = {"endpoint": "test:bounded", "model": "m19", "status": "200"}
    assert REGISTRY.get_sample_value("serving_requests_total", labels) == 1
