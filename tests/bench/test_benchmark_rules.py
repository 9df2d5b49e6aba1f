"""The rules benchmark scripts decide by: the step count chosen on validation
(``benchmarks/steps.py``) and a row carried from an earlier run (``benchmarks/cxr.py
--carry``), which must say where it came from and refuse a run scored on other images."""

from __future__ import annotations

import json

import pytest

from radsynth.errors import InvalidInput

from .conftest import benchmark_module


@pytest.fixture(scope="module")
def scripts():
    return benchmark_module("cxr"), benchmark_module("steps")


def _row(steps: int, fid: float, gap: float, read: float) -> dict:
    return {
        "steps": steps,
        "fid_domain": {"value": fid},
        "fid_minus_best": {"value": gap},
        "read_back_mean": read,
    }


def test_the_fewest_steps_within_the_tolerance_and_the_read_back_slack(scripts):
    _, steps = scripts
    rows = [
        _row(6, 2.14, 0.26, 0.89),
        _row(10, 1.98, 0.10, 0.89),
        _row(15, 1.94, 0.06, 0.89),
        _row(25, 1.88, 0, 0.89),
    ]
    assert steps.choose(rows, tolerance=0.05, slack=0.02) == 15  # 0.10 > 5 % of 1.88; 0.06 is not
    assert steps.choose(rows, tolerance=0.0, slack=0.02) == 25  # no tolerance: the best
    assert steps.choose(rows, tolerance=0.2, slack=0.02) == 6
    rows[2]["read_back_mean"] = 0.85  # 15 steps reads back 4 points worse
    assert steps.choose(rows, tolerance=0.05, slack=0.02) == 25


def _results(n: int, gan: dict) -> dict:
    return {"held_out": {"n": n}, "rows": {"ldm": {"n": 1}, "gan": gan}, "targets": {"gan": {}}}


def test_a_carried_row_names_its_run_and_needs_the_same_held_out_set(scripts, tmp_path):
    cxr, _ = scripts
    previous = tmp_path / "cxr.json"
    old = _results(494, {"n": 200, "images_per_s": 82.1})
    old["targets"]["gan"] = {"copies": {"pass": True}}
    old["settings"] = {"git_commit": "a" * 40, "command": "benchmarks/cxr.py --gan runs/gan/model"}
    previous.write_text(json.dumps(old))
    now = _results(494, {"skipped": "no gan weights"})
    carried = cxr.carry_rows(now, previous, ["gan"])
    assert carried == {"gan": {"git_commit": "a" * 40, "command": "benchmarks/cxr.py --gan runs/gan/model"}}
    assert now["rows"]["gan"]["images_per_s"] == 82.1 and now["targets"]["gan"] == {"copies": {"pass": True}}
    measured = _results(494, {"n": 200, "images_per_s": 90.0})  # measured now: never replaced
    assert (
        cxr.carry_rows(measured, previous, ["gan"]) == {} and measured["rows"]["gan"]["images_per_s"] == 90.0
    )
    with pytest.raises(InvalidInput, match="another held-out set"):
        cxr.carry_rows(_results(100, {"skipped": "x"}), previous, ["gan"])


def test_the_shipped_restorers_are_the_checkpoints_their_validation_chose():
    """``benchmarks/restoration_real.py --ship``: the shipped denoiser and SR model are, byte
    for byte, the checkpoints with the highest PSNR on the validation T2, and the test
    contrast (FLAIR) never took part in a choice."""
    from radsynth.bench.record import weights_hash
    from radsynth.models.registry import shipped

    results = json.loads(benchmark_module("restoration_real").RESULTS.read_text())
    for task, kind in (("denoise", "translate-denoise"), ("sr2", "translate-sr")):
        search = results["validation"][f"{task}_checkpoint"]
        best = max(search["rows"], key=lambda r: r["psnr"])["step"]
        assert search["chosen_step"] == best
        recipe = results["settings"]["recipes"][task].removeprefix("configs/").removesuffix(".yaml")
        chosen = [
            h
            for folder, h in results["settings"]["models"].items()
            if recipe in folder and folder.endswith(f"step-{best:08d}")
        ]
        assert chosen == [weights_hash(shipped(kind))]
        card = json.loads((shipped(kind) / "card.json").read_text())
        assert f"step {best}," in card["task_info"]["checkpoint_chosen_by"]
    assert "FLAIR" not in json.dumps(results["settings"]["validation_volumes"])


def test_the_watermark_strengths_are_the_weakest_that_passed_on_validation():
    from radsynth.provenance.watermark import DEFAULT_STRENGTH
    from radsynth.translate.files import RESTORATION_STRENGTH

    script = benchmark_module("watermark_strength")
    results = json.loads(script.RESULTS.read_text())
    passed = [
        float(s) for s, groups in results["outputs"].items() if all(map(script.output_ok, groups.values()))
    ]
    assert DEFAULT_STRENGTH == results["chosen"]["outputs"] == min(passed)
    assert results["chosen"]["restoration"] == RESTORATION_STRENGTH
    assert set(results["settings"]["hosts"]) == {"demo (64 px)", "chest X-ray (128 px)"}


def test_a_strength_fails_when_one_attack_loses_the_mark_or_a_lossless_save_its_payload():
    script = benchmark_module("watermark_strength")
    good = {"detected": 1.0, "payload_recovered": 1.0}
    row = {"attacks": {name: dict(good) for name in (*script.LOSSLESS, *script.BEYOND_STRENGTH, "JPEG 75")}}
    for name in script.BEYOND_STRENGTH:  # saturation, the crop search: never held against a strength
        row["attacks"][name]["detected"] = 0.2
    row["attacks"]["JPEG 75"]["payload_recovered"] = 0.0  # lossy: the payload may go
    assert script.output_ok(row)
    row["attacks"]["JPEG 75"]["detected"] = 0.98
    assert not script.output_ok(row)
    row["attacks"]["JPEG 75"]["detected"] = 1.0
    row["attacks"]["8-bit PNG"]["payload_recovered"] = 0.96
    assert script.output_ok(row)
    row["attacks"]["8-bit PNG"]["payload_recovered"] = 0.94
    assert not script.output_ok(row)
