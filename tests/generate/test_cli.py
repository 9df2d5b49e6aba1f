"""``radsynth generate`` as a user runs it: files, contact sheet and card on success; one
line, a non-zero exit code and nothing written for each kind of bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from radsynth.cli import main
from radsynth.generate import load_pipeline

pytestmark = pytest.mark.slow  # trains three tiny generators, then generates through the CLI

PROMPT = "axial T1-weighted brain MR"


def _run(capsys, *args):
    code = main(["generate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt,suffix", [("png", ".png"), ("dicom", ".dcm"), ("nifti", ".nii.gz")])
def test_generate_writes_the_batch_in_each_format(tiny_models, tmp_path, capsys, fmt, suffix):
    code, out, err = _run(
        capsys,
        PROMPT,
        "-n",
        2,
        "--weights",
        tiny_models["ldm"],
        "--steps",
        2,
        "--format",
        fmt,
        "--precision",
        "fp32",
        "-o",
        tmp_path / "out",
    )
    assert code == 0, err
    files = sorted((tmp_path / "out").glob(f"ldm_*{suffix}"))
    assert [f.name for f in files] == [f"ldm_seed00000{suffix}", f"ldm_seed00001{suffix}"]
    assert (tmp_path / "out" / "contact-sheet.png").is_file()
    card = json.loads((tmp_path / "out" / "generation.json").read_text())
    assert card["n"] == 2 and card["steps"] == 2 and card["format"] == fmt and card["precision"] == "fp32"
    assert "wrote 2" in out


def test_ddim_and_dpm_solver_both_sample_and_the_card_says_which(tiny_models, tmp_path, capsys):
    for sampler in ("ddim", "dpmpp_2m"):
        code, _, err = _run(
            capsys,
            PROMPT,
            "-n",
            1,
            "--weights",
            tiny_models["ldm"],
            "--steps",
            2,
            "--sampler",
            sampler,
            "-o",
            tmp_path / sampler,
        )
        assert code == 0, err
        assert json.loads((tmp_path / sampler / "generation.json").read_text())["sampler"] == sampler


@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 1e-5), ("bf16", 0.05)])
def test_the_same_seed_gives_the_same_images_whatever_the_batch(tiny_models, precision, tolerance):
    """Precision named, not ``auto``: on a CPU with native bf16, auto is bf16, whose rounding
    differs with the batch (the promise per precision is in the README)."""
    pipeline = load_pipeline(tiny_models["ldm"], batch_size=2, precision=precision)
    three = pipeline.generate(PROMPT, n=3, seed=10, steps=2)
    one = pipeline.generate(PROMPT, n=1, seed=12, steps=2)
    np.testing.assert_allclose(three[2].array, one[0].array, atol=tolerance)


def test_gan_and_vae_generate_too(tiny_models, tmp_path, capsys):
    for kind in ("gan", "vae"):
        code, _, err = _run(
            capsys, PROMPT, "-n", 2, "--model", kind, "--weights", tiny_models[kind], "-o", tmp_path / kind
        )
        assert code == 0, err
        assert len(list((tmp_path / kind).glob(f"{kind}_seed*.png"))) == 2


def test_a_prompt_naming_the_unseen_is_generated_but_marked_low_confidence(tiny_models, tmp_path, capsys):
    code, out, err = _run(
        capsys,
        "axial T1-weighted brain MR, giraffe",
        "-n",
        1,
        "--weights",
        tiny_models["ldm"],
        "--steps",
        2,
        "-o",
        tmp_path,
    )
    assert code == 0
    assert "low confidence" in err and "giraffe" in err
    card = json.loads((tmp_path / "generation.json").read_text())
    assert card["low_confidence"] is True and any("giraffe" in t for t in card["unknown_terms"])


def _corrupt(folder, tmp_path):
    bad = tmp_path / "corrupt"
    shutil.copytree(folder, bad)
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    return bad


def _mismatched(models, tmp_path):
    bad = tmp_path / "mismatched"
    shutil.copytree(models["ldm"], bad)
    shutil.copy(models["gan"] / "model.safetensors", bad / "model.safetensors")
    return bad


BAD_INPUTS = {
    "empty prompt": (lambda m, t: ["   "], "prompt is empty"),
    "overlong prompt": (lambda m, t: ["brain MR " * 200], "at most 1000"),
    "n zero": (lambda m, t: [PROMPT, "-n", 0], "n must be"),
    "n huge": (lambda m, t: [PROMPT, "-n", 10_000_000], "n must be"),
    "unknown model kind": (lambda m, t: [PROMPT, "--model", "flow"], "unknown model 'flow'"),
    "unknown weights": (lambda m, t: [PROMPT, "--weights", "no-such-model"], "unknown model 'no-such-model'"),
    "unknown format": (lambda m, t: [PROMPT, "--format", "tiff"], "unknown format"),
    "unknown sampler": (lambda m, t: [PROMPT, "--sampler", "plms"], "unknown sampler 'plms'"),
    "sampler of a gan": (lambda m, t: [PROMPT, "--weights", m["gan"], "--sampler", "ddim"], "no sampler"),
    "unknown precision": (lambda m, t: [PROMPT, "--precision", "fp16"], "unknown precision 'fp16'"),
    "corrupt checkpoint": (lambda m, t: [PROMPT, "--weights", _corrupt(m["ldm"], t)], "model.safetensors"),
    "mismatched checkpoint": (lambda m, t: [PROMPT, "--weights", _mismatched(m, t)], "mismatch"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_writes_nothing(case, tiny_models, tmp_path, capsys):
    make_args, expected = BAD_INPUTS[case]
    args = make_args(tiny_models, tmp_path)
    out_dir = tmp_path / "out"
    extra = [] if "--weights" in args else ["--weights", tiny_models["ldm"]]
    code, _, err = _run(capsys, *args, *extra, "--steps", 2, "-o", out_dir)
    assert code != 0
    assert expected.lower() in err.lower()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out_dir.exists()


def test_an_output_folder_that_is_a_file_is_refused_before_sampling(tiny_models, tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    code, _, err = _run(capsys, PROMPT, "--weights", tiny_models["ldm"], "-o", target)
    assert code != 0 and "is a file" in err and target.read_text() == "x"


def test_guidance_interval_is_recorded_in_the_card_and_bad_ones_are_one_line(tiny_models, tmp_path, capsys):
    args = [PROMPT, "-n", 1, "--weights", tiny_models["ldm"], "--steps", 3]
    code, _, err = _run(capsys, *args, "--guidance-interval", "0.4,1", "-o", tmp_path / "limited")
    assert code == 0, err
    assert json.loads((tmp_path / "limited" / "generation.json").read_text())["guidance_interval"] == [
        0.4,
        1.0,
    ]
    for bad in ("0.9,0.1", "half", "0.1,0.2,0.3"):
        code, _, err = _run(capsys, *args, "--guidance-interval", bad, "-o", tmp_path / "bad")
        assert code != 0 and "guidance" in err and "Traceback" not in err
        assert not (tmp_path / "bad").exists()
