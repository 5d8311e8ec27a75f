"""The layers of docs/architecture.md hold (issue 18): import-linter's contracts in
pyproject.toml pass, and the service imports and answers with torch absent (ONNX backend)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


NO_TORCH = """
import sys
sys.modules["torch"] = None  # any import of torch now fails
from fastapi.testclient import TestClient
from serving.app import create_app
from serving.settings import Settings
import time
with TestClient(create_app(Settings(backend="onnx", models=["lenet"], threads=1))) as c:
    for _ in range(300):
        if c.get("/readyz").status_code == 200:
            break
        time.sleep(0.1)
    r = c.post("/predict/digits", json={"images": [[0] * 784]})
    assert r.status_code == 200, r.text
print("ok without torch")
"""


def test_the_service_runs_without_torch() -> None:
    run = subprocess.run(
        [sys.executable, "-c", NO_TORCH], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0 and "ok without torch" in run.stdout, run.stderr[-3000:]
