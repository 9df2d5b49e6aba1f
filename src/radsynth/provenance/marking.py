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
- Pixels, in every format: the invisible watermark (``radsynth.provenance.watermark``)
  carrying the output id and a model-id hash, which outlives metadata stripping.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from radsynth.errors import InvalidInput
from radsynth.io import Image, write_dicom, write_nifti, write_png, write_text_atomic
from radsynth.provenance.watermark import DEFAULT_STRENGTH, Payload, detect, embed_image
from radsynth.text.printable import printable

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
    stored in the file as it is, less control characters (a NUL, BEL or ESC typed into a
    prompt must not reach DICOM Image Comments, PNG text or a terminal showing them).
    """

    model_id: str
    prompt: str
    seed: int | None = None
    task: str = "generate"
    output_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    radsynth_version: str = field(default_factory=_version)
    created: str = field(default_factory=_now)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", printable(self.prompt))

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

    @property
    def payload(self) -> Payload:
        """What the pixel watermark carries: the output id's first 32 bits, a model hash."""
        return Payload.of(self.model_id, self.output_id)

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


def write_synthetic(
    image: Image,
    path: str | Path,
    facts: SyntheticFacts,
    fmt: str,
    *,
    value_range: tuple[float, float] = (0.0, 1.0),
    strength: float = DEFAULT_STRENGTH,
    dicom_attributes: dict[str, Any] | None = None,
    study_instance_uid: str | None = None,
) -> Path:
    """Write ``image`` marked as synthetic (metadata and pixel watermark); returns the path.

    Pixel values are written as they are in DICOM and NIfTI (CT in HU, generator outputs
    in [0, 1]); PNG maps ``value_range`` (the display window, in the image's units) onto
    16 bits. ``dicom_attributes`` add to the marking (window, instance number), never
    replace it; outputs of one batch share ``study_instance_uid``. NIfTI outputs get
    ``<name>.json`` beside them with every fact. The watermark's ``strength`` is a
    fraction of ``value_range``; RGB images get the metadata only. Whether the mark reads back from the
    written pixels is recorded in the facts (``extra.watermark``): on a busy texture (an
    under-trained GAN's output) or an image under 64 px it does not, and the file relies
    on its metadata, the audit log and the detector.
    """
    path = Path(path)
    if not image.rgb:
        image = embed_image(image, facts.payload, value_range, strength)
        readable = detect(image.array).payload == facts.payload
        facts = replace(facts, extra={**facts.extra, "watermark": "readable" if readable else "too weak"})
    if fmt == "png":
        write_png(image, path, bits=16, value_range=value_range, text=facts.png_text())
    elif fmt == "dicom":
        attributes = {**(dicom_attributes or {}), **facts.dicom_attributes()}
        if study_instance_uid is not None:
            # One synthetic patient per study: a PACS files a study under one patient, and
            # a batch's outputs in one study under several patients split it (Orthanc).
            attributes["PatientID"] = "SYN-" + hashlib.sha256(study_instance_uid.encode()).hexdigest()[:12]
        write_dicom(image, path, attributes=attributes, study_instance_uid=study_instance_uid)
    elif fmt == "nifti":
        write_nifti(image, path, description=facts.nifti_description())
        write_text_atomic(sidecar_path(path), json.dumps(facts.sidecar(), indent=2, sort_keys=True))
    else:
        raise InvalidInput(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return path


def sidecar_path(nifti: str | Path) -> Path:
    """``x.nii.gz`` / ``x.nii`` -> ``x.json``: where a NIfTI output's facts are."""
    nifti = Path(nifti)
    return nifti.with_name(nifti.name.removesuffix(".gz").removesuffix(".nii") + ".json")


def read_marking(path: str | Path) -> dict[str, Any] | None:
    """The synthetic facts a file carries in its metadata, or None when it carries none.

    Reads what :func:`write_synthetic` writes: PNG text chunks, the DICOM attributes
    (Conversion Type ``SYN`` or a radsynth Derivation Description), the NIfTI ``descrip``
    and sidecar. Pixels are not looked at (that is the watermark's and detector's job).
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".png"):
        from PIL import Image as PILImage

        with PILImage.open(path) as pic:
            text = dict(getattr(pic, "text", {}) or {})
        if "radsynth" in text:
            return json.loads(text["radsynth"])
        return {"synthetic": True, "description": text["Description"]} if text.get("Synthetic") else None
    if name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        descrip = bytes(nib.load(str(path)).header["descrip"]).split(b"\0")[0].decode("latin-1")
        sidecar = sidecar_path(path)
        if sidecar.is_file():
            facts = json.loads(sidecar.read_text(encoding="utf-8"))
            if facts.get("synthetic"):
                return {**facts, "nifti_description": descrip}
        return {"synthetic": True, "nifti_description": descrip} if descrip.startswith("SYNTHETIC") else None
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    conversion = str(ds.get("ConversionType", ""))
    derivation = str(ds.get("DerivationDescription", ""))
    if conversion != "SYN" and "SYNTHETIC" not in derivation:
        return None
    found = re.search(r"output ([0-9a-f]{32})", derivation)
    return {
        "synthetic": True,
        **({"output_id": found.group(1)} if found else {}),
        "conversion_type": conversion,
        "derivation": derivation,
        "manufacturer": str(ds.get("Manufacturer", "")),
        "model_id": str(ds.get("ManufacturerModelName", "")),
        "content_qualification": str(ds.get("ContentQualification", "")),
        "image_type": list(ds.get("ImageType", [])),
        "patient_name": str(ds.get("PatientName", "")),
    }
