"""A labelled real + synthetic image set for training and testing the synthetic-image detector.

Real images are a corpus' own slices (train split for training, val + test subjects for
testing). Synthetic images are drawn by each generator from captions of the *same*
split, so held-out synthetic images come from held-out captions and seeds. They are
written as 16-bit PNGs with the synthetic marking in their text chunks but **without the
pixel watermark**: a detector trained on marked pixels could learn the mark instead of
the generator's traces, and it must also catch generators that mark nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from radsynth import DEFAULT_FAMILY
from radsynth.data.manifest import Record, load_manifest, resolve_manifest, write_manifest
from radsynth.errors import InvalidInput
from radsynth.generate.models import load_pipeline
from radsynth.io import write_png, write_text_atomic
from radsynth.provenance import SyntheticFacts

GENERATORS = ("ldm", "gan", "vae")
KEY_FILE = "detector-set.json"


@dataclass(frozen=True)
class DetectorSetSpec:
    """What to draw: ``captions`` distinct captions per split and generator, ``per_caption``
    images each (train split), ``held_out_per_caption`` for the held-out split."""

    manifest: str = "demo:64"
    weights: str = DEFAULT_FAMILY
    generators: tuple[str, ...] = GENERATORS
    captions: int = 40
    per_caption: int = 8
    held_out_captions: int = 20
    held_out_per_caption: int = 6
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.generators) - set(GENERATORS)
        if unknown or not self.generators:
            raise InvalidInput(
                f"generators must be among {', '.join(GENERATORS)}, got {list(self.generators)}"
            )


def build_detector_set(
    out: str | Path,
    spec: DetectorSetSpec = DetectorSetSpec(),
    on_progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Write the set under ``out`` and return its manifest (reused when ``spec`` matches).

    Records carry ``labels.source`` (real | synthetic) and ``labels.generator``; split is
    ``train`` or ``test`` (real val and test subjects, and synthetic images from their
    captions).
    """
    out = Path(out)
    manifest = out / "manifest.jsonl"
    key = {**asdict(spec), "generators": list(spec.generators)}
    stored = out / KEY_FILE
    if manifest.is_file() and stored.is_file() and json.loads(stored.read_text(encoding="utf-8")) == key:
        return manifest
    source = resolve_manifest(spec.manifest)
    real = [_real_record(r, source) for r in load_manifest(source)]
    records = list(real)
    rng = np.random.default_rng(spec.seed)
    for generator in spec.generators:
        pipeline = load_pipeline(spec.weights, generator)
        for split, n_captions, per_caption in (
            ("train", spec.captions, spec.per_caption),
            ("test", spec.held_out_captions, spec.held_out_per_caption),
        ):
            captions = _pick_captions(real, split, n_captions, rng)
            for k, caption in enumerate(captions):
                images = pipeline.generate(
                    caption, n=per_caption, seed=spec.seed + 1000 * k + (split == "test")
                )
                records += [_write_synthetic(im, out, generator, split, k, i) for i, im in enumerate(images)]
                if on_progress is not None:
                    on_progress(f"{generator} {split}", k + 1, len(captions))
    write_manifest(records, manifest)
    write_text_atomic(out / KEY_FILE, json.dumps(key, indent=2))
    return manifest


def _real_record(record: Record, manifest: Path) -> Record:
    split = "train" if record.split == "train" else "test"
    return Record(
        **{
            **record.__dict__,
            "path": str(record.resolve(manifest).absolute()),
            "split": split,
            "labels": {**record.labels, "source": "real", "generator": "real"},
        }
    )


def _pick_captions(real: Sequence[Record], split: str, n: int, rng: np.random.Generator) -> list[str]:
    captions = sorted({r.text for r in real if r.split == split})
    if not captions:
        raise InvalidInput(f"the corpus has no {split} captions to draw synthetic images from")
    return [captions[i] for i in rng.choice(len(captions), min(n, len(captions)), replace=False)]


def _write_synthetic(image, out: Path, generator: str, split: str, caption: int, i: int) -> Record:
    meta = image.metadata
    rel = f"images/{generator}/{split}/c{caption:03d}_{i:02d}.png"
    facts = SyntheticFacts(
        model_id=str(meta.get("model_id")), prompt=str(meta.get("prompt")), seed=meta.get("seed")
    )
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    write_png(image, out / rel, bits=16, value_range=(0.0, 1.0), text=facts.png_text())
    return Record(
        path=rel,
        text=str(meta.get("prompt")),
        modality=image.modality,
        subject=f"{generator}-{split}-{caption:03d}",
        split=split,
        source=f"radsynth {generator} ({meta.get('model_id')})",
        licence="synthetic (radsynth)",
        labels={"source": "synthetic", "generator": generator},
    )
