"""Generation and training speed against MONAI's and diffusers' reference pipelines.

    .venv/bin/python benchmarks/sampling.py [radsynth bench options]

The same as ``radsynth bench --out benchmarks/results/sampling.json`` (see
``radsynth.bench``): prints the tables and writes the JSON the README's Speed table is
made from.
"""

from __future__ import annotations

import sys
from pathlib import Path

from radsynth.cli import main

RESULTS = Path(__file__).resolve().parent / "results" / "sampling.json"

if __name__ == "__main__":
    sys.exit(main(["bench", "--out", str(RESULTS), *sys.argv[1:]]))
