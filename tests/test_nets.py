"""The networks built from the specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import nets, store
from models.spec import SPECS


@pytest.mark.parametrize("name", sorted(SPECS))
def test_state_dict_keys_do_not_depend_on_dropout(name: str, tmp_path: Path) -> None:
    spec = SPECS[name]
    trained = nets.build(spec, dropout=0.3)
    torch.save(trained.state_dict(), tmp_path / "m.pt")
    served = nets.load(spec, str(tmp_path / "m.pt"))  # built with no dropout
    x = torch.as_tensor(spec.example())[None]
    with torch.no_grad():
        want = nets.for_inference(trained.eval(), spec)(x)
        assert torch.allclose(served(x), want)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_committed_weights_fit_the_network_the_spec_builds(name: str) -> None:
    """Strict load: every committed state_dict key and shape matches `nets.build(spec)`, and the
    card's architecture (where it records one) rebuilds the same network."""
    if not store.versions(store.REPOSITORY, name):
        pytest.skip(f"no committed version of {name}")
    folder = store.version_dir(store.REPOSITORY, name)
    card = store.verify(folder, (store.STATE_DICT,))
    net = nets.load(SPECS[name], str(folder / store.STATE_DICT))
    spec, from_card = nets.load_from_card(card, str(folder / store.STATE_DICT))
    x = torch.as_tensor(SPECS[name].example())[None]
    with torch.no_grad():
        assert torch.equal(net(x), from_card(x))
    assert spec.name == name
