"""Synthetic marking: the one place every radsynth writer goes through.

A synthetic image that leaves radsynth must never pass for a patient's scan. Each output
carries the same facts in the form its format allows (DESIGN.md, "Synthetic marking"):

- DICOM: fresh Study/Series/SOP Instance UIDs (made by the writer, never copied), Secondary
  Capture Equipment with Conversion Type ``SYN``, Image Type ``DERIVED\\SECONDARY``,
  Derivation Description naming model and prompt, Content Qualification ``RESEARCH``,
  Manufacturer / Model / Software Versions = radsynth / model id / version, and a patient
  identity that is plainly synthetic.
- PNG: tEXt chunks with the same facts.
- NIfTI: ``descrip`` (80 bytes, so a short form) plus a JSON sidecar with everything.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from radsynth.errors import InvalidInput
from radsynth.io import Image, write_dicom, write_nifti, write_png, write_text_atomic

FORMATS = ("png", "dicom", "nifti")
SYNTHETIC_PATIENT_NAME = "SYNTHETIC^RADSYNTH"
_SUFFIX = {"png": ".png", "dicom": ".dcm", "nifti": ".nii.gz"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _version() -> str:
    from radsynth import __version__

    return __version__


@dataclass(frozen=True)
class SyntheticFacts:
    """What is known about one synthetic output; written into every format.

    ``prompt`` must already be scrubbed of identifiers (``radsynth.text.scrub_phi``): it is
    stored verbatim in the file.
    """

    model_id: str
    prompt: str
    seed: int | None = None
    task: str = "generate"
    output_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    radsynth_version: str = field(default_factory=_version)
    created: str = field(default_factory=_now)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def derivation(self) -> str:
        """Human-readable one-liner: who made this and from what."""
        seed = "" if self.seed is None else f", seed {self.seed}"
        return (
            f"SYNTHETIC image made by radsynth {self.radsynth_version} ({self.task}), "
            f"model {self.model_id}{seed}, output {self.output_id}: {self.prompt}"
        )

    def dicom_attributes(self) -> dict[str, Any]:
        """DICOM keywords the writer sets on every instance (UIDs are made fresh there)."""
        return {
            "ConversionType": "SYN",
            "ImageType": ["DERIVED", "SECONDARY"],
            "DerivationDescription": self.derivation[:1024],
            "ContentQualification": "RESEARCH",
            "Manufacturer": "radsynth",
            "ManufacturerModelName": self.model_id[:64],
            "SoftwareVersions": self.radsynth_version[:64],
            "PatientName": SYNTHETIC_PATIENT_NAME,
            "PatientID": f"SYN-{self.output_id[:12]}",
            "SeriesDescription": f"SYNTHETIC radsynth {self.model_id}"[:64],
            "ImageComments": self.derivation[:10240],
            "BurnedInAnnotation": "NO",
        }

    def png_text(self) -> dict[str, str]:
        return {
            "Synthetic": "true",
            "Software": f"radsynth {self.radsynth_version}",
            "Description": self.derivation,
            "radsynth": json.dumps(self.sidecar(), sort_keys=True),
        }

    def nifti_description(self) -> str:
        """The 80-byte NIfTI ``descrip``: short, but unmistakable on its own."""
        return f"SYNTHETIC radsynth {self.model_id} {self.output_id[:12]}"[:79]

    def sidecar(self) -> dict[str, Any]:
        return {"synthetic": True, **asdict(self)}


def output_path(folder: Path, stem: str, fmt: str) -> Path:
    """The file (or, for a DICOM volume, folder) name an output of ``fmt`` gets."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return Path(folder) / f"{stem}{_SUFFIX[fmt]}"


def write_synthetic(image: Image, path: str | Path, facts: SyntheticFacts, fmt: str) -> Path:
    """Write ``image`` marked as synthetic; returns the path written.

    Pixel values are written as they are (2D outputs of generators are floats in [0, 1]
    and go to 16-bit PNG over that range). NIfTI outputs get ``<name>.json`` beside them.
    """
    path = Path(path)
    if fmt == "png":
        write_png(image, path, bits=16, value_range=(0.0, 1.0), text=facts.png_text())
    elif fmt == "dicom":
        write_dicom(image, path, attributes=facts.dicom_attributes())
    elif fmt == "nifti":
        write_nifti(image, path, description=facts.nifti_description())
        sidecar = path.with_name(path.name.removesuffix(".gz").removesuffix(".nii") + ".json")
        write_text_atomic(sidecar, json.dumps(facts.sidecar(), indent=2, sort_keys=True))
    else:
        raise InvalidInput(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return path
