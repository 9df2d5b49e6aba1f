"""``radsynth evaluate`` as a user runs it: one self-contained report.html and a
metrics.json from a generated folder and two manifests; bad input gives one line and
writes nothing."""

from __future__ import annotations

import json
import re

import pytest

from radsynth.cli import main

pytestmark = pytest.mark.slow  # the whole evaluation (radiomics, utility CNNs, membership) end to end


def _run(capsys, *args):
    code = main(["evaluate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    prompts = (
        "axial chest CT, lung window, tumour in the right lung",
        "axial T1-weighted brain MR, no lesion visible",
    )
    for i, prompt in enumerate(prompts):
        assert (
            main(
                [
                    "generate",
                    prompt,
                    "-n",
                    "6",
                    "--model",
                    "gan",
                    "--seed",
                    str(i),
                    "-o",
                    str(folder / f"b{i}"),
                ]
            )
            == 0
        )
    return folder


def test_one_command_writes_the_report_and_the_metrics(generated, demo_manifest, tmp_path, capsys):
    out = tmp_path / "report"
    code, printed, errors = _run(
        capsys,
        "--real", demo_manifest, "--real-split", "test",
        "--synthetic", generated,
        "--train", demo_manifest, "--train-split", "train",
        "--attack", "vae", "--attack-images", 12, "--utility-steps", 4, "--bootstrap", 10, "--no-radiomics",
        "-o", out,
    )  # fmt: skip
    assert code == 0 and not errors, errors
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sets"]["synthetic"]["n"] == 12 and metrics["sets"]["real"]["n"] == 145
    assert {"fid_domain", "kid_domain", "prdc", "frd"} <= set(metrics["fidelity"])
    assert "value" in metrics["fidelity"]["fid_domain"] and "skipped" in metrics["fidelity"]["frd"]
    assert metrics["privacy"]["share_synthetic_flagged"] == 0.0
    attack = metrics["membership"]  # the shipped VAE's own training slices vs unseen subjects
    assert attack["members"] == attack["non_members"] == 12
    assert attack["vae_reconstruction"]["value"] > 0.65 and attack["vae_reconstruction"]["low"] > 0.5
    regimes = metrics["utility"]["regimes"]  # the study: every subject, 25 % and 10 % of them
    assert set(regimes) == {"100 %", "25 %", "10 %"}
    assert set(regimes["100 %"]["arms"]) >= {
        "real",
        "real+duplicates",
        "synthetic",
        "real+synthetic",
        "shuffled_labels",
        "transfer:real",
    }
    assert "vs_real" in regimes["100 %"]["arms"]["real+synthetic"]
    assert metrics["adherence"]["synthetic"]["modality"]["n"] == 12
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 6  # charts, grids, closest pairs
    assert not re.search(r"(src|href)=['\"]https?:", page)  # self-contained
    for section in ("Fidelity", "Diversity", "Adherence", "Privacy", "Membership inference", "Utility"):
        assert f"<h2>{section}</h2>" in page
    assert "wrote" in printed


def test_training_copies_as_the_synthetic_set_are_flagged_entirely(
    demo_manifest, copy_manifest, tmp_path, capsys
):
    from radsynth.data.manifest import load_manifest

    training = [r for r in load_manifest(demo_manifest) if r.split == "train"]
    copies = copy_manifest(tmp_path / "copies", training[::27])  # 31 slices, every subject
    out = tmp_path / "report"
    code, _, errors = _run(
        capsys,
        "--real", demo_manifest, "--real-split", "test",
        "--synthetic", copies,
        "--train", demo_manifest, "--train-split", "train",
        "--utility-steps", 1, "--bootstrap", 5, "--no-radiomics", "-o", out,
    )  # fmt: skip
    assert code == 0 and not errors, errors
    privacy = json.loads((out / "metrics.json").read_text())["privacy"]
    assert privacy["share_synthetic_flagged"] == 1.0 and privacy["n_flagged"] == 31
    assert privacy["share_training_copied"] == pytest.approx(31 / 811)


@pytest.mark.parametrize(
    "args,message",
    [
        ((), "missing --real, --synthetic, --train"),
        (("--real-split", "nope"), "real set is empty (splits nope)"),
        (("--copy-threshold", "1.5"), "--copy-threshold must be in (0, 1]"),
        (("--utility-within", "anatomy"), "--utility-within expects NAME=VALUE, got 'anatomy'"),
        (("--utility-regimes", "1,2"), "--utility-regimes expects fractions in (0, 1]"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(generated, demo_manifest, tmp_path, capsys, args, message):
    sets = () if not args else ("--real", demo_manifest, "--synthetic", generated, "--train", demo_manifest)
    code, _, errors = _run(capsys, *sets, *args, "-o", tmp_path / "out")
    assert code == 1 and len(errors) == 1 and message in errors[0]
    assert not (tmp_path / "out").exists()


def test_a_set_too_small_for_a_metric_reports_why_and_no_number(demo_manifest, tmp_path, capsys):
    prompt = "axial chest CT, lung window, tumour in the right lung"
    assert main(["generate", prompt, "-n", "1", "--model", "gan", "-o", str(tmp_path / "one")]) == 0
    code, _, errors = _run(
        capsys,
        "--real", demo_manifest, "--real-split", "test", "--synthetic", tmp_path / "one",
        "--train", demo_manifest, "--train-split", "train",
        "--utility-steps", 1, "--bootstrap", 3, "--no-radiomics", "-o", tmp_path / "report",
    )  # fmt: skip
    assert code == 0 and not errors
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["fidelity"]["fid_domain"] == {
        "skipped": "Fréchet/KID: not enough samples: need >= 10, got 1"
    }
    assert "value" not in metrics["diversity"]["ms_ssim_within_prompt"]
    page = (tmp_path / "report" / "report.html").read_text()
    assert "not enough samples: need &gt;= 10, got 1" in page
