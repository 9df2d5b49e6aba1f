"""Ingest on real folders as they come: pydicom's own test files plus the shared DICOM
samples (projection radiographs, multi-frame files, copies of one image in ten encodings,
DICOMDIRs, reports, dose grids), and real series reshaped the way scanners write them."""

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.uid import generate_uid

from radsynth.data.ingest import ingest
from radsynth.data.problems import SkipKind
from radsynth.errors import InvalidInput

REPO = Path(__file__).resolve().parents[2]
SAMPLES = (REPO / ".." / "shared" / "data" / "dicom_samples").resolve()


def samples() -> Path:
    """The shared DICOM samples: a missing folder fails the test (CI has ../shared)."""
    assert (SAMPLES / "SOURCE.md").is_file(), f"{SAMPLES} is missing: ../shared/data beside the repository"
    return SAMPLES


@pytest.fixture(scope="module")
def real_folder(tmp_path_factory) -> Path:
    """Every pydicom test file (pydicom 3.0.2: 176 files) and the 46 shared sample files."""
    root = tmp_path_factory.mktemp("real") / "in"
    files = [Path(f) for f in get_testdata_files() if Path(f).is_file()]
    base = Path(get_testdata_file("CT_small.dcm")).parent
    for path in files:
        target = root / "pydicom" / path.relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    shutil.copytree(samples(), root / "dicom_samples")
    return root


def test_pydicom_test_files_and_the_shared_samples_give_the_readme_counts(real_folder, tmp_path):
    """The figures in the README's ingest paragraph. main before issue 21 stopped on
    badVR.dcm with a traceback; without that file it ingested 19 of 116 inputs (67 images)."""
    assert pydicom.__version__ == "3.0.2", "the counts below are for pydicom 3.0.2's test files"
    lines = []
    result = ingest(real_folder, tmp_path / "out", on_problem=lambda p: lines.append(str(p)))
    assert (result.inputs, len(result.problems), len(result.records)) == (146, 94, 132)
    assert result.skipped() == {
        str(SkipKind.NO_PIXELS): 69,
        str(SkipKind.NOT_DICOM): 5,
        str(SkipKind.UNREADABLE): 5,
        str(SkipKind.NOT_ANATOMY): 5,
        str(SkipKind.MIXED_ORIENTATIONS): 4,
        str(SkipKind.REPEATED_POSITIONS): 4,
        str(SkipKind.MIXED_SHAPES): 1,
        str(SkipKind.MISSING_SLICES): 1,
    }
    assert all("\n" not in line and line.startswith(str(real_folder)) for line in lines)
    modalities = {r.modality for r in result.records}
    assert {"CR", "DX", "US", "OT", "NM", "CT", "MR"} <= modalities  # projections, cine, volumes


def test_the_shared_samples_alone_ingest_whole(tmp_path):
    result = ingest(samples(), tmp_path / "out")
    assert (result.inputs, result.problems, len(result.records)) == (9, [], 53)


def _copy(paths, folder: Path, **attributes) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for path in paths:
        ds = pydicom.dcmread(path)
        for key, value in attributes.items():
            setattr(ds, key, value)
        ds.SOPInstanceUID = generate_uid()
        ds.save_as(folder / Path(path).name)
        out.append(folder / Path(path).name)
    return out


def test_projection_radiographs_in_one_series_are_each_a_2d_image(tmp_path):
    """A CR (JPEG 2000) and a DX without Image Position, filed under one series."""
    single = samples() / "single"
    uid = generate_uid()
    _copy([single / "RG3_J2KR.dcm", single / "dx_image.dcm"], tmp_path / "in", SeriesInstanceUID=uid)
    result = ingest(tmp_path / "in", tmp_path / "out")
    assert result.problems == []
    assert sorted(r.modality for r in result.records) == ["CR", "DX"]
    assert all(r.shape == (64, 64) and r.plane is None for r in result.records)


def test_two_echoes_at_the_same_positions_are_split_into_two_volumes(tmp_path):
    trio = sorted((samples() / "series_mr_trio_gre_field_mapping_magnitude").glob("*.dcm"))
    uid = generate_uid()
    _copy(trio, tmp_path / "in" / "echo1", SeriesInstanceUID=uid, EchoNumbers=1)
    _copy(trio, tmp_path / "in" / "echo2", SeriesInstanceUID=uid, EchoNumbers=2, EchoTime=7.38)
    lines = []
    result = ingest(tmp_path / "in", tmp_path / "out", on_problem=lambda p: lines.append(str(p)))
    assert lines == []
    series = {r.extra["source_file"] for r in result.records}
    assert len(series) == 2 and {Path(s).name for s in series} == {"echo1", "echo2"}
    per_echo = [sum(r.extra["source_file"] == s for r in result.records) for s in series]
    assert per_echo[0] == per_echo[1] >= 10  # the same informative slices of each volume


def test_a_series_with_distinct_positions_and_mixed_echoes_stays_one_volume(tmp_path):
    """The shared Trio series: 36 positions, echo 1 or 2 per file (SOURCE.md)."""
    result = ingest(samples() / "series_mr_trio_gre_field_mapping_magnitude", tmp_path / "out")
    assert result.problems == [] and {r.plane for r in result.records} == {"axial"}
    assert len({r.extra["source_file"] for r in result.records}) == 1


def test_a_multi_frame_file_in_a_series_of_single_frames_is_its_own_series(tmp_path):
    single = samples() / "single"
    uid = generate_uid()
    _copy([single / "emri_small.dcm", single / "MR_small.dcm"], tmp_path / "in", SeriesInstanceUID=uid)
    lines = []
    result = ingest(tmp_path / "in", tmp_path / "out", on_problem=lambda p: lines.append(str(p)))
    assert lines == []
    sources = {Path(r.extra["source_file"]).name for r in result.records}
    assert sources == {"emri_small.dcm", "MR_small.dcm"}


def test_copies_of_one_slice_that_nothing_tells_apart_are_one_typed_line(tmp_path):
    mr = get_testdata_file("MR_small.dcm")
    _copy([mr], tmp_path / "in" / "a")
    _copy([mr], tmp_path / "in" / "b")
    with pytest.raises(InvalidInput, match="nothing readable"):
        ingest(tmp_path / "in", tmp_path / "out")
    lines = []
    (tmp_path / "in" / "c").mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "in" / "c")
    result = ingest(tmp_path / "in", tmp_path / "out", on_problem=lambda p: lines.append(str(p)))
    assert result.skipped() == {str(SkipKind.REPEATED_POSITIONS): 1}
    assert len(lines) == 1 and "series" in lines[0] and "(2 files)" in lines[0], lines
