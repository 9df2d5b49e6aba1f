"""Provenance: every output marked synthetic (metadata and an invisible watermark), the
facts read back from a file, the hash-chained audit log of every output, the
synthetic-image detector, and ``verify``, which weighs all of them for any file."""

from radsynth.provenance.audit import AuditReport, append_entries, check_log, default_log, find_output
from radsynth.provenance.marking import (
    FORMATS,
    SyntheticFacts,
    output_path,
    read_marking,
    sidecar_path,
    write_synthetic,
)
from radsynth.provenance.watermark import Detection, Payload, detect, embed, embed_image

__all__ = [
    "FORMATS",
    "AuditReport",
    "Detection",
    "Payload",
    "detect",
    "embed",
    "embed_image",
    "SyntheticFacts",
    "append_entries",
    "check_log",
    "default_log",
    "find_output",
    "output_path",
    "read_marking",
    "sidecar_path",
    "write_synthetic",
]
