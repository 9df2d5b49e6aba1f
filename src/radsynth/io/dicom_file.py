"""Open one DICOM file as a pydicom dataset, or fail with one line that names the file.

Real archives hold files without the 128-byte preamble, files whose meta header lacks the
transfer syntax, truncated copies and stray non-DICOM files with a ``.dcm`` name. The first
two are read (the encoding pydicom parsed the data set with is the transfer syntax); the
others become ``UnreadableImage``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from radsynth.errors import UnreadableImage
from radsynth.io.problems import one_line

if TYPE_CHECKING:
    from pydicom import Dataset

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# A data set written without preamble and meta header starts with a group 0x0002 or
# 0x0008 tag; anything else (text, PNG, NIfTI) is not DICOM.
RAW_DATASET_GROUPS = (0x0002, 0x0008)


def has_dicm_prefix(path: Path) -> bool:
    """True when the file carries the DICOM preamble: 128 bytes then ``DICM``."""
    with open(path, "rb") as f:
        head = f.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


def looks_like_raw_dataset(path: Path) -> bool:
    """True when the file starts like a DICOM data set written without a preamble."""
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) < 4:
        return False
    return any(int.from_bytes(head[:2], order) in RAW_DATASET_GROUPS for order in ("little", "big"))


def has_pixels(ds: Dataset) -> bool:
    return any(keyword in ds for keyword in PIXEL_KEYWORDS)


def read_dataset(path: str | Path, *, stop_before_pixels: bool = False, **kwargs) -> Dataset:
    """Parse ``path`` with pydicom; ``UnreadableImage`` for anything that is not DICOM.

    ``kwargs`` go to ``pydicom.dcmread`` (``specific_tags``, ``defer_size``).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    if not path.is_file():
        raise UnreadableImage("no such file" if not path.exists() else "not a file", path)
    if path.stat().st_size == 0:
        raise UnreadableImage("empty file (0 bytes)", path)
    force = not has_dicm_prefix(path)
    if force and not looks_like_raw_dataset(path):
        raise UnreadableImage("not a DICOM file (no 'DICM' prefix and no DICOM data set)", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=force, stop_before_pixels=stop_before_pixels, **kwargs)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as err:
        raise UnreadableImage(f"cannot parse DICOM: {one_line(err)}", path) from err
    if force and len(ds) == 0:
        raise UnreadableImage("not a DICOM file (no DICOM data set found)", path)
    if len(ds) == 0 and not kwargs.get("specific_tags"):
        raise UnreadableImage("no DICOM elements after the header: truncated file", path)
    _ensure_transfer_syntax(ds, path)
    return ds


def _ensure_transfer_syntax(ds: Dataset, path: Path) -> None:
    """Fill a missing Transfer Syntax UID from the encoding pydicom actually parsed.

    That is exact for native (uncompressed) pixel data; compressed pixel data without a
    transfer syntax cannot be decoded, since nothing says which codec made it.
    """
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    if "TransferSyntaxUID" in meta:
        return
    if "PixelData" in ds and ds["PixelData"].is_undefined_length:
        raise UnreadableImage("compressed Pixel Data but no Transfer Syntax UID to say how", path)
    implicit, little = ds.original_encoding
    if implicit is None:
        return
    meta.TransferSyntaxUID = (
        ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    )
