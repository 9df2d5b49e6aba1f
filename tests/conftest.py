"""Suite-wide: outputs written by tests go to a temporary audit log, never the user's; and
the fast tier (``pytest -m "not slow"``) leaves out every test that starts a real PACS or
a browser, wherever it lives."""

from __future__ import annotations

import pytest

# A test using one of these is slow: Orthanc is started for it (tests/serve/orthanc.py), or
# Chromium drives the web page (tests/serve/browser.py). Whole slow files say so themselves
# (``pytestmark = pytest.mark.slow``).
SLOW_FIXTURES = frozenset({"orthanc", "empty_orthanc", "synthetic_dicom", "browser", "page"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def _private_audit_log(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("RADSYNTH_AUDIT_LOG", str(tmp_path_factory.mktemp("audit") / "audit.jsonl"))
    yield
    patch.undo()
