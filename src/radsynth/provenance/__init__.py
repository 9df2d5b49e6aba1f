"""Provenance: every output marked synthetic, and (later) watermark, audit log, detector, verify."""

from radsynth.provenance.marking import FORMATS, SyntheticFacts, output_path, write_synthetic

__all__ = ["FORMATS", "SyntheticFacts", "output_path", "write_synthetic"]
