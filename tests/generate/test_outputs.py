"""Writing a generated batch: every format marked synthetic and read back, CT in HU,
a contact sheet and a batch card, and nothing left behind when something fails."""

from __future__ import annotations

import json
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage

from radsynth.errors import InvalidInput
from radsynth.generate import load_pipeline, write_batch
from radsynth.io import Image, read_image
from radsynth.provenance import Payload, detect, read_marking, write_synthetic
from radsynth.provenance.watermark import DEFAULT_STRENGTH, MAX_GAIN

# the watermark moves a pixel by at most this fraction of the display range
MARK = DEFAULT_STRENGTH * MAX_GAIN + 1e-4

PROMPT = "axial T1-weighted brain MR, patient Jane Doe, 01/02/2003"


@pytest.fixture(scope="module")
def images(tiny_models):
    """Three tiny-LDM images (16 px) resized to 64 px, the watermark's smallest size."""
    small = load_pipeline(tiny_models["ldm"]).generate(PROMPT, n=3, seed=5, steps=2)
    return [Image(_resize(im.array), modality=im.modality, metadata=im.metadata) for im in small]


def _resize(array: np.ndarray) -> np.ndarray:
    pic = PILImage.fromarray(array.astype(np.float32), mode="F")
    return np.asarray(pic.resize((64, 64), PILImage.Resampling.BICUBIC)).clip(0, 1)


def test_png_outputs_carry_the_marking_and_the_scrubbed_prompt(images, tmp_path):
    batch = write_batch(images, tmp_path, "png")
    assert [p.name for p in batch.files] == ["ldm_seed00005.png", "ldm_seed00006.png", "ldm_seed00007.png"]
    facts = read_marking(batch.files[0])
    assert facts["synthetic"] is True and facts["seed"] == 5
    assert "Jane" not in facts["prompt"] and "01/02/2003" not in facts["prompt"]
    with PILImage.open(batch.files[0]) as pic:
        assert pic.mode.startswith("I;16") or pic.mode == "I"
        assert pic.size == (64, 64)
        stripped = np.asarray(pic, dtype=np.float64)  # pixels only: the text chunks are gone
    ids = {read_marking(f)["output_id"] for f in batch.files}
    assert len(ids) == 3  # one fresh id per output
    assert _marked_with(stripped, _payload(batch, 0))


def test_dicom_outputs_are_secondary_capture_marked_syn_with_fresh_uids(images, tmp_path):
    batch = write_batch(images, tmp_path, "dicom")
    datasets = [pydicom.dcmread(f) for f in batch.files]
    for ds in datasets:
        assert ds.ConversionType == "SYN"
        assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        assert ds.ContentQualification == "RESEARCH"
        assert ds.Manufacturer == "radsynth"
        assert "SYNTHETIC" in ds.DerivationDescription and "brain MR" in ds.DerivationDescription
        assert str(ds.PatientName) == "SYNTHETIC^RADSYNTH"
        assert "Jane" not in ds.DerivationDescription
    assert len({ds.SOPInstanceUID for ds in datasets}) == 3
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1  # one study per batch
    assert [int(ds.InstanceNumber) for ds in datasets] == [1, 2, 3]
    if shutil.which("dciodvfy"):
        report = subprocess.run(["dciodvfy", str(batch.files[0])], capture_output=True, text=True)
        errors = [line for line in (report.stdout + report.stderr).splitlines() if line.startswith("Error")]
        assert errors == []


def _payload(batch, index: int) -> Payload:
    card = json.loads(batch.card.read_text())
    return Payload.of(card["model_id"], card["files"][index]["output_id"])


def _marked_with(pixels: np.ndarray, payload: Payload) -> bool:
    """The mark is found, and its payload is this output's or (on these noise-like tiny-model
    images, now and then) unreadable, never another output's. Real slices, where the payload
    always reads back, are tested in tests/provenance/test_watermark.py."""
    mark = detect(pixels)
    return mark.found and mark.payload in (None, payload)


def test_dicom_pixels_come_back_as_generated_plus_the_watermark(images, tmp_path):
    batch = write_batch(images, tmp_path, "dicom")
    ds = pydicom.dcmread(batch.files[1])
    values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert 0 < np.abs(values - images[1].array).max() <= MARK
    assert _marked_with(values, _payload(batch, 1))


def test_nifti_outputs_have_description_and_sidecar(images, tmp_path):
    batch = write_batch(images, tmp_path, "nifti")
    nii = nib.load(batch.files[0])
    assert bytes(nii.header["descrip"]).startswith(b"SYNTHETIC radsynth")
    back = read_image(batch.files[0]).array
    assert np.abs(back - images[0].array).max() <= MARK
    assert _marked_with(back, _payload(batch, 0))
    facts = read_marking(batch.files[0])
    assert facts["synthetic"] and facts["seed"] == 5 and facts["nifti_description"].startswith("SYNTHETIC")
    assert (tmp_path / "ldm_seed00005.json").is_file()


def test_ct_outputs_are_written_in_hounsfield_units_through_the_prompts_window(images, tmp_path):
    ct = [
        im.with_array(
            im.array, modality="CT", metadata={**im.metadata, "prompt": "axial chest CT, lung window"}
        )
        for im in images
    ]
    batch = write_batch(ct, tmp_path, "dicom")
    ds = pydicom.dcmread(batch.files[0])
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = -1350.0 + images[0].array * 1500.0  # lung window: level -600, width 1500
    assert np.abs(hu - expected).max() <= 1.0 + MARK * 1500.0
    assert _marked_with(hu, _payload(batch, 0))
    assert float(ds.WindowCenter) == -600 and float(ds.WindowWidth) == 1500
    card = json.loads(batch.card.read_text())
    assert card["files"][0]["units"] == "HU" and card["files"][0]["window"] == "lung"


def test_contact_sheet_carries_its_own_watermark(images, tmp_path):
    batch = write_batch(images, tmp_path, "png")
    with PILImage.open(batch.contact_sheet) as pic:
        pixels = np.asarray(pic, dtype=np.float64)
    facts = read_marking(batch.contact_sheet)
    assert _marked_with(pixels, Payload.of(facts["model_id"], facts["output_id"]))


def test_contact_sheet_and_card_describe_the_batch(images, tmp_path):
    batch = write_batch(images, tmp_path, "png")
    with PILImage.open(batch.contact_sheet) as sheet:
        assert sheet.mode == "L" and sheet.width >= 2 * 16
        assert sheet.text["Synthetic"] == "true"
    card = json.loads(batch.card.read_text())
    assert card["synthetic"] and card["n"] == 3 and card["model_kind"] == "ldm"
    assert [f["seed"] for f in card["files"]] == [5, 6, 7]


def test_an_earlier_output_is_never_replaced_unless_asked(images, tmp_path):
    write_batch(images, tmp_path, "png")
    before = (tmp_path / "ldm_seed00005.png").read_bytes()
    with pytest.raises(InvalidInput, match="would overwrite"):
        write_batch(images, tmp_path, "png")
    assert (tmp_path / "ldm_seed00005.png").read_bytes() == before
    write_batch(images, tmp_path, "png", overwrite=True)


def test_a_failed_batch_leaves_nothing_behind(images, tmp_path, monkeypatch):
    from radsynth.generate import outputs

    calls = []

    def disk_full_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return write_synthetic(*args, **kwargs)

    monkeypatch.setattr(outputs, "write_synthetic", disk_full_on_third)
    with pytest.raises(OSError):
        write_batch(images, tmp_path, "nifti")
    assert list(tmp_path.iterdir()) == []  # neither the first two files nor the staging folder


def test_output_folder_that_is_a_file_is_refused(images, tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    with pytest.raises(InvalidInput, match="is a file"):
        write_batch(images, target, "png")
    with pytest.raises(InvalidInput, match="cannot create"):
        write_batch(images, target / "below", "png")


def test_every_output_and_the_contact_sheet_are_in_the_audit_log(images, tmp_path):
    from radsynth.provenance import check_log, default_log, find_output

    batch = write_batch(images, tmp_path, "nifti")
    card = json.loads(batch.card.read_text())
    for record in card["files"]:
        entry = find_output(record["output_id"])
        assert set(entry["files"]) == {record["file"], record["file"].replace(".nii.gz", ".json")}
    assert check_log(default_log()).ok


def test_an_xray_dicom_carries_the_prompts_view_age_and_sex(images, tmp_path):
    from tests.io.io_helpers import dciodvfy_errors

    prompt = "AP chest X-ray of an 18-month-old girl"
    dx = [im.with_array(im.array, modality="DX", metadata={**im.metadata, "prompt": prompt}) for im in images]
    batch = write_batch(dx, tmp_path, "dicom")
    ds = pydicom.dcmread(batch.files[0])
    assert (ds.Modality, ds.ViewPosition, ds.PatientAge, ds.PatientSex) == ("DX", "AP", "018M", "F")
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.ConversionType == "SYN"
    assert dciodvfy_errors(batch.files[0]) == []


def test_patient_facts_come_only_from_what_the_prompt_states(images):
    from radsynth.generate import patient_attributes

    def facts(prompt, modality):
        return patient_attributes(
            images[0].with_array(images[0].array, modality=modality, metadata={"prompt": prompt})
        )

    assert facts("PA chest radiograph of a 60-year-old man", "DX") == {
        "PatientAge": "060Y",
        "PatientSex": "M",
        "ViewPosition": "PA",
    }
    assert facts("axial chest CT, PA, 45 years, female", "CT") == {"PatientAge": "045Y", "PatientSex": "F"}
    assert facts("Chest X-ray, frontal view, child, age 1-5 years", "DX") == {}
    assert facts("AP chest X-ray, 95 years", "DX") == {"ViewPosition": "AP"}  # over 89: an identifier
