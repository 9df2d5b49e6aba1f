"""Paired (SynthRAD) and multi-contrast (BraTS) folders into the manifest.

The fixture volumes are real: slabs of the MNI152 2009a T1 template and its grey- and
white-matter maps shipped in nilearn, all on one grid. The pairing is structural, not
clinical: the "CT" is the T1 slab mapped linearly onto -1000..0 HU, the "T2" is the
grey-matter map and the "seg" is the white matter above 0.5. What is tested is the
plumbing (grids checked, slices aligned, splits by case, HU recoverable), not anatomy.
The BraTS 2023 and BraTS-Toolkit names are tested on the real glioma volumes of
../shared/data (skipped when it is absent).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from radsynth.data.ingest import ingest
from radsynth.data.manifest import load_manifest
from radsynth.data.paired import TRANSLATION_HU_RANGE, aligned_pairs, detect_layout, hu_from_unit, load_pair
from radsynth.errors import InvalidInput
from radsynth.io import read_image

from .conftest import SHARED_DATA


def _mni(name: str) -> nib.Nifti1Image:
    spec = importlib.util.find_spec("nilearn")
    if spec is None:
        pytest.skip("PyPI nilearn (MNI152 template) not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    path = folder / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz"
    if not path.is_file():
        pytest.skip(f"{path} not available (nilearn without its MNI152 template)")
    return nib.load(path)


@pytest.fixture(scope="module")
def mni():
    """T1, GM and WM maps, 2 mm in plane (every second voxel), as float32 on one affine."""
    out = {}
    for name in ("t1", "gm", "wm"):
        image = _mni(name).slicer[::2, ::2, :]
        out[name] = (np.asarray(image.dataobj, np.float32), image.affine)
    return out


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), path)


def _slab(mni, name: str, z: int, depth: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """``depth`` axial slices of a map from ``z`` on, with the affine moved to match."""
    array, affine = mni[name]
    moved = affine.copy()
    moved[:3, 3] += affine[:3, 2] * z
    return np.ascontiguousarray(array[:, :, z : z + depth]), moved


def _hu(t1: np.ndarray) -> np.ndarray:
    return (t1 / t1.max() * 1000.0 - 1000.0).astype(np.float32)


def _synthrad_case(mni, root: Path, case: str, z: int) -> None:
    t1, affine = _slab(mni, "t1", z)
    _save(t1, affine, root / case / "mr.nii.gz")
    _save(_hu(t1), affine, root / case / "ct.nii.gz")
    _save((t1 > 0.1 * np.percentile(t1, 99)).astype(np.uint8), affine, root / case / "mask.nii.gz")


@pytest.fixture(scope="module")
def synthrad(mni, tmp_path_factory):
    """Three good cases and four bad ones, one problem each."""
    root = tmp_path_factory.mktemp("synthrad")
    for case, z in (("1BA001", 60), ("1BA002", 70), ("1BA003", 80)):
        _synthrad_case(mni, root, case, z)
    t1, affine = _slab(mni, "t1", 50)
    for case in ("shifted", "cropped", "nan", "nomask"):
        _synthrad_case(mni, root, case, 50)
    shifted = affine.copy()
    shifted[0, 3] += 5.0
    _save(_hu(t1), shifted, root / "shifted" / "ct.nii.gz")
    _save(_hu(t1)[:, :-4], affine, root / "cropped" / "ct.nii.gz")
    poisoned = t1.copy()
    poisoned[40, 50, 2] = np.nan
    _save(poisoned, affine, root / "nan" / "mr.nii.gz")
    (root / "nomask" / "mask.nii.gz").unlink()
    return root


@pytest.fixture(scope="module")
def synthrad_ingested(synthrad, tmp_path_factory):
    lines: list[str] = []
    out = tmp_path_factory.mktemp("out") / "corpus"
    result = ingest(synthrad, out, size=32, on_problem=lambda p: lines.append(str(p)))
    return result, lines


def test_synthrad_layout_is_detected(synthrad):
    assert detect_layout(synthrad) == "synthrad"
    assert detect_layout(synthrad / "1BA001") is None


def test_bad_cases_cost_one_line_each(synthrad_ingested):
    result, lines = synthrad_ingested
    assert len(lines) == 4 and all("\n" not in line for line in lines), lines
    by_case = {name: next(line for line in lines if name in line) for name in ("shifted", "cropped", "nan")}
    assert "origin" in by_case["shifted"] and "ct.nii.gz" in by_case["shifted"]
    assert "shape" in by_case["cropped"]
    assert "case nan: contains 1 NaN voxels" in by_case["nan"]
    assert any("nomask" in line and "missing mask.nii.gz" in line for line in lines)
    assert {r.subject for r in result.records} == {"1BA001", "1BA002", "1BA003"}


def test_pairs_share_slice_split_and_mask(synthrad_ingested):
    result, _ = synthrad_ingested
    pairs = aligned_pairs(result.manifest, "MR", "CT")
    assert len(pairs) == len(result.records) // 2 > 0
    for src, tgt, mask in pairs:
        assert (src.contrast, tgt.contrast) == ("mr", "ct") and src.subject == tgt.subject
        assert src.split == tgt.split and src.extra["pair_id"] == tgt.extra["pair_id"]
        assert mask == src.extra["mask"] == tgt.extra["mask"]
    splits = {}
    for r in result.records:
        splits.setdefault(r.subject, set()).add(r.split)
    assert all(len(s) == 1 for s in splits.values()) and len(set.union(*splits.values())) == 3
    assert result.qc.ok


def test_ct_is_stored_so_hu_come_back(synthrad_ingested, mni):
    result, _ = synthrad_ingested
    pair = aligned_pairs(result.manifest, "mr", "ct")[0]
    mr, ct, mask = load_pair(pair, result.manifest)
    assert mr.shape == ct.shape == mask.shape == (32, 32) and mask.any() and not mask.all()
    assert pair.target.extra["normalisation"] == {
        "rule": "hu_range",
        "low_hu": TRANSLATION_HU_RANGE[0],
        "high_hu": TRANSLATION_HU_RANGE[1],
    }
    hu = hu_from_unit(ct)
    assert hu.min() >= -1024.5 and hu.max() <= 0.5  # the fixture's CT spans -1000..0 HU
    assert np.corrcoef(mr[mask], ct[mask])[0, 1] > 0.9  # same slice, structurally


@pytest.fixture(scope="module")
def brats(mni, tmp_path_factory):
    """A BraTS 2023 case (-t1n, -t2w, -seg) and a BraTS 2018 one (_t1, _t2, _seg)."""
    root = tmp_path_factory.mktemp("brats")
    for case, z, names in (
        ("BraTS-GLI-00001-000", 60, ("-t1n", "-t2w", "-seg")),
        ("Brats18_TCIA_002_1", 75, ("_t1", "_t2", "_seg")),
    ):
        t1, affine = _slab(mni, "t1", z)
        gm, _ = _slab(mni, "gm", z)
        wm, _ = _slab(mni, "wm", z)
        brain = (gm + wm) > 0.2  # BraTS volumes are skull stripped
        for suffix, array in zip(names, (t1 * brain, gm * brain, (wm > 0.5).astype(np.uint8)), strict=True):
            _save(array, affine, root / case / f"{case}{suffix}.nii.gz")
    return root


def test_brats_contrasts_pair_under_either_naming(brats, tmp_path):
    assert detect_layout(brats) == "brats"
    result = ingest(brats, tmp_path / "out", size=32)
    assert result.problems == [] and {r.contrast for r in result.records} == {"t1", "t2"}
    assert {r.anatomy for r in result.records} == {"brain"}
    pairs = aligned_pairs(result.records, "t1n", "t2w")
    assert pairs == aligned_pairs(result.records, "t1", "t2")
    assert {p.source.subject for p in pairs} == {"BraTS-GLI-00001-000", "Brats18_TCIA_002_1"}
    seg = read_image(tmp_path / "out" / pairs[0].source.extra["seg"]).array
    assert set(np.unique(seg)) <= {0, 1}
    with_tumour = [
        p.source for p in pairs if read_image(tmp_path / "out" / p.source.extra["seg"]).array.any()
    ]
    assert with_tumour and all(r.labels == {"finding": "tumour"} for r in with_tumour)
    assert "tumour present" in with_tumour[0].text
    with pytest.raises(InvalidInput, match="matches contrasts t1, t2"):
        aligned_pairs(result.records, "MR", "t2")


def test_cli_detects_the_layout_and_bad_ones_are_one_line(synthrad, tmp_path, capsys):
    from radsynth.cli import main

    assert main(["data", "ingest", str(synthrad), "-o", str(tmp_path / "ok"), "--size", "16"]) == 0
    assert "skipped" in capsys.readouterr().err
    assert {r.contrast for r in load_manifest(tmp_path / "ok" / "manifest.jsonl")} == {"mr", "ct"}

    with pytest.raises(InvalidInput, match="no case folders found for the brats layout"):
        ingest(synthrad / "1BA001", tmp_path / "x", layout="brats")
    assert not (tmp_path / "x").exists()
    assert main(["data", "ingest", str(synthrad), "-o", str(tmp_path / "y"), "--layout", "nifti"]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "unknown or undetectable layout 'nifti'" in lines[0], lines


# --- the real glioma folder of ../shared/data: BraTS 2023 and BraTS-Toolkit names ---------

GLIOMA = SHARED_DATA / "brain_mri_multicontrast"
SUBJECTS = {"BraTS-GLI-00001-000", "TCGA-DU-7294", "TCGA-FG-6692"}
SOURCE = "BrainLesion/tutorials: BraTS 2023 GLI, TCIA TCGA-LGG"
TERMS = "BraTS challenge terms; TCIA data usage policy"


def _glioma() -> Path:
    if not (GLIOMA / "SOURCE.md").is_file():
        pytest.skip(f"{GLIOMA} not available: these tests ingest the real files in ../shared/data")
    return GLIOMA


@pytest.fixture(scope="module")
def glioma_corpus(tmp_path_factory):
    """The shared folder ingested by the CLI as a user would, with its source and terms."""
    from radsynth.cli import main

    out = tmp_path_factory.mktemp("glioma") / "corpus"
    args = ["data", "ingest", str(_glioma()), "--layout", "brats", "-o", str(out), "--size", "64"]
    assert main([*args, "--source", SOURCE, "--licence", TERMS]) == 0
    return out / "manifest.jsonl"


def test_every_naming_scheme_of_the_shared_folder_gives_four_contrasts(glioma_corpus):
    assert detect_layout(_glioma()) == "brats"
    records = load_manifest(glioma_corpus)
    by_subject: dict[str, set[str]] = {}
    for r in records:
        by_subject.setdefault(r.subject, set()).add(r.contrast)
    assert by_subject == {s: {"t1", "t1ce", "t2", "flair"} for s in SUBJECTS}  # not OtherEXampleFromTCIA
    files = {(r.subject, r.contrast): Path(r.extra["source_file"]).name for r in records}
    assert files["TCGA-FG-6692", "flair"] == "OtherEXampleFromTCIA_fla_bet.nii.gz"
    assert files["TCGA-DU-7294", "t1ce"] == "TCGA-DU-7294_t1c_bet.nii.gz"
    assert files["BraTS-GLI-00001-000", "t1ce"] == "BraTS-GLI-00001-000-t1c.nii.gz"
    pair_ids: dict[str, list[str]] = {}
    for r in records:
        pair_ids.setdefault(r.extra["pair_id"], []).append(r.contrast)
    assert all(sorted(c) == ["flair", "t1", "t1ce", "t2"] for c in pair_ids.values())
    pairs = aligned_pairs(records, "t1", "fla")
    assert pairs == aligned_pairs(records, "t1n", "t2f") and len(pairs) == len(pair_ids)
    assert all(p.source.subject == p.target.subject and p.source.shape == (64, 64) for p in pairs)


def test_every_subject_s_normal_tissue_lands_on_one_value_per_contrast(glioma_corpus):
    """Scaled by the commonest brain intensity, a contrast's brain has one median across
    the three subjects (foreground percentiles put T2 and FLAIR 1.75-2x apart)."""
    from radsynth.data.manifest import read_unit_image
    from radsynth.data.normalise import TISSUE_MODE_AT

    records = load_manifest(glioma_corpus)
    assert {r.extra["normalisation"]["rule"] for r in records} == {"mr_tissue_mode"}
    values: dict[tuple[str, str], list[np.ndarray]] = {}
    for r in records:
        brain = read_image(glioma_corpus.parent / r.extra["mask"]).array > 0
        unit = read_unit_image(r.resolve(glioma_corpus))
        values.setdefault((r.contrast, r.subject), []).append(unit[brain])
    for contrast in ("t1", "t1ce", "t2", "flair"):
        medians = [float(np.median(np.concatenate(values[contrast, s]))) for s in SUBJECTS]
        spread = 1.1 if contrast in ("t2", "flair") else 1.3
        assert max(medians) / min(medians) < spread, (contrast, medians)
        assert all(0.5 * TISSUE_MODE_AT < m < 2 * TISSUE_MODE_AT for m in medians), (contrast, medians)


def test_source_and_terms_reach_every_record(glioma_corpus, brats, tmp_path):
    records = load_manifest(glioma_corpus)
    assert {(r.source, r.licence) for r in records} == {(SOURCE, TERMS)}
    defaults = ingest(brats, tmp_path / "defaults", size=16).records
    assert {(r.source, r.licence) for r in defaults} == {("user data", "as provided by the user")}


def _real_case(root: Path, name: str, contrasts: dict[str, nib.Nifti1Image], drop=(), crop=None) -> None:
    """A case folder of real volumes under BraTS-Toolkit names; ``crop`` cuts one contrast."""
    for contrast, image in contrasts.items():
        if contrast in drop:
            continue
        if contrast == crop:
            image = image.slicer[2:-2]  # 4 voxels fewer along x: another grid
        _save(np.asarray(image.dataobj), image.affine, root / name / f"{name}_{contrast}_bet.nii.gz")


@pytest.fixture(scope="module")
def bad_glioma(tmp_path_factory):
    """TCGA-DU-7294 cut to 12 axial slices, copied as one good case and three bad ones."""
    folder = _glioma() / "TCGA-DU-7294"
    contrasts = {
        c: nib.load(folder / f"TCGA-DU-7294_{c}_bet.nii.gz").slicer[:, :, 70:82]
        for c in ("t1", "t1c", "t2", "fla")
    }
    root = tmp_path_factory.mktemp("bad_glioma")
    _real_case(root, "good", contrasts)
    _real_case(root, "cropped", contrasts, crop="fla")
    _real_case(root, "alone", contrasts, drop=("t1c", "t2", "fla"))
    _real_case(root, "partial", contrasts, drop=("t1c", "t2"))
    return root


def test_bad_glioma_cases_are_one_line_each(bad_glioma, tmp_path):
    lines: list[str] = []
    result = ingest(bad_glioma, tmp_path / "out", size=16, on_problem=lambda p: lines.append(str(p)))
    assert len(lines) == 2 and all("\n" not in line for line in lines), lines
    cropped = next(line for line in lines if "case cropped" in line)
    assert "cropped_fla_bet.nii.gz" in cropped and "shape" in cropped
    assert any("case alone: fewer than two contrasts (found t1" in line for line in lines), lines
    # a case with two of the four contrasts is still a pair: kept, and paired where it can be
    contrasts = {(r.subject, r.contrast) for r in result.records}
    assert {c for s, c in contrasts if s == "partial"} == {"t1", "flair"}
    assert {p.source.subject for p in aligned_pairs(result.records, "t1", "t2")} == {"good"}
    assert {p.source.subject for p in aligned_pairs(result.records, "t1", "flair")} == {"good", "partial"}


def test_nothing_usable_or_an_empty_licence_writes_nothing(bad_glioma, tmp_path, capsys):
    from radsynth.cli import main

    only_bad = tmp_path / "only_bad"
    for case in ("cropped", "alone"):
        shutil.copytree(bad_glioma / case, only_bad / case)
    with pytest.raises(InvalidInput, match="nothing usable: 2 case"):
        ingest(only_bad, tmp_path / "none", size=16)
    assert not (tmp_path / "none").exists()

    args = [str(bad_glioma), "--licence", " "]
    assert main(["data", "ingest", *args, "-o", str(tmp_path / "x"), "--size", "16"]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "--licence must not be empty" in lines[0], lines
    assert not (tmp_path / "x").exists()


def test_a_plain_folder_carries_its_source_and_terms_too(tmp_path):
    """Not only case folders: a folder of PNGs from a public data set names it in every record."""
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    for name in ("16010.png", "16011.png"):
        shutil.copy(_glioma().parent / "harvard_aanlib_ct_mri" / "CT" / name, pngs / name)
    result = ingest(
        pngs, tmp_path / "out", size=16, modality="CT", source_name="Harvard atlas", licence="research"
    )
    assert {(r.source, r.licence) for r in result.records} == {("Harvard atlas", "research")}
