"""The networks built from the specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import nets
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
