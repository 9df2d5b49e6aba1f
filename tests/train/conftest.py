"""A tiny real-image manifest for training tests: MR slices from Debian's
insighttoolkit5-examples, cropped and resized small (real pixels, never invented)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from radsynth.data.manifest import Record, write_manifest

ITK = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
SOURCES = {
    "BrainT1Slice.png": "axial T1-weighted brain MR",
    "BrainProtonDensitySlice.png": "axial proton density brain MR",
    "BrainMidSagittalSlice.png": "sagittal T1-weighted brain MR",
    "FatMRISlice.png": "axial fat MR",
}
SIZE = 16


def _write_png16(unit: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray((unit * 65535).round().astype(np.uint16)).save(path)


def build_manifest(folder: Path, size: int = SIZE) -> Path:
    """8 records: two crops (whole image, centre) of 4 real slices, ``size`` pixels square."""
    from PIL import Image

    missing = [name for name in SOURCES if not (ITK / name).is_file()]
    if missing:
        pytest.skip(f"insighttoolkit5-examples is not installed ({missing[0]} missing)")
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, (name, text) in enumerate(SOURCES.items()):
        grey = Image.open(ITK / name).convert("L")
        w, h = grey.size
        crops = {"full": (0, 0, w, h), "centre": (w // 6, h // 6, w - w // 6, h - h // 6)}
        for crop_name, box in crops.items():
            small = grey.crop(box).resize((size, size), Image.Resampling.BILINEAR)
            rel = f"{Path(name).stem}-{crop_name}.png"
            _write_png16(np.asarray(small, np.float32) / 255.0, folder / rel)
            records.append(
                Record(
                    path=rel,
                    text=f"{text}, {crop_name} field of view",
                    modality="MR",
                    subject=f"itk-{i}",
                    split="train",
                    source="debian:insighttoolkit5-examples",
                    licence="Apache-2.0",
                    anatomy="brain",
                    spacing=(1.0, 1.0),
                )
            )
    return write_manifest(records, folder / "manifest.jsonl")


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory) -> Path:
    return build_manifest(tmp_path_factory.mktemp("tiny-corpus"))


def smoke_config(manifest: Path, out: Path, **overrides) -> dict:
    """A smoke-task recipe on ``manifest`` that trains in well under a second per 10 steps."""
    config = {
        "task": "smoke",
        "name": "smoke-test",
        "model": {"channels": 8},
        "data": {"manifest": str(manifest), "image_size": SIZE},
        "steps": 12,
        "batch_size": 4,
        "lr": 3.0e-3,
        "ema_decay": 0.9,
        "amp": False,
        "checkpoint_every": 6,
        "log_every": 3,
        "seed": 3,
        "out": str(out),
    }
    config.update(overrides)
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


LEARNED_TEXT = {"kind": "learned", "dim": 32, "layers": 1, "heads": 2, "max_length": 16, "min_count": 1}
TINY_TASKS = {
    "vae": {
        "task": "vae",
        "model": {
            "channels": [8, 16],
            "attention_levels": [False, False],
            "norm_num_groups": 8,
            "num_res_blocks": 1,
            "latent_channels": 2,
            "with_encoder_nonlocal_attn": False,
            "with_decoder_nonlocal_attn": False,
            "disc_channels": 8,
            "disc_layers": 2,
        },
        "options": {"adversarial_start": 2},
    },
    "gan": {
        "task": "gan",
        "model": {
            "channels": [32, 16],
            "norm_num_groups": 8,
            "noise_dim": 16,
            "cond_dim": 16,
            "disc_channels": 8,
            "disc_layers": 2,
            "disc_text_channels": 4,
        },
        "options": {"text_encoder": LEARNED_TEXT},
    },
    "ldm": {
        "task": "ldm",
        "model": {
            "channels": [16, 32],
            "attention_levels": [False, True],
            "num_head_channels": 16,
            "norm_num_groups": 8,
        },
        "options": {"text_encoder": LEARNED_TEXT, "sampling": {"steps": 2}},
    },
}
