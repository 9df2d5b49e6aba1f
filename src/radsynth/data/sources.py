"""The real images behind the demo corpus: where each comes from, its licence, what it is.

Nothing is fetched from the web except the pyradiomics source archive, which pip
downloads from the package index (the same way ``pip install`` would) into the cache;
the other sources are files of installed Debian and PyPI packages. A source that is not
there is reported and skipped, so the demo builds from whatever is installed.

Each :class:`SourceSpec` states what is known about a volume (modality, contrast,
anatomy, which planes are worth cutting, findings) and loads it lazily, so the demo can
decide from the list alone whether its cached build is still valid.
"""

from __future__ import annotations

import importlib.util
import plistlib
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from radsynth.io.atomic import write_bytes_atomic
from radsynth.io.image import Image

PYRADIOMICS = "pyradiomics==3.0.1"
PYRADIOMICS_CASES = ("brain1", "brain2", "lung1", "lung2", "breast1")
MRICRON = Path("/usr/share/mricron/templates")
ITK_DATA = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
INVESALIUS = Path("/usr/share/doc/invesalius-examples/examples/Cranium.inv3")

# Licence strings as the packages state them (Debian: "Files: *" of /usr/share/doc/<pkg>/copyright).
LICENCES = {
    "pyradiomics": "BSD-3-Clause (pyradiomics 3.0.1 LICENSE.txt)",
    "nilearn": "template licence 'unknown' as stated in nilearn/datasets/description/icbm152_2009.rst "
    "(MNI ICBM152 2009a, Fonov et al.); nilearn itself BSD-3-Clause",
    "mricron-data": "BSD-3-clause (Debian mricron-data copyright, Files: *)",
    "insighttoolkit5-examples": "Apache-2.0 (Debian insighttoolkit5-examples copyright, Files: *)",
    "invesalius-examples": "GPL-2 (Debian invesalius-examples copyright, Files: *)",
}


class SourceMissing(Exception):
    """A source that is not installed or cannot be obtained; the builder warns and goes on."""


@dataclass(frozen=True)
class Loaded:
    """A source image in its native units (HU for CT) and, when known, its finding mask."""

    image: Image
    mask: np.ndarray | None = None  # bool, same shape as image.array


@dataclass(frozen=True)
class SourceSpec:
    """What is known about one source image, and how to load it.

    ``subject`` is the person (or phantom) imaged: two files of one person share it so
    splits never separate them. ``planes`` lists the planes worth cutting (thick-slice
    acquisitions only in their own plane). ``finding`` names what the mask marks
    ("tumour", "lesion"); ``normal`` is True only where the source says the subject is
    healthy. ``sided`` / ``whole`` say whether the image contains the body midline (so a
    side can be stated) and the whole organ (so a level can be stated).
    """

    key: str
    subject: str
    package: str
    file: str
    licence: str
    modality: str
    anatomy: str
    load: Callable[[], Loaded] = field(repr=False, compare=False)
    contrast: str | None = None
    planes: tuple[str, ...] = ("axial",)
    windows: tuple[str, ...] = ()
    finding: str | None = None
    normal: bool = False
    sided: bool = True
    whole: bool = True
    note: str = ""


def _read(path: Path, modality: str, units: str = "", **geometry) -> Image:
    """Read with radsynth.io and state what the file format cannot (modality, units)."""
    from radsynth.io import read_image

    image = read_image(path)
    return replace(image, modality=modality, units=units, **geometry)


# --- pyradiomics (PyPI source archive) -------------------------------------------------


def _pip_download(cache: Path) -> Path:
    """The pyradiomics 3.0.1 sdist in ``cache``, downloaded by pip if not there yet."""
    found = sorted(cache.glob("pyradiomics-3.0.1.tar.gz"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation"]
    command += ["--no-binary", ":all:", PYRADIOMICS, "-d", str(cache), "--quiet"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SourceMissing(f"pip download {PYRADIOMICS} failed ({err})") from None
    found = sorted(cache.glob("pyradiomics-3.0.1.tar.gz"))
    if done.returncode != 0 or not found:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SourceMissing(f"pip download {PYRADIOMICS} failed: {last}")
    return found[0]


def _extract_members(archive: Path, names: set[str], folder: Path) -> None:
    """Copy the archive members whose base names are in ``names`` into ``folder``.

    Streams through the archive once instead of unpacking all 34 MB of it.
    """
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and "/data/" in member.name and base in names:
                    write_bytes_atomic(folder / base, tar.extractfile(member).read())
    except (OSError, tarfile.TarError, EOFError) as err:
        raise SourceMissing(f"{archive}: cannot read the archive ({err})") from None


def pyradiomics_folder(cache: Path, download: bool = True) -> Path:
    """Folder holding the pyradiomics test-case NRRDs (extracted once, then cached)."""
    folder = cache / "pyradiomics-3.0.1"
    names = {f"{case}_{kind}.nrrd" for case in PYRADIOMICS_CASES for kind in ("image", "label")}
    if all((folder / n).is_file() for n in names):
        return folder
    if not download:
        raise SourceMissing(f"{PYRADIOMICS} not in the cache {cache}")
    _extract_members(_pip_download(cache), names, folder)
    missing = sorted(n for n in names if not (folder / n).is_file())
    if missing:
        raise SourceMissing(f"{PYRADIOMICS} archive lacks {', '.join(missing)}")
    return folder


def _pyradiomics_loader(folder: Path, case: str, modality: str, units: str) -> Callable[[], Loaded]:
    def load() -> Loaded:
        image = _read(folder / f"{case}_image.nrrd", modality, units)
        label = _read(folder / f"{case}_label.nrrd", modality)
        if not image.same_geometry(label, atol=1e-3):
            raise SourceMissing(f"{case}: label geometry differs from the image")
        return Loaded(image, label.array > 0)

    return load


def pyradiomics_sources(cache: Path, download: bool = True) -> list[SourceSpec]:
    """brain1/2 (T1 MR, lesion), lung1/2 (chest CT in HU, tumour), breast1 (MR crop, lesion)."""
    folder = pyradiomics_folder(cache, download)
    common = {"package": f"PyPI {PYRADIOMICS} (sdist)", "licence": LICENCES["pyradiomics"]}
    specs = []
    for case in ("lung1", "lung2"):
        specs.append(
            SourceSpec(
                key=f"pyradiomics-{case}",
                subject=f"pyradiomics-{case}",
                file=f"pyradiomics-3.0.1/data/{case}_image.nrrd",
                modality="CT",
                anatomy="chest",
                load=_pyradiomics_loader(folder, case, "CT", "HU"),
                windows=("lung", "soft_tissue"),
                finding="tumour",
                **common,
            )
        )
    for case in ("brain1", "brain2"):
        specs.append(
            SourceSpec(
                key=f"pyradiomics-{case}",
                subject=f"pyradiomics-{case}",
                file=f"pyradiomics-3.0.1/data/{case}_image.nrrd",
                modality="MR",
                anatomy="brain",
                contrast="T1-weighted",
                load=_pyradiomics_loader(folder, case, "MR", ""),
                finding="lesion",
                **common,
            )
        )
    specs.append(
        SourceSpec(
            key="pyradiomics-breast1",
            subject="pyradiomics-breast1",
            file="pyradiomics-3.0.1/data/breast1_image.nrrd",
            modality="MR",
            anatomy="breast",
            load=_pyradiomics_loader(folder, "breast1", "MR", ""),
            finding="lesion",
            sided=False,
            whole=False,
            note="a 30 x 80 x 44 mm crop around the lesion: no midline, so no side or level",
            **common,
        )
    )
    return specs


# --- nilearn (PyPI) --------------------------------------------------------------------


def nilearn_sources() -> list[SourceSpec]:
    """MNI ICBM152 2009a symmetric T1 template (1 mm), shipped inside nilearn."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise SourceMissing("PyPI nilearn is not installed (MNI152 template): pip install 'radsynth[data]'")
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    t1 = data / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    if not t1.is_file():
        raise SourceMissing(f"{t1}: not found (nilearn without its MNI152 template)")
    return [
        SourceSpec(
            key="nilearn-mni152",
            subject="mni152-2009a",
            package="PyPI nilearn",
            file=f"nilearn/datasets/data/{t1.name}",
            licence=LICENCES["nilearn"],
            modality="MR",
            anatomy="brain",
            contrast="T1-weighted",
            load=lambda: Loaded(_read(t1, "MR")),
            planes=("axial", "coronal", "sagittal"),
            normal=True,
            note="population average of 152 healthy adults (ICBM152 2009a symmetric)",
        )
    ]


# --- Debian mricron-data ---------------------------------------------------------------


def mricron_sources() -> list[SourceSpec]:
    """Colin27 (ch2) T1, 1 mm: one healthy adult, average of 27 scans."""
    path = MRICRON / "ch2.nii.gz"
    if not path.is_file():
        raise SourceMissing(f"{path}: not found (install the Debian package mricron-data)")
    return [
        SourceSpec(
            key="mricron-ch2",
            subject="colin27",
            package="Debian mricron-data",
            file=str(path),
            licence=LICENCES["mricron-data"],
            modality="MR",
            anatomy="brain",
            contrast="T1-weighted",
            load=lambda: Loaded(_read(path, "MR")),
            planes=("axial", "coronal", "sagittal"),
            normal=True,
            note="Colin27: average of 27 T1 scans of one healthy adult",
        )
    ]


# --- Debian insighttoolkit5-examples ---------------------------------------------------


def _brainweb_slice(path: Path) -> Image:
    """An ITK BrainWeb PNG in display orientation.

    The PNG rows are stored posterior first with the patient's left on the left (BrainWeb
    index order), i.e. rotated 180 degrees from the radiological view: BrainT1Slice.png
    rotated back matches Colin27 (ch2) axial slice 94 with r = 0.99. 181 x 217 is the
    BrainWeb 1 mm grid; the PNG itself carries no spacing.
    """
    image = _read(path, "MR", spacing=(1.0, 1.0))
    return image.with_array(np.ascontiguousarray(np.rot90(image.array, 2)))


def itk_sources() -> list[SourceSpec]:
    """Kmeans head T1 (LSA storage order) and one BrainWeb slice in T1 and PD."""
    kmeans = ITK_DATA / "KmeansTest_T1UCharRaw.nii.gz"
    if not kmeans.is_file():
        raise SourceMissing(f"{kmeans}: not found (install the Debian package insighttoolkit5-examples)")
    common = {"package": "Debian insighttoolkit5-examples", "licence": LICENCES["insighttoolkit5-examples"]}
    specs = [
        SourceSpec(
            key="itk-kmeans-head",
            subject="itk-kmeans-head",
            file=str(kmeans),
            modality="MR",
            anatomy="brain",
            contrast="T1-weighted",
            load=lambda: Loaded(_read(kmeans, "MR")),
            planes=("axial", "coronal", "sagittal"),
            **common,
        )
    ]
    for name, contrast in (
        ("BrainT1Slice.png", "T1-weighted"),
        ("BrainProtonDensitySlice.png", "PD-weighted"),
    ):
        path = ITK_DATA / name
        if path.is_file():
            specs.append(
                SourceSpec(
                    key=f"itk-{path.stem}",
                    # The BrainWeb phantom is built from the Colin27 scans: same subject.
                    subject="colin27",
                    file=str(path),
                    modality="MR",
                    anatomy="brain",
                    contrast=contrast,
                    load=lambda p=path: Loaded(_brainweb_slice(p)),
                    whole=False,
                    note="BrainWeb simulated axial slice (1 mm grid) of the Colin27 anatomy, rotated 180 deg "
                    "to display orientation",
                    **common,
                )
            )
    return specs


# --- Debian invesalius-examples --------------------------------------------------------


def _load_cranium() -> Loaded:
    """Head CT from an InVesalius project (a tar.gz of ``main.plist`` + raw ``matrix.dat``).

    Orientation is not stored; it is read from the anatomy: slices run foot to head
    (mandible in the first, vertex in the last), rows run posterior to anterior (head rest
    at the top, face at the bottom, as VTK stores images bottom-up), so the index axes
    are x -> patient left (DICOM column order, not checkable), y -> anterior, z -> head.
    """
    plist, raw = None, None
    with tarfile.open(INVESALIUS, "r:gz") as tar:
        for member in tar:
            if member.name.endswith("/main.plist"):
                plist = plistlib.loads(tar.extractfile(member).read())
            elif member.name.endswith("/matrix.dat"):
                raw = tar.extractfile(member).read()
            if plist is not None and raw is not None:
                break
    if plist is None or raw is None:
        raise SourceMissing(f"{INVESALIUS}: no main.plist / matrix.dat inside")
    matrix = plist["matrix"]
    shape = tuple(matrix["shape"])  # (z, y, x)
    array = np.frombuffer(raw, dtype=np.dtype(matrix["dtype"]).newbyteorder("<")).reshape(shape)
    spacing = tuple(float(s) for s in plist["spacing"])  # (x, y, z) mm
    image = Image(
        array.astype(np.int16), spacing, direction=np.diag([1.0, -1.0, 1.0]), modality="CT", units="HU"
    )
    return Loaded(image)


def invesalius_sources() -> list[SourceSpec]:
    """Head CT in HU (InVesalius example 'Cranium', 0.957 x 0.957 x 1.5 mm)."""
    if not INVESALIUS.is_file():
        raise SourceMissing(f"{INVESALIUS}: not found (install the Debian package invesalius-examples)")
    return [
        SourceSpec(
            key="invesalius-cranium",
            subject="invesalius-cranium",
            package="Debian invesalius-examples",
            file=f"{INVESALIUS}:matrix.dat",
            licence=LICENCES["invesalius-examples"],
            modality="CT",
            anatomy="head",
            load=_load_cranium,
            planes=("axial", "coronal", "sagittal"),
            windows=("brain", "bone"),
            note="left-right assumed from DICOM column order (the project file does not store it)",
        )
    ]


def find_sources(cache: Path, download: bool = True) -> tuple[list[SourceSpec], list[str]]:
    """Every available source, and one warning line per missing one."""
    finders: list[tuple[str, Callable[[], list[SourceSpec]]]] = [
        ("pyradiomics", lambda: pyradiomics_sources(cache, download)),
        ("nilearn", nilearn_sources),
        ("mricron-data", mricron_sources),
        ("insighttoolkit5-examples", itk_sources),
        ("invesalius-examples", invesalius_sources),
    ]
    specs, warnings = [], []
    for name, finder in finders:
        try:
            specs.extend(finder())
        except SourceMissing as err:
            warnings.append(f"{name}: skipped ({err})")
    return specs, warnings
