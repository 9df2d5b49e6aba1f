"""``read_image``: one entry point that picks the reader from the path and its content."""

from __future__ import annotations

from pathlib import Path

from radsynth.errors import UnreadableImage
from radsynth.io.dicom_file import has_dicm_prefix
from radsynth.io.image import Image
from radsynth.io.itk import ITK_SUFFIXES
from radsynth.io.raster import RASTER_SUFFIXES

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def image_format(path: Path) -> str | None:
    """'dicom', 'dicom_series', 'nifti', 'itk', 'raster', or None when unknown.

    The extension decides when it is a known one; extension-less files are recognised by
    their first bytes (the DICOM preamble, PNG or JPEG signatures).
    """
    name = path.name.lower()
    if path.is_dir():
        return "dicom_series"
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    suffix = path.suffix.lower()
    for kind, suffixes in (("itk", ITK_SUFFIXES), ("raster", RASTER_SUFFIXES), ("dicom", DICOM_SUFFIXES)):
        if suffix in suffixes:
            return kind
    if not path.is_file():
        return None
    if has_dicm_prefix(path):
        return "dicom"
    with open(path, "rb") as f:
        head = f.read(8)
    return "raster" if head.startswith((PNG_MAGIC, JPEG_MAGIC)) else None


def read_image(path: str | Path) -> Image:
    """Read any supported image: DICOM file or series folder, NIfTI, NRRD/MHA, PNG/JPEG.

    Raises ``UnreadableImage`` (missing, unknown format, corrupt) or ``GeometryMismatch``
    (a series folder that is not one volume).
    """
    path = Path(path)
    if not path.exists():
        raise UnreadableImage("no such file or folder", path)
    kind = image_format(path)
    if kind == "dicom_series":
        from radsynth.io.dicom_series import read_dicom_series

        return read_dicom_series(path)
    if kind == "dicom":
        from radsynth.io.dicom import read_dicom

        return read_dicom(path)
    if kind == "nifti":
        from radsynth.io.nifti import read_nifti

        return read_nifti(path)
    if kind == "itk":
        from radsynth.io.itk import read_itk

        return read_itk(path)
    if kind == "raster":
        from radsynth.io.raster import read_raster

        return read_raster(path)
    raise UnreadableImage(f"unknown image format (extension {path.suffix or 'none'!r})", path)
