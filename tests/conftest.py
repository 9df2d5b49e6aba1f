"""Suite-wide: outputs written by tests go to a temporary audit log, never the user's."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_audit_log(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("RADSYNTH_AUDIT_LOG", str(tmp_path_factory.mktemp("audit") / "audit.jsonl"))
    yield
    patch.undo()
