"""Synthetic datasets at scale (issue 26): ``radsynth generate --plan`` with the chest X-ray
family on this machine.

    .venv/bin/python benchmarks/plan.py            # waits for a quiet machine, then ~10 min

1. Throughput with 1 and 2 processes (``torchrun --nproc_per_node N --no-python``) on the
   same ``--throughput-images`` plan: images/s over the whole command (start-up included)
   and over the drawing alone, and the share of the ranks' busy time in the UNet (sampling
   less decoding: solver and text encoder included), the VAE decoder and writing (marking,
   watermark, PNG, audit log, parts). The decoder is timed by wrapping the LDM family's
   ``decode`` in the worker processes (this script re-run with ``--worker``).
2. ``benchmarks/plans/cxr-pneumonia-1000.yaml`` with the faster process count: killed with
   SIGKILL (torchrun and every worker: they run in sessions of their own) after
   ``--kill-after`` images are committed, then run again with the same command; its wall
   time, the final counts (missing, written twice, audit log) and a 10,000-image plan
   extrapolated: one start-up plus 10,000 times the measured busy time per image.
3. The utility benchmark's classifier (``radsynth.evaluate.utility``, as
   ``benchmarks/utility_cxr.py`` trains it: 64 px, its tuned steps and learning rate)
   trained on that manifest as written (``load_set(manifest.jsonl)``), tested on the
   Kermany test patients, beside the real-only arm.

Writes ``benchmarks/results/plan.json`` (with ``run_record``: command, commit, machine,
load) and prints the table. The GPU path (``torchrun`` over several GPUs, NCCL) is not
measured here: no GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "plan.json"
PLAN = ROOT / "benchmarks" / "plans" / "cxr-pneumonia-1000.yaml"
CORPUS = ROOT / "runs" / "cxr-128" / "manifest.jsonl"
BIN = Path(sys.executable).parent
QUIET_LOAD = 0.7
UTILITY_SIZE = 64
UTILITY_SOURCE = "cxr_kermany_pneumonia_256"


def worker(timing: Path, args: list[str]) -> int:
    """One rank: ``radsynth generate`` with the LDM's VAE decoding timed (seconds written
    to ``timing/decode-<rank>.json``)."""
    import radsynth.sampling.families.ldm as ldm
    from radsynth.cli import main

    decode, spent = ldm.decode, [0.0]

    def timed(*a, **k):
        started = time.perf_counter()
        out = decode(*a, **k)
        spent[0] += time.perf_counter() - started
        return out

    ldm.decode = timed
    code = main(args)
    timing.mkdir(parents=True, exist_ok=True)
    (timing / f"decode-{os.environ.get('RANK', '0')}.json").write_text(json.dumps({"decode_s": spent[0]}))
    return code


def wait_for_quiet(limit_s: float) -> list[float]:
    """Block until the 1-minute load average is under QUIET_LOAD (or ``limit_s`` passed)."""
    deadline = time.monotonic() + limit_s
    while os.getloadavg()[0] > QUIET_LOAD and time.monotonic() < deadline:
        print(f"load {os.getloadavg()[0]:.2f} > {QUIET_LOAD}: waiting", flush=True)
        time.sleep(30)
    return [round(v, 2) for v in os.getloadavg()]


def command(processes: int, plan: Path, out: Path, timing: Path) -> list[str]:
    return [
        str(BIN / "torchrun"), "--nproc_per_node", str(processes), "--no-python",
        sys.executable, __file__, "--worker", str(timing), "--",
        "generate", "--plan", str(plan), "-o", str(out), "--precision", "fp32",
    ]  # fmt: skip


def shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def environment(audit: Path) -> dict[str, str]:
    return {**os.environ, "RADSYNTH_AUDIT_LOG": str(audit), "HF_HUB_OFFLINE": "1"}


def parts(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((out / ".parts").glob("[0-9]*.json"))]


def committed(out: Path) -> int:
    return sum(len(p["entries"]) for p in parts(out)) if (out / ".parts").is_dir() else 0


def shares(out: Path, timing: Path, wall: float, images: int, processes: int) -> dict[str, Any]:
    """Images/s and where the ranks' busy time went."""
    done = parts(out)
    sampling = sum(p["sampling_s"] for p in done)
    writing = sum(p["writing_s"] for p in done)
    decoding = sum(json.loads(f.read_text())["decode_s"] for f in timing.glob("decode-*.json"))
    busy = sampling + writing
    per_rank = {}
    for p in done:
        per_rank[p["rank"]] = per_rank.get(p["rank"], 0.0) + p["sampling_s"] + p["writing_s"]
    return {
        "processes": processes,
        "images": images,
        "wall_s": round(wall, 1),
        "img_per_s": round(images / wall, 2),
        "img_per_s_drawing": round(images / max(per_rank.values()), 2),
        "startup_s": round(wall - max(per_rank.values()), 1),
        "busy_s_per_image": round(busy / images, 4),
        "share": {
            "unet": round((sampling - decoding) / busy, 3),
            "decoder": round(decoding / busy, 3),
            "writing": round(writing / busy, 3),
        },
    }


def plan_of(work: Path, n: int) -> Path:
    """``PLAN`` with ``n`` images (``PLAN`` itself for its own 1,000)."""
    if n == 1000:
        return PLAN
    plan = work / f"plan-{n}.yaml"
    plan.write_text(PLAN.read_text().replace("total: 1000", f"total: {n}"))
    return plan


def throughput(work: Path, n: int) -> list[dict[str, Any]]:
    """The same ``n``-image plan with 1 and 2 processes, each into a fresh folder."""
    plan = plan_of(work, n)
    warm = subprocess.run(  # fills the page cache and the traces' cache: no run pays for them
        command(1, plan_of(work, 2), work / "warm-up", work / "timing-warm-up"),
        env=environment(work / "audit.jsonl"),
        capture_output=True,
        text=True,
    )
    if warm.returncode != 0:
        raise SystemExit(warm.stderr[-3000:])
    rows = []
    for processes in (1, 2):
        out, timing = work / f"throughput-{processes}", work / f"timing-{processes}"
        started = time.perf_counter()
        done = subprocess.run(
            command(processes, plan, out, timing),
            env=environment(work / "audit.jsonl"),
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        rows.append(shares(out, timing, wall, n, processes))
        print(rows[-1], flush=True)
    return rows


def descendants(pid: int) -> list[int]:
    """``pid``'s children, their children, ...: torchrun starts each worker in a session of
    its own, so killing torchrun (or its process group) leaves the workers drawing."""
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = [int(c) for c in (task / "children").read_text().split()]
                found += children
                todo += children
    return found


def kill_and_resume(work: Path, processes: int, kill_after: int, total: int) -> dict[str, Any]:
    """The 1,000-image plan: SIGKILL the torchrun group after ``kill_after`` committed
    images, run the same command again, and check what came out."""
    from radsynth.data.manifest import load_manifest
    from radsynth.provenance.audit import check_log

    out, timing, audit = work / f"cxr-{total}", work / f"timing-{total}", work / f"audit-{total}.jsonl"
    plan = plan_of(work, total)
    argv = command(processes, plan, out, timing)
    started = time.perf_counter()
    run = subprocess.Popen(
        argv,
        env=environment(audit),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while committed(out) < kill_after:
        if run.poll() is not None:
            raise SystemExit("the run ended before it could be killed")
        time.sleep(0.05)
    for pid in [run.pid, *descendants(run.pid)]:  # collected first: none is reparented meanwhile
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    run.wait()
    first_wall = time.perf_counter() - started
    killed_at = committed(out)
    started = time.perf_counter()
    done = subprocess.run(argv, env=environment(audit), capture_output=True, text=True)
    second_wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    records = load_manifest(out / "manifest.jsonl")
    indices = [r.extra["index"] for r in records]
    files = sorted(p.name for p in (out / "images").iterdir())
    last: dict[str, dict] = {}
    for line in audit.read_text().splitlines():
        entry = json.loads(line)
        last[entry["output_id"]] = entry
    live = sorted(i for i, e in last.items() if not e.get("abandoned"))
    card = json.loads((out / "dataset.json").read_text())
    busy = shares(out, timing, first_wall + second_wall, len(records), processes)
    return {
        "plan": shown(plan),
        "processes": processes,
        "command": f"torchrun --nproc_per_node {processes} --no-python radsynth generate --plan "
        f"{shown(plan)} -o {shown(out)} --precision fp32",
        "killed_after": killed_at,
        "first_wall_s": round(first_wall, 1),
        "resume_wall_s": round(second_wall, 1),
        "wall_s": round(first_wall + second_wall, 1),
        "final_count": len(records),
        "files": len(files),
        "missing": len(set(range(total)) - set(indices)),
        "duplicates": len(indices) - len(set(indices)),
        "abandoned_in_audit_log": sum(1 for e in last.values() if e.get("abandoned")),
        "audit_log_ok": check_log(audit).ok,
        "audit_live_outputs_match_manifest": live == sorted(r.extra["output_id"] for r in records),
        "labels": card["counts"]["labels"],
        # no shares here: the killed workers' decoder timings died with them
        "busy_s_per_image": busy["busy_s_per_image"],
        "manifest": shown(out / "manifest.jsonl"),
    }


def extrapolate(startup_s: float, busy_per_image: float, processes: int, n: int = 10_000) -> float:
    """Wall seconds of an ``n``-image plan: one start-up, then the busy time shared by the ranks."""
    return round(startup_s + n * busy_per_image / processes, 0)


def utility_on(manifest: Path) -> dict[str, Any]:
    """The utility classifier trained on the plan's manifest as written, tested on the
    Kermany test patients (and the real-only and real+synthetic arms beside it)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from utility_cxr import TUNED_DEFAULT, real_set

    from radsynth.evaluate import load_set
    from radsynth.evaluate.utility import UtilitySettings, utility

    corpus = SimpleNamespace(manifest=CORPUS)
    synthetic = load_set(manifest, "synthetic plan").resized((UTILITY_SIZE, UTILITY_SIZE))
    train = real_set(corpus, "train", UTILITY_SOURCE, UTILITY_SIZE)
    test = real_set(corpus, "test", UTILITY_SOURCE, UTILITY_SIZE)
    steps, lr = TUNED_DEFAULT
    settings = UtilitySettings(
        attribute="finding", steps=steps, batch_size=32, lr=lr, seed=0, seeds=3, n_boot=200,
        augment=False, synthetic_per_real=1.0, arms=("real", "synthetic", "real+synthetic"), transfer_arms=(),
    )  # fmt: skip
    report = utility(train, synthetic, test, settings)
    arms = {
        arm: {k: report["arms"][arm][k] for k in ("auroc", "balanced_accuracy") if k in report["arms"][arm]}
        for arm in settings.arms
    }
    return {
        "code": f"utility(real_set(train), load_set({shown(manifest)!r}), real_set(test))",
        "test": f"{UTILITY_SOURCE} test split, {UTILITY_SIZE} px",
        "counts": report["counts"],
        "test_counts": report["test_counts"],
        "steps": steps,
        "lr": lr,
        "seeds": settings.seeds,
        "arms": arms,
    }


def table(d: dict[str, Any]) -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from figures import plan_table

    return plan_table(d)


def main() -> int:
    if "--worker" in sys.argv:
        at = sys.argv.index("--worker")
        return worker(Path(sys.argv[at + 1]), sys.argv[sys.argv.index("--") + 1 :])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "plan-bench")
    parser.add_argument("--throughput-images", type=int, default=64)
    parser.add_argument("--kill-after", type=int, default=300)
    parser.add_argument(
        "--total", type=int, default=1000, help="images of the killed plan (smoke runs: fewer)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results JSON")
    parser.add_argument("--wait", type=float, default=1800, help="seconds to wait for a quiet machine")
    args = parser.parse_args()
    if args.work.exists():
        raise SystemExit(f"{args.work} exists: every stage starts from empty folders; remove it first")
    args.work.mkdir(parents=True)
    from radsynth.bench.record import run_record
    from radsynth.generate import resolve_checkpoint

    load_before = wait_for_quiet(args.wait)
    rows = throughput(args.work, args.throughput_images)
    best = max(rows, key=lambda r: r["img_per_s_drawing"])
    resumed = kill_and_resume(args.work, best["processes"], args.kill_after, args.total)
    resumed["extrapolated_10000_wall_s"] = extrapolate(
        best["startup_s"], resumed["busy_s_per_image"], best["processes"]
    )
    result = {
        **run_record([resolve_checkpoint("cxr-128", "ldm")]),
        "load_before": load_before,
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "precision": "fp32",
        "gpu": "unmeasured: no GPU on this machine",
        "throughput": rows,
        "plan_1000": resumed,
        "utility": utility_on(args.work / f"cxr-{args.total}" / "manifest.jsonl"),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
