"""verify on real files: every radsynth output is found (metadata, then watermark once the
metadata is stripped), real slices are not, and a folder of broken files is reported file
by file without a crash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from pydicom.data import get_testdata_file

from radsynth.cli import main
from radsynth.generate import write_batch
from radsynth.io import Image, read_image, write_dicom, write_nifti, write_png
from radsynth.provenance import read_marking
from radsynth.provenance.verify import AuditIndex, verify_file, verify_paths

PROMPT = "axial T1-weighted brain MR, no lesion visible"


@pytest.fixture(scope="module")
def generated(real_slices):
    """Stand-ins for generated slices: real demo slices carrying a generator's metadata."""
    meta = {"prompt": PROMPT, "model_id": "ldm-demo-64", "model_kind": "ldm", "seed": 0}
    return [Image(a, modality="MR", metadata={**meta, "seed": i}) for i, a in enumerate(real_slices[20:23])]


@pytest.fixture(scope="module")
def outputs(generated, tmp_path_factory, detector):
    root = tmp_path_factory.mktemp("outputs")
    return {fmt: write_batch(generated, root / fmt, fmt) for fmt in ("png", "dicom", "nifti")}


@pytest.fixture(scope="module")
def detector():
    from radsynth.provenance.detector import SyntheticDetector

    return SyntheticDetector.load()


def test_every_file_radsynth_writes_is_found(outputs, detector):
    for fmt, batch in outputs.items():
        verdicts = verify_paths([batch.folder], detector=detector)
        assert len(verdicts) == len(list(batch.folder.iterdir())), fmt
        assert all(v.verdict == "synthetic-marked" for v in verdicts), [v.to_dict() for v in verdicts]
        image = next(v for v in verdicts if v.file == str(batch.files[0]))
        assert image.evidence["watermark"]["found"] and image.evidence["audit"]["file_unchanged"]


def test_stripped_outputs_are_found_by_the_watermark_and_traced_in_the_audit_log(outputs, tmp_path):
    png = outputs["png"].files[0]
    with PILImage.open(png) as pic:
        pixels = np.asarray(pic)  # re-saved without the text chunks
    plain_png = write_png(Image(pixels), tmp_path / "plain.png", bits=16)
    nifti = Image(np.asarray(PILImage.open(outputs["png"].files[1]), dtype=np.float32) / 65535)
    plain_nifti = write_nifti(nifti, tmp_path / "plain.nii.gz")
    hu = read_image(outputs["dicom"].files[2])  # pixels of a DICOM output into a plain DICOM
    plain_dicom = write_dicom(Image(hu.array, modality="MR"), tmp_path / "plain.dcm")
    card = json.loads(outputs["png"].card.read_text())
    dicom_id = json.loads(outputs["dicom"].card.read_text())["files"][2]["output_id"]
    assert read_marking(plain_dicom) is None
    assert (
        verify_file(plain_dicom, audit=AuditIndex()).evidence["watermark"]["audit"]["output_id"] == dicom_id
    )
    for path, index in ((plain_png, 0), (plain_nifti, 1)):
        verdict = verify_file(path, audit=AuditIndex())
        assert verdict.verdict == "watermark", verdict.to_dict()
        traced = verdict.evidence["watermark"]["audit"]
        assert traced["output_id"] == card["files"][index]["output_id"]
        assert traced["model_tag_matches"] and not traced["file_unchanged"]


def test_real_slices_carry_no_mark(demo_manifest, real_slices, tmp_path):
    files = [write_png(Image(a), tmp_path / f"real{i}.png", bits=16) for i, a in enumerate(real_slices)]
    verdicts = verify_paths(files)  # no detector: marking and watermark only
    assert {v.verdict for v in verdicts} == {"no-evidence"}


def test_a_folder_of_broken_and_odd_files_gets_one_verdict_each(tmp_path, outputs, detector):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty.dcm").write_bytes(b"")
    data = outputs["png"].files[0].read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 3])
    shutil.copy(get_testdata_file("test-SR.dcm"), tmp_path / "report-sr.dcm")
    (tmp_path / "config.json").write_text('{"a": 1}')
    verdicts = {v.file.rsplit("/", 1)[-1]: v for v in verify_paths([tmp_path], detector=detector)}
    assert set(verdicts) == {"notes.txt", "empty.dcm", "truncated.png", "report-sr.dcm", "config.json"}
    for name, verdict in verdicts.items():
        assert verdict.verdict == "unreadable", (name, verdict)
        assert verdict.evidence["problem"] and "\n" not in verdict.evidence["problem"]


def test_files_over_the_size_limit_are_reported_not_read(outputs):
    verdict = verify_file(outputs["dicom"].files[0], max_bytes=100)
    assert verdict.verdict == "unreadable" and "too large" in verdict.evidence["problem"]


def test_cli_json_lists_every_file_and_exits_non_zero_on_synthetic(outputs, real_slices, tmp_path, capsys):
    real = write_png(Image(real_slices[0]), tmp_path / "real.png", bits=16)
    code = main(["verify", "--json", "--no-detector", str(outputs["dicom"].files[0]), str(real)])
    rows = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [r["verdict"] for r in rows] == ["synthetic-marked", "no-evidence"]
    assert set(rows[0]) == {"file", "verdict", "evidence"}
    assert main(["verify", "--no-detector", str(real)]) == 0
    (tmp_path / "junk.dcm").write_bytes(b"junk")
    assert main(["verify", "--no-detector", str(real), str(tmp_path / "junk.dcm")]) == 2


def test_a_tampered_audit_log_is_reported(outputs, tmp_path, capsys, monkeypatch):
    log = tmp_path / "audit.jsonl"
    from radsynth.provenance import default_log

    shutil.copy(default_log(), log)
    shutil.copy(default_log().with_name(default_log().name + ".head"), tmp_path / "audit.jsonl.head")
    lines = log.read_text().splitlines()
    lines[0] = lines[0].replace('"model_id":"', '"model_id":"x')
    log.write_text("\n".join(lines) + "\n")
    code = main(["verify", "--no-detector", "--audit-log", str(log), str(outputs["png"].files[0])])
    err = capsys.readouterr().err
    assert code == 1 and "failed its check" in err and "line 1" in err


@pytest.mark.slow  # sixteen images from the shipped LDM
def test_a_contact_sheet_of_sixteen_ldm_images_carries_its_mark(tmp_path):
    """A grid of many small images is a busy host: make demo's 16-image sheets lost the mark at
    the outputs' 1 % strength."""
    from radsynth.generate import load_pipeline

    images = load_pipeline("demo-ct-mr-64", "ldm").generate(PROMPT, n=16, seed=0)
    batch = write_batch(images, tmp_path, "png")
    assert verify_file(batch.contact_sheet).evidence["watermark"]["found"]


SAMPLES = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dicom_samples").resolve()


def samples() -> Path:
    assert (SAMPLES / "SOURCE.md").is_file(), f"{SAMPLES} is missing: ../shared/data beside the repository"
    return SAMPLES


@pytest.fixture(scope="module")
def unmarked_vae():
    """A real output of the shipped VAE, never marked nor watermarked (pixels only)."""
    from radsynth.generate import load_pipeline

    return load_pipeline("demo-ct-mr-64", "vae", device="cpu").generate("axial chest CT", n=1, seed=5)[0]


def test_the_detector_alone_says_suspect_never_synthetic(unmarked_vae, outputs, detector, tmp_path, capsys):
    png = write_png(Image(unmarked_vae.array), tmp_path / "vae.png", bits=16)
    dicom = write_dicom(Image(unmarked_vae.array, modality="CT"), tmp_path / "vae.dcm")
    for path in (png, dicom):
        verdict = verify_file(path, detector=detector, audit=AuditIndex())
        assert verdict.verdict == "suspect" and verdict.suspect and not verdict.synthetic, verdict.to_dict()
        score = verdict.evidence["detector"]
        assert score["applies"] and score["p_synthetic"] >= score["threshold"]
        assert "not proof" in verdict.evidence["reason"]
    assert main(["verify", str(png)]) == 3  # suspicion only
    assert main(["verify", str(png), str(outputs["png"].files[0])]) == 1  # proof wins
    (tmp_path / "junk.dcm").write_bytes(b"junk")
    assert main(["verify", str(png), str(tmp_path / "junk.dcm")]) == 3  # suspicion before unreadable
    assert "not proof" in capsys.readouterr().out


def test_images_unlike_the_detectors_training_set_get_no_evidence_and_the_reason(
    unmarked_vae, detector, tmp_path
):
    """The same synthetic pixels, as a nuclear-medicine image, as a false-colour picture and
    as an empty frame: outside what the detector learnt, so no probability is offered."""
    grey = (np.clip(unmarked_vae.array, 0, 1) * 255).astype(np.uint8)
    false_colour = np.stack([grey, grey // 2, 255 - grey], axis=-1)
    colour = write_png(Image(false_colour, rgb=True), tmp_path / "colour.png")
    nm = write_dicom(Image(unmarked_vae.array, modality="NM"), tmp_path / "nm.dcm")
    empty = write_png(Image(np.zeros((64, 64), np.float32)), tmp_path / "empty.png")
    reasons = {}
    for path in (colour, nm, empty):
        verdict = verify_file(path, detector=detector, audit=AuditIndex())
        assert verdict.verdict == "no-evidence", verdict.to_dict()
        assert "p_synthetic" not in verdict.evidence["detector"]
        reasons[path.name] = verdict.evidence["reason"]
    assert "colour image" in reasons["colour.png"] and "modality NM" in reasons["nm.dcm"]
    assert "blank image" in reasons["empty.png"]


def test_real_files_from_elsewhere_are_not_called_synthetic(detector):
    """The shared DICOM samples (CT, MR, a 1760-px JPEG 2000 CR, a DX, an enhanced MR, a
    36-file series) and pydicom files in other encodings: the calibrated detector is asked
    about every grey one and suspects none; a colour ultrasound it is not asked about."""
    files = [
        *sorted((samples() / "single").glob("*.dcm")),
        *sorted((samples() / "series_mr_trio_gre_field_mapping_magnitude").glob("*.dcm"))[::6],
        *(Path(get_testdata_file(name)) for name in ("image_dfl.dcm", "MR_small_jp2klossless.dcm")),
        Path(get_testdata_file("examples_jpeg2k.dcm")),
    ]
    verdicts = {Path(v.file).name: v for v in verify_paths(files, detector=detector, audit=AuditIndex())}
    assert len(verdicts) == len(files)
    assert {v.verdict for v in verdicts.values()} == {"no-evidence"}
    for name in ("RG3_J2KR.dcm", "dx_image.dcm", "MR2_UNCI.dcm", "CT_small.dcm"):
        score = verdicts[name].evidence["detector"]
        assert score["applies"] and score["p_synthetic"] < score["threshold"], name
    assert verdicts["examples_jpeg2k.dcm"].evidence["reason"].startswith("detector not applicable: colour")
