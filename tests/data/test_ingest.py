import csv
import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from radsynth.data.ingest import ingest
from radsynth.data.problems import SkipKind, skip_kind
from radsynth.data.qc import check_manifest
from radsynth.errors import (
    GeometryMismatch,
    InvalidInput,
    MissingSlices,
    MixedOrientations,
    NonFiniteVoxels,
    UnreadableImage,
)
from radsynth.io import read_image


def test_real_mr_series(mr_series, tmp_path):
    result = ingest(mr_series, tmp_path / "out")
    assert result.problems == []
    assert 10 <= len(result.records) <= 36  # slices with enough foreground
    assert {r.subject for r in result.records} == {"Rorden Lab"}  # PatientID
    assert {r.modality for r in result.records} == {"MR"} and {r.plane for r in result.records} == {"axial"}
    assert len({r.split for r in result.records}) == 1
    assert result.qc.ok
    assert check_manifest(result.manifest).ok
    assert read_image(result.folder / result.records[0].path).array.shape == (64, 64)


def _series_copy(src, dest, drop=(), tilt=()):
    """A copy of a real series under a new SeriesInstanceUID, minus ``drop`` files, with
    ``tilt`` files given another orientation (their pixels untouched)."""
    dest.mkdir(parents=True)
    uid = generate_uid()
    for i, path in enumerate(sorted(src.glob("*.dcm"))):
        if i in drop:
            continue
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = uid
        if i in tilt:
            ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
        ds.save_as(dest / path.name)


@pytest.fixture
def messy_folder(mr_series, ch2, tmp_path):
    root = tmp_path / "in"
    shutil.copytree(mr_series, root / "good_series")
    _series_copy(mr_series, root / "gap_series", drop=(10,))
    _series_copy(mr_series, root / "tilted_series", tilt=(3, 4))
    data = (mr_series / "00001.dcm").read_bytes()
    (root / "loose").mkdir()
    (root / "loose" / "truncated.dcm").write_bytes(data[: len(data) // 2])
    (root / "loose" / "notes.dcm").write_text("not an image at all\n")
    image = nib.load(ch2)
    nan = np.asarray(image.dataobj, np.float32)
    nan[90, 100, 80] = np.nan
    nib.save(nib.Nifti1Image(nan, image.affine), root / "nan_volume.nii.gz")
    return root


def test_bad_inputs_are_skipped_one_line_each(messy_folder, tmp_path):
    lines = []
    result = ingest(messy_folder, tmp_path / "out", on_problem=lambda p: lines.append(str(p)))
    assert {r.subject for r in result.records} == {"Rorden Lab"}
    assert len({r.extra["source_file"] for r in result.records}) == 1  # only the good series
    skipped = result.skipped()
    assert skipped["missing slices"] == 1 and skipped["mixed orientations"] == 1
    assert skipped["NaN or infinite voxels"] == 1
    assert sum(skipped.values()) == len(lines) == 5, lines
    assert all("\n" not in line for line in lines)
    by_name = {line.split(":")[0].rsplit("/", 1)[-1]: line for line in lines}
    assert "nan_volume.nii.gz" in by_name and "NaN" in by_name["nan_volume.nii.gz"]
    assert "gap_series" in by_name and "tilted_series" in by_name
    assert "notes.dcm" in by_name or any("notes.dcm" in line for line in lines)
    assert any("truncated.dcm" in line for line in lines)


def test_pngs_with_a_csv_of_texts(brain_t1_png, tmp_path):
    root = tmp_path / "pngs"
    root.mkdir()
    shutil.copy(brain_t1_png, root / "t1.png")
    shutil.copy(brain_t1_png.with_name("BrainProtonDensitySlice.png"), root / "pd.png")
    shutil.copy(brain_t1_png.with_name("BrainMidSagittalSlice.png"), root / "unlisted.png")
    table = root / "reports.csv"
    with table.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "report", "patient"])
        writer.writerow(["t1.png", "axial T1-weighted brain MR, normal", "colin"])
        writer.writerow(["pd.png", "axial PD-weighted brain MR, normal", "colin"])
    result = ingest(
        root,
        tmp_path / "out",
        csv_path=table,
        text_column="report",
        path_column="file",
        subject_column="patient",
    )
    assert sorted(r.text for r in result.records) == [
        "axial PD-weighted brain MR, normal",
        "axial T1-weighted brain MR, normal",
    ]
    assert {r.subject for r in result.records} == {"colin"}
    assert result.skipped() == {"not in the CSV": 1}


def test_unusable_csv_skips_its_images_but_not_the_volumes(mr_series, brain_t1_png, tmp_path):
    root = tmp_path / "in"
    shutil.copytree(mr_series, root / "series")
    shutil.copy(brain_t1_png, root / "t1.png")
    table = tmp_path / "bad.csv"
    table.write_bytes("path,text\nt1.png,caf\xe9\n".encode("latin-1"))
    result = ingest(root, tmp_path / "out", csv_path=table)
    assert result.skipped() == {"CSV unusable": 1, "no text (CSV unusable)": 1}
    assert "not UTF-8" in result.problems[0].detail and result.records
    missing_column = tmp_path / "cols.csv"
    missing_column.write_text("path,caption\nt1.png,x\n", encoding="utf-8")
    result = ingest(root, tmp_path / "out2", csv_path=missing_column)
    assert "no column 'text' (columns: path, caption)" in result.problems[0].detail


def test_empty_or_unreadable_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="no image files found"):
        ingest(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.dcm").write_text("nothing\n")
    with pytest.raises(InvalidInput, match="nothing readable"):
        ingest(tmp_path / "junk", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_skip_is_counted_by_the_errors_type_not_the_words_of_its_message():
    assert skip_kind(MissingSlices("gap of 4.5 mm between slices")) == SkipKind.MISSING_SLICES
    assert skip_kind(MixedOrientations("2 of 9 files differ")) == SkipKind.MIXED_ORIENTATIONS
    assert skip_kind(NonFiniteVoxels("contains 3 NaN voxels")) == SkipKind.NON_FINITE
    # Words that once sorted these wrongly: a missing position is not a mixed orientation,
    # and a case named "nancy" holds no NaN.
    no_position = GeometryMismatch("slices lack Image Position/Orientation (Patient)")
    assert skip_kind(no_position) == SkipKind.BAD_GEOMETRY
    assert skip_kind(InvalidInput("case nancy: empty body mask")) == SkipKind.INVALID
    assert skip_kind(UnreadableImage("truncated file")) == SkipKind.UNREADABLE
    assert str(SkipKind.NOT_IN_CSV) == "not in the CSV"  # what the summary prints
