"""The DICOM attributes an ``Image`` keeps in its metadata, as plain JSON-able values.

Enough to group, split and describe images (study, series, patient, body part, window)
without dragging a pydicom Dataset around; never pixel data or private tags.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from radsynth.io.dicom_frames import frame_value

if TYPE_CHECKING:
    from pydicom import Dataset

KEPT_KEYWORDS = (
    "PatientID",
    "PatientSex",
    "PatientAge",
    "StudyInstanceUID",
    "StudyDate",
    "StudyDescription",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "FrameOfReferenceUID",
    "BodyPartExamined",
    "Laterality",
    "ImageLaterality",
    "ViewPosition",
    "ProtocolName",
    "ImageType",
    "Manufacturer",
    "ManufacturerModelName",
    "PhotometricInterpretation",
    "SliceThickness",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "ConversionType",
    "ContentQualification",
    "BurnedInAnnotation",
)


def plain(value: Any) -> Any:
    """A pydicom value as str / int / float / list of those (None for bytes or sequences)."""
    from pydicom.multival import MultiValue
    from pydicom.sequence import Sequence
    from pydicom.valuerep import IS, DSdecimal, DSfloat

    if isinstance(value, MultiValue | list | tuple):
        items = [plain(v) for v in value]
        return None if any(v is None for v in items) else items
    if isinstance(value, bytes | bytearray | Sequence):
        return None
    if isinstance(value, IS | int):
        return int(value)
    if isinstance(value, DSfloat | DSdecimal | float):
        return float(value)
    return str(value)


def dicom_metadata(ds: Dataset, notes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Kept attributes of ``ds`` plus window, transfer syntax and decoding notes."""
    meta: dict[str, Any] = {}
    for keyword in KEPT_KEYWORDS:
        value = ds.get(keyword)
        if value in (None, ""):
            continue
        converted = plain(value)
        if converted not in (None, "", []):
            meta[keyword] = converted
    meta.update(_window(ds, notes or {}))
    syntax = getattr(ds, "file_meta", None) and ds.file_meta.get("TransferSyntaxUID")
    if syntax:
        meta["TransferSyntaxUID"] = str(syntax)
    if notes:
        meta.update(notes)
    return meta


def _window(ds: Dataset, notes: dict[str, Any]) -> dict[str, float]:
    """First Window Center/Width, in output units (flipped with a MONOCHROME1 inversion)."""
    center = frame_value(ds, 0, "FrameVOILUTSequence", "WindowCenter")
    width = frame_value(ds, 0, "FrameVOILUTSequence", "WindowWidth")
    if center in (None, "") or width in (None, ""):
        return {}
    center = plain(center)
    width = plain(width)
    center = float(center[0] if isinstance(center, list) else center)
    width = float(width[0] if isinstance(width, list) else width)
    pivot = notes.get("monochrome1_inverted_about")
    if pivot is not None:
        center = pivot - center
    return {"WindowCenter": center, "WindowWidth": width}
