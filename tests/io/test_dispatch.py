"""``read_image`` / ``write_image`` pick the right format; writes are atomic; import is light."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from radsynth.errors import InvalidInput, UnreadableImage
from radsynth.io import atomic_path, read_image, write_image

from .io_helpers import CH2, ITK_DATA, SINGLE, TRIO_SERIES, require


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        (SINGLE / "CT_small.dcm", (128, 128)),
        (TRIO_SERIES, (36, 64, 64)),
        (CH2, (181, 217, 181)),
        (ITK_DATA / "BrainProtonDensity3Slices.mha", (3, 217, 181)),
        (ITK_DATA / "BrainT1SliceBorder20DirectionPlus30.nhdr", (257, 221)),
        (ITK_DATA / "BrainProtonDensitySlice.png", (217, 181)),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else None,
)
def test_read_image_dispatch(path: Path, shape: tuple[int, ...]) -> None:
    assert read_image(require(path)).spatial_shape == shape


def test_extensionless_dicom_is_recognised_by_content(tmp_path: Path) -> None:
    target = tmp_path / "IM000001"
    shutil.copy(require(SINGLE / "MR_small.dcm"), target)
    assert read_image(target).modality == "MR"
    unknown = tmp_path / "notes"
    unknown.write_text("plain text")
    with pytest.raises(UnreadableImage, match="unknown image format"):
        read_image(unknown)
    with pytest.raises(UnreadableImage, match="no such file"):
        read_image(tmp_path / "absent.nii.gz")


@pytest.mark.parametrize("name", ["x.nii.gz", "x.nii", "x.nrrd", "x.mha", "x.png", "x.dcm", "x.jpg"])
def test_write_image_dispatch(name: str, tmp_path: Path) -> None:
    image = read_image(require(ITK_DATA / "BrainProtonDensitySlice.png"))
    out = write_image(image, tmp_path / name)
    back = read_image(out)
    assert back.spatial_ndim == (3 if ".nii" in name else 2)
    if not name.endswith(".jpg"):
        np.testing.assert_array_equal(back.array.reshape(image.array.shape), image.array)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_write_image_unknown_extension(tmp_path: Path) -> None:
    image = read_image(require(ITK_DATA / "BrainProtonDensitySlice.png"))
    with pytest.raises(InvalidInput, match="unknown image extension"):
        write_image(image, tmp_path / "x.tiff")


def test_parent_that_is_a_file_gives_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("I am a file")
    image = read_image(require(ITK_DATA / "BrainProtonDensitySlice.png"))
    for target in (blocker / "x.png", blocker / "deeper" / "x.nii.gz", blocker / "series"):
        with pytest.raises(InvalidInput, match=f"{blocker} is a file, not a folder") as caught:
            write_image(image, target)
        assert "\n" not in str(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_failed_write_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.nii.gz"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half written")
        raise RuntimeError("writer crashed")
    assert list(tmp_path.iterdir()) == []


def test_import_is_light() -> None:
    code = (
        "import sys, radsynth.io; "
        "print(sorted(m for m in ('pydicom', 'nibabel', 'SimpleITK', 'PIL', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
