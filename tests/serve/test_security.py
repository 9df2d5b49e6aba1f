"""The attacks of issue 16, each over HTTP against a real server: what a request can reach
on disk, hostile sizes and names, idempotency, the audit log after a crash, revocation,
the page's headers, what error bodies show, and strict request types.

The data root of the module's server holds the service's own data folder, the worst case
an administrator can configure: the service state must stay unreachable even there.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from radsynth.serve.settings import Limits, ServeSettings

from .conftest import RADSYNTH, free_port, serve_process, start_server

CHEST = "axial chest CT, lung window, tumour in the right lung"
QUICK = {"prompt": CHEST, "n": 1, "steps": 2}


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """(server, data root): the service's data folder lies inside its own data root."""
    root = tmp_path_factory.mktemp("data-root")
    settings = ServeSettings(
        data_dir=root / "service",
        data_roots=(root,),
        limits=Limits(max_upload_mb=8, jobs_per_token=8, max_n=16),
    )
    server, stop = start_server(settings)
    yield server, root
    stop()


@pytest.fixture(scope="module")
def victim_job(secured):
    """A finished generate job of another token, and that token's secret."""
    server, _ = secured
    victim = server.make_token("victim", ["generate"])
    with server.client(token=victim) as client:
        made = client.post("/api/generate", json=QUICK)
    assert made.status_code == 202, made.text
    done = server.wait(made.json()["id"])
    assert done["state"] == "done", done["error"]
    return done


def _one_line_4xx(answer: httpx.Response, status: tuple[int, ...] = (422,)) -> str:
    assert answer.status_code in status, (answer.status_code, answer.text[:300])
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    return detail


def _evaluate(client: httpx.Client, path: str, **extra) -> httpx.Response:
    body = {"real": path, "synthetic": path, "train": path, "bootstrap": 1, "utility_steps": 1}
    return client.post("/api/evaluate", json={**body, "radiomics": False, **extra})


# 1. evaluate cannot open the service's own state ------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "radsynth.db",
        "service/radsynth.db",
        "{data}/radsynth.db",
        "{data}/radsynth.db-wal",
        "{data}/audit.jsonl",
        "service/audit.jsonl",
        "{data}",
        "service/jobs",
        "{data}/jobs",
        "jobs",
        "../../../etc",
        "/etc/passwd",
    ],
)
def test_evaluate_cannot_name_the_service_database_audit_log_or_jobs(secured, victim_job, path):
    server, _ = secured
    attacker = server.make_token("attacker", ["generate"])
    locks_before = _locks_on(server.data_dir / "radsynth.db")
    with server.client(token=attacker) as client:
        detail = _one_line_4xx(_evaluate(client, path.format(data=server.data_dir)))
    assert "data folders" in detail
    assert _locks_on(server.data_dir / "radsynth.db") == locks_before


def _locks_on(path: Path) -> int:
    """POSIX locks held on ``path`` (closing any descriptor of the file drops them)."""
    inode = str(path.stat().st_ino)
    return sum(line.split()[5].endswith(f":{inode}") for line in Path("/proc/locks").read_text().splitlines())


# 2. evaluate reads only what the caller owns ----------------------------------------------


def test_evaluate_cannot_read_another_tokens_job(secured, victim_job):
    server, _ = secured
    attacker = server.make_token("attacker", ["generate"])
    job = victim_job["id"]
    with server.client(token=attacker) as client:
        for path in [f"service/jobs/{job}/out/png", f"{server.data_dir}/jobs/{job}/out/png"]:
            _one_line_4xx(_evaluate(client, path))
        assert "no job" in _one_line_4xx(_evaluate(client, f"job:{job}"), (404, 422))


def _record(path: str) -> dict:
    return {
        "path": path,
        "text": "axial chest CT",
        "modality": "CT",
        "subject": "s1",
        "split": "test",
        "source": "tests",
        "licence": "CC0",
    }


@pytest.mark.parametrize(
    ("record_path", "problem"),
    [
        ("/etc/hostname", "is absolute"),
        ("../outside.png", "climbs out with '..'"),
        ("link.png", "leads outside"),
        ("service/radsynth.db", "leads outside"),
        ("missing/nowhere.png", "nowhere.png"),
    ],
)
def test_manifest_records_resolve_inside_their_root_only(secured, record_path, problem):
    server, root = secured
    corpus = root / "corpus"
    corpus.mkdir(exist_ok=True)
    (root.parent / "outside.png").write_bytes(b"not for you")
    if not (corpus / "link.png").is_symlink():
        (corpus / "link.png").symlink_to(server.data_dir / "radsynth.db")
    if record_path.startswith("service/"):
        record_path = os.path.relpath(root / record_path, corpus)  # "../service/...", refused as '..'
        problem = "climbs out"
    name = f"m-{abs(hash(record_path))}.jsonl"
    (corpus / name).write_text(json.dumps(_record(record_path)) + "\n")
    with server.client() as client:
        made = _evaluate(client, f"corpus/{name}")
        assert made.status_code == 202, made.text
        assert made.json()["params"]["real"] == f"corpus/{name}"  # as sent, no server path
    failed = server.wait(made.json()["id"])
    assert failed["state"] == "failed" and problem in failed["error"], failed["error"]
    assert str(root) not in failed["error"] and "\n" not in failed["error"]


def test_a_failed_translate_upload_is_removed(secured):
    server, _ = secured
    planted = _zip({"a.dcm": b"not dicom", "m.jsonl": json.dumps(_record("/etc/hostname")).encode()})
    with server.client() as client:
        made = client.post("/api/translate", files={"file": ("s.zip", planted)}, data={"task": "denoise"})
        assert made.status_code == 202, made.text
        failed = server.wait(made.json()["id"])
    assert failed["state"] == "failed"
    folder = server.data_dir / "jobs" / failed["id"]
    assert not (folder / "input-series").exists() and not (folder / "input").exists()
    assert str(server.data_dir) not in failed["error"]


# 3. a few bytes claiming gigapixels ----------------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's peak resident memory (the server runs in a thread of it)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def _claiming_nifti(shape: tuple[int, int, int]) -> bytes:
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.int16)
    return gzip.compress(header.binaryblock + bytes(4))


def test_a_tiny_file_claiming_gigapixels_is_refused_fast_without_the_memory(secured):
    server, _ = secured
    bomb = _claiming_nifti((32767, 32767, 2))
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.Rows = ds.Columns = 32767
    dicom = io.BytesIO()
    ds.save_as(dicom)
    before = _peak_rss_mb()
    with server.client() as client:
        start = time.monotonic()
        files = [("files", ("bomb.nii.gz", bomb)), ("files", ("bomb.dcm", dicom.getvalue()))]
        answer = client.post("/api/verify", files=files, data={"detector": "false"})
        assert time.monotonic() - start < 5
        assert answer.status_code == 200, answer.text
        for verdict in answer.json()["verdicts"]:
            assert verdict["verdict"] == "unreadable"
            assert "the limit is" in verdict["evidence"]["problem"], verdict
        made = client.post("/api/translate", files={"file": ("bomb.nii.gz", bomb)}, data={"task": "denoise"})
        failed = server.wait(made.json()["id"])
    assert len(bomb) < 100
    assert failed["state"] == "failed" and "the limit is" in failed["error"]
    assert _peak_rss_mb() - before < 300, "the server allocated what the header claimed"


# 4. hostile names: one line, and the connection lives on -------------------------------------


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_hostile_names_get_one_line_4xx_and_the_connection_survives(secured, victim_job):
    server, _ = secured
    with server.client() as client:
        job = client.post("/api/generate", json=QUICK).json()["id"]
        attempts = [
            lambda: client.get(f"/api/jobs/{job}/files/png%00.png"),
            lambda: client.get(f"/api/jobs/{job}/files/{'x' * 300}"),
            lambda: client.post(
                "/api/verify", files={"files": ("deep.zip", _zip({"a/" * 2100 + "f": b"x"}))}
            ),
            lambda: _evaluate(client, "corpus/a\x00b.jsonl"),
            lambda: _evaluate(client, "/".join(["a"] * 3000)),
        ]
        for attempt in attempts:
            _one_line_4xx(attempt(), (400, 404, 413, 422))
            assert client.get("/api/me").status_code == 200  # same keep-alive connection


# 5. lower: idempotency, audit log, prompts, revocation, headers, paths, types ----------------


def test_an_idempotency_key_reused_with_another_body_is_refused(secured):
    server, _ = secured
    key = {"Idempotency-Key": "sec-reuse-1"}
    with server.client() as client:
        first = client.post("/api/generate", json=QUICK, headers=key)
        again = client.post("/api/generate", json=QUICK, headers=key)
        assert first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
        other = client.post("/api/generate", json={**QUICK, "prompt": "coronal head CT"}, headers=key)
        detail = _one_line_4xx(other, (409, 422))
    assert "used for another request" in detail


@pytest.mark.slow  # starts radsynth serve in its own process
def test_serve_writes_the_audit_log_that_radsynth_audit_check_reads(tmp_path, monkeypatch):
    log = tmp_path / "elsewhere" / "audit.jsonl"
    monkeypatch.setenv("RADSYNTH_AUDIT_LOG", str(log))
    server, stop = start_server(ServeSettings(data_dir=tmp_path / "data"))
    try:
        with server.client() as client:
            done = server.wait(client.post("/api/generate", json=QUICK).json()["id"])
            png = client.get(done["results"]["images"][0]["png"]).content
            verdict = client.post("/api/verify", files={"files": ("a.png", png)}).json()["verdicts"][0]
    finally:
        stop()
    assert done["state"] == "done" and log.is_file()
    assert not (tmp_path / "data" / "audit.jsonl").exists()
    assert verdict["evidence"]["audit"]["file_unchanged"]
    check = subprocess.run([*RADSYNTH, "audit", "check"], capture_output=True, text=True, env=os.environ)
    assert check.returncode == 0, check.stdout + check.stderr


def test_handout_pictures_are_logged_where_the_service_logs(tmp_path, monkeypatch):
    """Without ``RADSYNTH_AUDIT_LOG`` the service logs to its data folder: its handout
    pictures too, not the user's ``~/.local/share`` log."""
    monkeypatch.delenv("RADSYNTH_AUDIT_LOG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    server, stop = start_server(ServeSettings(data_dir=tmp_path / "data"))
    report = "FINDINGS: There is a 2.3 cm spiculated mass in the right upper lobe."
    try:
        with server.client() as client:
            made = client.post("/api/handout", json={"report": report, "n": 1, "steps": 2})
            done = server.wait(made.json()["id"])
    finally:
        stop()
    assert done["state"] == "done", done["error"]
    assert (tmp_path / "data" / "audit.jsonl").is_file() and not (tmp_path / "xdg").exists()


def test_control_characters_in_a_prompt_never_reach_the_files(secured):
    server, _ = secured
    prompt = "axial chest CT\x00\x07\x1b[2J, lung window"
    with server.client() as client:
        done = server.wait(client.post("/api/generate", json={**QUICK, "prompt": prompt}).json()["id"])
        image = done["results"]["images"][0]
        ds = pydicom.dcmread(io.BytesIO(client.get(image["dicom"]).content))
        png = client.get(image["png"]).content
    from PIL import Image as PILImage

    texts = [
        str(ds.ImageComments),
        str(ds.DerivationDescription),
        PILImage.open(io.BytesIO(png)).text["Description"],
    ]
    for text in texts:
        assert "axial chest CT" in text
        assert not any(ord(c) < 32 or ord(c) == 127 for c in text), repr(text)


@pytest.mark.slow  # runs the radsynth CLI in a subprocess
def test_revoking_a_token_cancels_its_queued_jobs_over_the_api_and_the_cli(tmp_path):
    server, stop = start_server(ServeSettings(data_dir=tmp_path), start_workers=False)
    try:
        ids = {}
        with server.client() as admin:
            for who in ("api", "cli"):
                made = admin.post("/api/tokens", json={"name": who, "scopes": ["generate"]}).json()
                with server.client(token=made["token"]) as client:
                    ids[who] = (
                        made["id"],
                        [client.post("/api/generate", json=QUICK).json()["id"] for _ in range(2)],
                    )
            revoked = admin.delete(f"/api/tokens/{ids['api'][0]}")
            assert revoked.status_code == 200 and sorted(revoked.json()["cancelled_jobs"]) == sorted(
                ids["api"][1]
            )
            cli = subprocess.run(
                [*RADSYNTH, "token", "revoke", ids["cli"][0], "--data-dir", str(tmp_path)],
                capture_output=True,
                text=True,
            )
            assert cli.returncode == 0, cli.stderr
            states = [admin.get(f"/api/jobs/{j}").json()["state"] for _, jobs in ids.values() for j in jobs]
    finally:
        stop()
    assert states == ["cancelled"] * 4


def test_the_page_and_the_api_carry_a_strict_content_security_policy(secured):
    server, _ = secured
    with server.client() as client:
        for answer in (client.get("/"), client.get("/static/app.js"), client.get("/api/me")):
            policy = answer.headers["content-security-policy"]
            assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
            assert (
                "script-src 'self';" in policy and "unsafe" not in policy.split("script-src")[1].split(";")[0]
            )
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"


def test_error_bodies_name_files_as_sent_never_by_server_paths(secured):
    server, root = secured
    with server.client() as client:
        files = [
            ("files", ("junk.nii.gz", b"\x1f\x8b junk")),
            ("files", ("junk.png", b"\x89PNG\r\n\x1a\n junk")),
        ]
        verdicts = client.post("/api/verify", files=files, data={"detector": "false"}).json()["verdicts"]
        made = client.post(
            "/api/translate", files={"file": ("bad.nii.gz", b"\x1f\x8b junk")}, data={"task": "denoise"}
        )
        failed = server.wait(made.json()["id"])
    for verdict in verdicts:
        assert verdict["verdict"] == "unreadable" and verdict["file"] in verdict["evidence"]["problem"]
    shown = json.dumps(verdicts) + failed["error"]
    assert str(root) not in shown and "/.verify-" not in shown and "/tmp" not in shown
    assert "bad.nii.gz" in failed["error"]


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("/api/generate", {**QUICK, "n": True}),
        ("/api/generate", {**QUICK, "seed": "5"}),
        ("/api/generate", {**QUICK, "pacs": 0}),
        ("/api/handout", {"report": "FINDINGS: tumour in the right lung.", "n": True}),
        ("/api/evaluate", {"real": "x", "synthetic": "x", "train": "x", "bootstrap": True}),
        ("/api/tokens", {"name": 5, "scopes": ["generate"]}),
    ],
)
def test_request_bodies_take_json_types_strictly(secured, endpoint, body):
    server, _ = secured
    with server.client() as client:
        detail = _one_line_4xx(client.post(endpoint, json=body))
    assert "valid" in detail


@pytest.mark.slow  # runs the radsynth CLI in a subprocess
def test_the_cli_and_the_api_share_one_guidance_bound(secured, tmp_path):
    """Issue 17: the CLI took guidance 40 where the API stopped at 30; one definition now."""
    server, _ = secured
    with server.client() as client:
        api = _one_line_4xx(client.post("/api/generate", json={**QUICK, "guidance": 40}))
    cli = subprocess.run(
        [*RADSYNTH, "generate", CHEST, "--guidance", "40", "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert cli.returncode != 0 and not (tmp_path / "out").exists()
    assert "guidance must be in 0..30, got 40" in api and "guidance must be in 0..30, got 40" in cli.stderr


# the audit log after kill -9 -------------------------------------------------------------------


@pytest.mark.slow  # kills and restarts a server mid-job
def test_after_kill_9_the_audit_log_matches_the_files(tmp_path):
    """Killed after the first batch of a job reached the log, the rerun remakes it under new
    output ids: the log records the first attempt's outputs as abandoned, and every output
    it still vouches for is a file on disk, byte for byte."""
    made = subprocess.run(
        [*RADSYNTH, "token", "create", "--name", "lab", "--scopes", "generate", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    headers = {"Authorization": f"Bearer {made.stdout.strip()}"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "audit.jsonl"
    server = serve_process(tmp_path, port)
    try:
        body = {"prompt": CHEST, "n": 16, "steps": 2, "seed": 3}
        job = httpx.post(f"{url}/api/generate", json=body, headers=headers, timeout=30).json()["id"]
        deadline = time.monotonic() + 120
        while not (log.is_file() and log.read_text()):
            assert time.monotonic() < deadline, "the job never wrote its first batch"
            time.sleep(0.01)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    server = serve_process(tmp_path, port)
    try:
        deadline = time.monotonic() + 240
        while httpx.get(f"{url}/api/jobs/{job}", headers=headers).json()["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, "the resumed job did not finish"
            time.sleep(0.5)
        final = httpx.get(f"{url}/api/jobs/{job}", headers=headers).json()
    finally:
        server.terminate()
        server.wait(30)
    assert final["state"] == "done" and final["attempts"] == 2, final["error"]
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    abandoned = {x["output_id"] for x in lines if x.get("abandoned")}
    vouched = [x for x in lines if not x.get("abandoned") and x["output_id"] not in abandoned]
    on_disk = {
        (p.name, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in (tmp_path / "jobs" / job / "out").rglob("*")
        if p.is_file()
    }
    for entry in vouched:
        for name, sha in entry["files"].items():
            assert (name, sha) in on_disk, f"the log vouches for {name}, which is not on disk as logged"
    assert abandoned, "the kill came too late: the first attempt had finished"
    check = subprocess.run([*RADSYNTH, "audit", "check", "--log", str(log)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
