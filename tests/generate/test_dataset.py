"""``radsynth generate --plan`` run for real with the shipped demo model (64 px, 4 steps):
one process and ``torchrun --nproc_per_node 2`` (gloo) give the same files, a run killed
with SIGKILL and started again finishes with no image missing or written twice, a full
disk (a small tmpfs) and a different plan are one line, and the manifest is read by the
evaluation's loader as it is."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from radsynth.cli import main
from radsynth.data.manifest import load_manifest, read_unit_image
from radsynth.errors import InvalidInput
from radsynth.evaluate import load_set
from radsynth.generate.dataset import RunOptions, run_plan
from radsynth.generate.plan import Settings, read_plan
from radsynth.provenance.audit import check_log

BIN = Path(sys.executable).parent
WEIGHTS = "demo-ct-mr-64"
PROMPTS = ("axial brain MR, T1", "axial chest CT, lung window, tumour in the right lung")
# fp32 in other batches: the same pixels to float rounding, one 16-bit PNG level at most
PIXEL_TOLERANCE = 2 / 65535
OPTIONS = RunOptions(precision="fp32", batch_size=2)


def _plan_file(folder: Path, n: int) -> Path:
    path = folder / "plan.jsonl"
    items = [
        {"prompt": PROMPTS[0], "n": n // 2, "labels": {"finding": "none"}},
        {"prompt": PROMPTS[1], "n": n - n // 2, "labels": {"finding": "tumour"}},
    ]
    path.write_text("".join(json.dumps({**i, "steps": 4}) + "\n" for i in items))
    return path


def _cli(*args: str) -> list[str]:
    return [str(BIN / "radsynth"), "generate", "--plan", *args, "--weights", WEIGHTS, "--precision", "fp32"]


def _env(audit: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RADSYNTH_AUDIT_LOG": str(audit),
        "OMP_NUM_THREADS": "1",
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One process, in-process through the library: 6 images (3 + 3), batches of 2."""
    root = tmp_path_factory.mktemp("plan-reference")
    plan = read_plan(_plan_file(root, 6), Settings(WEIGHTS))
    audit = root / "audit.jsonl"
    result = run_plan(plan, root / "out", RunOptions(precision="fp32", batch_size=2, audit_log=audit))
    return plan, result, audit


def _pixels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: read_unit_image(p) for p in sorted((folder / "images").iterdir())}


def _same_dataset(folder: Path, reference: Path) -> None:
    """Same file names, pixels within PIXEL_TOLERANCE, and the same manifest text (output
    ids are fixed by the plan)."""
    mine, theirs = _pixels(folder), _pixels(reference)
    assert sorted(mine) == sorted(theirs)
    for name, pixels in mine.items():
        assert np.abs(pixels - theirs[name]).max() <= PIXEL_TOLERANCE, name
    assert (folder / "manifest.jsonl").read_text() == (reference / "manifest.jsonl").read_text()


def _live_outputs(audit: Path) -> list[str]:
    """Output ids of the log whose last line is not an abandonment."""
    last = {}
    for line in audit.read_text().splitlines():
        entry = json.loads(line)
        last[entry["output_id"]] = entry
    return sorted(i for i, e in last.items() if not e.get("abandoned"))


@pytest.mark.slow  # the reference run: loads the model and draws 6 images (~10 s on 2 cores)
def test_one_process_writes_images_manifest_card_and_audit_lines(reference):
    plan, result, audit = reference
    assert (result.written, result.total, result.dropped) == (6, 6, 0)
    records = load_manifest(result.manifest)
    assert [r.path for r in records] == [f"images/{i:06d}.png" for i in range(6)]
    assert {r.split for r in records} == {"synthetic"}
    assert [r.extra["seed"] for r in records] == [0, 1, 2, 3, 4, 5]
    assert [r.labels["finding"] for r in records] == ["none"] * 3 + ["tumour"] * 3
    assert records[0].modality == "MR" and records[3].modality == "CT"
    card = json.loads(result.card.read_text())
    assert card["counts"]["labels"]["finding"] == {"none": 3, "tumour": 3}
    assert card["plan"]["sha256"] == plan.sha256 and card["models"][WEIGHTS]["model_id"]
    assert check_log(audit).ok and _live_outputs(audit) == sorted(r.extra["output_id"] for r in records)
    # the evaluation's loader reads the manifest as it is, labels included (a demo finding
    # reads absent / present there)
    images = load_set(result.manifest, "synthetic")
    assert images.images.shape == (6, 64, 64)
    assert images.attributes["finding"] == ("absent",) * 3 + ("present",) * 3


@pytest.mark.slow  # two processes load the model and meet over gloo (~20 s on 2 cores)
def test_torchrun_two_processes_give_the_same_files_one_manifest_one_audit_log(reference, tmp_path):
    plan, result, _ = reference
    audit = tmp_path / "audit.jsonl"
    command = [
        str(BIN / "torchrun"),
        "--nproc_per_node",
        "2",
        "--no-python",
        *_cli(str(_plan_file(tmp_path, 6))),
    ]
    command += ["-o", str(tmp_path / "out"), "--batch-size", "2"]
    done = subprocess.run(command, env=_env(audit), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "wrote 6 of 6 planned images" in done.stdout
    parts = [json.loads(p.read_text()) for p in sorted((tmp_path / "out" / ".parts").glob("*.json"))]
    assert {p["rank"] for p in parts} == {0, 1} and {p["world_size"] for p in parts} == {2}
    _same_dataset(tmp_path / "out", result.folder)
    assert check_log(audit).ok
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert len(lines) == 6 and len({e["output_id"] for e in lines}) == 6  # no line lost or doubled


@pytest.mark.slow  # a killed run and its resume (~25 s on 2 cores)
def test_a_killed_run_resumes_with_no_image_missing_or_written_twice(reference, tmp_path):
    """Killed in the middle of a chunk's commit: after its first chunk is committed, this
    test takes the audit log's lock (as a concurrent writer would), so the next chunk
    stops at step 3 with its files staged and its pending note written; SIGKILL there."""
    plan_path, out, audit = _plan_file(tmp_path, 6), tmp_path / "out", tmp_path / "audit.jsonl"
    command = [*_cli(str(plan_path)), "-o", str(out), "--batch-size", "2"]
    run = subprocess.Popen(command, env=_env(audit), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(lambda: list((out / ".parts").glob("[0-9]*.json")), run)
    with open(audit, "a+") as log:
        fcntl.flock(log, fcntl.LOCK_EX)
        _wait(lambda: list((out / ".parts").glob("pending-*")), run)
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert len(list((out / ".parts").glob("[0-9]*.json"))) == 1 and list(out.glob(".staging-*"))
    assert len(list((out / "images").iterdir())) == 2 and not (out / "manifest.jsonl").exists()
    done = subprocess.run(command, env=_env(audit), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(2 from an earlier run)" in done.stdout
    _same_dataset(out, reference[1].folder)
    assert not list(out.glob(".staging-*")) and not list((out / ".parts").glob("pending-*"))
    records = load_manifest(out / "manifest.jsonl")
    assert check_log(audit).ok and _live_outputs(audit) == sorted(r.extra["output_id"] for r in records)
    assert len(audit.read_text().splitlines()) == 6  # each image logged once


def _wait(found, run: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not found():
        assert run.poll() is None, "the run ended first"
        assert time.monotonic() < deadline, f"nothing after {seconds} s"
        time.sleep(0.01)


@pytest.mark.slow  # needs the reference run, then two ranks refused (~10 s)
def test_another_plan_in_the_same_folder_is_one_line_per_rank(reference, tmp_path):
    plan, result, _ = reference
    other = _plan_file(tmp_path, 4)
    with pytest.raises(InvalidInput, match="this folder holds another plan") as err:
        run_plan(read_plan(other, Settings(WEIGHTS)), result.folder, OPTIONS)
    assert "\n" not in str(err.value)
    command = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--no-python", *_cli(str(other))]
    done = subprocess.run(
        [*command, "-o", str(result.folder)], env=_env(tmp_path / "a.jsonl"), capture_output=True, text=True
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 2 and sum("holds another plan" in line for line in lines) == 1
    assert sum("rank 1: another rank stopped" in line for line in lines) == 1
    assert "[rank1]: Traceback" not in done.stderr  # torchrun's own failure report is all that follows


def test_an_unknown_model_or_a_prompt_and_a_plan_together_are_one_line(tmp_path, capsys):
    plan_path = _plan_file(tmp_path, 2)
    for args, words in (
        (
            ["generate", "--plan", str(plan_path), "--weights", "no-such-model", "-o", str(tmp_path / "a")],
            "unknown model",
        ),
        (["generate", "a prompt", "--plan", str(plan_path), "-o", str(tmp_path / "b")], "PROMPT or --plan"),
        (
            ["generate", "--plan", str(plan_path), "-n", "3", "-o", str(tmp_path / "c")],
            "-n does not go with --plan",
        ),
    ):
        assert main(args) != 0
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err
    assert not any((tmp_path / name).exists() for name in "abc")  # refused before writing


def test_a_second_run_into_a_folder_being_written_is_refused(tmp_path):
    """The lock rank 0 holds while it writes; here this test holds it, as a running
    ``radsynth generate --plan`` (or workers a killed torchrun left behind) would."""
    out = tmp_path / "out"
    out.mkdir()
    plan = read_plan(_plan_file(tmp_path, 2), Settings(WEIGHTS))
    with open(out / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(InvalidInput, match="another run is writing into this folder"):
            run_plan(plan, out, OPTIONS)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing claimed or written


@pytest.fixture
def small_disk(tmp_path):
    """A 96 KiB tmpfs (root only): room for the plan and a chunk or two of 64-px PNGs."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.slow  # fills a disk, then resumes (~20 s)
def test_a_full_disk_is_one_line_and_the_run_resumes_when_there_is_room(reference, small_disk, tmp_path):
    out, audit = small_disk / "out", tmp_path / "audit.jsonl"
    command = [*_cli(str(_plan_file(tmp_path, 6))), "-o", str(out), "--batch-size", "2", "--format", "nifti"]
    full = subprocess.run(command, env=_env(audit), capture_output=True, text=True, timeout=300)
    assert full.returncode != 0
    err = full.stderr.strip()
    assert "No space left on device" in err and "run the same command again to resume" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (out / "manifest.jsonl").exists()
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    done = subprocess.run(command, env=_env(audit), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    records = load_manifest(out / "manifest.jsonl")
    assert [r.extra["index"] for r in records] == list(range(6))
    assert sorted(p.name for p in (out / "images").glob("*.nii.gz")) == [f"{i:06d}.nii.gz" for i in range(6)]
    assert check_log(audit).ok and _live_outputs(audit) == sorted(r.extra["output_id"] for r in records)


@pytest.mark.slow  # reads the demo model's training images (~10 s)
def test_the_privacy_filter_drops_inline_and_the_card_says_what(tmp_path):
    """At a threshold every image exceeds, each is dropped, recorded, and never redrawn."""
    plan = read_plan(_plan_file(tmp_path, 2), Settings(WEIGHTS))
    options = RunOptions(
        precision="fp32", batch_size=2, privacy_threshold=1e-6, audit_log=tmp_path / "a.jsonl"
    )
    result = run_plan(plan, tmp_path / "out", options)
    assert (result.written, result.dropped) == (0, 2)
    card = json.loads(result.card.read_text())
    assert [d["index"] for d in card["privacy_filter"]["images"]] == [0, 1]
    assert (tmp_path / "out" / "manifest.jsonl").read_text() == ""
    shutil.rmtree(tmp_path / "out" / "images", ignore_errors=True)
    assert run_plan(plan, tmp_path / "out", options).resumed == 2  # committed as dropped
