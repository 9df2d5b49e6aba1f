"""Load test of `radsynth serve` on loopback: verify and queued generate at 1, 8 and 32 clients.

A real server (`radsynth serve`, its own process, a fresh data folder) is loaded by client
threads over HTTP. For each level: requests/s and p50/p95 latency of `POST /api/verify` (one
synthetic PNG per request, shipped detector on) and of `POST /api/generate` (n=1, 5 steps:
the time to a 202, i.e. queueing), then the time until every queued job is done.

At the 32-client generate level the server is killed (SIGKILL) half-way through the
submissions and started again on the same data folder. Clients retry a request whose answer
never came with the same Idempotency-Key, so the figures also say whether any request or
job was lost or doubled across the restart. Bounded in count (--requests per client) and time.

    .venv/bin/python benchmarks/service_load.py [--levels 1,8,32] [--requests 6]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from radsynth.bench.record import run_record

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "service_load.json"
RADSYNTH = str(Path(sys.executable).parent / "radsynth")
PROMPT = "axial chest CT, lung window, tumour in the right lung"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`radsynth serve` as a child process that can be killed and started again."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        started = time.perf_counter()
        cmd = [RADSYNTH, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        cmd += ["--jobs-per-token", "10000"]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                time.sleep(0.1)
            if self.process.poll() is not None or time.perf_counter() - started > 120:
                raise SystemExit("radsynth serve did not start")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def token(data_dir: Path) -> str:
    made = subprocess.run(
        [
            RADSYNTH,
            "token",
            "create",
            "--name",
            "load",
            "--scopes",
            "generate,verify",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip()


def post_until_answered(
    client: httpx.Client, path: str, stats: dict, **kwargs
) -> tuple[httpx.Response, float]:
    """POST, retrying while the server is down (same Idempotency-Key); (answer, seconds of
    the attempt that was answered)."""
    while True:
        started = time.perf_counter()
        try:
            answer = client.post(path, **kwargs)
        except httpx.TransportError:
            stats["retries"] += 1
            time.sleep(0.2)
            continue
        return answer, time.perf_counter() - started


def run_level(
    server: Server, secret: str, kind: str, clients: int, per_client: int, png: bytes, kill_at=None
):
    headers = {"Authorization": f"Bearer {secret}"}
    latencies: list[float] = []
    job_ids: list[str] = []
    stats = {"retries": 0, "errors": 0, "sent": 0}
    lock = threading.Lock()
    sent = threading.Semaphore(0)

    def client_loop() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
            for _ in range(per_client):
                if kind == "verify":
                    files = {"files": ("synthetic.png", png, "image/png")}
                    answer, seconds = post_until_answered(client, "/api/verify", stats, files=files)
                    ok = answer.status_code == 200 and answer.json()["verdicts"][0]["synthetic"]
                else:
                    body = {"prompt": PROMPT, "n": 1, "steps": 5, "seed": len(job_ids)}
                    key = {"Idempotency-Key": uuid.uuid4().hex}
                    answer, seconds = post_until_answered(
                        client, "/api/generate", stats, json=body, headers=key
                    )
                    ok = answer.status_code == 202
                with lock:
                    stats["sent"] += 1
                    latencies.append(seconds)
                    if not ok:
                        stats["errors"] += 1
                    elif kind == "generate":
                        job_ids.append(answer.json()["id"])
                sent.release()

    before = _server_jobs(server, headers) if kind == "generate" else {}
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    restart_s = None
    if kill_at is not None:
        for _ in range(kill_at):
            sent.acquire()
        server.kill()
        restart_s = server.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    row = {
        "clients": clients,
        "requests": len(latencies),
        "requests_per_s": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * statistics.quantiles(latencies, n=20)[-1]
        if len(latencies) > 1
        else 1000 * latencies[0],
        "errors": stats["errors"],
        "retries_while_down": stats["retries"],
    }
    if kind == "generate":
        row.update(_drain(server, headers, job_ids, started, before))
    if restart_s is not None:
        row["restart_s"] = restart_s
    return row


def _server_jobs(server: Server, headers: dict) -> dict[str, dict]:
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        return {j["id"]: j for j in client.get("/api/jobs", params={"limit": 1000}).json()["jobs"]}


def _drain(server: Server, headers: dict, job_ids: list[str], started: float, before: dict) -> dict:
    """Wait for every accepted job; count them from the server's side too.

    ``lost``: answered with an id the server no longer knows. ``doubled``: jobs the server
    made in this level beyond the distinct ids the clients were answered with (a retry whose
    Idempotency-Key failed to find its first job shows here, though its answer looks fine),
    plus ids answered twice. ``rerun``: jobs the worker started more than once (``attempts``;
    only a job interrupted by the kill should be)."""
    while True:
        jobs = _server_jobs(server, headers)
        pending = [j for j in jobs.values() if j["state"] in ("queued", "running")]
        if not pending:
            break
        time.sleep(0.25)
    made = {i: j for i, j in jobs.items() if i not in before}
    answered = set(job_ids)
    done = sum(j["state"] == "done" for i, j in made.items() if i in answered)
    return {
        "jobs_accepted": len(answered),
        "jobs_done": done,
        "jobs_lost": sum(i not in jobs for i in answered),
        "jobs_failed": sum(j["state"] == "failed" for j in made.values()),
        "jobs_doubled": len(set(made) - answered) + len(job_ids) - len(answered),
        "jobs_rerun": sum(j["attempts"] > 1 for j in made.values()),
        "jobs_run_once": sum(j["attempts"] == 1 for j in made.values()),
        "jobs_per_s_to_done": done / (time.perf_counter() - started),
    }


def synthetic_png(folder: Path) -> bytes:
    out = folder / "png"
    subprocess.run(
        [RADSYNTH, "generate", PROMPT, "-n", "1", "--steps", "5", "-o", str(out)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("ldm_seed*.png")).read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,32", help="concurrent clients per level")
    parser.add_argument("--requests", type=int, default=6, help="requests per client per level")
    args = parser.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    record = run_record()  # before the load: its load average is the machine's, not the test's
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        os.environ["RADSYNTH_AUDIT_LOG"] = str(Path(tmp) / "audit.jsonl")
        png = synthetic_png(Path(tmp))
        secret = token(data)
        server = Server(data, free_port())
        server.start()
        figures = {"verify": [], "generate": []}
        try:
            for clients in levels:
                figures["verify"].append(run_level(server, secret, "verify", clients, args.requests, png))
            for clients in levels:
                kill = clients * args.requests // 2 if clients == max(levels) else None
                row = run_level(server, secret, "generate", clients, args.requests, png, kill_at=kill)
                row["killed_mid_load"] = kill is not None
                figures["generate"].append(row)
        finally:
            server.stop()
    figures["settings"] = {
        **record,
        "levels": levels,
        "requests_per_client": args.requests,
        "generate_body": {"prompt": PROMPT, "n": 1, "steps": 5},
        "killed_at": "half of the largest level's generate requests",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    table = Table(title=f"radsynth serve on loopback (requests per client: {args.requests})")
    for column in [
        "endpoint",
        "clients",
        "req/s",
        "p50 ms",
        "p95 ms",
        "errors",
        "jobs done/accepted",
        "lost",
        "doubled",
        "rerun",
    ]:
        table.add_column(column)
    for kind in ("verify", "generate"):
        for r in figures[kind]:
            jobs = f"{r['jobs_done']}/{r['jobs_accepted']}" if kind == "generate" else "-"
            killed = " (server killed + restarted)" if r.get("killed_mid_load") else ""
            table.add_row(
                kind + killed,
                str(r["clients"]),
                f"{r['requests_per_s']:.1f}",
                f"{r['p50_ms']:.0f}",
                f"{r['p95_ms']:.0f}",
                str(r["errors"]),
                jobs,
                str(r.get("jobs_lost", "-")),
                str(r.get("jobs_doubled", "-")),
                str(r.get("jobs_rerun", "-")),
            )
    Console(width=150).print(table)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
