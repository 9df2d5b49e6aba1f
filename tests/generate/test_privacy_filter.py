"""``radsynth generate --privacy-filter``: near-copies of training images are dropped
before anything is written; a batch of only copies writes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.cli import main
from radsynth.evaluate.sets import load_set
from radsynth.generate import resolve_checkpoint
from radsynth.generate.privacy_filter import drop_near_copies, training_images
from radsynth.io import Image

pytestmark = pytest.mark.slow  # generates with the shipped LDM and searches the training set

PROMPT = "axial chest CT, lung window, tumour in the right lung"


def test_the_filter_drops_training_copies_and_keeps_other_images():
    from radsynth.data.demo import build_demo

    manifest = build_demo(size=64).folder / "manifest.jsonl"
    train = training_images(resolve_checkpoint("demo-ct-mr-64", "gan"))
    held_out = load_set(manifest, "real", ("test",)).images[:4]
    batch = [Image(a, spacing=(1.0, 1.0), modality="CT") for a in np.concatenate([train[[3, 500]], held_out])]
    result = drop_near_copies(batch, train)
    assert [i for i, _ in result.dropped] == [0, 1]
    assert all(c > 0.999 for _, c in result.dropped)
    assert len(result.kept) == 4


def test_generate_with_the_filter_writes_what_is_not_a_copy(tmp_path, capsys):
    code = main(
        ["generate", PROMPT, "-n", "4", "--model", "gan", "--privacy-filter", "-o", str(tmp_path / "ok")]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert len(list((tmp_path / "ok").glob("gan_*.png"))) == 4  # GAN texture copies no one


def test_a_batch_of_only_near_copies_writes_nothing(tmp_path, capsys):
    args = [
        "generate",
        PROMPT,
        "-n",
        "2",
        "--model",
        "gan",
        "--privacy-filter",
        "--privacy-threshold",
        "0.01",
    ]
    code = main([*args, "-o", str(tmp_path / "none")])
    _, err = capsys.readouterr()
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: every image nearly copies a training image (correlation > 0.01); nothing written"
    ]
    assert not (tmp_path / "none").exists()
