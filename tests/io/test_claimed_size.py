"""Every reader checks a header's dimensions before it allocates: a few bytes claiming
gigapixels are refused at once, in one line, with no memory taken (issue 16, item 3)."""

from __future__ import annotations

import gzip
import resource
import struct
import time
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from radsynth.errors import UnreadableImage
from radsynth.io import read_image


def _nifti(path: Path, shape: tuple[int, ...], gz: bool) -> Path:
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.int16)
    raw = header.binaryblock + b"\0" * 4
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def _png(path: Path, width: int, height: int) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def _dicom(path: Path, source: str, rows: int, frames: int | None = None) -> Path:
    ds = pydicom.dcmread(get_testdata_file(source))
    ds.Rows = ds.Columns = rows
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.save_as(path)
    return path


HOSTILE = {
    "nifti-gz-over-limit": lambda d: _nifti(d / "a.nii.gz", (32767, 32767, 2), gz=True),
    "nifti-gz-short": lambda d: _nifti(d / "b.nii.gz", (8000, 8000, 2), gz=True),
    "nifti-raw-short": lambda d: _nifti(d / "c.nii", (300, 300, 2), gz=False),
    "png-over-limit": lambda d: _png(d / "a.png", 30000, 30000),
    "png-short": lambda d: _png(d / "b.png", 9000, 9000),
    "nrrd-gzip": lambda d: _write(
        d / "a.nrrd",
        b"NRRD0004\ntype: short\ndimension: 3\nsizes: 32767 32767 2\nencoding: gzip\nendian: little\n\n"
        + gzip.compress(bytes(10)),
    ),
    "mha-zlib": lambda d: _write(
        d / "a.mha",
        b"ObjectType = Image\nNDims = 3\nDimSize = 4000 4000 4\nElementType = MET_SHORT\n"
        b"CompressedData = True\nElementDataFile = LOCAL\n" + zlib.compress(bytes(10)),
    ),
    "dicom-native-short": lambda d: _dicom(d / "a.dcm", "CT_small.dcm", 4000),
    "dicom-native-over-limit": lambda d: _dicom(d / "b.dcm", "CT_small.dcm", 32767),
    "dicom-jpeg2000-frames": lambda d: _dicom(d / "c.dcm", "JPEG2000.dcm", 32767, frames=2),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_header_claiming_more_than_the_file_holds_is_refused_before_allocating(tmp_path, kind):
    path = HOSTILE[kind](tmp_path)
    assert path.stat().st_size < 50_000
    before, start = _peak_mb(), time.monotonic()
    with pytest.raises(UnreadableImage) as err:
        read_image(path)
    assert time.monotonic() - start < 2.0
    assert _peak_mb() - before < 100, "the reader allocated what the header claimed"
    assert "\n" not in str(err.value) and path.name in str(err.value)
    assert (
        "limit" in err.value.problem
        or "less than expected" in err.value.problem
        or ("but the file has only" in err.value.problem)
    )


def test_a_volume_that_holds_what_its_header_claims_still_reads(tmp_path):
    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(120, dtype=np.int16).reshape(5, 6, 4), np.eye(4)), path)
    assert read_image(path).array.shape == (4, 6, 5)
