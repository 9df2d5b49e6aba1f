"""Provenance: every output marked synthetic, the facts read back from a file, and the
hash-chained audit log of every output."""

from radsynth.provenance.audit import AuditReport, append_entries, check_log, default_log, find_output
from radsynth.provenance.marking import (
    FORMATS,
    SyntheticFacts,
    output_path,
    read_marking,
    sidecar_path,
    write_synthetic,
)

__all__ = [
    "FORMATS",
    "AuditReport",
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
