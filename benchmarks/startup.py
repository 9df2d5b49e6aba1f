"""Cold start of the CLI and the service (issue 25): wall time of whole processes.

Each scenario runs as a fresh process (`radsynth` of this interpreter's environment) with
``PYTHONPATH`` set to the source tree under test, so "before" (another checkout's ``src``,
e.g. main's, with ``--before /work/main/src``) and "after" (this tree) run the same way, the
two alternating run by run so both see the same machine load. Reported: the median of
``--runs`` runs after one warm-up (the page cache), the 1-minute load average around them,
and the CPU; written to ``benchmarks/results/startup.json``.

Scenarios: ``radsynth --help``; ``radsynth generate -n 1`` with each shipped generator
(ldm, gan, vae); ``radsynth verify`` of one synthetic DICOM (detector on); ``radsynth
translate --task denoise`` of a 6 x 96 x 80 block of the Colin27 T1 (Debian mricron-data);
``radsynth serve``: time to the first ``/health`` 200, to the first ``POST /api/generate``
202, and to that job done (n=1).

The inference traces are not in the tree: each tree's are built into the user's cache,
keyed by its weights folder (``radsynth.models.export``). Build them for every tree under
test first (``PYTHONPATH=<src> python scripts/export_models.py``), else that tree is
measured with the eager networks.

    PYTHONPATH=src python benchmarks/startup.py --before /work/main/src --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "startup.json"
RADSYNTH = str(Path(sys.executable).parent / "radsynth")
HERE = Path(__file__).resolve().parent.parent
PROMPT = "axial chest CT, lung window"


def run_cli(src: Path, args: list[str], ok: tuple[int, ...] = (0,)) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run([RADSYNTH, *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"radsynth {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_times(src: Path, work: Path) -> dict[str, float]:
    """Seconds from ``radsynth serve`` to the first /health 200, generate 202 and job done."""
    import httpx

    data, port = Path(tempfile.mkdtemp(dir=work)), free_port()
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    made = [RADSYNTH, "token", "create", "--name", "b", "--scopes", "generate", "--data-dir", str(data)]
    secret = subprocess.run(made, env=env, capture_output=True, text=True, check=True).stdout.strip()
    url, times = f"http://127.0.0.1:{port}", {}
    started = time.perf_counter()
    cmd = [RADSYNTH, "serve", "--port", str(port), "--data-dir", str(data)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while "health_200" not in times:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    times["health_200"] = time.perf_counter() - started
            except httpx.TransportError:
                time.sleep(0.05)
            if server.poll() is not None or time.perf_counter() - started > 120:
                raise SystemExit("radsynth serve did not start")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=60) as client:
            answer = client.post("/api/generate", json={"prompt": PROMPT, "n": 1})
            if answer.status_code != 202:
                raise SystemExit(f"generate answered {answer.status_code}: {answer.text[:300]}")
            times["generate_202"] = time.perf_counter() - started
            job = answer.json()["id"]
            while client.get(f"/api/jobs/{job}").json()["state"] in ("queued", "running"):
                time.sleep(0.05)
            times["job_done"] = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(30)
    return times


def fixtures(src: Path, work: Path) -> tuple[Path, Path]:
    """One synthetic DICOM (to verify) and a small real MR volume (to translate)."""
    import numpy as np

    from radsynth.data import sources
    from radsynth.io import Image, read_image, write_nifti

    run_cli(
        src, ["generate", PROMPT, "-n", "1", "--model", "gan", "--format", "dicom", "-o", str(work / "dcm")]
    )
    dicom = next((work / "dcm").rglob("*.dcm"))
    volume = read_image(sources.MRICRON / "ch2.nii.gz").array
    mid = np.array(volume.shape) // 2
    block = volume[mid[0] - 3 : mid[0] + 3, mid[1] - 48 : mid[1] + 48, mid[2] - 40 : mid[2] + 40]
    nifti = write_nifti(Image(block.astype(np.float32), modality="MR"), work / "mr.nii.gz")
    return dicom, Path(nifti)


def scenarios(dicom: Path, nifti: Path, work: Path) -> dict[str, callable]:
    count = iter(range(10**6))

    def out() -> str:
        return str(work / f"o{next(count)}")

    cli = {
        "radsynth --help": lambda: ["--help"],
        **{
            f"generate -n 1 --model {kind}": (
                lambda kind=kind: ["generate", PROMPT, "-n", "1", "--model", kind, "-o", out()]
            )
            for kind in ("ldm", "gan", "vae")
        },
        "verify one.dcm": lambda: ["verify", str(dicom)],
        "translate denoise (6x96x80)": lambda: [
            "translate",
            str(nifti),
            "--task",
            "denoise",
            "-o",
            out() + ".nii.gz",
        ],
    }
    ok = {"verify one.dcm": (0, 1)}  # verify exits 1 when a file is synthetic, as this one is
    return {
        name: (lambda src, a=args, n=name: run_cli(src, a(), ok.get(n, (0,)))) for name, args in cli.items()
    }


def cpu_kind() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def git_commit(folder: Path) -> str:
    done = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--before", type=Path, help="the src folder of the code to compare with (e.g. main's)"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    args = parser.parse_args()
    trees = {"after": HERE / "src", **({"before": args.before.resolve()} if args.before else {})}
    work = Path(tempfile.mkdtemp(prefix="startup-"))
    dicom, nifti = fixtures(trees["after"], work)
    runs = scenarios(dicom, nifti, work)
    serve_keys = ("health_200", "generate_202", "job_done")
    figures: dict[str, dict] = {}
    for name, run in [*runs.items(), ("serve", None)]:
        if args.only and args.only not in name:
            continue
        samples: dict[str, dict[str, list[float]]] = {tree: {} for tree in trees}
        loads = []
        for i in range(args.runs + 1):  # the first round warms the page cache and is dropped
            for tree, src in trees.items():
                loads.append(os.getloadavg()[0])
                got = serve_times(src, work) if run is None else {"wall": run(src)}
                for key, seconds in got.items():
                    if i:
                        samples[tree].setdefault(key, []).append(seconds)
        for key in serve_keys if run is None else ("wall",):
            label = f"serve: {key}" if run is None else name
            figures[label] = {
                **{f"{tree}_s": round(statistics.median(samples[tree][key]), 3) for tree in trees},
                **{f"{tree}_runs_s": [round(s, 3) for s in samples[tree][key]] for tree in trees},
                "load_1min_median": round(statistics.median(loads), 2),
            }
            print(
                name,
                key,
                {t: figures[label][f"{t}_s"] for t in trees},
                "load",
                figures[label]["load_1min_median"],
            )
        write(args, trees, figures)  # after each scenario, so a failure keeps what was measured
    table(figures, list(trees))
    print(f"wrote {RESULTS}")


def write(args: argparse.Namespace, trees: dict[str, Path], figures: dict[str, dict]) -> None:
    result = {
        "settings": {"runs": args.runs, "warm_up_runs": 1, "trees": {t: str(p) for t, p in trees.items()}},
        "machine": {"cpu": cpu_kind(), "cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "git_commit": {t: git_commit(p) for t, p in trees.items()},
        "figures": figures,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


def table(figures: dict[str, dict], trees: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Table(title="Cold start, whole process, median wall seconds")
    out.add_column("scenario")
    for tree in trees:
        out.add_column(tree, justify="right")
    out.add_column("load (1 min)", justify="right")
    for name, row in figures.items():
        out.add_row(name, *(f"{row[f'{t}_s']:.2f}" for t in trees), f"{row['load_1min_median']:.1f}")
    Console().print(out)


if __name__ == "__main__":
    main()
