"""The job queue: per-token limits (429 + Retry-After), cancel, and no accepted job lost
when the server is killed mid-job and started again."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx

from radsynth.serve.settings import Limits, ServeSettings
from radsynth.serve.store import MAX_ATTEMPTS, Store

from .conftest import RADSYNTH, free_port, serve_process, start_server

CHEST = "axial chest CT, lung window, tumour in the right lung"


def test_a_token_over_its_job_limit_gets_429_with_retry_after_and_cancel_frees_a_slot(tmp_path):
    settings = ServeSettings(data_dir=tmp_path, limits=Limits(jobs_per_token=2, retry_after_s=7))
    server, stop = start_server(settings, start_workers=False)  # jobs stay queued
    try:
        with server.client() as client:
            first, second = (client.post("/api/generate", json={"prompt": CHEST, "n": 1}) for _ in range(2))
            assert first.status_code == second.status_code == 202
            refused = client.post("/api/generate", json={"prompt": CHEST, "n": 1})
            assert refused.status_code == 429 and refused.headers["Retry-After"] == "7"
            assert "2 queued or running jobs" in refused.json()["detail"]
            other = server.make_token("other", ["generate"])
            with server.client(token=other) as second_client:  # the limit is per token
                assert second_client.post("/api/generate", json={"prompt": CHEST}).status_code == 202
            cancelled = client.post(f"/api/jobs/{first.json()['id']}/cancel").json()
            assert cancelled["state"] == "cancelled"
            assert client.post("/api/generate", json={"prompt": CHEST, "n": 1}).status_code == 202
            assert client.get("/health").json()["queued"] == 3
    finally:
        stop()


def test_a_request_repeated_with_its_idempotency_key_gets_the_same_job(tmp_path):
    server, stop = start_server(ServeSettings(data_dir=tmp_path), start_workers=False)
    try:
        with server.client() as client:
            body, key = {"prompt": CHEST, "n": 1}, {"Idempotency-Key": "client-7f3a"}
            first = client.post("/api/generate", json=body, headers=key).json()
            again = client.post("/api/generate", json=body, headers=key).json()
            other = client.post("/api/generate", json=body, headers={"Idempotency-Key": "client-7f3b"}).json()
            assert first["id"] == again["id"] != other["id"]
            assert len(client.get("/api/jobs").json()["jobs"]) == 2
    finally:
        stop()


def test_recover_requeues_interrupted_jobs_and_fails_one_that_keeps_killing_the_server(tmp_path):
    store = Store(tmp_path / "radsynth.db")
    token, _ = store.create_token("t", ["generate"])
    job = store.submit(token.id, "generate", {"prompt": CHEST}, total=1, limit=10)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        claimed = store.claim()
        assert claimed.id == job.id and claimed.attempts == attempt
        requeued, failed = store.recover()  # the server died while it ran
        assert (requeued, failed) == ((1, 0) if attempt < MAX_ATTEMPTS else (0, 1))
    final = store.job(job.id)
    assert final.state == "failed" and "interrupted by server restarts 3 times" in final.error


def test_no_job_is_lost_when_the_server_is_killed_mid_job_and_restarted(tmp_path):
    made = subprocess.run(
        [*RADSYNTH, "token", "create", "--name", "lab", "--scopes", "generate", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    secret = made.stdout.strip()
    headers = {"Authorization": f"Bearer {secret}"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve_process(tmp_path, port)
    try:
        ids = [
            httpx.post(
                f"{url}/api/generate",
                json={"prompt": CHEST, "n": 8, "steps": 8, "seed": i},
                headers=headers,
                timeout=30,
            ).json()["id"]
            for i in range(3)
        ]
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/api/jobs/{ids[0]}", headers=headers).json()["state"] != "running":
            assert time.monotonic() < deadline, "the first job never started"
            time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGKILL)  # no graceful shutdown: the worst case
        server.wait()
    server = serve_process(tmp_path, port)
    try:
        deadline = time.monotonic() + 240
        while True:
            jobs = {j["id"]: j for j in httpx.get(f"{url}/api/jobs", headers=headers).json()["jobs"]}
            if all(jobs[i]["state"] not in ("queued", "running") for i in ids) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(30)
    assert sorted(jobs) == sorted(ids)
    assert [jobs[i]["state"] for i in ids] == ["done"] * 3, [jobs[i]["error"] for i in ids]
    assert jobs[ids[0]]["attempts"] == 2  # interrupted once, then resumed
    assert all(len(jobs[i]["results"]["images"]) == 8 for i in ids)
    first = tmp_path / "jobs" / ids[0] / "out" / "png"
    assert len(list(first.glob("ldm_seed*.png"))) == 8  # rewritten whole, no leftovers
