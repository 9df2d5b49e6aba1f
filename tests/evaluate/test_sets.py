"""Loading sets and refusing what cannot be compared: empty sets, mixed or mismatched
sizes, a modality the real set lacks, NaNs; each one line, each its own error type."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.data.manifest import load_manifest
from radsynth.errors import InvalidInput, NotEnoughSamples, RadsynthError, SetMismatch
from radsynth.evaluate.sets import check_comparable, load_set


def test_a_manifest_set_keeps_texts_attributes_and_subjects(held_out):
    assert held_out.images.shape == (48, 64, 64) and held_out.images.dtype == np.float32
    assert held_out.images.min() >= 0 and held_out.images.max() <= 1
    assert set(held_out.modalities) == {"CT", "MR"}
    assert "present" in held_out.attributes["finding"]  # lung2 tumours, brain2 lesions
    assert len(set(held_out.groups)) == 3  # val: MNI152; test: lung2, brain2


def test_an_empty_selection_is_refused(demo_manifest):
    with pytest.raises(NotEnoughSamples, match="real set is empty"):
        load_set(demo_manifest, "real", ("no-such-split",))


def test_a_missing_path_and_a_folder_without_batches_are_refused(tmp_path):
    with pytest.raises(InvalidInput, match="no such manifest or folder"):
        load_set(tmp_path / "nothing", "synthetic")
    with pytest.raises(InvalidInput, match="not written by radsynth generate"):
        load_set(tmp_path, "synthetic")


def test_mismatched_sizes_are_refused_unless_resampling_is_asked(held_out, training):
    small = training.resized((32, 32))
    with pytest.raises(SetMismatch, match="32x32 but real images are 64x64; pass --resample"):
        check_comparable(held_out, small)
    assert check_comparable(held_out, small, resample=True).size == (64, 64)


def test_a_modality_the_real_set_lacks_is_refused(held_out, training):
    mr_only = held_out.subset(np.asarray(held_out.modalities) == "MR")
    with pytest.raises(SetMismatch, match="modality CT that the real set lacks"):
        check_comparable(mr_only, training)


def test_mixed_sizes_within_a_set_and_nans_are_refused(demo_manifest, copy_manifest, tmp_path):
    from PIL import Image

    records = load_manifest(demo_manifest)[:3]
    manifest = copy_manifest(tmp_path / "mixed", records)
    odd = tmp_path / "mixed" / records[1].path
    Image.open(odd).resize((32, 32)).save(odd)
    with pytest.raises(SetMismatch, match="mixes image sizes"):
        load_set(manifest, "real")
    assert load_set(manifest, "real", resample=True).size == (64, 64)

    nan_folder = tmp_path / "nan" / "batch"
    nan_folder.mkdir(parents=True)
    import nibabel

    pixels = np.full((8, 8, 1), np.nan, np.float32)
    nibabel.save(nibabel.Nifti1Image(pixels, np.eye(4)), nan_folder / "a.nii.gz")
    (nan_folder / "generation.json").write_text(
        '{"prompt": "axial brain MR", "files": [{"file": "a.nii.gz"}]}'
    )
    with pytest.raises(RadsynthError, match="NaN"):
        load_set(tmp_path / "nan", "synthetic")


@pytest.mark.slow  # generates with the shipped LDM
@pytest.mark.parametrize("fmt", ["dicom", "nifti"])
def test_generated_dicom_and_nifti_read_back_as_the_png_pixels(tmp_path, fmt):
    from radsynth.cli import main

    prompt = "axial chest CT, lung window, tumour in the right lung"
    for kind in ("png", fmt):
        args = ["generate", prompt, "-n", "2", "--model", "gan", "--format", kind, "-o", str(tmp_path / kind)]
        assert main(args) == 0
    png, other = load_set(tmp_path / "png", "synthetic"), load_set(tmp_path / fmt, "synthetic")
    assert other.size == (64, 64) and other.modalities == ("CT", "CT")
    # the same pixels up to each output's own watermark (its payload is the output id)
    assert np.corrcoef(png.images.ravel(), other.images.ravel())[0, 1] > 0.98
    assert abs(png.images.mean() - other.images.mean()) < 0.01  # same units: CT window undone
    assert other.attributes["finding"] == ("present", "present")
