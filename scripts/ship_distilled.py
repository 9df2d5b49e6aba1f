"""Attach a guidance-distilled LDM (``radsynth train configs/ldm-distill-demo-64.yaml``) to the
shipped LDM it was distilled from, and rebuild that LDM's inference exports in this user's
cache (the traces ``generate`` loads: ``radsynth.models.export``).

    .venv/bin/python scripts/ship_distilled.py runs/ldm-distill-demo-64/model \
        src/radsynth/weights/demo-ct-mr-64/ldm
"""

import sys

from radsynth.models.registry import export_inference
from radsynth.train.tasks.ldm import attach_distilled

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(f"wrote {attach_distilled(sys.argv[1], sys.argv[2])}")
    print(f"wrote {export_inference(sys.argv[2])}")
