"""Translation metrics on cases with known answers.

Fixtures are the ITK example slices ``BrainT1Slice.png`` and ``BrainProtonDensitySlice.png``
(one real brain slice in two MR contrasts, same grid). Where CT numbers are needed the T1
slice is mapped linearly onto -1000..1000 HU: a structural stand-in for testing units and
clipping, not a clinical CT.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from radsynth.data import sources
from radsynth.errors import GeometryMismatch, InvalidInput
from radsynth.evaluate.translation import (
    TranslationPair,
    body_mask,
    domain_fidelity,
    evaluate_translation_pairs,
    paired_metrics,
    structure_metrics,
)
from radsynth.io import Image, read_image


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
