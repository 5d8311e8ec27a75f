"""Training: the flags, that a short run learns, the export's parity, the card, and the crash path.

Everything here runs on tiny data in seconds; the real MNIST checks of the committed artifacts are
marked `mnist` and skip where the data is absent.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from models import nets, store
from models.spec import SPECS
from training import data, datasets, export, train
from training.data import Data

TARGETS = {"lenet": 0.993, "mlp": 0.980}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models train faster on one thread, and a busy shared CPU slows two threads badly."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_help_lists_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        train.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--optimizer", "--lr", "--batch-size", "--epochs", "--no-shuffle", "--drop-last",
                 "--dropout", "--seed", "--device", "--data-dir", "--download", "--models-dir",
                 "--keep", *train.OPTIMIZERS):  # fmt: skip
        assert flag in text


def test_flags_override_the_model_defaults() -> None:
    args = train.parse_args(["lenet", "--lr", "0.5", "--no-shuffle", "--optimizer", "sgd"])
    hp = train.hparams("lenet", args)
    assert (hp.lr, hp.shuffle, hp.optimizer) == (0.5, False, "sgd")
    assert hp.epochs == train.DEFAULTS["lenet"].epochs  # untouched flags keep the tuned value
    assert train.hparams("curve", train.parse_args(["curve"])) == train.DEFAULTS["curve"]


def test_thread_choice() -> None:
    assert train.pick_threads(3) == 3  # an explicit --threads wins
    assert 1 <= train.pick_threads(0) <= torch.get_num_threads()


def test_batches_cover_each_item_once() -> None:
    gen = torch.Generator().manual_seed(0)
    order = data.epoch_order(10, True, gen)
    got = torch.cat(list(data.batches(order, 4, drop_last=False)))
    assert sorted(got.tolist()) == list(range(10))
    assert [len(b) for b in data.batches(order, 4, drop_last=True)] == [4, 4]
    assert data.n_batches(10, 4, True) == 2 and data.n_batches(10, 4, False) == 3
    assert data.epoch_order(5, False, gen).tolist() == [0, 1, 2, 3, 4]


def test_augment_keeps_shape_and_ink() -> None:
    x = torch.zeros(8, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 255.0
    y = data.augment(x)
    assert y.shape == x.shape
    assert torch.allclose(y.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.3)  # moved, not erased
    same = data.augment(x, degrees=0, shift=0, scale=0)
    assert torch.allclose(same, x, atol=1e-3)


def _points(n: int = 600) -> Data:
    return data.points(n, 200, n_test=500)


def test_a_short_run_learns() -> None:
    hp = dataclasses.replace(train.DEFAULTS["points"], epochs=3, batch_size=32)
    result = train.fit(SPECS["points"], _points(), hp, progress=False, log=lambda _: None)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0] / 2
    assert result.test["accuracy"] > 0.97
    assert 1 <= result.best_epoch <= 3


@pytest.mark.parametrize("optimizer", train.OPTIMIZERS)
def test_every_optimizer_lowers_the_loss(optimizer: str) -> None:
    lr = {"sgd": 0.1, "momentum": 0.05, "adadelta": 1.0, "adagrad": 0.05}.get(optimizer, 0.01)
    hp = dataclasses.replace(train.DEFAULTS["points"], optimizer=optimizer, lr=lr, epochs=2)
    hp = dataclasses.replace(hp, schedule="constant", batch_size=32)
    result = train.fit(SPECS["points"], _points(300), hp, progress=False, log=lambda _: None)
    assert result.history[-1]["val_loss"] < 0.69  # below chance (ln 2)


def test_bf16_mixed_precision_learns() -> None:
    hp = dataclasses.replace(train.DEFAULTS["points"], epochs=2, batch_size=32, precision="bf16")
    result = train.fit(SPECS["points"], _points(300), hp, progress=False, log=lambda _: None)
    assert result.test["accuracy"] > 0.97
    assert next(result.net.parameters()).dtype == torch.float32  # the weights stay fp32


def test_lenet_overfits_one_small_batch() -> None:
    torch.manual_seed(0)
    spec = SPECS["lenet"]
    net = nets.build(spec)
    x = torch.rand(16, 1, 28, 28) * 255
    y = torch.randint(0, 10, (16,))  # random labels: only memorising can fit them
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(120):
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    assert (net(x).argmax(1) == y).all()


@pytest.mark.parametrize("name", list(SPECS))
def test_export_matches_pytorch(tmp_path: Path, name: str) -> None:
    spec = SPECS[name]
    torch.manual_seed(0)
    net = nets.build(spec, dropout=0.2)  # the export must run in eval mode: no dropout
    path = tmp_path / "model.onnx"
    parity = export.export_onnx(net, spec, path)
    assert parity["max_abs_diff"] <= 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # self-contained
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == [spec.input.name]
    assert [o.name for o in model.graph.output] == [spec.output.name]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = export.random_batch(spec, 5, np.random.default_rng(1))
    (got,) = session.run(None, {spec.input.name: x})
    want = nets.for_inference(net, spec)(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    if spec.is_classifier:
        np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)  # probabilities, not logits


def test_export_refuses_a_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "ATOL", -1.0)  # any difference at all now counts as a mismatch
    with pytest.raises(export.ExportError, match="differs from PyTorch"):
        export.export_onnx(nets.build(SPECS["points"]), SPECS["points"], tmp_path / "m.onnx")


QUICK = ["--epochs", "1", "--train-size", "400", "--val-size", "50", "--no-progress"]


def test_all_publish_complete_versions(tmp_path: Path, fake_mnist: Callable[..., Path]) -> None:
    repo = tmp_path / "repo"
    args = ["all", "--data-dir", str(fake_mnist()), "--models-dir", str(repo), *QUICK]
    assert train.main(args) == 0
    for name, spec in SPECS.items():
        folder = store.version_dir(repo, name)
        assert folder == repo / name / "1"
        card = store.verify(folder)  # the card's checksums match the files
        assert card["sha256"][store.STATE_DICT] == store.sha256(folder / store.STATE_DICT)
        assert card["sha256"][store.ONNX] == store.sha256(folder / store.ONNX)
        assert card["version"] == 1 and card["created"]
        for key, value in json.loads(json.dumps(spec.card_fields())).items():
            assert card[key] == value, key
        assert set(card["versions"]) == {"python", "torch", "onnx", "onnxruntime", "numpy"}
        assert card["hyperparameters"]["epochs"] == 1 and card["device"]["type"] == "cpu"
        assert card["data"]["sha256"] and card["training_seconds"] >= 0
        assert len(card["validation"]["per_epoch"]) == 1
        assert card["onnx_parity"]["max_abs_diff"] <= 1e-4
        metric = "accuracy" if spec.is_classifier else "mse"
        assert metric in card["test_metrics"]
        assert card["plots"] and all((folder / p).stat().st_size > 1000 for p in card["plots"])
        net = nets.load(spec, str(folder / store.STATE_DICT))  # weights_only=True inside
        x = spec.example()[None]
        session = ort.InferenceSession(str(folder / store.ONNX), providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {spec.input.name: x})
        np.testing.assert_allclose(got, net(torch.from_numpy(x)).detach().numpy(), atol=1e-4)
    plots = {p.name for p in (repo / "lenet" / "1" / "plots").iterdir()}
    assert plots == {"history.png", "confusion.png", "misclassified.png"}
    for name, plot in (("points", "regions.png"), ("logreg", "regions.png"), ("curve", "fit.png")):
        assert {p.name for p in (repo / name / "1" / "plots").iterdir()} == {"history.png", plot}


def test_a_crash_while_writing_keeps_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    args = ["points", "--models-dir", str(repo), *QUICK]
    assert train.main(args) == 0
    before = {p: p.read_bytes() for p in (repo / "points").rglob("*") if p.is_file()}

    def broken_export(*_: object, **__: object) -> None:
        raise export.ExportError("simulated crash mid-export")

    monkeypatch.setattr(export, "export_onnx", broken_export)
    with pytest.raises(export.ExportError, match="simulated crash"):
        train.main(args)
    after = {p: p.read_bytes() for p in (repo / "points").rglob("*") if p.is_file()}
    assert after == before  # version 1 byte for byte, no version 2, no temporary folder
    assert store.versions(repo, "points") == [1]
    assert [p.name for p in (repo / "points").iterdir()] == ["1"]


@pytest.mark.gpu
def test_trains_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    device = torch.device("cuda")
    hp = dataclasses.replace(train.DEFAULTS["points"], epochs=2)
    result = train.fit(SPECS["points"], _points().to(device), hp, progress=False, log=print)
    assert result.test["accuracy"] > 0.97


def _accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == labels).mean())


@pytest.mark.mnist
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_committed_artifacts_reach_their_targets(mnist_dir: Path, name: str) -> None:
    """The committed newest version, through torch (state_dict) and onnxruntime (ONNX file)."""
    images, labels = datasets.load_mnist(mnist_dir, "test")
    x = images.astype(np.float32)[:, None]
    spec = SPECS[name]
    folder = store.version_dir(store.REPOSITORY, name)
    card = store.verify(folder)
    net = nets.load(spec, str(folder / store.STATE_DICT))
    with torch.no_grad():
        torch_acc = _accuracy(net(torch.from_numpy(x)).numpy(), labels)
    session = ort.InferenceSession(str(folder / store.ONNX), providers=["CPUExecutionProvider"])
    (probs,) = session.run([spec.output.name], {spec.input.name: x})
    onnx_acc = _accuracy(probs, labels)
    assert torch_acc >= TARGETS[name], f"{name} torch accuracy {torch_acc:.4f}"
    assert onnx_acc >= TARGETS[name], f"{name} onnx accuracy {onnx_acc:.4f}"
    assert abs(torch_acc - card["test_metrics"]["accuracy"]) < 1e-9  # the card tells the truth
    assert abs(onnx_acc - torch_acc) <= 2e-4  # at most a couple of borderline digits differ
