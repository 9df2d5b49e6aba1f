"""A real Orthanc PACS with its DICOMweb plugin on loopback, for the DICOMweb and gate tests.

Import the fixtures into a test module: ``from tests.serve.orthanc import orthanc, empty_orthanc``.
``synthetic_dicom`` is a radsynth-generated DICOM series (the shipped model), made once per
test session however many modules import it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc/plugins", "/usr/local/share/orthanc/plugins")
SETUP = "`bash scripts/setup.sh --test` installs Orthanc and its DICOMweb plugin"


@dataclass(frozen=True)
class OrthancServer:
    url: str  # REST API root, http://127.0.0.1:PORT
    dicomweb: str  # DICOMweb root, URL/dicom-web

    def study_ids(self) -> list[str]:
        return httpx.get(f"{self.url}/studies", timeout=10).json()

    def empty(self) -> None:
        """Delete every study (Orthanc's REST API), so a test sees only what it stored."""
        for study in self.study_ids():
            httpx.delete(f"{self.url}/studies/{study}", timeout=10).raise_for_status()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _plugin() -> str:
    for folder in PLUGIN_DIRS:
        path = Path(folder) / "libOrthancDicomWeb.so"
        if path.is_file():
            return str(path)
    pytest.fail(f"Orthanc's DICOMweb plugin (libOrthancDicomWeb.so) is not installed; {SETUP}")


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    binary = shutil.which("Orthanc") or next(
        (p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if Path(p).is_file()), None
    )
    if binary is None:
        pytest.fail(f"the Orthanc binary is not installed; {SETUP}")
    root = tmp_path_factory.mktemp("orthanc")
    port = free_port()
    config = {
        "Name": "radsynth-test",
        "HttpPort": port,
        "DicomPort": free_port(),
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [_plugin()],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (root / "orthanc.json").write_text(json.dumps(config, indent=2))
    log = open(root / "orthanc.log", "wb")  # noqa: SIM115 (open for the server's lifetime)
    process = subprocess.Popen([binary, str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, url, root / "orthanc.log")
        yield OrthancServer(url=url, dicomweb=f"{url}/dicom-web")
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_until_up(process: subprocess.Popen, url: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            pytest.fail(f"Orthanc exited with code {process.returncode} on start:\n{tail}")
        try:
            if httpx.get(f"{url}/system", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"Orthanc did not answer GET {url}/system within {timeout:.0f} s")


_GENERATED: dict[str, Path] = {}


@pytest.fixture
def synthetic_dicom(tmp_path_factory) -> list[Path]:
    """Two synthetic DICOM slices from ``radsynth generate`` (one study, marked as synthetic)."""
    if "dir" not in _GENERATED:
        from radsynth.cli import main

        out = tmp_path_factory.mktemp("synthetic")
        args = ["generate", "coronal head CT, bone window", "-n", "2", "--seed", "0", "--steps", "5"]
        assert main([*args, "--format", "dicom", "-o", str(out)]) == 0
        _GENERATED["dir"] = out
    return sorted(_GENERATED["dir"].glob("*.dcm"))


@pytest.fixture
def empty_orthanc(orthanc):
    """The session's Orthanc, emptied before the test."""
    orthanc.empty()
    return orthanc
