"""The web page in a real browser: Debian's Chromium driven by Playwright, against the real server
on loopback serving the committed models (models/repository).

Everything is skipped, with the reason, where Chromium or Playwright is missing (see
.ci/browser-setup.sh) or where a model has not been trained yet.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# The models the page shows; BROWSER_MODELS_DIR points the tests at another repository.
MODELS_DIR = Path(os.environ.get("BROWSER_MODELS_DIR", ROOT / "models" / "repository"))
MODELS = ("lenet", "mlp", "points", "curve")
# Screenshots go to docs/screenshots/ only when asked (SCREENSHOTS=1, e.g. to refresh them for
# the README); otherwise to a temporary folder, so a test run leaves the checkout clean.
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "starter-serve-screenshots"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
# A small phone: 360 CSS px, a touch screen and two device pixels per CSS pixel.
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the web page in headless Chromium")


def missing_prerequisite() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (run .ci/browser-setup.sh, or set CHROMIUM)"
    untrained = [m for m in MODELS if not any(p.name.isdigit() for p in _dirs(MODELS_DIR / m))]
    if untrained:
        return f"no trained version in {MODELS_DIR} of: {', '.join(untrained)} (make train)"
    return None


def _dirs(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []


@pytest.fixture(scope="package")  # torn down after tests/browser: its loop must not outlive it
def base_url() -> Iterator[str]:
    """The real service (`python -m serving`) on a free loopback port."""
    from tests.serving.conftest import live_server

    with live_server(MODELS_DIR) as (url, _):
        yield url


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[[str, dict[str, Any]], Any]]:
    """Opens the page at a URL in a fresh browser context; after the test, fails it if the page
    threw a script error."""
    contexts, errors = [], []

    def open_(url: str, options: dict[str, Any]) -> Any:
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(10_000)
        page.goto(url + "/")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture
def desktop(open_page: Callable[..., Any], base_url: str) -> Any:
    return open_page(base_url, DESKTOP)


@pytest.fixture
def phone(open_page: Callable[..., Any], base_url: str) -> Any:
    return open_page(base_url, PHONE)
