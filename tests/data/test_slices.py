import numpy as np
import pytest

from radsynth.data.slices import (
    PLANES,
    extract_slice,
    native_plane,
    resize_square,
    slice_count,
)
from radsynth.errors import InvalidInput
from radsynth.io import read_image

AXIAL_ROWS = [0.0, 1.0, 0.0]  # LPS: down the image = towards posterior
AXIAL_COLUMNS = [1.0, 0.0, 0.0]  # LPS: right on the image = towards the patient's left


def _z(a):
    a = np.asarray(a, float) - np.mean(a)
    return a / np.linalg.norm(a)


def test_ras_and_lsa_volumes_give_the_same_axial_orientation(ch2, kmeans):
    """ch2 is stored RAS, the ITK Kmeans head LSA: both must display anterior up, right on left."""
    ras, lsa = read_image(ch2), read_image(kmeans)
    assert native_plane(ras) == "axial" and native_plane(lsa) == "coronal"
    for volume in (ras, lsa):
        meta = extract_slice(volume, "axial", 20)[0].metadata["slice"]
        np.testing.assert_allclose(meta["row_direction"], AXIAL_ROWS, atol=1e-6)
        np.testing.assert_allclose(meta["column_direction"], AXIAL_COLUMNS, atol=1e-6)
    # Derived by hand from each storage order (numpy (z, y, x)):
    # LSA: x -> left, y -> superior, z -> anterior: axial k = array[:, k, :], rows flipped.
    k = 40
    np.testing.assert_array_equal(extract_slice(lsa, "axial", k)[0].array, lsa.array[::-1, k, :])
    # RAS: x -> right, y -> anterior, z -> superior: axial k = array[k] rotated 180 degrees.
    np.testing.assert_array_equal(extract_slice(ras, "axial", k)[0].array, ras.array[k, ::-1, ::-1])


def test_ch2_axial_slice_matches_the_brainweb_png_of_the_same_anatomy(ch2, brain_t1_png):
    """BrainT1Slice.png is Colin27 (BrainWeb) stored posterior-up; rotated to display it is ch2 slice 94."""
    volume, png = read_image(ch2), read_image(brain_t1_png)
    shown = extract_slice(volume, "axial", 94)[0].array
    displayed_png = np.rot90(png.array, 2)
    assert float(_z(shown).ravel() @ _z(displayed_png).ravel()) > 0.95
    assert float(_z(shown).ravel() @ _z(png.array).ravel()) < 0.85  # as stored: upside down


def test_sagittal_and_coronal_display_directions(ch2):
    volume = read_image(ch2)
    sag = extract_slice(volume, "sagittal", 90)[0].metadata["slice"]
    cor = extract_slice(volume, "coronal", 100)[0].metadata["slice"]
    np.testing.assert_allclose(sag["column_direction"], [0, 1, 0], atol=1e-6)  # anterior on the left
    np.testing.assert_allclose(sag["row_direction"], [0, 0, -1], atol=1e-6)  # superior up
    np.testing.assert_allclose(cor["column_direction"], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(cor["row_direction"], [0, 0, -1], atol=1e-6)
    # Slice indices count from the patient's right, whatever the storage order.
    first = extract_slice(volume, "sagittal", 0)[0].metadata["slice"]["position_mm"]
    last = extract_slice(volume, "sagittal", slice_count(volume, "sagittal") - 1)[0].metadata["slice"]
    assert first < last["position_mm"]


def test_slice_origin_is_the_physical_position_of_pixel_zero(kmeans):
    volume = read_image(kmeans)
    image, _ = extract_slice(volume, "axial", 30)
    meta = image.metadata["slice"]
    # Pixel [0, 0] of the displayed slice is array[-1, 30, 0] in storage order.
    expected = (volume.affine @ np.array([0, 30, volume.array.shape[0] - 1, 1.0]))[:3]
    np.testing.assert_allclose(meta["origin_lps"], expected, atol=1e-6)
    assert meta["position_mm"] == pytest.approx(expected[2])


def test_resize_keeps_aspect_and_pads_with_background(kmeans):
    volume = read_image(kmeans)
    image, _ = extract_slice(volume, "axial", 40)  # 62 x 128 pixels of 3 x 2 mm: 186 x 256 mm
    out = resize_square(image, 64, background=-1.0)
    assert out.array.shape == (64, 64)
    assert out.spacing == pytest.approx((4.0, 4.0))  # 256 mm over 64 pixels
    rows_with_image = np.flatnonzero((out.array != -1.0).any(axis=1))
    assert 44 <= rows_with_image.size <= 48  # 186 mm / 4 mm = 46.5 rows, the rest is padding
    assert (out.array[:8] == -1.0).all() and (out.array[-8:] == -1.0).all()
    # Pixel centres move with the resize: edges stay aligned, padding rows lie anterior.
    shift = np.array(out.metadata["slice"]["origin_lps"]) - np.array(image.metadata["slice"]["origin_lps"])
    assert shift[0] == pytest.approx(2.0 - 1.0)  # half a new pixel minus half an old one (mm)
    assert shift[1] == pytest.approx(-(9 - 0.5) * 4.0 - 1.5)  # 9 padding rows of 4 mm above


def test_bad_plane_and_index_are_named(ch2):
    volume = read_image(ch2)
    with pytest.raises(InvalidInput, match="unknown plane 'oblique'"):
        extract_slice(volume, "oblique", 0)
    with pytest.raises(InvalidInput, match="slice 999 is outside"):
        extract_slice(volume, "axial", 999)
    assert set(PLANES) == {"axial", "coronal", "sagittal"}
