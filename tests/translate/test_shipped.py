"""The shipped translation checkpoints, as a user runs them (`radsynth translate` with no
--weights) on real volumes: each loads with its card, keeps the input's geometry in NIfTI
and DICOM series, and does its job better than doing nothing (denoise, SR) or writes a
CT that keeps the MR's anatomy (mr2ct)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radsynth import DEFAULT_FAMILY
from radsynth.cli import main
from radsynth.data.degrade import rician
from radsynth.evaluate.translation import body_mask
from radsynth.io import read_image, write_dicom, write_nifti
from radsynth.models.registry import shipped
from radsynth.provenance import read_marking
from radsynth.translate import load_translator
from radsynth.translate.volume import TASKS


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_has_a_shipped_checkpoint_with_a_card(task):
    model = load_translator(task)
    card = model.card
    assert card.task == "translate" and card.model_id.startswith("translate-")
    assert card.data.sources and all(s.licence for s in card.data.sources)
    spec = TASKS[task]
    assert (shipped(spec.model, spec.family or DEFAULT_FAMILY) / "card.json").is_file()
    # translation runs at the pixel spacing the model learnt (the card's), not at 1 mm
    assert model.spacing == pytest.approx(np.mean(card.spacing))
    if not spec.native and spec.family is None:
        assert model.spacing > 1.5  # 64-pixel slices of heads
    if spec.family is not None:  # learnt from real pairs: the atlas's stated 0.8 mm, the gliomas' 1 mm grid
        assert model.spacing == pytest.approx(0.8 if task == "mr2ct-atlas" else 1.0)
        assert card.task_info["checkpoint_chosen_by"] and card.metrics["cross_validation"]["folds"] >= 3


def _psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray, top: float) -> float:
    return float(10 * np.log10(top**2 / np.mean((a[mask] - b[mask]) ** 2)))


def test_cli_denoises_a_nifti_volume_with_the_shipped_model(mr_volume, tmp_path):
    torch.manual_seed(0)
    top = float(np.percentile(mr_volume.array, 99.5))
    x = torch.from_numpy(mr_volume.array)[:, None] / top
    noisy = mr_volume.with_array((rician(x, torch.full((x.shape[0],), 0.04)) * top)[:, 0].numpy())
    source = write_nifti(noisy, tmp_path / "noisy.nii.gz")
    assert main(["translate", "--task", "denoise", str(source), "-o", str(tmp_path / "clean.nii.gz")]) == 0
    out = read_image(tmp_path / "clean.nii.gz")
    assert out.same_geometry(read_image(source), atol=1e-5)
    mask = body_mask(mr_volume, "MR")
    before = _psnr(noisy.array, mr_volume.array, mask, top)
    after = _psnr(out.array, mr_volume.array, mask, top)
    assert after > before + 0.5, (before, after)
    assert read_marking(tmp_path / "clean.nii.gz")["synthetic"]


def test_cli_super_resolves_a_dicom_ct_series_better_than_bicubic(ct_volume, tmp_path):
    fine = read_image(write_dicom(ct_volume, tmp_path / "fine-reference"))  # HU as DICOM stores them
    coarse_array = torch.nn.functional.interpolate(
        torch.from_numpy(fine.array)[:, None], scale_factor=0.5, mode="area"
    )[:, 0].numpy()
    coarse = type(fine)(
        coarse_array,
        spacing=(fine.spacing[0] * 2, fine.spacing[1] * 2, fine.spacing[2]),
        origin=fine.origin,
        direction=fine.direction,
        modality="CT",
        units="HU",
    )
    series = write_dicom(coarse, tmp_path / "coarse")
    assert main(["translate", "--task", "sr2", str(series), "-o", str(tmp_path / "fine")]) == 0
    out = read_image(tmp_path / "fine")
    assert out.spatial_shape == fine.spatial_shape and out.modality == "CT"
    bicubic = torch.nn.functional.interpolate(
        torch.from_numpy(read_image(series).array)[:, None], size=fine.spatial_shape[1:], mode="bicubic"
    )[:, 0].numpy()
    mask = body_mask(fine, "CT")
    assert np.abs(out.array - fine.array)[mask].mean() < np.abs(bicubic - fine.array)[mask].mean()


def test_cli_translates_mr_to_a_ct_of_soft_tissue_without_invented_bone(mr_volume, tmp_path):
    source = write_nifti(mr_volume, tmp_path / "mr.nii.gz")
    assert main(["translate", "--task", "mr2ct", str(source), "-o", str(tmp_path / "ct.nii.gz")]) == 0
    ct = read_image(tmp_path / "ct.nii.gz")
    assert ct.same_geometry(read_image(source), atol=1e-5)  # NIfTI: HU, no modality field
    mask = body_mask(mr_volume, "MR")
    inside, mr = ct.array[mask], mr_volume.array[mask]
    assert inside.min() >= -1000 and inside.max() <= 1300
    # a block of brain: soft tissue (the demo model reads it ~100 HU low: see the README),
    # neither air nor bone blobs (an earlier CycleGAN painted them in)
    assert -150 < np.median(inside) < 150 and np.percentile(inside, 99) < 600
    # structure kept: what is dark in the T1 (CSF) is darker in the CT than what is bright
    dark, bright = mr < np.percentile(mr, 10), mr > np.percentile(mr, 50)
    assert inside[dark].mean() < inside[bright].mean()
