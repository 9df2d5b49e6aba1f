"""NIfTI-1/2 (``.nii``, ``.nii.gz``) through nibabel, converted to the LPS convention.

nibabel's affine maps (i, j, k) voxel indices to RAS+ mm (x to the patient's right is
negative). Our ``Image`` is LPS: flipping the sign of the first two rows of the affine is
the whole conversion, the same one ITK/SimpleITK makes, so both read the same geometry.
nibabel's affine is the sform when its code is set, else the qform.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radsynth.errors import InvalidInput, UnreadableImage
from radsynth.io.atomic import atomic_path
from radsynth.io.image import Image
from radsynth.io.problems import check_claimed_size, check_finite, one_line

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
# NIfTI xyzt_units spatial codes -> mm per unit.
MM_PER_UNIT = {"meter": 1000.0, "mm": 1.0, "micron": 1e-3, "unknown": 1.0}


def read_nifti(path: str | Path) -> Image:
    """A 3D NIfTI volume (a 4D file with one volume too) as an LPS ``Image``.

    Scaling (scl_slope/inter) is applied; NaN or infinite voxels raise ``UnreadableImage``.
    The header's dimensions are checked against the file's size before the voxels are read.
    """
    import nibabel as nib

    path = Path(path)
    try:
        img = nib.load(path)
        itemsize = img.header.get_data_dtype().itemsize
    except Exception as err:  # nibabel, gzip and zlib each raise their own types
        raise UnreadableImage(f"cannot read NIfTI: {one_line(err)}", path) from err
    compressed = path.name.lower().endswith(".gz")
    check_claimed_size(img.shape, itemsize, path.stat().st_size, path, compressed=compressed)
    try:
        data = np.asanyarray(img.dataobj)
        affine = np.asarray(img.affine, dtype=float)
        unit = img.header.get_xyzt_units()[0]
        descrip = img.header.get("descrip")
    except Exception as err:  # nibabel, gzip and zlib each raise their own types
        raise UnreadableImage(f"cannot read NIfTI: {one_line(err)}", path) from err
    data = _as_volume(data, path)
    check_finite(data, path)
    spacing, origin, direction = lps_geometry(affine, MM_PER_UNIT.get(unit or "unknown", 1.0))
    metadata = {"source_path": str(path)}
    text = bytes(descrip).split(b"\0")[0].decode("utf-8", "replace").strip() if descrip is not None else ""
    if text:
        metadata["descrip"] = text
    return Image(
        array=np.ascontiguousarray(data.transpose(2, 1, 0)),  # (x, y, z) -> (z, y, x)
        spacing=spacing,
        origin=origin,
        direction=direction,
        metadata=metadata,
    )


def _as_volume(data: np.ndarray, path: Path) -> np.ndarray:
    if data.dtype.names is not None:
        raise UnreadableImage(f"structured voxels ({data.dtype}) are not supported", path)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise UnreadableImage(f"{data.ndim}D data of shape {data.shape}: one 3D volume expected", path)
    return data


def lps_geometry(affine_ras: np.ndarray, mm_per_unit: float = 1.0):
    """(spacing, origin, direction) in LPS mm from a 4x4 voxel-to-RAS affine."""
    lps = RAS_TO_LPS @ affine_ras
    lps[:3] *= mm_per_unit
    columns = lps[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    if np.any(spacing == 0):
        raise InvalidInput(f"affine has a zero-length axis: {affine_ras.tolist()}")
    return tuple(spacing), tuple(lps[:3, 3]), columns / spacing


def write_nifti(image: Image, path: str | Path, *, description: str | None = None) -> Path:
    """Write ``.nii`` / ``.nii.gz`` keeping the dtype; qform = sform = the LPS->RAS affine.

    A 2D image becomes a one-slice volume. ``description`` fills the 80-byte ``descrip``
    header field (UTF-8, cut to 79 bytes).
    """
    import nibabel as nib

    path = Path(path)
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        raise InvalidInput("NIfTI files end in .nii or .nii.gz", path)
    if image.rgb:
        raise InvalidInput("RGB images are not written as NIfTI; write PNG or DICOM", path)
    array, affine_lps = _as_3d(image)
    data = _nifti_dtype(array.transpose(2, 1, 0), path)  # (z, y, x) -> (x, y, z)
    affine_ras = RAS_TO_LPS @ affine_lps  # the flip is its own inverse
    img = nib.Nifti1Image(data, affine_ras)
    img.header.set_qform(affine_ras, code=1)  # 1 = scanner anatomical
    img.header.set_sform(affine_ras, code=1)
    img.header.set_xyzt_units("mm")
    img.header.set_data_dtype(data.dtype)
    if description:
        img.header["descrip"] = description.encode("utf-8")[:79]
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    return path


def _as_3d(image: Image) -> tuple[np.ndarray, np.ndarray]:
    """Pixels as (z, y, x) and the 4x4 LPS affine (2D images get a unit-thick slice)."""
    if image.spatial_ndim == 3:
        return image.array, image.affine
    affine = np.eye(4)
    affine[:2, :2] = image.affine[:2, :2]
    affine[:2, 3] = image.affine[:2, 2]
    return image.array[None], affine


def _nifti_dtype(data: np.ndarray, path: Path) -> np.ndarray:
    """NIfTI has no bool or float16; int64 is kept only when it does not fit int32."""
    if data.dtype == bool:
        return data.astype(np.uint8)
    if data.dtype == np.float16:
        return data.astype(np.float32)
    int32 = np.iinfo(np.int32)
    if data.dtype == np.int64 and data.size and int32.min <= data.min() <= data.max() <= int32.max:
        return data.astype(np.int32)
    if data.dtype.kind not in "iuf":
        raise InvalidInput(f"cannot write {data.dtype} voxels to NIfTI", path)
    return data
