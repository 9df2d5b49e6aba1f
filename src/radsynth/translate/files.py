"""``translate_file``: read, check, translate, write marked, log: all or nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from radsynth.data.normalise import WINDOWS
from radsynth.errors import InvalidInput, RadsynthError
from radsynth.io import Image, read_image
from radsynth.provenance import SyntheticFacts, append_entries, write_synthetic
from radsynth.provenance.marking import sidecar_path
from radsynth.provenance.watermark import DEFAULT_STRENGTH
from radsynth.translate.volume import check_inputs, load_translator, task_spec, translate_volume

# Restoration outputs are a patient's own scan, cleaned: the mark must cost far less than
# the restoration gains. The strength is the weakest whose mark is found on every MR
# validation slice as written and after a DICOM round trip, chosen by
# benchmarks/watermark_strength.py (its JSON also gives each strength's PSNR cost; a test
# holds this constant to it). On a CT spanning air to bone it does not read back at any
# strength under 1 % (recorded in the file as "too weak"), so there it costs nothing and the
# file relies on its metadata, fresh UIDs and the audit log.
RESTORATION_STRENGTH = 0.0015


def watermark_strength(task: str) -> float:
    """The mark's strength for ``task``'s outputs (see ``RESTORATION_STRENGTH``)."""
    return RESTORATION_STRENGTH if task_spec(task).native else DEFAULT_STRENGTH


def watermark_range(image: Image, task: str) -> tuple[float, float]:
    """The display range the watermark's strength is relative to. CT: the window a reader
    would use (the task's output window, else soft tissue), so at the default 1 % the
    chips are 4 HU on a denoised or super-resolved CT (18 HU in mr2ct's bone window), not
    30 HU as they would be relative to the whole -1024..2000 HU range, which shows in a
    brain window. Other modalities: the volume's own range."""
    spec = task_spec(task)
    if spec.scale is not None:
        return spec.scale
    if image.modality == "CT":
        level, width = WINDOWS[spec.window or "soft_tissue"]
        return level - width / 2, level + width / 2
    return _range(image.array)


def output_format(output: Path, source: Path) -> str:
    """NIfTI for ``.nii`` / ``.nii.gz``; a DICOM series folder for a path without suffix
    (or when the input was DICOM and the output has no NIfTI suffix)."""
    name = output.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if output.suffix == "" or source.is_dir() or source.suffix.lower() == ".dcm":
        if output.suffix:
            raise InvalidInput("a DICOM series is written as a folder: give a path without a suffix", output)
        return "dicom"
    raise InvalidInput("output must end in .nii or .nii.gz, or be a folder for a DICOM series", output)


def named_inputs(source: str | Path | Mapping[str, str | Path], task: str) -> dict[str, Path]:
    """The task's input volumes by contrast name, in its order. ``source`` is one path (a
    task with at most one named input) or ``{contrast: path}`` (e.g. ``{"t1": .., "t2": ..}``,
    what ``--input t1=..`` gives); a missing or unknown name is one line."""
    spec = task_spec(task)
    names = spec.contrasts or ("input",)
    if not isinstance(source, Mapping):
        if len(names) > 1:
            wanted = " ".join(f"--input {n}=FILE" for n in names)
            raise InvalidInput(f"task {task} needs {len(names)} volumes: {wanted}")
        return {names[0]: Path(source)}
    given = {str(k).strip().lower(): Path(v) for k, v in source.items()}
    unknown = sorted(set(given) - set(names))
    if unknown and spec.contrasts:
        raise InvalidInput(f"task {task} takes {', '.join(names)}, not {', '.join(unknown)}")
    if unknown:
        raise InvalidInput(f"task {task} takes one volume, not named inputs ({', '.join(unknown)})")
    missing = [n for n in names if n not in given]
    if missing:
        raise InvalidInput(
            f"task {task} needs a {' and a '.join(missing)} volume (--input {missing[0]}=FILE)"
        )
    return {n: given[n] for n in names}


def translate_file(
    source: str | Path | Mapping[str, str | Path],
    output: str | Path,
    task: str,
    *,
    weights: str | Path | None = None,
    mask: str | Path | None = None,
    overwrite: bool = False,
    audit_log: str | Path | None = None,
    on_slice: Callable[[int, int], None] | None = None,
) -> Path:
    """Translate the volume at ``source`` (NIfTI, DICOM series folder, NRRD/MHA; a contrast
    task's volumes as ``{contrast: path}``, see :func:`named_inputs`) into ``output``;
    returns the path written. Checks everything before any pixel is written."""
    inputs = named_inputs(source, task)
    sources = list(inputs.values())
    source, output = sources[0], Path(output)
    fmt = output_format(output, source)
    if output.exists() and not overwrite:
        raise InvalidInput("output exists; choose another path or --overwrite", output)
    images = [read_image(path) for path in sources]
    check_inputs(images, task, sources)
    image = images[0]
    body = _read_mask(mask, image) if mask is not None else None
    model = load_translator(task, weights)
    translated = translate_volume(images, task, model, mask=body, on_slice=on_slice)
    names = " + ".join(p.name for p in sources)
    facts = SyntheticFacts(model_id=model.model_id, prompt=f"{task} of {names}", task="translate")
    value_range = watermark_range(translated, task)
    if output.exists():
        _remove(output)
    write_synthetic(
        translated, output, facts, fmt, value_range=value_range, strength=watermark_strength(task)
    )
    files = sorted(output.rglob("*")) if output.is_dir() else [output]
    files += [sidecar_path(output)] if fmt == "nifti" else []
    append_entries(
        [{"output_id": facts.output_id, "model_id": facts.model_id, "prompt": facts.prompt, "files": files}],
        audit_log,
    )
    return output


def _read_mask(path: str | Path, image) -> np.ndarray:
    mask = read_image(path)
    if not mask.same_geometry(image, atol=1e-3):
        raise InvalidInput("the mask's geometry differs from the volume's", path)
    if not (mask.array > 0).any():
        raise InvalidInput("the body mask is empty", path)
    return mask.array > 0


def _range(array: np.ndarray) -> tuple[float, float]:
    lo, hi = float(np.min(array)), float(np.max(array))
    return (lo, hi if hi > lo else lo + 1.0)


def _remove(path: Path) -> None:
    import shutil

    try:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    except OSError as err:
        raise RadsynthError(f"cannot replace the output ({err.strerror})", path) from None
