"""Write an ``Image`` as DICOM Secondary Capture: one file for 2D, a series folder for 3D.

Secondary Capture (PS3.3 A.8.1) fits any pixels that did not come straight off a scanner,
synthetic ones included. Each file carries every Type 1 and 2 attribute of the SC Image
IOD (checked with dciodvfy), fresh UIDs, and, beyond the IOD, Image Position/Orientation
(Patient), Slice Thickness and Frame of Reference so that ``read_dicom_series`` rebuilds
the same geometry. Callers add or override attributes (the synthetic marking, patient and
study details) through ``attributes``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from radsynth.errors import InvalidInput
from radsynth.io.atomic import atomic_path
from radsynth.io.dicom_values import StoredPixels, ds_number, stored_pixels
from radsynth.io.image import Image, unit_spacing_assumed

if TYPE_CHECKING:
    from pydicom import Dataset

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
# Body Part Examined defined terms (PS3.16 Annex L) of structures that have no side.
UNPAIRED_BODY_PARTS = frozenset(
    {
        "ABDOMEN",
        "ABDOMENPELVIS",
        "AORTA",
        "BLADDER",
        "BRAIN",
        "CHEST",
        "CHESTABDOMEN",
        "CHESTABDPELVIS",
        "COCCYX",
        "COLON",
        "CSPINE",
        "ESOPHAGUS",
        "HEAD",
        "HEADNECK",
        "HEART",
        "LIVER",
        "LSPINE",
        "MEDIASTINUM",
        "NECK",
        "PANCREAS",
        "PELVIS",
        "PROSTATE",
        "SACRUM",
        "SKULL",
        "SPINE",
        "SPLEEN",
        "SSPINE",
        "STOMACH",
        "THYROID",
        "TRACHEA",
        "TSPINE",
        "UTERUS",
        "WHOLEBODY",
    }
)


@dataclass(frozen=True)
class _Series:
    """What every file of one written series shares."""

    image: Image
    stored: StoredPixels
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    now: dt.datetime
    options: dict[str, Any]


def write_dicom(
    image: Image,
    path: str | Path,
    *,
    attributes: Mapping[str, Any] | None = None,
    patient_name: str = "",
    patient_id: str = "",
    study_instance_uid: str | None = None,
    study_description: str = "",
    series_description: str = "",
    series_number: int = 1,
) -> Path:
    """Write ``image`` as Secondary Capture; returns the file (2D) or series folder (3D).

    CT (``modality="CT"``, values in HU) is stored as int16 with Rescale Slope/Intercept;
    other floats are stored as 16-bit integers with the rescale that maps them back (error
    at most half a step). ``attributes`` maps DICOM keywords to values set last (nested
    mappings become sequences). The output appears whole or not at all.
    """
    from pydicom.uid import generate_uid

    path = Path(path)
    if image.spatial_ndim == 3 and path.suffix.lower() == ".dcm":
        raise InvalidInput("a 3D volume is written as a folder of slices: give a folder path", path)
    _check_attributes(attributes or {}, path)
    series = _Series(
        image=image,
        stored=stored_pixels(image, path),
        study_uid=study_instance_uid or generate_uid(),
        series_uid=generate_uid(),
        frame_of_reference_uid=generate_uid(),
        now=dt.datetime.now(),
        options={
            "attributes": dict(attributes or {}),
            "PatientName": patient_name,
            "PatientID": patient_id,
            "StudyDescription": study_description,
            "SeriesDescription": series_description,
            "SeriesNumber": series_number,
        },
    )
    with atomic_path(path) as tmp:
        if image.spatial_ndim == 2:
            _save(_dataset(series, 0), tmp)
        else:
            tmp.mkdir()
            n = image.spatial_shape[0]
            width = max(4, len(str(n)))
            for k in range(n):
                _save(_dataset(series, k), tmp / f"{k + 1:0{width}d}.dcm")
    return path


def _check_attributes(attributes: Mapping[str, Any], path: Path) -> None:
    from pydicom.datadict import tag_for_keyword

    unknown = [k for k in attributes if tag_for_keyword(k) is None]
    if unknown:
        raise InvalidInput(f"unknown DICOM keywords in attributes: {', '.join(unknown)}", path)


def _save(ds: Dataset, path: Path) -> None:
    ds.save_as(path, enforce_file_format=True)


def _dataset(series: _Series, k: int) -> Dataset:
    """The k-th file of the series: modules in PS3.3 A.8.1 order, then extras."""
    from pydicom import Dataset
    from pydicom.uid import generate_uid

    ds = Dataset()
    sop_uid = generate_uid()
    _file_meta(ds, sop_uid)
    _sop_common(ds, series, sop_uid)
    _patient_study_series(ds, series)
    _general_image(ds, series, k)
    _image_pixel(ds, series, k)
    _plane(ds, series, k)
    _modality_and_voi_lut(ds, series)
    for keyword, value in series.options["attributes"].items():
        setattr(ds, keyword, _dicom_value(value))
    return ds


def _file_meta(ds: Dataset, sop_uid: str) -> None:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    from radsynth import __version__

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationVersionName = f"RADSYNTH_{__version__}"[:16]
    ds.file_meta = meta


def _sop_common(ds: Dataset, series: _Series, sop_uid: str) -> None:
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: any name or description fits
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = series.now.strftime("%Y%m%d")
    ds.InstanceCreationTime = series.now.strftime("%H%M%S")


def _patient_study_series(ds: Dataset, series: _Series) -> None:
    """Patient, General Study, General Series and SC Equipment modules."""
    from radsynth import __version__

    options = series.options
    ds.PatientName = options["PatientName"]
    ds.PatientID = options["PatientID"]
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = series.study_uid
    ds.StudyDate = series.now.strftime("%Y%m%d")
    ds.StudyTime = series.now.strftime("%H%M%S")
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    if options["StudyDescription"]:
        ds.StudyDescription = options["StudyDescription"]
    ds.Modality = series.image.modality
    ds.SeriesInstanceUID = series.series_uid
    ds.SeriesNumber = options["SeriesNumber"]
    if options["SeriesDescription"]:
        ds.SeriesDescription = options["SeriesDescription"]
    _body_part_and_laterality(ds, series.image.metadata)
    ds.ConversionType = "WSD"  # workstation; the synthetic marking overrides with SYN
    ds.SecondaryCaptureDeviceManufacturer = "radsynth"
    ds.SecondaryCaptureDeviceSoftwareVersions = __version__


def _body_part_and_laterality(ds: Dataset, metadata: Mapping[str, Any]) -> None:
    """Laterality is Type 2C: needed (empty when unknown) unless the part is unpaired."""
    body_part = metadata.get("BodyPartExamined")
    if isinstance(body_part, str) and body_part:
        ds.BodyPartExamined = body_part
    side = metadata.get("Laterality") or metadata.get("ImageLaterality")
    if side in ("L", "R"):
        ds.Laterality = side
    elif str(body_part).upper() not in UNPAIRED_BODY_PARTS:
        ds.Laterality = ""


def _general_image(ds: Dataset, series: _Series, k: int) -> None:
    ds.InstanceNumber = k + 1
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.ContentDate = series.now.strftime("%Y%m%d")
    ds.ContentTime = series.now.strftime("%H%M%S")
    plane = _plane_vectors(series.image, k)
    ds.PatientOrientation = [] if plane is None else [_letters(plane[1][:3]), _letters(plane[1][3:])]


def _image_pixel(ds: Dataset, series: _Series, k: int) -> None:
    stored = series.stored
    pixels = stored.array if series.image.spatial_ndim == 2 else stored.array[k]
    ds.SamplesPerPixel = 3 if series.image.rgb else 1
    ds.PhotometricInterpretation = "RGB" if series.image.rgb else "MONOCHROME2"
    if series.image.rgb:
        ds.PlanarConfiguration = 0  # R, G, B interleaved per pixel, as numpy holds them
    ds.Rows, ds.Columns = (int(n) for n in pixels.shape[:2])
    ds.BitsAllocated = stored.bits
    ds.BitsStored = stored.bits
    ds.HighBit = stored.bits - 1
    ds.PixelRepresentation = 1 if stored.signed else 0
    little = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
    ds.PixelData = np.ascontiguousarray(little).tobytes()
    ds["PixelData"].VR = "OB" if stored.bits == 8 else "OW"


def _plane(ds: Dataset, series: _Series, k: int) -> None:
    """Pixel spacing and, where known, the slice's plane in the patient frame."""
    image = series.image
    if not unit_spacing_assumed(image):
        ds.PixelSpacing = [ds_number(image.spacing[1]), ds_number(image.spacing[0])]  # (row, column)
    plane = _plane_vectors(image, k)
    if plane is None:
        return
    position, orientation = plane
    ds.FrameOfReferenceUID = series.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [ds_number(v) for v in position]
    ds.ImageOrientationPatient = [ds_number(v) for v in orientation]
    thickness = image.spacing[2] if image.spatial_ndim == 3 else image.metadata.get("SliceThickness")
    if isinstance(thickness, int | float) and thickness > 0:
        ds.SliceThickness = ds_number(thickness)
        if image.spatial_ndim == 3:
            ds.SpacingBetweenSlices = ds_number(thickness)


def _plane_vectors(image: Image, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(Image Position, Image Orientation) of slice k; None for a 2D image with no plane."""
    if image.spatial_ndim == 2:
        position = image.metadata.get("ImagePositionPatient")
        orientation = image.metadata.get("ImageOrientationPatient")
        if _is_vector(position, 3) and _is_vector(orientation, 6):
            return np.asarray(position, float), np.asarray(orientation, float)
        return None
    direction = image.direction
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise InvalidInput("direction is not orthonormal: DICOM slices cannot hold a sheared grid")
    position = np.asarray(image.origin) + k * image.spacing[2] * direction[:, 2]
    return position, np.concatenate([direction[:, 0], direction[:, 1]])


def _is_vector(value: Any, n: int) -> bool:
    return isinstance(value, list | tuple) and len(value) == n


def _letters(cosines: np.ndarray) -> str:
    """Patient Orientation letters of a direction (PS3.3 C.7.6.1.1.1): L/R, P/A, H/F."""
    letters = ""
    for axis in np.argsort(-np.abs(cosines)):
        if abs(cosines[axis]) > 1e-3:
            letters += ("L", "P", "H")[axis] if cosines[axis] > 0 else ("R", "A", "F")[axis]
    return letters


def _modality_and_voi_lut(ds: Dataset, series: _Series) -> None:
    """Rescale (always for CT and whenever units are known) and the window, in output units."""
    stored, image = series.stored, series.image
    if stored.rescaled or image.modality == "CT" or image.units:
        ds.RescaleIntercept = stored.intercept
        ds.RescaleSlope = stored.slope
        # Rescale Type names the output units (US = unspecified), so units survive.
        ds.RescaleType = "HU" if image.modality == "CT" else (image.units or "US")[:64]
    center = image.metadata.get("WindowCenter")
    width = image.metadata.get("WindowWidth")
    if isinstance(center, int | float) and isinstance(width, int | float) and width >= 1:
        ds.WindowCenter = ds_number(center)
        ds.WindowWidth = ds_number(width)


def _dicom_value(value: Any) -> Any:
    """Mappings become sequence items, so callers can pass nested attributes as dicts."""
    from pydicom import Dataset
    from pydicom.sequence import Sequence

    if isinstance(value, Mapping):
        value = [value]
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        items = []
        for item in value:
            ds = Dataset()
            for keyword, inner in item.items():
                setattr(ds, keyword, _dicom_value(inner))
            items.append(ds)
        return Sequence(items)
    return value
