"""Ask a running container to classify real MNIST test digits, and check its answers.

    python containers/smoke_client.py http://127.0.0.1:18080 [--data-dir ../shared/data] \
        [--grpc 127.0.0.1:18081]

The digits are the first --count images of MNIST's test split when --data-dir holds MNIST/raw/
(read with training.datasets.load_mnist), else the real test digits kept in
containers/mnist-test-sample.json (written from MNIST by --write-sample). Passes when the answer
is well formed and at least --min-accuracy of the digits are classified as labelled (LeNet-5
gets about 99% of the test split right; the sample's digits are ones the committed lenet gets
right). Standard library only, but numpy for reading MNIST's IDX files. With --grpc, the same
digits also go through ModelInfer over gRPC (tritonclient.grpc, raw contents) and grpc.health.v1,
and the answers must equal /predict/digits's.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "mnist-test-sample.json"


def mnist_digits(data_dir: Path, count: int) -> tuple[list[list[list[int]]], list[int], str]:
    sys.path.insert(0, str(HERE.parent))
    from training.datasets import load_mnist

    images, labels = load_mnist(data_dir, "test")
    return (
        images[:count].astype(int).tolist(),
        labels[:count].astype(int).tolist(),
        f"MNIST test split {data_dir}, first {count}",
    )


def sample_digits() -> tuple[list[list[list[int]]], list[int], str]:
    sample = json.loads(SAMPLE.read_text())
    images = []
    for b64 in sample["images"]:
        raw = base64.b64decode(b64)
        images.append([list(raw[r * 28 : (r + 1) * 28]) for r in range(28)])
    return images, sample["labels"], f"{SAMPLE.name} ({sample['source']})"


def write_sample(data_dir: Path, indices: list[int]) -> None:
    sys.path.insert(0, str(HERE.parent))
    from training.datasets import load_mnist

    images, labels = load_mnist(data_dir, "test")
    SAMPLE.write_text(
        json.dumps(
            {
                "source": f"MNIST test split, images {indices}",
                "credit": "MNIST: Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0",
                "labels": [int(labels[i]) for i in indices],
                "images": [base64.b64encode(images[i].tobytes()).decode() for i in indices],
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {SAMPLE}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url", nargs="?", default="http://127.0.0.1:8000")
    p.add_argument("--data-dir", type=Path, help="folder holding MNIST/raw/")
    p.add_argument("--count", type=int, default=64)
    p.add_argument("--min-accuracy", type=float, default=0.95)
    p.add_argument("--model", default="lenet")
    p.add_argument("--grpc", metavar="HOST:PORT", help="also check ModelInfer over gRPC there")
    p.add_argument("--write-sample", metavar="I,J,...", help="write the committed sample and exit")
    args = p.parse_args()

    if args.write_sample:
        write_sample(args.data_dir, [int(i) for i in args.write_sample.split(",")])
        return 0
    if args.data_dir is not None and (args.data_dir / "MNIST" / "raw").is_dir():
        images, labels, source = mnist_digits(args.data_dir, args.count)
    else:
        images, labels, source = sample_digits()

    body = json.dumps({"images": images, "model": args.model}).encode()
    req = urllib.request.Request(
        f"{args.url}/predict/digits", body, {"content-type": "application/json"}
    )
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            answer = json.loads(r.read())
    except urllib.error.HTTPError as e:
        print(f"FAIL: /predict/digits answered {e.code}: {e.read()[:500]!r}")
        return 1
    ms = (time.perf_counter() - t0) * 1000
    preds = answer.get("predictions", [])
    if answer.get("model") != args.model or len(preds) != len(labels):
        print(f"FAIL: unexpected answer for {len(labels)} digits: {str(answer)[:500]}")
        return 1
    digits = [p["digit"] for p in preds]
    bad = [
        i
        for i, p in enumerate(preds)
        if len(p["probabilities"]) != 10 or abs(sum(p["probabilities"]) - 1) > 1e-3
    ]
    if bad:
        print(f"FAIL: probabilities of items {bad} are not 10 numbers summing to 1")
        return 1
    right = sum(d == y for d, y in zip(digits, labels, strict=True))
    acc = right / len(labels)
    print(
        f"/predict/digits ({source}): {right}/{len(labels)} right with "
        f"{answer['model']} v{answer['version']} in {ms:.0f} ms; "
        f"labels {labels[:12]}..., answers {digits[:12]}..."
    )
    if acc < args.min_accuracy:
        print(f"FAIL: accuracy {acc:.3f} below {args.min_accuracy}")
        return 1
    if args.grpc:
        return grpc_check(args.grpc, args.model, images, preds)
    return 0


def grpc_check(address: str, model: str, images: list, preds: list[dict]) -> int:
    """ModelInfer over gRPC gives /predict/digits's answers; the health service says SERVING."""
    import grpc
    import numpy as np
    import tritonclient.grpc as triton
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
    if status.status != health_pb2.HealthCheckResponse.SERVING:
        print(f"FAIL: grpc.health.v1 says {status.status}, not SERVING")
        return 1
    x = np.asarray(images, dtype=np.float32).reshape(len(images), 1, 28, 28)
    client = triton.InferenceServerClient(address)
    t0 = time.perf_counter()
    try:
        inp = triton.InferInput("pixels", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = client.infer(model, [inp])
    except Exception as e:
        print(f"FAIL: ModelInfer over gRPC: {e}")
        return 1
    finally:
        client.close()
    ms = (time.perf_counter() - t0) * 1000
    probs, label = result.as_numpy("probabilities"), result.as_numpy("label")
    want = np.array([p["probabilities"] for p in preds], np.float32)
    if probs is None or probs.shape != want.shape or np.abs(probs - want).max() > 1e-6:
        print(f"FAIL: gRPC probabilities differ from /predict/digits's: {probs!r:.300}")
        return 1
    if label.ravel().tolist() != [p["digit"] for p in preds]:
        print("FAIL: gRPC labels differ from /predict/digits's digits")
        return 1
    print(f"gRPC ModelInfer ({address}): the same {len(x)} answers in {ms:.0f} ms; health SERVING")
    return 0


if __name__ == "__main__":
    sys.exit(main())
