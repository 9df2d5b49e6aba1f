"""Translation learnt from real pairs (issue 20): the conditional flow translator, several
inputs stacked as channels, the Whole Brain Atlas pairs as a corpus with case folds, and
the named-input checks of ``radsynth translate`` on the real glioma volumes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from radsynth.cli import main
from radsynth.data.atlas import atlas_pairs, build_atlas
from radsynth.errors import GeometryMismatch, InvalidInput
from radsynth.models.translator import Translator, TranslatorConfig
from radsynth.train.config import config_from_dict
from radsynth.train.loop import train
from radsynth.translate import translate_file

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ATLAS = SHARED / "harvard_aanlib_ct_mri"
GLIOMA = SHARED / "brain_mri_multicontrast" / "TCGA-DU-7294"

needs_atlas = pytest.mark.skipif(not ATLAS.is_dir(), reason="../shared/data/harvard_aanlib_ct_mri absent")
needs_glioma = pytest.mark.skipif(not GLIOMA.is_dir(), reason="../shared/data/brain_mri_multicontrast absent")


# --- the flow translator -------------------------------------------------------------------


def test_flow_translator_steps_from_the_first_input_to_its_estimate():
    """Euler steps of (estimate - x_t) / (1 - t) from the first input channel: with the
    network replaced by one that estimates x_t + 0.1, four steps move the input by
    0.1 (1/4 + 1/3 + 1/2 + 1); the last step lands on the last estimate."""
    net = Translator(TranslatorConfig(channels=(8, 16), residual=False, flow_steps=4, in_channels=2))
    calls = []

    def nudge(stacked):
        calls.append(stacked.shape)
        return stacked[:, :1] + 0.1

    net.net.forward = nudge
    x = torch.rand(2, 2, 20, 18) * 1.6 - 0.8
    out = net(x)
    assert len(calls) == 4 and calls[0][1] == 4  # point + 2 inputs + time
    assert torch.allclose(out, (x[:, :1] + 0.1 * (1 / 4 + 1 / 3 + 1 / 2 + 1)).clamp(-1, 1), atol=1e-6)
    estimate = net(x, point=x[:, :1], t=torch.zeros(2))  # what training calls
    assert torch.allclose(estimate, x[:, :1] + 0.1)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"flow_steps": 4}, "not residual"),
        ({"flow_steps": -1, "residual": False}, "flow_steps"),
        ({"in_channels": 0}, "in_channels"),
        ({"norm": "batch"}, "model.norm must be one of instance, none, got 'batch'"),
    ],
)
def test_bad_translator_configs_are_one_line(kwargs, words):
    with pytest.raises(InvalidInput, match=words):
        TranslatorConfig(**kwargs)


def test_a_restorer_without_normalisation_layers_keeps_its_patch_level():
    """``norm: none`` drops instance normalisation, which makes a block's output blind to
    its patch's absolute level; a card written before the key existed loads as instance."""
    plain = Translator(TranslatorConfig(channels=(8, 16), norm="none"))
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in plain.modules())
    assert TranslatorConfig.from_dict(plain.config.to_dict()) == plain.config
    old = {k: v for k, v in TranslatorConfig(channels=(8, 16)).to_dict().items() if k != "norm"}
    legacy = Translator(TranslatorConfig.from_dict(old))
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in legacy.modules())


def test_a_one_pass_translator_refuses_a_velocity_question():
    net = Translator(TranslatorConfig(channels=(8, 16), residual=False))
    with pytest.raises(InvalidInput, match="needs a flow translator"):
        net(torch.zeros(1, 1, 8, 8), point=torch.zeros(1, 1, 8, 8), t=torch.zeros(1))


# --- the atlas corpus ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    if not ATLAS.is_dir():
        pytest.skip("../shared/data/harvard_aanlib_ct_mri absent")
    return build_atlas(ATLAS, tmp_path_factory.mktemp("atlas") / "corpus")


@needs_atlas
def test_atlas_folds_split_by_case_never_by_slice(atlas):
    """184 pairs of 10 cases; 5 folds of 2 cases; every slice of a case in its case's fold
    (the source's own split put slices of one case on both sides)."""
    assert len(atlas.records) == 2 * 184
    cases = sorted({r.subject for r in atlas.records})
    assert len(cases) == 10 and sorted(c for f in atlas.folds for c in f) == cases
    assert [len(f) for f in atlas.folds] == [2] * 5
    fold_of = {c: k for k, f in enumerate(atlas.folds) for c in f}
    assert all(r.extra["fold"] == fold_of[r.subject] for r in atlas.records)
    for k in range(5):
        assert not set(atlas.training_cases(k)) & set(atlas.folds[k])
    # the source repository's test slices 16009-16015 and 41010-41015 sit with the rest of their cases
    assert {r.extra["fold"] for r in atlas.records if r.subject == "atlas-16"} == {fold_of["atlas-16"]}
    pairs = {}
    for r in atlas.records:
        pairs.setdefault(r.extra["pair_id"], set()).add(r.modality)
    assert len(pairs) == 184 and all(v == {"MR", "CT"} for v in pairs.values())
    ct = next(r for r in atlas.records if r.modality == "CT")
    assert ct.extra["units"] == "atlas 8-bit" and "research use only" in ct.licence


@needs_atlas
def test_atlas_head_mask_keeps_the_head_and_drops_the_holder(atlas):
    from radsynth.io import read_image

    masks = [read_image(atlas.folder / r.extra["mask"]).array > 0 for r in atlas.records[::20]]
    shares = [m.mean() for m in masks]
    assert min(shares) > 0.02 and max(shares) < 0.6
    assert all(not m[0].any() and not m[-1].any() for m in masks)  # no head at the image edge rows


@needs_atlas
def test_the_atlas_builds_from_the_cli_and_is_reused(tmp_path, capsys):
    assert main(["data", "atlas", "-o", str(tmp_path / "a"), "--root", str(ATLAS)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps the title
    assert "184 slice pairs of 10 cases" in out and "not HU" in out
    before = (tmp_path / "a" / "manifest.jsonl").stat().st_mtime_ns
    assert main(["data", "atlas", "-o", str(tmp_path / "a"), "--root", str(ATLAS)]) == 0
    assert (tmp_path / "a" / "manifest.jsonl").stat().st_mtime_ns == before


@needs_atlas
def test_an_atlas_slice_without_its_pair_is_one_line(tmp_path):
    root = tmp_path / "atlas"
    shutil.copytree(ATLAS, root, ignore=shutil.ignore_patterns("SHA256SUMS"))
    (root / "MRI" / "16010.png").chmod(0o644)
    (root / "MRI" / "16010.png").unlink()
    with pytest.raises(InvalidInput, match="16010.png has no MR pair"):
        atlas_pairs(root)


# --- training: a flow on the atlas, two inputs on the glioma subjects -----------------------


def _tiny(model: dict, options: dict, manifest: Path, out: Path, size: int) -> dict:
    return {
        "task": "translate",
        "model": {"channels": [8, 16], "num_res_units": 0, "residual": False, **model},
        "options": {"mode": "paired", "crop": 32, **options},
        "data": {"manifest": str(manifest), "split": "any", "image_size": size},
        "steps": 2,
        "batch_size": 4,
        "lr": 1e-3,
        "checkpoint_every": 2,
        "log_every": 1,
        "seed": 0,
        "out": str(out),
    }


@needs_atlas
def test_a_flow_translator_trains_on_atlas_pairs_in_the_one_loop(atlas, tmp_path):
    from radsynth.translate.volume import load_translator

    recipe = _tiny(
        {"flow_steps": 3},
        {"source": {"modality": "MR"}, "target": {"modality": "CT"}},
        atlas.manifest,
        tmp_path,
        256,
    )
    recipe["data"]["where"] = {"subject": atlas.training_cases(0)}
    folder = train(config_from_dict(recipe))
    card = json.loads((folder / "card.json").read_text())
    assert card["config"]["translator"]["flow_steps"] == 3
    assert {s["source"] for s in card["data"]["sources"]} == {
        "Harvard Whole Brain Atlas (AANLIB), CT-MRI pairs"
    }
    net = load_translator("mr2ct-atlas", folder).net
    x = torch.rand(1, 1, 40, 40) * 2 - 1
    with torch.inference_mode():
        assert net(x).shape == x.shape and net(x).abs().max() <= 1


@pytest.fixture(scope="module")
def glioma_corpus(tmp_path_factory):
    if not GLIOMA.is_dir():
        pytest.skip("../shared/data/brain_mri_multicontrast absent")
    from radsynth.data.paired import ingest_paired

    out = tmp_path_factory.mktemp("glioma") / "corpus"
    ingest_paired(GLIOMA.parent, out, layout="brats", size=32)
    return out / "manifest.jsonl"


@needs_glioma
def test_two_inputs_train_as_channels_and_the_card_names_them(glioma_corpus, tmp_path):
    options = {"inputs": [{"contrast": "t1"}, {"contrast": "t2"}], "target": {"contrast": "flair"}}
    folder = train(config_from_dict(_tiny({}, options, glioma_corpus, tmp_path, 32)))
    card = json.loads((folder / "card.json").read_text())
    assert card["config"]["translator"]["in_channels"] == 2
    assert card["task_info"]["translation"]["inputs"] == [{"contrast": "t1"}, {"contrast": "t2"}]
    bad = _tiny({"in_channels": 1}, options, glioma_corpus, tmp_path / "bad", 32)
    with pytest.raises(InvalidInput, match="in_channels is 1 but options name 2"):
        train(config_from_dict(bad))


# --- named inputs: bad input is one line, nothing written -----------------------------------


def _slab(path: Path, out: Path, crop: tuple[slice, ...] = (slice(None), slice(None), slice(70, 74))) -> Path:
    image = nib.load(path)
    array = np.asarray(image.dataobj)[crop]
    nib.save(nib.Nifti1Image(array, image.affine), out)
    return out


@needs_glioma
@pytest.mark.parametrize(
    ("inputs", "error", "words"),
    [
        ({"t1": "t1"}, InvalidInput, "needs a t2 volume"),
        ({"t1": "t1", "t2": "t2", "pd": "t1"}, InvalidInput, "takes t1, t2, not pd"),
        ({"t1": "t1", "t2": "shifted"}, GeometryMismatch, "not on the grid of t1.nii.gz"),
        ({"t1": "t1", "t2": "flat"}, InvalidInput, "expected a 3D volume"),
    ],
)
def test_bad_named_inputs_are_one_line_and_write_nothing(tmp_path, inputs, error, words):
    files = {
        "t1": _slab(GLIOMA / "TCGA-DU-7294_t1_bet.nii.gz", tmp_path / "t1.nii.gz"),
        "t2": _slab(GLIOMA / "TCGA-DU-7294_t2_bet.nii.gz", tmp_path / "t2.nii.gz"),
    }
    t2 = nib.load(files["t2"])
    shifted = t2.affine.copy()
    shifted[0, 3] += 5.0
    nib.save(nib.Nifti1Image(np.asarray(t2.dataobj), shifted), tmp_path / "shifted.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(t2.dataobj)[:, :, 0], t2.affine), tmp_path / "flat.nii.gz")
    files |= {"shifted": tmp_path / "shifted.nii.gz", "flat": tmp_path / "flat.nii.gz"}
    out = tmp_path / "flair.nii.gz"
    with pytest.raises(error, match=words):
        translate_file({k: files[v] for k, v in inputs.items()}, out, "t1t2-flair")
    assert not out.exists()


@needs_glioma
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--input", "t1"], "expected CONTRAST=FILE"),
        (["--input", "t1=a.nii.gz", "--input", "T1=b.nii.gz"], "--input t1 given twice"),
        (["POSITIONAL", "--input", "t1=a.nii.gz"], "not both"),
        (["POSITIONAL"], "needs 2 volumes: --input t1=FILE --input t2=FILE"),
    ],
)
def test_cli_named_input_mistakes_are_one_line(tmp_path, capsys, args, words):
    t1 = _slab(GLIOMA / "TCGA-DU-7294_t1_bet.nii.gz", tmp_path / "t1.nii.gz")
    args = [str(t1) if a == "POSITIONAL" else a for a in args]
    out = tmp_path / "out.nii.gz"
    assert main(["translate", "--task", "t1t2-flair", *args, "-o", str(out)]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], lines
    assert not out.exists()


# --- the shipped translators, as a user runs them ----------------------------------------------


@needs_glioma
def test_cli_translates_two_real_contrasts_to_flair_on_their_exact_grid(tmp_path):
    """`radsynth translate --task t1t2-flair --input t1=.. --input t2=..` with the shipped
    model on the subject it never saw (BraTS-GLI-00001-000, fold 0's held-out case): the
    output has the inputs' exact grid, is marked synthetic, and is closer to the real FLAIR
    inside the brain than the T2 it was given."""
    from radsynth.provenance import read_marking

    brats = GLIOMA.parent / "BraTS-GLI-00001-000"
    t1 = _slab(brats / "BraTS-GLI-00001-000-t1n.nii.gz", tmp_path / "t1.nii.gz")
    t2 = _slab(brats / "BraTS-GLI-00001-000-t2w.nii.gz", tmp_path / "t2.nii.gz")
    flair = _slab(brats / "BraTS-GLI-00001-000-t2f.nii.gz", tmp_path / "flair.nii.gz")
    out = tmp_path / "synthetic-flair.nii.gz"
    assert (
        main(
            [
                "translate",
                "--task",
                "t1t2-flair",
                "--input",
                f"t1={t1}",
                "--input",
                f"t2={t2}",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    written, given = nib.load(out), nib.load(t1)
    assert written.shape == given.shape and np.allclose(written.affine, given.affine, atol=1e-5)
    assert read_marking(out)["synthetic"]
    brain = np.asarray(given.dataobj) != 0
    pred, real, source = (np.asarray(nib.load(p).dataobj, float)[brain] for p in (out, flair, t2))
    assert np.corrcoef(pred, real)[0, 1] > np.corrcoef(source, real)[0, 1] + 0.1
    # the stripped background stays empty but for the watermark's chips (1 % of the range)
    background, top = np.abs(np.asarray(written.dataobj, float)[~brain]), np.percentile(pred, 99)
    assert background.max() < 0.05 * top


@needs_atlas
def test_cli_translates_an_atlas_mr_volume_to_the_atlas_ct_scale(tmp_path):
    """`radsynth translate --task mr2ct-atlas` on a NIfTI volume of MR slices of atlas case
    28, which the shipped model never saw (fold 0's held-out case): the output is on the
    input's grid, in the atlas's 0..255 CT scale (not HU), with bone (>= the atlas bone
    threshold) on the skull and a lower error against the real CT than the MR itself."""
    from PIL import Image as Pil

    from radsynth.evaluate.translation import ATLAS_BONE_THRESHOLD

    names = sorted(p.name for p in (ATLAS / "CT").glob("28*.png"))[4:10]
    mr, ct = (
        np.stack([np.asarray(Pil.open(ATLAS / side / n), np.float32) for n in names])
        for side in ("MRI", "CT")
    )
    affine = np.diag([0.8, 0.8, 5.0, 1.0])
    nib.save(nib.Nifti1Image(mr.transpose(2, 1, 0), affine), tmp_path / "mr.nii.gz")
    out = tmp_path / "ct.nii.gz"
    assert main(["translate", "--task", "mr2ct-atlas", str(tmp_path / "mr.nii.gz"), "-o", str(out)]) == 0
    written = nib.load(out)
    assert written.shape == mr.transpose(2, 1, 0).shape and np.allclose(written.affine, affine, atol=1e-5)
    pred = np.asarray(written.dataobj, np.float32).transpose(2, 1, 0)
    assert pred.min() >= 0 and pred.max() <= 255
    head = ct > 20
    assert np.abs(pred - ct)[head].mean() < np.abs(mr - ct)[head].mean()
    bone = pred >= ATLAS_BONE_THRESHOLD
    assert bone.any() and (bone & (ct >= ATLAS_BONE_THRESHOLD)).sum() > 0.5 * bone.sum()


def test_the_service_and_the_page_offer_every_one_volume_task():
    """The service's task list (written out so the route does not import torch) and the
    page's choices are the one-volume tasks of radsynth.translate: a new task is not
    silently missing from the web page."""
    import re

    from radsynth.serve.routes.work import TASKS as SERVICE_TASKS
    from radsynth.translate.volume import TASKS

    one_volume = [t for t, spec in TASKS.items() if len(spec.contrasts) <= 1]
    assert list(SERVICE_TASKS) == one_volume
    page = (Path(__file__).resolve().parents[2] / "src/radsynth/serve/static/index.html").read_text()
    select = page[page.index('<select id="task"') : page.index("</select>", page.index('<select id="task"'))]
    assert re.findall(r'<option value="([^"]+)"', select) == one_volume


@needs_glioma
@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: d / "missing.nii.gz", "missing.nii.gz"),
        (lambda d: _junk(d / "notes.nii.gz"), "notes.nii.gz"),
        (lambda d: d, "bad"),  # a folder with no DICOM series in it
    ],
    ids=["missing file", "junk with a NIfTI name", "a folder"],
)
def test_a_hostile_named_input_is_one_line_naming_it(tmp_path, capsys, make, words):
    """What a user (or a script) may pass as --input t2=PATH: nothing there, junk under a
    NIfTI name, an empty folder; one line naming it, nothing written."""
    t1 = _slab(GLIOMA / "TCGA-DU-7294_t1_bet.nii.gz", tmp_path / "t1.nii.gz")
    bad = make(_empty(tmp_path / "bad"))
    out = tmp_path / "out.nii.gz"
    args = [
        "translate",
        "--task",
        "t1t2-flair",
        "--input",
        f"t1={t1}",
        "--input",
        f"t2={bad}",
        "-o",
        str(out),
    ]
    assert main(args) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and (words in lines[0] or str(bad) in lines[0]), lines
    assert not out.exists()


def _empty(folder: Path) -> Path:
    folder.mkdir()
    return folder


def _junk(path: Path) -> Path:
    path.write_bytes(b"\x1f\x8b not a volume")
    return path
