"""Issue 20: logistic regression's loss, architecture as data (one entry or one set of flags is a
new served model), and TensorBoard logs read back."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from models import nets, store
from models.spec import ACTIVATIONS, LOGREG, POINTS, SPECS, ModelSpec, spec_from_card, specs_in
from tests.serving.conftest import Service, settings_for
from tests.serving.test_v2 import decode, json_input
from training import cli, data, train

QUICK = ["--epochs", "1", "--train-size", "400", "--val-size", "50", "--no-progress"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_bce_with_logits_is_the_tutorials_hand_written_loss() -> None:
    """On a batch of the training points and the logits of logreg's own layer (scaled to reach
    p = 0.99995): the same number. Past |z| of about 16 the clamp decides the hand-written value
    (log(1e-7)); BCEWithLogitsLoss keeps the true one, which is why training uses it."""
    torch.manual_seed(0)
    d = data.points(512, 10, n_test=10)
    net = nets.build(LOGREG)
    with torch.no_grad():
        z = net(d.train.x[:512])
        z = z * (10 / z.abs().max())  # the largest logit is 10
    y = d.train.y[:512]
    p = torch.sigmoid(z[:, 0]).clamp(1e-7, 1 - 1e-7)
    t = y.float()
    by_hand = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()
    ours = train.loss_fn(z, y, LOGREG)
    assert torch.allclose(ours, by_hand, rtol=1e-5, atol=1e-6), (ours.item(), by_hand.item())
    assert not torch.allclose(ours, train.loss_fn(z, 1 - y, LOGREG))  # the labels matter


def test_logreg_is_one_linear_layer_and_answers_both_probabilities() -> None:
    net = nets.build(LOGREG)
    assert [type(m) for m in net] == [torch.nn.Linear]
    assert net[0].in_features == 2 and net[0].out_features == 1
    x = torch.randn(64, 2) * 3
    probs = nets.for_inference(net, LOGREG)(x).detach()
    z = net(x).detach()[:, 0]
    assert probs.shape == (64, 2)
    assert torch.allclose(probs[:, 1], torch.sigmoid(z), atol=1e-6)
    assert torch.allclose(probs.sum(1), torch.ones(64), atol=1e-6)
    assert torch.equal(nets.predicted_labels(z[:, None], LOGREG), probs.argmax(1))


def test_logreg_learns_the_clusters() -> None:
    hp = dataclasses.replace(train.DEFAULTS["logreg"], epochs=3)
    result = train.fit(LOGREG, data.points(2000, 200, n_test=2000), hp, progress=False, log=print)
    assert result.test["accuracy"] > 0.99
    w = result.net[0].weight.detach()[0]
    assert (w < 0).all()  # P(cluster (-2, -2)) grows toward negative x1 and x2


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_the_activation_is_the_specs(activation: str) -> None:
    spec = SPECS["dnn"].variant("deep", activation=activation)
    net = nets.build(spec)
    kinds = {type(m) for m in net}
    assert nets.ACTIVATIONS[activation] in kinds
    assert not (kinds & {a for n, a in nets.ACTIVATIONS.items() if n != activation})
    widths = [m.out_features for m in net if isinstance(m, torch.nn.Linear)]
    assert widths == [400, 200, 100, 10]


@pytest.mark.parametrize("name", list(SPECS))
def test_a_card_describes_its_spec_exactly(name: str) -> None:
    card = json.loads(json.dumps(SPECS[name].card_fields()))
    assert spec_from_card(card) == SPECS[name]


def test_flags_make_a_named_variant() -> None:
    args = cli.parse_args(["mlp", "--hidden", "400,200,100", "--activation", "tanh", "--name", "t"])
    (spec,) = cli.specs(args)
    assert (spec.name, spec.hidden, spec.activation) == ("t", (400, 200, 100), "tanh")
    assert spec.architecture == "MLP 784-400-200-100-10, tanh"
    assert cli.hparams(args.model, args) == train.DEFAULTS["mlp"]
    bad_flags = [
        ["mlp", "--hidden", "8"],  # a new architecture needs a new name
        ["all", "--name", "x"],
        ["mlp", "--name", "lenet"],
        ["mlp", "--hidden", "8,x", "--name", "y"],
        ["lenet", "--hidden", "8", "--name", "z"],  # LeNet has two dense hidden layers
    ]
    for bad in bad_flags:
        with pytest.raises(SystemExit):
            cli.parse_args(bad)


async def _serve_everywhere(repo: Path, spec: ModelSpec) -> None:
    """The model answers on /models, its data sample, /predict/<family> and /v2, with both
    backends, and the torch backend's network is the one the card describes."""
    x = np.random.default_rng(3).normal(0, 2.5, size=(5, 2)).astype(np.float32)
    answers = {}
    for backend in ("onnx", "torch"):
        async with Service(settings_for(repo, models=[spec.name], backend=backend)) as svc:
            c = svc.client
            assert (await c.get("/readyz")).status_code == 200
            info = (await c.get(f"/models/{spec.name}")).json()
            assert info["family"] == "points" and info["backend"] == backend
            sample = await c.get(f"/models/{spec.name}/data?n=10")
            assert sample.status_code == 200 and len(sample.json()["points"]) == 10
            body = {"points": x.tolist(), "model": spec.name}
            r = await c.post("/predict/points", json=body)
            assert r.status_code == 200, r.text
            probs = np.array([p["probabilities"] for p in r.json()["predictions"]])
            meta = (await c.get(f"/v2/models/{spec.name}")).json()
            assert meta["inputs"][0]["name"] == spec.input.name
            v2 = await c.post(
                f"/v2/models/{spec.name}/infer", json={"inputs": [json_input("points", x)]}
            )
            np.testing.assert_allclose(decode(v2)[1]["probabilities"], probs, atol=1e-5)
            if backend == "torch":
                module = svc.registry.entries[spec.name].runner.module  # type: ignore[attr-defined]
                linear = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
                assert [m.out_features for m in linear] == [*spec.hidden, spec.n_logits]
                act = nets.ACTIVATIONS[spec.activation]
                assert any(isinstance(m, act) for m in module.modules())
        answers[backend] = probs
    np.testing.assert_allclose(answers["onnx"], answers["torch"], atol=1e-5)


@pytest.mark.anyio
async def test_a_variant_trained_by_flags_is_served_from_its_card(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    args = ["points", "--name", "wide", "--hidden", "8,6", "--activation", "tanh"]
    assert train.main([*args, "--models-dir", str(repo), *QUICK]) == 0
    card = store.verify(store.version_dir(repo, "wide"))
    assert (card["hidden"], card["activation"], card["layers"]) == ([8, 6], "tanh", "mlp")
    assert "wide" in specs_in(repo) and "wide" not in SPECS  # nothing else knows of it
    await _serve_everywhere(repo, specs_in(repo)["wide"])


@pytest.mark.anyio
async def test_one_entry_in_the_definitions_is_a_new_served_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = dataclasses.replace(
        POINTS, name="sig3", hidden=(3,), activation="sigmoid", architecture="MLP 2-3-2, sigmoid"
    )
    monkeypatch.setitem(SPECS, spec.name, spec)  # the one entry
    monkeypatch.setitem(train.DEFAULTS, spec.name, train.DEFAULTS["points"])
    repo = tmp_path / "repo"
    assert train.main([spec.name, "--models-dir", str(repo), *QUICK]) == 0
    await _serve_everywhere(repo, spec)


def test_tensorboard_logs_read_back(tmp_path: Path) -> None:
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    logs, repo = tmp_path / "tb", tmp_path / "repo"
    quick = ["--epochs", "2", "--train-size", "400", "--val-size", "50", "--no-progress"]
    args = ["points", "--tensorboard", str(logs), "--models-dir", str(repo), *quick]
    assert train.main(args) == 0
    events = accumulator.EventAccumulator(str(logs / "points"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    for tag in ("loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr"):
        assert tag in tags["scalars"], tags["scalars"]
        assert [e.step for e in events.Scalars(tag)] == [1, 2]
    card = store.read_card(store.version_dir(repo, "points"))
    val_loss = [row["val_loss"] for row in card["validation"]["per_epoch"]]
    np.testing.assert_allclose([e.value for e in events.Scalars("loss/val")], val_loss, rtol=1e-4)
    assert events.Scalars("test/accuracy")[0].value == pytest.approx(
        card["test_metrics"]["accuracy"]
    )
    assert {"confusion", "predictions"} <= set(tags["images"])
    assert tags["graph"]
