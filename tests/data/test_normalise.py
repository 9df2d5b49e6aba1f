import numpy as np
import pydicom.data
import pytest

from radsynth.data import normalise as norm
from radsynth.errors import InvalidInput
from radsynth.io import Image, read_image


@pytest.fixture(scope="module")
def ct():
    """A real CT slice in HU (pydicom's CT_small.dcm)."""
    image = read_image(pydicom.data.get_testdata_file("CT_small.dcm"))
    assert image.units == "HU"
    return image


def test_named_windows_map_level_and_edges(ct):
    for name, (level, width) in norm.WINDOWS.items():
        out = norm.normalise(ct, window=name).array
        assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
        hu = ct.array.astype(np.float64)
        expected = np.clip((hu - (level - width / 2)) / width, 0, 1)
        np.testing.assert_allclose(out.reshape(hu.shape), expected, atol=1e-5)
    brain = norm.normalise(ct, window="brain").array
    hu = ct.array.reshape(brain.shape)
    assert np.all(brain[hu <= 0] == 0) and np.all(brain[hu >= 80] == 1)
    assert norm.window_name("Mediastinum") == "soft_tissue"
    assert norm.normalise(ct, window="soft tissue").metadata["normalisation"]["level_hu"] == 50


def test_unknown_window_is_named(ct):
    with pytest.raises(InvalidInput, match="unknown CT window 'liver'"):
        norm.normalise(ct, window="liver")


def test_mr_percentiles_use_the_foreground(ch2):
    image = read_image(ch2)
    out = norm.normalise(image, modality="MR")
    fg = norm.foreground_mask(image.array)
    assert 0.1 < fg.mean() < 0.9  # the head, not the air around it
    assert np.isclose(np.percentile(out.array[fg], 99.5), 1.0, atol=0.02)
    assert np.isclose(np.percentile(out.array[fg], 0.5), 0.0, atol=0.02)
    # Over all voxels the air would set the low end: the darkest tissue would not reach 0.
    assert np.percentile(image.array[fg], 0.5) > np.percentile(image.array, 0.5)


def test_percentiles_survive_empty_background_and_constant_images():
    # Tiny edge cases with no real file: a slice that is all background, and no foreground.
    assert not norm.percentile_scale(np.zeros((4, 4))).any()
    flat = norm.normalise(Image(np.full((4, 4), 7.0), modality="MR"))
    assert not flat.array.any()
