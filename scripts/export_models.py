"""Build the inference exports (TorchScript traces, ``radsynth.models.export``) of every
shipped checkpoint that inference runs, into the user's cache; fresh ones are skipped, so
``scripts/setup.sh`` runs this at the end of every set-up (``--force``: trace them all).

    PYTHONPATH=src python scripts/export_models.py

A checkpoint without fresh traces loads its eager networks instead (slower to start, same
images), so a cache that cannot be written is reported in one line, not an error.
"""

import argparse

from radsynth.errors import InvalidInput
from radsynth.models.registry import export_shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="trace even checkpoints with fresh traces")
    args = parser.parse_args()
    skipped = []
    try:
        for result in export_shipped(force=args.force):
            name = f"{result.model.name}/{result.model.kind}"
            if not result.built:
                skipped.append(name)
                continue
            size = sum(p.stat().st_size for p in result.traces.glob("*.ts")) / 1e6
            print(f"traced {name}: {result.traces} ({size:.1f} MB)")
    except InvalidInput as err:
        print(f"traces not written ({err}); inference runs the eager networks")
    if skipped:
        print(f"fresh, skipped: {', '.join(skipped)}")


if __name__ == "__main__":
    main()
