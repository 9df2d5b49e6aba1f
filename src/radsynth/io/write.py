"""``write_image``: one entry point that picks the writer from the path's extension."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from radsynth.errors import InvalidInput
from radsynth.io.image import Image
from radsynth.io.itk import ITK_SUFFIXES


def write_image(image: Image, path: str | Path, **kwargs: Any) -> Path:
    """Write ``image`` by extension; ``kwargs`` go to that writer.

    ``.nii``/``.nii.gz`` -> ``write_nifti``; ``.nrrd``/``.nhdr``/``.mha``/``.mhd`` ->
    ``write_itk``; ``.png`` -> ``write_png``; ``.jpg``/``.jpeg`` -> ``write_jpeg``; ``.dcm``
    or no extension -> ``write_dicom`` (a 3D image becomes a folder of slices).
    """
    path = Path(path)
    name = path.name.lower()
    suffix = path.suffix.lower()
    if name.endswith((".nii", ".nii.gz")):
        from radsynth.io.nifti import write_nifti

        return write_nifti(image, path, **kwargs)
    if suffix in ITK_SUFFIXES:
        from radsynth.io.itk import write_itk

        return write_itk(image, path, **kwargs)
    if suffix == ".png":
        from radsynth.io.raster import write_png

        return write_png(image, path, **kwargs)
    if suffix in (".jpg", ".jpeg"):
        from radsynth.io.raster import write_jpeg

        return write_jpeg(image, path, **kwargs)
    if suffix in ("", ".dcm"):
        from radsynth.io.dicom_write import write_dicom

        return write_dicom(image, path, **kwargs)
    raise InvalidInput(f"unknown image extension {suffix!r}", path)
