"""The synthetic-image detector's data: real images from many sources against every generator.

A detector trained on one corpus learns that corpus' sources, not what makes an image
synthetic: the first one called JPEG 2000 radiographs, an ultrasound and a deflated MR
"synthetic". So the set holds every real source the project can read (chest X-rays of
three populations, CT/MR atlas slices, glioma MR volumes, MedMNIST's grey sets, the demo
corpus' packages; :data:`REAL_SOURCES`) against every generator it has (the demo LDM, GAN
and VAE, the chest X-ray LDM, the translators' outputs;
``radsynth.generate.detector_generators.SYNTHETIC_SOURCES``), and each
image takes the path ``verify`` takes: decoded by :func:`radsynth.io.read_image`, a
volume cut into evenly spaced slices, colour averaged to grey, then resized to the
detector's input (:func:`radsynth.provenance.detector.detector_input`). On the way, real
and synthetic images alike go through what real files go through (:func:`file_transform`:
JPEG and JPEG 2000 re-encoding, windowing, resizing, bit depth), so none of those can
tell the classes apart.

Synthetic images carry neither the watermark nor the marking: the detector must catch
generators that mark nothing. Splits: real images by patient or volume (``test`` = 20 %
of each source's subjects), synthetic ones by the caption or input they came from.
Sources marked ``test_only`` (research-only terms, or too few files) are never trained
on: they are unseen sources for every detector, shipped or calibration run.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from radsynth.data.cxr import default_root
from radsynth.data.cxr_sources import FIGURE1, IEEE, KERMANY, LICENCES, NIH, READERS
from radsynth.data.manifest import Record, load_manifest, read_unit_image, resolve_manifest, write_manifest
from radsynth.errors import InvalidInput
from radsynth.io import Image, read_image, write_png, write_text_atomic
from radsynth.provenance.detector import INPUT_SIZE, Domain, detector_input, spaced_slices

KEY_FILE = "detector-set.json"
TEST_FRACTION = 0.2
SLICES_PER_VOLUME = 24  # evenly spaced, first to last, as verify samples a volume (ends included)


@dataclass(frozen=True)
class RealSlice:
    """One real 2D image as verify would see it (any units), and where it came from."""

    subject: str
    array: np.ndarray
    modality: str
    split: str | None = None  # the source's own split where it has one (else by subject)


@dataclass(frozen=True)
class RealSource:
    """A real data set: its reader (``root`` = the shared data folder), modality, terms."""

    name: str
    modality: str
    licence: str
    read: Callable[[Path], Iterator[RealSlice]]
    test_only: bool = False  # never trained on (terms, or too few files to split)


def _grey(image: Image) -> np.ndarray:
    return image.array.mean(-1) if image.rgb else image.array


def _cxr(source: str) -> Callable[[Path], Iterator[RealSlice]]:
    def read(root: Path) -> Iterator[RealSlice]:
        _, reader = READERS[source]
        for item in reader(root / source).items:
            yield RealSlice(f"{source}:{item.subject}", _grey(read_image(item.image)), "DX")

    return read


def _aanlib(kind: str) -> Callable[[Path], Iterator[RealSlice]]:
    def read(root: Path) -> Iterator[RealSlice]:
        for path in sorted((root / "harvard_aanlib_ct_mri" / kind).glob("*.png")):
            case = path.stem[:-3]  # the name's prefix is the case, its last three digits the slice
            yield RealSlice(f"aanlib:{case}", _grey(read_image(path)), "CT" if kind == "CT" else "MR")

    return read


def _brain_contrasts(root: Path) -> Iterator[RealSlice]:
    for path in sorted((root / "brain_mri_multicontrast").glob("*/*.nii.gz")):
        image = read_image(path)
        for array in spaced_slices(image, SLICES_PER_VOLUME):
            yield RealSlice(f"glioma:{path.parent.name}", array, "MR")


_MEDMNIST = {"pneumoniamnist": "DX", "organamnist": "CT", "breastmnist": "US"}


def _medmnist(name: str) -> Callable[[Path], Iterator[RealSlice]]:
    def read(root: Path) -> Iterator[RealSlice]:
        with np.load(root / "medmnist" / f"{name}.npz") as data:
            for split in ("train", "val", "test"):
                for i, array in enumerate(data[f"{split}_images"]):
                    # No patient ids in MedMNIST: its official split stands in for them.
                    side = "train" if split == "train" else "test"
                    yield RealSlice(f"{name}:{split}:{i}", array.astype(np.float32), _MEDMNIST[name], side)

    return read


def _demo(prefix: str) -> Callable[[Path], Iterator[RealSlice]]:
    """The demo corpus' slices of the volumes whose subject starts with ``prefix``."""

    def read(root: Path) -> Iterator[RealSlice]:
        manifest = resolve_manifest("demo:64")
        for record in load_manifest(manifest):
            if record.subject.startswith(prefix):
                image = read_image(record.resolve(manifest))
                yield RealSlice(f"demo:{record.subject}", _grey(image), record.modality)

    return read


# What an external file must be for the detector to be asked (verify skips the rest).
FILE_DOMAIN = Domain(("CT", "MR", "DX", "CR", "US"))


def _files(paths: Callable[[Path], list[Path]]) -> Callable[[Path], Iterator[RealSlice]]:
    """Real DICOM files as they come, each file its own subject; unreadable ones and those
    outside the detector's domain (verify would not ask it about them) are skipped."""

    def read(root: Path) -> Iterator[RealSlice]:
        for path in paths(root):
            try:
                image = read_image(path)
            except Exception:  # not an image, or a reader library's own failure: verify says unreadable
                continue
            if FILE_DOMAIN.outside(image):
                continue
            for array in spaced_slices(image):
                yield RealSlice(f"file:{path.name}", array, image.modality)

    return read


def _dicom_samples(root: Path) -> list[Path]:
    folder = root / "dicom_samples"
    return sorted(p for p in folder.rglob("*.dcm")) if folder.is_dir() else []


def _pydicom_files(root: Path) -> list[Path]:
    """Every file among pydicom's own test files (installed with it; nothing is downloaded)."""
    import pydicom

    return sorted(
        p for p in (Path(pydicom.__file__).parent / "data" / "test_files").rglob("*") if p.is_file()
    )


# The demo corpus' volumes by package: (subject prefix, terms).
_DEMO = {
    "pyradiomics": ("pyradiomics-", "BSD-3-Clause (pyradiomics test data)"),
    "nilearn": (
        "mni152",
        "MNI152 2009a: free use with its copyright notice (McConnell BIC)",
    ),
    "mricron": ("colin27", "BSD-2-Clause (mricron-data, Colin27)"),
    "itk": ("itk-", "Apache-2.0 (ITK examples)"),
    "invesalius": ("invesalius-", "GPL-2.0 (InVesalius examples)"),
}

REAL_SOURCES: dict[str, RealSource] = {
    s.name: s
    for s in (
        RealSource("kermany", "DX", LICENCES[KERMANY], _cxr(KERMANY)),
        RealSource("nih14", "DX", LICENCES[NIH], _cxr(NIH)),
        RealSource("ieee8023", "DX", LICENCES[IEEE], _cxr(IEEE)),
        RealSource("aanlib-ct", "CT", "research use, attribution (Harvard Whole Brain Atlas)", _aanlib("CT")),
        RealSource(
            "aanlib-mr", "MR", "research use, attribution (Harvard Whole Brain Atlas)", _aanlib("MRI")
        ),
        RealSource("glioma-mr", "MR", "BraTS 2023 / TCGA (TCIA), research use", _brain_contrasts),
        RealSource("pneumoniamnist", "DX", "CC BY 4.0 (MedMNIST)", _medmnist("pneumoniamnist")),
        RealSource("organamnist", "CT", "CC BY 4.0 (MedMNIST)", _medmnist("organamnist")),
        RealSource("breastmnist", "US", "CC BY 4.0 (MedMNIST)", _medmnist("breastmnist")),
        *(RealSource(f"demo-{p}", "CT/MR", terms, _demo(prefix)) for p, (prefix, terms) in _DEMO.items()),
        RealSource("figure1", "DX", LICENCES[FIGURE1], _cxr(FIGURE1), test_only=True),
        RealSource("dicom-samples", "any", "MIT (pydicom-data, highdicom)", _files(_dicom_samples), True),
        RealSource(
            "pydicom-tests", "any", "MIT and others (pydicom test files)", _files(_pydicom_files), True
        ),
    )
}


# ---- what real files go through ---------------------------------------------------------


def _to_uint(array: np.ndarray, bits: int) -> np.ndarray:
    lo, hi = float(array.min()), float(array.max())
    scale = (2**bits - 1) / (hi - lo) if hi > lo else 0.0
    dtype = np.uint8 if bits <= 8 else np.uint16
    return np.round((array - lo) * scale).astype(dtype)


def _codec(array: np.ndarray, fmt: str, **options) -> np.ndarray:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(_to_uint(array, 8)).save(buffer, format=fmt, **options)
    return np.asarray(PILImage.open(io.BytesIO(buffer.getvalue())).convert("L"), dtype=np.float32)


def _resize(array: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image as PILImage

    rows, cols = array.shape
    size = (max(8, round(cols * factor)), max(8, round(rows * factor)))
    resample = [PILImage.Resampling.BILINEAR, PILImage.Resampling.BICUBIC, PILImage.Resampling.LANCZOS]
    method = resample[int(rng.integers(len(resample)))]
    return np.asarray(PILImage.fromarray(array.astype(np.float32), "F").resize(size, method))


def _transforms(rng: np.random.Generator) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    return {
        "jpeg": lambda a: _codec(a, "JPEG", quality=int(rng.integers(60, 96))),
        "jpeg2000": lambda a: _codec(
            a, "JPEG2000", quality_mode="rates", quality_layers=[float(rng.uniform(8, 40))], irreversible=True
        ),
        "window": lambda a: np.clip(a, *np.percentile(a, [rng.uniform(0, 5), rng.uniform(95, 100)])),
        "resize": lambda a: _resize(a, float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))), rng),
        "bits": lambda a: _to_uint(a, int(rng.choice([8, 10, 12]))).astype(np.float32),
    }


def file_transform(array: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """What a file may have been through on its way here: half the images untouched, the
    others one or two of JPEG / JPEG 2000 re-encoding, a window, a resize, a bit depth.
    Returns the array and the names of what was applied ("none")."""
    array = np.asarray(array, dtype=np.float32)
    if rng.random() < 0.5 or float(array.max()) <= float(array.min()):
        return array, "none"
    transforms = _transforms(rng)
    names = list(rng.choice(sorted(transforms), size=int(rng.integers(1, 3)), replace=False))
    for name in names:
        array = transforms[name](array)
    return array, "+".join(names)


# ---- the set ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorSetSpec:
    """How many images: ``real_train`` / ``real_test`` per real source (drawn from its
    train / test subjects), ``synthetic_train`` / ``synthetic_test`` per generator."""

    root: str = ""  # the shared data folder ("" = found beside the repository)
    sources: tuple[str, ...] = tuple(REAL_SOURCES)
    generators: tuple[str, ...] = ()  # () = all of SYNTHETIC_SOURCES
    real_train: int = 300
    real_test: int = 100
    synthetic_train: int = 240
    synthetic_test: int = 80
    seed: int = 0

    def __post_init__(self) -> None:
        from radsynth.generate.detector_generators import SYNTHETIC_SOURCES

        unknown = (set(self.sources) - set(REAL_SOURCES)) | (set(self.generators) - set(SYNTHETIC_SOURCES))
        if unknown:
            raise InvalidInput(
                f"unknown detector-set sources or generators {sorted(unknown)}; sources: "
                f"{', '.join(REAL_SOURCES)}; generators: {', '.join(SYNTHETIC_SOURCES)}"
            )

    @property
    def chosen_generators(self) -> tuple[str, ...]:
        from radsynth.generate.detector_generators import SYNTHETIC_SOURCES

        return self.generators or tuple(SYNTHETIC_SOURCES)


def subject_split(subject: str, seed: int = 0) -> str:
    """``test`` for a stable 20 % of subjects (hash of seed and subject), else ``train``."""
    digest = hashlib.sha256(f"{seed}:{subject}".encode()).digest()
    return "test" if int.from_bytes(digest[:4], "big") / 2**32 < TEST_FRACTION else "train"


def _rng(seed: int, name: str) -> np.random.Generator:
    """A generator of its own per source or generator: adding one leaves the others' draws as they were."""
    return np.random.default_rng([seed, int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")])


@dataclass
class _Writer:
    """Writes each image as verify would see it: transformed, resized, 16-bit PNG."""

    out: Path
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    records: list[Record] = field(default_factory=list)

    def add(
        self,
        array: np.ndarray,
        *,
        rel: str,
        split: str,
        subject: str,
        modality: str,
        source: str,
        licence: str,
        labels: dict,
        text: str = "",
    ) -> None:
        transformed, applied = file_transform(array, self.rng)
        small = detector_input(transformed)[0].numpy()
        lo, hi = float(small.min()), float(small.max())
        unit = (small - lo) / (hi - lo) if hi > lo else np.zeros_like(small)
        (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
        write_png(Image(unit.astype(np.float32)), self.out / rel, bits=16, value_range=(0.0, 1.0))
        self.records.append(
            Record(
                rel, text, modality, subject, split, source, licence, labels={**labels, "transform": applied}
            )
        )


def _pick(n_wanted: int, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, min(n_wanted, n), replace=False))


def _add_real(writer: _Writer, source: RealSource, root: Path, spec: DetectorSetSpec) -> int:
    rng = writer.rng = _rng(spec.seed, source.name)
    try:
        items = list(source.read(root))
    except OSError as err:  # a user's --root without this source's folder or label file
        raise InvalidInput(f"source {source.name}: {err.strerror or err}", err.filename or root) from None
    if not items:
        return 0
    splits = np.array(
        ["test" if source.test_only else s.split or subject_split(s.subject, spec.seed) for s in items]
    )
    count = 0
    for split, wanted in (("train", spec.real_train), ("test", spec.real_test)):
        index = np.flatnonzero(splits == split)
        wanted = spec.real_train + spec.real_test if source.test_only else wanted
        for k in index[_pick(wanted, len(index), rng)]:
            item = items[k]
            labels = {"source": "real", "generator": "real", "origin": source.name}
            writer.add(
                item.array,
                rel=f"real/{source.name}/{split}/{k:06d}.png",
                split=split,
                subject=item.subject,
                modality=item.modality,
                source=source.name,
                licence=source.licence,
                labels=labels,
            )
            count += 1
    return count


def build_detector_set(
    out: str | Path,
    spec: DetectorSetSpec = DetectorSetSpec(),
    on_progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Write the set under ``out`` and return its manifest (reused when ``spec`` matches).

    Records carry ``labels.source`` (real | synthetic), ``labels.generator`` ("real" or
    the generator), ``labels.origin`` (the real source or the generator) and
    ``labels.transform`` (what the image went through).
    """
    from radsynth.generate.detector_generators import SYNTHETIC_SOURCES

    out = Path(out)
    manifest = out / "manifest.jsonl"
    key = {**asdict(spec), "sources": list(spec.sources), "generators": list(spec.chosen_generators)}
    stored = out / KEY_FILE
    if manifest.is_file() and stored.is_file() and json.loads(stored.read_text(encoding="utf-8")) == key:
        return manifest
    root = Path(spec.root) if spec.root else default_root()
    if not root.is_dir():
        raise InvalidInput("the shared data folder is missing (point --root at it)", root)
    writer = _Writer(out)
    steps = len(spec.sources) + len(spec.chosen_generators)
    for done, name in enumerate(spec.sources):
        _add_real(writer, REAL_SOURCES[name], root, spec)
        if on_progress is not None:
            on_progress(f"real {name}", done + 1, steps)
    for done, name in enumerate(spec.chosen_generators, start=len(spec.sources)):
        generator = SYNTHETIC_SOURCES[name]
        writer.rng = _rng(spec.seed, name)
        for split, n in (("train", spec.synthetic_train), ("test", spec.synthetic_test)):
            for k, (image, subject, text) in enumerate(generator.draw(root, split, n, spec.seed)):
                labels = {"source": "synthetic", "generator": name, "origin": name}
                writer.add(
                    image.array[0] if image.array.ndim == 3 else _grey(image),
                    rel=f"synthetic/{name}/{split}/{k:05d}.png",
                    split=split,
                    subject=subject,
                    modality=image.modality,
                    source=f"radsynth {name}",
                    licence="synthetic (radsynth)",
                    labels=labels,
                    text=text,
                )
        if on_progress is not None:
            on_progress(f"synthetic {name}", done + 1, steps)
    write_manifest(writer.records, manifest)
    write_text_atomic(stored, json.dumps(key, indent=2))
    return manifest


def never_trained_images(name: str, manifest: Path, spec: DetectorSetSpec) -> dict[str, list[np.ndarray]]:
    """A source no detector trains on, both ways verify meets it, each its own group (a
    copy is not a new patient): its files as they come (every slice verify would score)
    and the set's transformed copies (``"<name>, transformed"``)."""
    root = Path(spec.root) if spec.root else default_root()
    records = [r for r in load_manifest(manifest) if r.labels.get("origin") == name]
    return {
        name: [item.array for item in REAL_SOURCES[name].read(root)],
        f"{name}, transformed": [read_unit_image(r.resolve(manifest)) for r in records],
    }


__all__ = ["INPUT_SIZE", "REAL_SOURCES", "DetectorSetSpec", "build_detector_set", "file_transform"]
