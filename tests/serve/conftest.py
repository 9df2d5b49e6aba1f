"""A real radsynth server on loopback for the service tests (uvicorn in a thread, a fresh
data folder), and a client that carries a token with every scope."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

RADSYNTH = [str(Path(sys.executable).parent / "radsynth")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    token: str
    data_dir: Path
    app: object

    def client(self, token: str | None = "default", timeout: float = 60.0) -> httpx.Client:
        secret = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def make_token(self, name: str, scopes: list[str]) -> str:
        return self.app.state.store.create_token(name, scopes)[1]

    def wait(self, job_id: str, timeout: float = 120.0) -> dict:
        """The job once it is no longer queued or running."""
        with self.client() as client:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                job = client.get(f"/api/jobs/{job_id}").json()
                if job["state"] not in ("queued", "running"):
                    return job
                time.sleep(0.2)
        raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


def start_server(settings, start_workers: bool = True):
    """(LiveServer, stop) for ``settings``: uvicorn serving ``create_app`` on a free port."""
    import uvicorn

    from radsynth.serve.app import create_app

    app = create_app(settings, start_workers=start_workers)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    _, secret = app.state.store.create_token("tests", ["generate", "verify", "admin"])

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return LiveServer(f"http://127.0.0.1:{port}", secret, settings.data_dir, app), stop


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    from radsynth.serve.settings import Limits, ServeSettings

    settings = ServeSettings(
        data_dir=tmp_path_factory.mktemp("serve-data"),
        limits=Limits(max_upload_mb=8, jobs_per_token=8, max_n=16),
    )
    server, stop = start_server(settings)
    yield server
    stop()


@pytest.fixture(scope="session")
def mr_nifti(tmp_path_factory) -> Path:
    """A real T1 MR block (Colin27, Debian mricron-data) as a small NIfTI with its affine."""
    import nibabel as nib

    from radsynth.data import sources

    path = sources.MRICRON / "ch2.nii.gz"
    assert path.exists(), "Debian mricron-data is missing: run bash scripts/setup.sh"
    volume = nib.load(path)
    mid = [s // 2 for s in volume.shape]
    block = volume.slicer[mid[0] - 40 : mid[0] + 40, mid[1] - 48 : mid[1] + 48, mid[2] - 2 : mid[2] + 2]
    out = tmp_path_factory.mktemp("mr") / "colin27-block.nii.gz"
    nib.save(nib.Nifti1Image(block.get_fdata().astype("float32"), block.affine), out)
    return out


def serve_process(data_dir: Path, port: int) -> subprocess.Popen:
    """``radsynth serve`` in its own process (to be killed with SIGKILL), once it answers
    /health. Its audit log is the data folder's (``RADSYNTH_AUDIT_LOG`` removed)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RADSYNTH_AUDIT_LOG", None)
    cmd = [*RADSYNTH, "serve", "--port", str(port), "--data-dir", str(data_dir), "--no-detector"]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
        if process.poll() is not None:
            pytest.fail(f"radsynth serve exited: {process.stderr.read().decode()[-500:]}")
    process.kill()
    pytest.fail("radsynth serve did not answer /health within 60 s")
