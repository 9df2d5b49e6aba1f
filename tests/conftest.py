"""Suite-wide: outputs written by tests go to a temporary audit log, never the user's; and
the fast tier (``pytest -m "not slow"``) leaves out every test that starts a real PACS or
a browser, wherever it lives."""

from __future__ import annotations

import pytest

# The browser fixtures (the web page, report.html), registered once for the whole suite:
# Playwright's sync API runs one browser per thread, and each registration would start its own.
from .serve.browser import browser, page, screenshot  # noqa: F401

# A test using one of these is slow: Orthanc is started for it (tests/serve/orthanc.py),
# Chromium drives the web page (tests/serve/browser.py), or the whole demo corpus is built
# from its sources into a fresh cache, pip download of the pyradiomics archive included
# (tests/data/conftest.py). Whole slow files say so themselves (``pytestmark``).
SLOW_FIXTURES = frozenset(
    {"orthanc", "empty_orthanc", "synthetic_dicom", "browser", "page", "demo_build", "demo_corpus"}
)
# Slow service tests that need neither (a server killed and restarted mid-job; a generate
# job evaluated end to end; a job failing on a PACS that is down). Listed here rather than
# marked in tests/serve/, which the service work owns; move the marks there when it suits.
SLOW_TESTS = frozenset(
    {
        "tests/serve/test_queue.py::test_no_job_is_lost_when_the_server_is_killed_mid_job_and_restarted",
        "tests/serve/test_evaluate_job.py::test_a_generate_job_is_evaluated_against_server_side_manifests",
        "tests/serve/test_pacs_api.py::test_a_pacs_that_is_down_fails_the_job_clearly_and_keeps_its_files",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        slow_fixture = SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if slow_fixture or item.nodeid.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def _private_audit_log(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("RADSYNTH_AUDIT_LOG", str(tmp_path_factory.mktemp("audit") / "audit.jsonl"))
    yield
    patch.undo()
