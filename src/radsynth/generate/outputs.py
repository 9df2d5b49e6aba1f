"""Writing a generated batch: physical units, synthetic marking, a contact sheet and the
batch card, all or nothing.

Generators draw images in [0, 1] (the display range they were trained on). A CT caption
names its window, so a CT output is mapped back to Hounsfield units through that window
(``radsynth.data.normalise.WINDOWS``); the DICOM then carries HU with the window as its
default display, like a scan would. Other modalities stay in [0, 1]. What the prompt says
of the synthetic patient (age, sex) and of a radiograph's projection (PA, AP) goes into
the DICOM attributes a viewer shows (``patient_attributes``).

Every file is written into a hidden temporary folder inside the output folder and moved
into place only when the whole batch has been written, so a failure leaves nothing
behind and an existing file is never replaced unless asked.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radsynth.data.normalise import WINDOWS
from radsynth.errors import InvalidInput
from radsynth.io import Image, atomic_path
from radsynth.provenance import (
    FORMATS,
    SyntheticFacts,
    append_entries,
    embed,
    output_path,
    sidecar_path,
    write_synthetic,
)
from radsynth.text.prompt import parse_prompt

RADIOGRAPHS = ("DX", "CR")  # projection modalities, where View Position applies
MAX_STATED_AGE = 89  # years
CONTACT_SHEET = "contact-sheet.png"
BATCH_CARD = "generation.json"
DEFAULT_CT_WINDOW = "soft_tissue"


@dataclass(frozen=True)
class WrittenBatch:
    """What :func:`write_batch` wrote: the image files, the contact sheet and the card."""

    folder: Path
    files: list[Path]
    contact_sheet: Path
    card: Path
    low_confidence: bool
    unknown_terms: list[str] = field(default_factory=list)


def physical(image: Image) -> tuple[Image, tuple[float, float], dict[str, Any]]:
    """``image`` in the units a viewer expects, its display range, and DICOM window tags.

    CT: [0, 1] -> HU through the prompt's window (soft tissue when it names none, recorded
    as assumed). Others: unchanged, displayed over [0, 1].
    """
    if image.modality != "CT":
        return (
            image.with_array(image.array, units="normalised intensity"),
            (0.0, 1.0),
            {
                "WindowCenter": 0.5,
                "WindowWidth": 1.0,
            },
        )
    window = parse_prompt(str(image.metadata.get("prompt", ""))).window
    assumed = window not in WINDOWS
    name = DEFAULT_CT_WINDOW if assumed else window
    level, width = WINDOWS[name]
    lo = level - width / 2
    hu = (lo + image.array.astype(np.float32) * width).astype(np.float32)
    meta = {**image.metadata, "window": name, "window_assumed": assumed}
    out = Image(
        array=hu,
        spacing=image.spacing,
        origin=image.origin,
        direction=image.direction,
        modality="CT",
        units="HU",
        metadata=meta,
    )
    return out, (lo, lo + width), {"WindowCenter": level, "WindowWidth": width}


def patient_attributes(image: Image) -> dict[str, str]:
    """DICOM attributes of what the image's (scrubbed) prompt states: Patient's Age
    (``060Y``; under two years in months, ``018M``), Patient's Sex (M, F) and, for a
    radiograph, View Position (PA, AP). An age over 89 is an identifier (HIPAA Safe
    Harbor; the corpus captions say "over 89 years") and is left out."""
    asked = parse_prompt(str(image.metadata.get("prompt", "")))
    out: dict[str, str] = {}
    if asked.age_years is not None and asked.age_years <= MAX_STATED_AGE:
        years = asked.age_years
        whole = years >= 2 or years == int(years)
        out["PatientAge"] = f"{round(years):03d}Y" if whole else f"{round(years * 12):03d}M"
    if asked.sex is not None:
        out["PatientSex"] = asked.sex
    if asked.view in ("PA", "AP") and image.modality in RADIOGRAPHS:
        out["ViewPosition"] = asked.view
    return out


def check_output_folder(folder: str | Path, create: bool = True) -> Path:
    """``folder`` is (or can be made as) a writable folder, or a one-line error.

    With ``create=False`` nothing is made: the CLI checks before minutes of sampling and
    leaves no empty folder behind when the request then fails.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InvalidInput("output folder is a file, not a folder", folder)
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise InvalidInput(f"cannot create the output folder: {existing} is a file", folder)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InvalidInput("output folder is not writable", folder)
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InvalidInput(f"cannot create the output folder ({err.strerror})", folder) from None
    return folder


def write_batch(
    images: list[Image],
    folder: str | Path,
    fmt: str,
    *,
    stem: str | None = None,
    overwrite: bool = False,
    card_extra: dict[str, Any] | None = None,
    audit_log: str | Path | None = None,
) -> WrittenBatch:
    """Write generated ``images`` (from ``GenerationPipeline.generate``) marked synthetic.

    Files are ``<stem>_seed<seed>.<ext>`` (stem: the model kind), plus ``contact-sheet.png``
    (the batch as a grid, itself marked) and ``generation.json`` (the batch card: prompt,
    settings, model, low-confidence flag, each file with its output id). Every output gets
    a line in the audit log (``audit_log``, default ``radsynth.provenance.audit.default_log``).
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not images:
        raise InvalidInput("nothing to write: the batch is empty")
    folder = check_output_folder(folder)
    meta = images[0].metadata
    stem = stem or str(meta.get("model_kind") or "synthetic")
    names = [
        output_path(folder, f"{stem}_seed{int(im.metadata.get('seed', i)):05d}", fmt).name
        for i, im in enumerate(images)
    ]
    extra_names = [CONTACT_SHEET, BATCH_CARD] + (
        [sidecar_path(n).name for n in names] if fmt == "nifti" else []
    )
    if not overwrite:
        for name in names + extra_names:
            if (folder / name).exists():
                raise InvalidInput(
                    "would overwrite an earlier output; choose another folder or --overwrite", folder / name
                )
    try:
        staging = Path(tempfile.mkdtemp(prefix=".radsynth-", dir=folder))
    except OSError as err:
        raise InvalidInput(f"cannot write in the output folder ({err.strerror})", folder) from None
    common = {"model_id": str(meta.get("model_id") or ""), "prompt": str(meta.get("prompt", ""))}
    try:
        records, study_uid = [], _uid()
        for i, (image, name) in enumerate(zip(images, names, strict=True)):
            records.append(write_marked(image, staging / name, fmt, instance=i + 1, study_uid=study_uid))
        sheet_facts = _facts(images[0], seed=None)
        _contact_sheet(images, staging / CONTACT_SHEET, sheet_facts)
        card = _card(images, fmt, records, card_extra)
        (staging / BATCH_CARD).write_text(json.dumps(card, indent=2, sort_keys=True), encoding="utf-8")
        # logged before the files appear: an output that exists is always in the log
        append_entries(
            [
                {**common, "output_id": r["output_id"], "files": with_sidecar(staging / r["file"], fmt)}
                for r in records
            ]
            + [{**common, "output_id": sheet_facts.output_id, "files": [staging / CONTACT_SHEET]}],
            audit_log,
        )
        for path in sorted(staging.iterdir()):
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return WrittenBatch(
        folder=folder,
        files=[folder / n for n in names],
        contact_sheet=folder / CONTACT_SHEET,
        card=folder / BATCH_CARD,
        low_confidence=bool(meta.get("low_confidence")),
        unknown_terms=list(meta.get("unknown_terms") or []),
    )


def write_marked(
    image: Image,
    path: Path,
    fmt: str,
    *,
    instance: int = 1,
    study_uid: str | None = None,
    output_id: str | None = None,
) -> dict[str, Any]:
    """Write one generated image in physical units, marked synthetic; returns its record
    (file, seed, output id, units, CT window). ``output_id``: None draws a fresh one; a
    dataset plan passes its own, fixed by the plan and the image's index, so a resumed or
    resharded run writes the same file."""
    facts = _facts(image, output_id=output_id)
    shown, value_range, window_tags = physical(image)
    write_synthetic(
        shown,
        path,
        facts,
        fmt,
        value_range=value_range,
        dicom_attributes={**window_tags, **patient_attributes(image), "InstanceNumber": instance},
        study_instance_uid=study_uid,
    )
    return {
        "file": path.name,
        "seed": image.metadata.get("seed"),
        "output_id": facts.output_id,
        "units": shown.units,
        **({"window": shown.metadata["window"]} if shown.modality == "CT" else {}),
    }


def with_sidecar(path: Path, fmt: str) -> list[Path]:
    """The files one output is: the image, and a NIfTI's JSON sidecar."""
    return [path, sidecar_path(path)] if fmt == "nifti" else [path]


def _uid() -> str:
    from pydicom.uid import generate_uid

    return generate_uid()


def _facts(
    image: Image, seed: int | None | str = "from-image", output_id: str | None = None
) -> SyntheticFacts:
    meta = image.metadata
    settings = {
        k: meta.get(k)
        for k in (
            "model_kind",
            "sampler",
            "steps",
            "guidance",
            "guidance_interval",
            "precision",
            "super_resolution",
        )
        if meta.get(k) is not None
    }
    return SyntheticFacts(
        model_id=str(meta.get("model_id") or meta.get("model_kind") or "unknown"),
        prompt=str(meta.get("prompt", "")),
        seed=meta.get("seed") if seed == "from-image" else seed,
        **({} if output_id is None else {"output_id": output_id}),
        extra={
            **settings,
            "low_confidence": bool(meta.get("low_confidence")),
            "unknown_terms": list(meta.get("unknown_terms") or []),
        },
    )


def _card(images: list[Image], fmt: str, records: list[dict], extra: dict[str, Any] | None) -> dict[str, Any]:
    from radsynth import __version__

    meta = images[0].metadata
    return {
        "synthetic": True,
        "radsynth_version": __version__,
        "prompt": meta.get("prompt"),
        "model_id": meta.get("model_id"),
        "model_kind": meta.get("model_kind"),
        "sampler": meta.get("sampler"),
        "steps": meta.get("steps"),
        "guidance": meta.get("guidance"),
        "guidance_interval": meta.get("guidance_interval"),
        "precision": meta.get("precision"),
        "super_resolution": meta.get("super_resolution"),
        "size": list(images[0].array.shape),
        "format": fmt,
        "n": len(images),
        "low_confidence": bool(meta.get("low_confidence")),
        "unknown_terms": list(meta.get("unknown_terms") or []),
        "files": records,
        **(extra or {}),
    }


def _contact_sheet(images: list[Image], path: Path, facts: SyntheticFacts, gap: int = 2) -> None:
    """The batch as one 8-bit grid under a banner that says SYNTHETIC, with the same PNG
    text marking and pixel watermark (the sheet's own output id) as every output."""
    from PIL import Image as PILImage
    from PIL import ImageDraw
    from PIL.PngImagePlugin import PngInfo

    tiles = [np.clip(im.array, 0.0, 1.0) for im in images]
    h, w = tiles[0].shape[-2:]
    cols = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    banner = 14
    sheet = np.zeros((banner + rows * (h + gap) + gap, cols * (w + gap) + gap), dtype=np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = banner + gap + r * (h + gap), gap + c * (w + gap)
        sheet[y : y + h, x : x + w] = np.round(tile.reshape(h, w) * 255).astype(np.uint8)
    pic = PILImage.fromarray(sheet)
    ImageDraw.Draw(pic).text((2, 1), f"SYNTHETIC {facts.model_id}", fill=255)
    # a grid of many small images is a busy host (tile edges everywhere): at the outputs' 1 %
    # the mark of a 16-image sheet did not read back; 2 % does (a preview, not a diagnostic image)
    marked = embed(np.asarray(pic, dtype=np.float32) / 255.0, facts.payload, strength=0.02, quantum=1 / 255)
    pic = PILImage.fromarray(np.round(marked * 255).astype(np.uint8))
    info = PngInfo()
    for key, value in facts.png_text().items():
        info.add_text(key, value)
    with atomic_path(path) as tmp:
        pic.save(tmp, format="PNG", pnginfo=info)
