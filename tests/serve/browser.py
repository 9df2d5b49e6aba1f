"""Headless Chromium for the web-page tests: Debian's ``/usr/bin/chromium`` driven by Playwright's
sync API (no browser is ever downloaded; ``RADSYNTH_CHROMIUM`` names another binary).

tests/conftest.py registers the fixtures for the whole suite (``browser``, ``page``, ``screenshot``).
``page`` fails its test when the page raised a JavaScript error; ``screenshot`` saves a PNG
under the test's ``tmp_path`` and, when ``RADSYNTH_SCREENSHOTS`` names a folder, there too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("RADSYNTH_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling out, which a closed network
# answers slowly; --disable-gpu because the test machines have none.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 30_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():  # never skipped: a web page nobody tested is not done
        pytest.fail(
            f"no Chromium at {CHROMIUM}: bash scripts/setup.sh --test installs it (or set RADSYNTH_CHROMIUM)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    """A fresh context per test (its own localStorage), downloads allowed, 1:1 pixels."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    if errors:
        pytest.fail(f"the page raised JavaScript errors: {errors}")


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[..., Path]:
    """``screenshot(page_or_locator, "name", **options)`` -> the PNG under ``tmp_path`` (copied
    to ``$RADSYNTH_SCREENSHOTS`` when set, for people to look at); ``options`` go to
    Playwright's ``screenshot`` (``full_page=True`` for a whole page)."""

    def take(target: Any, name: str, **options: Any) -> Path:
        path = tmp_path / f"{name}.png"
        target.screenshot(path=str(path), **options)
        folder = os.environ.get("RADSYNTH_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(folder) / path.name)
        return path

    return take
