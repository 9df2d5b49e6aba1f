"""Provenance: every output marked synthetic, and the facts read back from a file."""

from radsynth.provenance.marking import (
    FORMATS,
    SyntheticFacts,
    output_path,
    read_marking,
    sidecar_path,
    write_synthetic,
)

__all__ = ["FORMATS", "SyntheticFacts", "output_path", "read_marking", "sidecar_path", "write_synthetic"]
