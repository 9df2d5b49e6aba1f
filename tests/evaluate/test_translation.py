"""Translation metrics on cases with known answers.

Fixtures are the ITK example slices ``BrainT1Slice.png`` and ``BrainProtonDensitySlice.png``
(one real brain slice in two MR contrasts, same grid). Where CT numbers are needed the T1
slice is mapped linearly onto -1000..1000 HU: a structural stand-in for testing units and
clipping, not a clinical CT. Bone Dice is tested on the Harvard atlas CT/MR slices and the
lesion rule on the glioma FLAIR/T1 volumes of ../shared/data (skipped when it is absent).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from radsynth.data import sources
from radsynth.errors import GeometryMismatch, InvalidInput
from radsynth.evaluate.translation import (
    ATLAS_BONE_THRESHOLD,
    TranslationPair,
    body_mask,
    bone_dice,
    domain_fidelity,
    evaluate_translation_pairs,
    lesion_metrics,
    paired_metrics,
    structure_metrics,
    white_matter,
)
from radsynth.io import Image, read_image
from tests.data.conftest import SHARED_DATA


def _slice(name: str) -> np.ndarray:
    path = sources.ITK_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not available (Debian insighttoolkit5-examples)")
    return read_image(path).array.astype(np.float64) / 255.0


@pytest.fixture(scope="module")
def t1() -> np.ndarray:
    return _slice("BrainT1Slice.png")


@pytest.fixture(scope="module")
def pd() -> np.ndarray:
    return _slice("BrainProtonDensitySlice.png")


def test_identical_images_score_perfectly(t1):
    m = paired_metrics(t1, t1.copy())
    assert m["mae"] == 0 and m["psnr"] == math.inf and m["ssim"] == pytest.approx(1.0, abs=1e-9)


def test_known_noise_gives_the_psnr_formula(t1):
    mask = body_mask(t1)
    sigma = 0.02
    noisy = t1 + np.random.default_rng(0).normal(0, sigma, t1.shape)
    m = paired_metrics(noisy, t1, mask=mask, data_range=1.0)
    mse = float(((noisy - t1)[mask] ** 2).mean())
    assert m["psnr"] == pytest.approx(-10 * math.log10(mse), abs=1e-9)
    assert m["psnr"] == pytest.approx(20 * math.log10(1.0 / sigma), abs=0.2)  # ~34 dB
    assert m["mae"] == pytest.approx(sigma * math.sqrt(2 / math.pi), rel=0.05)  # E|N(0, s)|
    assert 0.5 < m["ssim"] < 0.99


def test_ct_mae_is_in_hu_and_clipped_to_the_translation_range(t1):
    hu = t1 * 2000.0 - 1000.0
    m = paired_metrics(hu + 30.0, hu, modality="CT")
    assert m["mae"] == pytest.approx(30.0, abs=0.5)  # a few voxels sit at the 2000 HU clip
    result = evaluate_translation_pairs([("a", hu + 30.0, hu)], modality="CT", n_boot=0)
    assert result["units"] == "HU" and result["data_range"] == 3024.0


def test_body_mask_is_one_filled_component(t1):
    from scipy import ndimage

    mask = body_mask(t1)
    assert 0.2 < mask.mean() < 0.9
    assert ndimage.label(mask)[1] == 1
    assert (ndimage.binary_fill_holes(mask) == mask).all()


def test_structure_kept_beats_an_unrelated_image(t1, pd):
    mask = body_mask(t1)
    remapped = 1.0 - t1**2  # another contrast: monotonic, nonlinear, inverted
    unrelated = t1[::-1, ::-1]  # real pixels, anatomy elsewhere
    kept, other_contrast, lost = (structure_metrics(x, t1, mask) for x in (remapped, pd, unrelated))
    for name in ("nmi", "edge_correlation"):
        assert kept[name] > lost[name] and other_contrast[name] > lost[name], (name, kept, lost)
    assert kept["nmi"] > 1.5 and lost["edge_correlation"] < 0.5


def test_cases_pool_slices_and_get_a_bootstrap_interval(t1, pd):
    rng = np.random.default_rng(1)
    pairs = [
        TranslationPair(case, t1 + rng.normal(0, s, t1.shape), t1, source=pd)
        for case, s in (("a", 0.01), ("a", 0.01), ("b", 0.03), ("c", 0.05))
    ]
    result = evaluate_translation_pairs(pairs, data_range=1.0, n_boot=100)
    assert result["n_cases"] == 3 and result["cases"]["a"]["voxels"] == 2 * result["cases"]["b"]["voxels"]
    psnr = [result["cases"][c]["psnr"] for c in "abc"]
    assert psnr[0] > psnr[1] > psnr[2]
    overall = result["overall"]["psnr"]
    assert (
        overall["value"] == pytest.approx(np.mean(psnr))
        and overall["low"] <= overall["value"] <= overall["high"]
    )
    assert set(result["overall"]) == {"mae", "psnr", "ssim", "nmi", "edge_correlation"}


def test_volumes_with_geometry(t1):
    volume = Image(np.stack([t1, t1[::-1], t1[:, ::-1]]), spacing=(1.0, 1.0, 3.0), modality="MR")
    assert paired_metrics(volume, volume)["ssim"] == pytest.approx(1.0)
    moved = replace(volume, origin=(0.0, 0.0, 2.0))
    with pytest.raises(GeometryMismatch, match="case image: prediction vs reference: origin"):
        paired_metrics(moved, volume)


def test_bad_inputs_are_one_line_each(t1):
    poisoned = t1.copy()
    poisoned[5, 5] = np.nan
    cases = [
        (GeometryMismatch, "shape", lambda: paired_metrics(t1[:-1], t1)),
        (InvalidInput, "empty body mask", lambda: paired_metrics(t1, t1, mask=np.zeros(t1.shape, bool))),
        (InvalidInput, "empty body mask", lambda: body_mask(np.zeros((32, 32)))),
        (InvalidInput, "NaN", lambda: paired_metrics(poisoned, t1)),
        (InvalidInput, "no translation pairs", lambda: evaluate_translation_pairs([])),
    ]
    for kind, words, call in cases:
        with pytest.raises(kind, match=words) as err:
            call()
        assert "\n" not in str(err.value)


@pytest.mark.slow  # radiomics of both domains
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # 3 slices, 465 features: rank 2
def test_domain_fidelity_tells_the_target_domain_apart(t1, pd):
    from PIL import Image as PILImage

    def small(x: np.ndarray) -> np.ndarray:
        return np.asarray(PILImage.fromarray(x.astype(np.float32)).resize((48, 48)), np.float32)

    def views(x: np.ndarray) -> list[np.ndarray]:
        return [small(x), small(x[:, ::-1]), small(x[::-1])]

    target = views(pd)
    assert domain_fidelity(views(pd[:, ::-1]), target) < domain_fidelity(views(t1), target)


# --- bone and lesion, on the real atlas CT and glioma MR in ../shared/data ------------------

ATLAS = SHARED_DATA / "harvard_aanlib_ct_mri"
GLIOMA = SHARED_DATA / "brain_mri_multicontrast"
BRATS = GLIOMA / "BraTS-GLI-00001-000" / "BraTS-GLI-00001-000"
TUMOUR_SLICE = 76  # axial index (Z, Y, X order) where the BraTS FLAIR lesion is largest


def _shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not available: these tests read the real files in ../shared/data")
    return path


def _atlas(kind: str, name: str) -> np.ndarray:
    return read_image(_shared(ATLAS / kind / f"{name}.png")).array.astype(np.float64)


def _volume(path: str) -> np.ndarray:
    return read_image(_shared(GLIOMA / path)).array.astype(np.float64)  # (Z, Y, X)


@pytest.fixture(scope="module")
def brats_flair() -> np.ndarray:
    return _volume("BraTS-GLI-00001-000/BraTS-GLI-00001-000-t2f.nii.gz")


@pytest.fixture(scope="module")
def brats_slab(brats_flair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FLAIR, T1 (scaled to FLAIR's brain mean) and brain mask: 6 slices through the tumour."""
    cut = slice(TUMOUR_SLICE - 3, TUMOUR_SLICE + 3)
    flair = brats_flair[cut]
    t1 = _volume("BraTS-GLI-00001-000/BraTS-GLI-00001-000-t1n.nii.gz")[cut]
    brain = flair != 0
    return flair, t1 / t1[brain].mean() * flair[brain].mean(), brain


@pytest.mark.parametrize("name", ["2014", "20010", "33016"])  # a series with the brightest brain: 20
def test_atlas_bone_threshold_keeps_the_skull_and_leaves_the_brain(name):
    ct = _atlas("CT", name)
    skull = ct >= 250  # the atlas saturates bone
    inside = ndimage.binary_erosion(ndimage.binary_fill_holes(skull) & ~skull, iterations=4)
    bone = ct >= ATLAS_BONE_THRESHOLD
    assert inside.sum() > 5000 and (bone & inside).mean() < 0.01
    assert (skull & body_mask(ct)).sum() / (bone & body_mask(ct)).sum() > 0.9


def test_bone_dice_is_one_for_the_reference_and_drops_for_worse_copies():
    ct, mr = _atlas("CT", "2014"), _atlas("MRI", "2014")
    assert bone_dice(ct, ct) == 1.0
    shifted, blurred = bone_dice(np.roll(ct, 3, axis=1), ct), bone_dice(ndimage.gaussian_filter(ct, 2), ct)
    assert 0.5 < shifted < 0.9 and 0.5 < blurred < 0.9, (shifted, blurred)
    assert bone_dice(mr, ct) < 0.1  # the skull is dark on MR
    no_bone = np.minimum(ct, 100.0)
    assert bone_dice(no_bone, no_bone) == 1.0 and bone_dice(no_bone, ct) == 0.0  # empty: 1; missed: 0


def test_bone_dice_pools_a_case_voxel_wise():
    ct = {n: _atlas("CT", n) for n in ("2014", "2015")}
    preds = {n: np.roll(c, 2 + 4 * i, axis=0) for i, (n, c) in enumerate(ct.items())}
    pairs = [TranslationPair("case2", preds[n], ct[n]) for n in ct]
    result = evaluate_translation_pairs(pairs, bone_threshold=ATLAS_BONE_THRESHOLD, n_boot=0)
    counts = []
    for n in ct:
        bone_p, bone_r = ((x >= ATLAS_BONE_THRESHOLD) & body_mask(ct[n]) for x in (preds[n], ct[n]))
        counts.append([(bone_p & bone_r).sum(), bone_p.sum(), bone_r.sum()])
    both, p, r = np.sum(counts, axis=0)
    assert result["cases"]["case2"]["bone_dice"] == pytest.approx(2 * both / (p + r))
    assert result["overall"]["bone_dice"]["value"] == pytest.approx(2 * both / (p + r))
    assert "bone_dice" not in evaluate_translation_pairs(pairs, n_boot=0)["cases"]["case2"]


@pytest.mark.parametrize(
    ("path", "low", "high"),
    [  # lesion_metrics' docstring: 60,509, 17,370 and 16,359 voxels
        ("BraTS-GLI-00001-000/BraTS-GLI-00001-000-t2f.nii.gz", 57_000, 64_000),
        ("TCGA-DU-7294/TCGA-DU-7294_fla_bet.nii.gz", 16_000, 19_000),
        ("TCGA-FG-6692/OtherEXampleFromTCIA_fla_bet.nii.gz", 15_000, 18_000),
    ],
)
def test_lesion_rule_counts_on_the_glioma_flair(path, low, high):
    flair = _volume(path)
    brain = flair != 0
    m = lesion_metrics(flair, flair, brain)
    assert low < m["lesion_voxels"] < high
    assert m["contrast_ratio"] == 1.0 and m["lesion_dice"] == 1.0 and m["lesion_contrast_reference"] > 0.5


def test_lesion_rule_finds_the_brats_tumour_as_one_region(brats_flair):
    brain = brats_flair != 0
    lesion = brain & (brats_flair > brats_flair[brain].mean() + 2 * brats_flair[brain].std())
    labels, _ = ndimage.label(lesion)
    sizes = np.bincount(labels.ravel())[1:]
    assert sizes.max() > 0.9 * lesion.sum()  # the tumour and its oedema, not scattered voxels
    z, y, x = np.nonzero(labels == 1 + sizes.argmax())
    assert abs(np.median(z) - TUMOUR_SLICE) < 15  # where the tumour is seen (SOURCE.md: slice 77)


def test_translations_that_lose_the_lesion_lose_contrast(brats_slab):
    flair, t1, brain = brats_slab
    blurred = ndimage.gaussian_filter(flair, (0, 3, 3))
    as_t1, smooth = lesion_metrics(t1, flair, brain), lesion_metrics(blurred, flair, brain)
    assert as_t1["contrast_ratio"] < 0.2 and as_t1["lesion_dice"] < 0.1
    assert as_t1["contrast_ratio"] < smooth["contrast_ratio"] < 0.95 and 0.3 < smooth["lesion_dice"] < 0.95
    assert smooth["lesion_contrast_reference"] == as_t1["lesion_contrast_reference"]
    lesion = brain & (flair > flair[brain].mean() + 2 * flair[brain].std())
    wm = white_matter(t1, brain, lesion)
    assert 0.1 < wm.sum() / brain.sum() < 0.35 and not (wm & lesion).any()
    against_wm = lesion_metrics(t1, flair, brain, tissue=wm)
    assert against_wm["lesion_contrast_reference"] > 0.5 and against_wm["contrast_ratio"] < 0.2


def test_lesion_figures_pool_a_case_and_skip_cases_without_one(brats_slab):
    flair, t1, brain = brats_slab
    wm = white_matter(t1, brain)  # given, since a slice dilates the lesion in-plane, a volume in 3D
    pairs = [TranslationPair("glioma", t1[i], flair[i], brain[i], tissue=wm[i]) for i in range(len(flair))]
    flat = brain[0] * 100.0  # no voxel above mean + 2 sd: no lesion
    pairs.append(TranslationPair("flat", flat, flat, brain[0]))
    result = evaluate_translation_pairs(pairs, lesion=True, n_boot=0)
    pooled = lesion_metrics(t1, flair, brain, tissue=wm)
    for name, value in pooled.items():
        assert result["cases"]["glioma"][name] == pytest.approx(value), name
    flat_case = result["cases"]["flat"]
    assert flat_case["lesion_voxels"] == 0 and math.isnan(flat_case["contrast_ratio"])
    assert flat_case["lesion_dice"] == 1.0
    overall = result["overall"]
    # the flat case has no lesion to keep: left out of the contrast means, not of the Dice
    assert overall["contrast_ratio"]["value"] == pytest.approx(pooled["contrast_ratio"])
    assert overall["lesion_dice"]["value"] == pytest.approx((pooled["lesion_dice"] + 1.0) / 2)
    assert "lesion_voxels" not in overall
    assert "contrast_ratio" not in evaluate_translation_pairs(pairs, n_boot=0)["overall"]


def test_lesion_bad_inputs_are_one_line_each(brats_slab):
    flair, t1, brain = brats_slab
    cases = [
        (GeometryMismatch, "tissue shape", lambda: lesion_metrics(t1, flair, brain, tissue=brain[:1])),
        (GeometryMismatch, "brain shape", lambda: lesion_metrics(t1, flair, brain[0])),
        (InvalidInput, "empty brain mask", lambda: lesion_metrics(t1, flair, np.zeros_like(brain))),
        (InvalidInput, "prediction is not positive", lambda: lesion_metrics(-t1, flair, brain)),
        (
            GeometryMismatch,
            "case x: tissue shape",
            lambda: evaluate_translation_pairs(
                [TranslationPair("x", t1, flair, brain, tissue=brain[0])], lesion=True
            ),
        ),
    ]
    for kind, words, call in cases:
        with pytest.raises(kind, match=words) as err:
            call()
        assert "\n" not in str(err.value)
