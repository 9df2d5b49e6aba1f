"""Medical image I/O: one ``Image`` type, readers and writers for DICOM, NIfTI, NRRD/MHA, PNG/JPEG.

Importing this package is light (numpy only); pydicom, nibabel, SimpleITK and Pillow are
imported by the functions that need them.
"""

from radsynth.io.atomic import atomic_path, write_bytes_atomic, write_text_atomic
from radsynth.io.dicom import read_dicom
from radsynth.io.dicom_series import DicomSeriesIndex, find_dicom_series, read_dicom_series
from radsynth.io.dicom_write import write_dicom
from radsynth.io.image import Image, unit_spacing_assumed
from radsynth.io.itk import read_itk, write_itk
from radsynth.io.nifti import read_nifti, write_nifti
from radsynth.io.raster import read_raster, write_jpeg, write_png
from radsynth.io.read import read_image
from radsynth.io.write import write_image

__all__ = [
    "DicomSeriesIndex",
    "Image",
    "atomic_path",
    "find_dicom_series",
    "read_dicom",
    "read_dicom_series",
    "read_image",
    "read_itk",
    "read_nifti",
    "read_raster",
    "unit_spacing_assumed",
    "write_bytes_atomic",
    "write_dicom",
    "write_image",
    "write_itk",
    "write_jpeg",
    "write_nifti",
    "write_png",
    "write_text_atomic",
]
