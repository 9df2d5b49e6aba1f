"""Data layer: manifests, per-modality normalisation, slicing, splits, QC, the demo corpus."""
