"""Data layer: manifests, per-modality normalisation, slicing, splits, QC, the demo corpus.

One concept per module; import what you need from it (nothing heavy is imported here):

- ``manifest``: ``Record``, ``load_manifest``, ``write_manifest``, ``summarise``,
  ``resolve_manifest`` (a path or ``demo:<size>``), ``read_unit_image`` (a slice in [0, 1])
- ``normalise``: ``normalise``, ``WINDOWS``, ``apply_window``, ``percentile_scale``, ``foreground_mask``
- ``slices``: ``extract_slice``, ``resize_square``, ``volume_slices``, ``native_plane``
- ``splits``: ``assign_splits``, ``split_records``, ``split_leaks``
- ``qc``: ``check_manifest``, ``check_records``, ``QCReport``
- ``findings`` / ``describe``: facts about a slice (level, side, size) and its caption
- ``sources`` / ``demo``: the real sources and ``build_demo``
- ``ingest``: ``ingest`` users' DICOM / NIfTI / PNG+CSV into a manifest; ``paired``: SynthRAD and
  BraTS case folders; ``problems``: what either skipped (``Problem``, ``SkipKind``) and ``IngestResult``
"""
