"""The MNIST reader on small IDX files written here: both encodings and every clear error."""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, fake_digits
from training import datasets
from training.datasets import DataError


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_reads_both_encodings(fake_mnist: Callable[..., Path], gz: bool) -> None:
    root = fake_mnist(gz=gz)
    images, labels = datasets.load_mnist(root, "train")
    want_images, want_labels = fake_digits(300, 0)
    assert images.shape == (300, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, want_images)
    np.testing.assert_array_equal(labels, want_labels)
    test_images, _ = datasets.load_mnist(root, "test")
    assert test_images.shape == (100, 28, 28)


def _one(root: Path, stem: str) -> Path:
    (path,) = (root / "MNIST" / "raw").glob(f"{stem}*")
    return path


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_truncated_file_is_a_clear_error(fake_mnist: Callable[..., Path], gz: bool) -> None:
    root = fake_mnist(gz=gz)
    path = _one(root, "train-images")
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(DataError) as e:
        datasets.load_mnist(root, "train")
    assert str(path) in str(e.value)
    assert ("truncated" in str(e.value)) or ("cannot read" in str(e.value))


def test_truncated_inside_gzip_is_truncated_data(fake_mnist: Callable[..., Path]) -> None:
    root = fake_mnist(gz=True)
    path = _one(root, "train-images")
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-28]))
    with pytest.raises(DataError, match="truncated"):
        datasets.load_mnist(root, "train")


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_wrong_magic_is_a_clear_error(fake_mnist: Callable[..., Path], gz: bool) -> None:
    root = fake_mnist(gz=gz)
    images, labels = _one(root, "train-images"), _one(root, "train-labels")
    images.write_bytes(labels.read_bytes())  # a labels file where the images should be
    with pytest.raises(DataError, match=r"wrong magic number 2049 \(expected 2051\)"):
        datasets.load_mnist(root, "train")


def test_missing_files_name_the_expected_place(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        datasets.load_mnist(tmp_path, "test")
    message = str(e.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "t10k-images-idx3-ubyte" in message
    assert "--data-dir" in message and "--download" in message


def test_cli_reports_missing_mnist_in_one_line(tmp_path: Path) -> None:
    """No traceback: one message on stderr and exit status 2, before any model is trained."""
    models = tmp_path / "repo"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "all",
            "--data-dir",
            str(tmp_path),
            "--models-dir",
            models,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: missing train-images-idx3-ubyte")
    assert str(tmp_path / "MNIST" / "raw") in lines[0]
    assert not models.exists()  # nothing published, not even the models that need no MNIST


def test_checksum_names_the_content() -> None:
    a, b = fake_digits(10, 0)
    assert datasets.checksum(a, b) == datasets.checksum(a.copy(), b.copy())
    c = a.copy()
    c[0, 0, 0] ^= 1
    assert datasets.checksum(c, b) != datasets.checksum(a, b)
