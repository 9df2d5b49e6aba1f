"""Medical image I/O: one ``Image`` type, readers and writers for DICOM, NIfTI, NRRD/MHA, PNG/JPEG."""

from radsynth.io.atomic import atomic_path, write_bytes_atomic, write_text_atomic
from radsynth.io.image import Image

__all__ = ["Image", "atomic_path", "write_bytes_atomic", "write_text_atomic"]
