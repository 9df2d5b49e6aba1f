"""Rebuild the inference exports (TorchScript traces, ``radsynth.models.export``) of every
shipped checkpoint that inference runs: run after any change to the shipped weights.

    PYTHONPATH=src python scripts/export_models.py

A checkpoint whose weights no longer match its traces loads its eager networks instead
(slower to start, same images), so a forgotten rebuild costs seconds, never pixels.
"""

from radsynth.models.export import INFERENCE_NETWORKS
from radsynth.models.registry import export_inference, shipped_models


def main() -> None:
    for model in shipped_models():
        if model.card().task in INFERENCE_NETWORKS:
            manifest = export_inference(model.folder)
            size = sum(p.stat().st_size for p in manifest.parent.glob("*.ts")) / 1e6
            print(f"{model.name}/{model.kind}: {manifest.parent} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
