"""NRRD, MetaImage (``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``) through SimpleITK.

SimpleITK already uses our conventions (LPS, (x, y, z) spacing/origin, direction columns
as axis vectors, arrays as (z, y, x)), so the conversion is a copy. Detached headers
(``.nhdr``, ``.mhd``) name their data file; they are written in a temporary folder and
each file is moved into place atomically under its final name, so the header's reference
stays right.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from radsynth.errors import InvalidInput, UnreadableImage
from radsynth.io.atomic import atomic_path
from radsynth.io.image import Image
from radsynth.io.problems import check_claimed_size, check_finite, one_line

ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")


def read_itk(path: str | Path) -> Image:
    """A 2D/3D scalar or RGB image from NRRD or MetaImage; the header's dimensions are
    checked against the file's size before the pixels are read."""
    import SimpleITK as sitk

    path = Path(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        _check_header(reader, path)
        img = reader.Execute()
    except RuntimeError as err:
        raise UnreadableImage(f"cannot read image: {one_line(err)}", path) from err
    components = img.GetNumberOfComponentsPerPixel()
    if "complex" in img.GetPixelIDTypeAsString():
        raise UnreadableImage("complex pixels are not supported; take magnitude first", path)
    if components not in (1, 3):
        raise UnreadableImage(f"{components} components per pixel: scalar or RGB expected", path)
    n = img.GetDimension()
    if n not in (2, 3):
        raise UnreadableImage(f"{n}D image: 2D or 3D expected", path)
    array = sitk.GetArrayFromImage(img)  # (z, y, x[, c])
    check_finite(array, path)
    metadata = {"source_path": str(path)}
    return Image(
        array=array,
        spacing=img.GetSpacing(),
        origin=img.GetOrigin(),
        direction=np.array(img.GetDirection()).reshape(n, n),
        rgb=components == 3,
        metadata=metadata,
    )


def _check_header(reader, path: Path) -> None:
    """Dimensions against the pixel limit and, for a header with its data attached
    (``.nrrd``, ``.mha``), against the file's size; a detached header's data file is
    another file, so there only the pixel limit holds."""
    import SimpleITK as sitk

    itemsize = sitk.Image([1] * reader.GetDimension(), reader.GetPixelID()).GetSizeOfPixelComponent()
    shape = (*reader.GetSize(), reader.GetNumberOfComponents())
    attached = path.suffix.lower() in (".nrrd", ".mha")
    check_claimed_size(shape, itemsize, path.stat().st_size if attached else None, path)


def write_itk(image: Image, path: str | Path, *, compress: bool = True) -> Path:
    """Write NRRD or MetaImage with full geometry; ``compress`` uses zlib where possible."""
    import SimpleITK as sitk

    path = Path(path)
    if path.suffix.lower() not in ITK_SUFFIXES:
        raise InvalidInput(f"expected one of {', '.join(ITK_SUFFIXES)}", path)
    array = image.array.astype(np.uint8) if image.array.dtype == bool else image.array
    img = sitk.GetImageFromArray(array, isVector=image.rgb)
    img.SetSpacing(image.spacing)
    img.SetOrigin(image.origin)
    img.SetDirection(tuple(image.direction.ravel()))  # row-major, as SimpleITK expects
    with atomic_path(path) as header_tmp, tempfile.TemporaryDirectory(dir=header_tmp.parent) as scratch:
        try:
            sitk.WriteImage(img, str(Path(scratch) / path.name), useCompression=compress)
        except RuntimeError as err:
            raise InvalidInput(f"cannot write image: {one_line(err)}", path) from err
        for produced in sorted(Path(scratch).iterdir()):
            if produced.name == path.name:
                produced.replace(header_tmp)
            else:  # the data file of a detached header
                with atomic_path(path.parent / produced.name) as data_tmp:
                    produced.replace(data_tmp)
    return path
