"""The detector: its task learns a real pixel trace, its threshold is set by the worst
real source it never saw, and the shipped detector keeps real images from sources it never
trained on under that threshold while it still separates the shipped generators' outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from radsynth.cli import main
from radsynth.data.manifest import Record, load_manifest, write_manifest
from radsynth.errors import InvalidInput
from radsynth.io import Image, read_image, write_png
from radsynth.provenance.detector import (
    TARGET_FPR,
    SyntheticDetector,
    auroc,
    calibrate_detector,
    threshold_for,
    train_detector,
)
from tests.data.conftest import SHARED_DATA

needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")


def test_auroc_is_the_rank_statistic():
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auroc(np.array([0.1]), np.array([0.9])) == 0.0
    assert auroc(np.array([0.5]), np.array([0.5])) == 0.5
    with pytest.raises(InvalidInput):
        auroc(np.array([]), np.array([0.5]))


def _blur_set(real_slices, folder, origins=("demo",)):
    """Real slices vs the same anatomy blurred (sigma 1 and 2): a pixel trace the detector
    must learn. Real slices take turns among ``origins``, as if from several sources."""
    records = []
    for i, a in enumerate(real_slices):
        split = "train" if i % 4 else "test"
        origin = origins[(i // 4) % len(origins)]  # each origin on both sides of the split
        made = (("real", origin, a), ("synthetic", "blur", gaussian_filter(a, 1.0)))
        if len(origins) > 1:
            made += (("synthetic", "blur2", gaussian_filter(a, 2.0)),)
        for source, name, pixels in made:
            rel = f"{name}{i:02d}.png"
            write_png(Image(pixels), folder / rel, bits=16)
            labels = {"source": source, "generator": "real" if source == "real" else name, "origin": name}
            records.append(Record(rel, "slice", "MR", f"s{i}", split, "demo", "BSD", labels=labels))
    return write_manifest(records, folder / "manifest.jsonl")


def test_the_residual_view_drops_anatomy_and_keeps_texture():
    """Two images with the same fine noise under different smooth anatomy look alike in the
    residual view, and unlike the same anatomy without the noise."""
    import torch

    from radsynth.train.tasks.detector import detector_view

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:64] / 64.0
    noise = rng.normal(0, 0.02, (64, 64))
    a, b = np.sin(3 * x) + y**2 + noise, np.cos(2 * y) * x + noise
    batch = torch.tensor(np.stack([a, b, np.sin(3 * x) + y**2])[:, None], dtype=torch.float32)
    views = detector_view(batch, "residual")[:, 0].numpy()
    inner = (slice(4, -4), slice(4, -4))
    assert np.corrcoef(views[0][inner].ravel(), views[1][inner].ravel())[0, 1] > 0.8
    assert abs(np.corrcoef(views[0][inner].ravel(), views[2][inner].ravel())[0, 1]) < 0.3
    assert np.abs(views).max() <= 1.0


def test_the_threshold_is_set_by_the_worst_source():
    rng = np.random.default_rng(0)
    calm, wild = (
        rng.uniform(0, 0.5, 200),
        np.concatenate([rng.uniform(0, 0.5, 190), np.linspace(0.9, 0.99, 10)]),
    )
    t = threshold_for({"calm": calm, "wild": wild}, target=0.01)
    assert np.mean(wild >= t) <= 0.01 and np.mean(calm >= t) <= 0.01
    assert np.mean(wild >= t - 1e-3) > 0.01  # and no higher than it must be
    assert threshold_for({"calm": calm}) < 0.5 < t


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


@pytest.mark.slow  # trains three small detectors
def test_leaving_each_source_out_sets_a_threshold_that_holds_on_it(real_slices, tmp_path):
    manifest = _blur_set(real_slices, tmp_path / "set", origins=("left", "right"))
    calibration = calibrate_detector(
        manifest, tmp_path / "cal", sources=["left", "right"], generators=["blur2"], steps=30
    )
    per_source = calibration["leave_one_source_out"]
    assert set(per_source) == {"left", "right"} and per_source["left"]["n"] == 20
    assert all(row["fpr"] <= TARGET_FPR for row in per_source.values())
    assert calibration["threshold"] > max(row["max_p"] for row in per_source.values()) - 1e-9
    assert calibration["leave_one_generator_out"]["blur2"]["n"] == 10
    # leaving a source out leaves out its patients' synthetic images too (made from them)
    left = {r.subject for r in load_manifest(manifest) if r.labels["origin"] == "left"}
    trained = load_manifest(tmp_path / "cal" / "without-left" / "train-manifest.jsonl")
    assert trained and not left & {r.subject for r in trained}
    # each run's scores are kept: a second call trains nothing and says the same
    assert (
        calibrate_detector(
            manifest, tmp_path / "cal", sources=["left", "right"], generators=["blur2"], steps=30
        )
        == calibration
    )


def test_the_shipped_detector_is_calibrated_on_sources_it_never_saw():
    detector = SyntheticDetector.load()
    calibration = detector.card.metrics["calibration"]
    assert detector.threshold == calibration["threshold"]
    held_out = calibration["leave_one_source_out"]
    assert {"kermany", "nih14", "ieee8023", "aanlib-mr", "glioma-mr", "breastmnist"} <= set(held_out)
    assert all(row["fpr"] <= TARGET_FPR for row in held_out.values())
    assert set(detector.card.task_info["real_sources"]) <= set(held_out)  # each trained on is left out once
    assert {"CT", "MR", "DX", "CR", "US"} <= set(detector.domain.modalities)


@needs_shared
def test_real_chest_x_rays_it_never_trained_on_stay_under_the_threshold():
    """Figure 1's research-only films never enter training: an unseen source, read as files."""
    detector = SyntheticDetector.load()
    files = sorted((SHARED_DATA / "figure1_covid_cxr_with_notes" / "images").glob("*"))
    scores = np.array([detector.score_image(read_image(f)) for f in files])
    assert len(files) == 55 and np.mean(scores >= detector.threshold) <= TARGET_FPR


@pytest.mark.slow  # generates with the chest X-ray LDM
@needs_shared
def test_the_shipped_detector_separates_chest_x_ray_ldm_outputs_from_real_films_of_test_patients():
    from radsynth.generate import load_pipeline
    from radsynth.generate.detector_generators import cxr_captions

    detector = SyntheticDetector.load()
    captions = cxr_captions(SHARED_DATA, "test", 0)[:3]
    pipeline = load_pipeline("cxr-128", "ldm")
    fake = [im.array for _, text in captions for im in pipeline.generate(text, n=4, seed=91)]
    films = sorted((SHARED_DATA / "cxr_nih14_pneumonia_subset_256" / "images").glob("*.png"))[:60]
    real = [read_image(f).array for f in films]
    assert auroc(detector.score(fake), detector.score(real)) > 0.9


@pytest.mark.slow  # generates with every demo generator
@pytest.mark.parametrize("generator", ["ldm", "gan", "vae"])
def test_the_shipped_detector_separates_held_out_real_from_each_demo_generator(
    held_out_slices, held_out_captions, generator
):
    """AUROC computed here, per generator, against real slices of subjects the detector
    never saw (val + test), on images drawn from held-out captions and fresh seeds."""
    from radsynth.generate import load_pipeline

    detector = SyntheticDetector.load()
    pipeline = load_pipeline("demo-ct-mr-64", generator, device="cpu")
    fake = [im.array for caption in held_out_captions for im in pipeline.generate(caption, n=4, seed=77)]
    assert len(fake) == 12 and len(held_out_slices) == 40
    assert auroc(detector.score(fake), detector.score(held_out_slices)) > 0.85


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
    assert rows[0]["p_synthetic"] < threshold and rows[0]["p_synthetic"] < rows[1]["p_synthetic"]
