"""The detector: its training set is built from real generators with held-out captions,
its task learns a real pixel trace, and the shipped detector separates real slices from
the shipped generators' outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from radsynth.cli import main
from radsynth.data.manifest import Record, load_manifest, write_manifest
from radsynth.errors import InvalidInput
from radsynth.generate.detector_set import DetectorSetSpec, build_detector_set
from radsynth.io import Image, write_png
from radsynth.provenance.detector import SyntheticDetector, auroc, train_detector


def test_auroc_is_the_rank_statistic():
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auroc(np.array([0.1]), np.array([0.9])) == 0.0
    assert auroc(np.array([0.5]), np.array([0.5])) == 0.5
    with pytest.raises(InvalidInput):
        auroc(np.array([]), np.array([0.5]))


@pytest.mark.slow  # generates the detector's set with every shipped generator
def test_the_set_holds_real_and_each_generators_images_split_by_caption(tmp_path):
    spec = DetectorSetSpec(captions=2, per_caption=2, held_out_captions=1, held_out_per_caption=2)
    manifest = build_detector_set(tmp_path, spec)
    records = load_manifest(manifest)
    synthetic = [r for r in records if r.labels["source"] == "synthetic"]
    assert {r.labels["generator"] for r in synthetic} == {"ldm", "gan", "vae"}
    assert sum(r.split == "train" for r in synthetic) == 12 and sum(r.split == "test" for r in synthetic) == 6
    train_captions = {r.text for r in synthetic if r.split == "train"}
    assert not train_captions & {r.text for r in synthetic if r.split == "test"}
    assert build_detector_set(tmp_path, spec) == manifest  # reused, not redrawn


def _blur_set(real_slices, folder):
    """Real slices vs the same anatomy blurred: a pixel trace the detector must learn."""
    records = []
    for i, a in enumerate(real_slices):
        split = "train" if i % 4 else "test"
        for source, pixels in (("real", a), ("synthetic", gaussian_filter(a, 1.0))):
            rel = f"{source}{i:02d}.png"
            write_png(Image(pixels), folder / rel, bits=16)
            labels = {"source": source, "generator": "real" if source == "real" else "blur"}
            records.append(Record(rel, "slice", "MR", f"s{i}", split, "demo", "BSD", labels=labels))
    return write_manifest(records, folder / "manifest.jsonl")


@pytest.mark.slow  # trains the detector
def test_training_learns_a_pixel_trace_and_writes_its_figures_into_the_card(real_slices, tmp_path):
    manifest = _blur_set(real_slices, tmp_path / "set")
    folder, figures = train_detector(manifest, tmp_path / "run", steps=40)
    assert figures["per_generator"]["blur"]["auroc"] > 0.9
    card = json.loads((folder / "card.json").read_text())
    assert card["metrics"]["held_out"]["per_generator"]["blur"]["n"] == 10
    assert card["model_id"] == "run" and card["task_info"]["counts"] == {"real": 30, "synthetic": 30}


def test_a_set_without_source_labels_is_refused(demo_manifest, tmp_path):
    with pytest.raises(InvalidInput, match="labels.source"):
        train_detector(demo_manifest, tmp_path / "run", steps=2)


@pytest.mark.slow  # generates with every shipped generator
@pytest.mark.parametrize("generator", ["ldm", "gan", "vae"])
def test_shipped_detector_separates_held_out_real_from_each_shipped_generator(
    held_out_slices, held_out_captions, generator
):
    """AUROC computed here, per generator, against real slices of subjects the detector
    never saw (val + test), on images drawn from held-out captions and fresh seeds."""
    from radsynth.generate import load_pipeline

    detector = SyntheticDetector.load()
    pipeline = load_pipeline("demo-ct-mr-64", generator, device="cpu")
    fake = [im.array for caption in held_out_captions for im in pipeline.generate(caption, n=4, seed=77)]
    assert len(fake) == 12 and len(held_out_slices) == 40
    assert auroc(detector.score(fake), detector.score(held_out_slices)) > 0.95


def test_cli_score_prints_one_probability_per_file_on_the_right_side_of_the_threshold(
    held_out_slices, tmp_path, capsys
):
    from radsynth.generate import load_pipeline

    real = write_png(Image(held_out_slices[0]), tmp_path / "real.png", bits=16)
    synthetic = load_pipeline("demo-ct-mr-64", "vae", device="cpu").generate("axial chest CT", n=1, seed=5)[0]
    fake = write_png(Image(synthetic.array), tmp_path / "fake.png", bits=16)
    assert main(["detect", "score", "--json", str(real), str(fake)]) == 0
    rows = json.loads(capsys.readouterr().out)
    threshold = SyntheticDetector.load().threshold
    assert [row["file"] for row in rows] == [str(real), str(fake)]
    assert rows[0]["p_synthetic"] < threshold < rows[1]["p_synthetic"]
