"""Copy a trained checkpoint (``runs/<name>/model``) into a shipped family's folder, its
floating-point weights stored in float16 when ``--float16`` is given (they load into the
float32 networks; a 128-px LDM's UNet and VAE together are 30.05 MB in float32, past the
30 MB a shipped file may hold). The card records the storage dtype. ``--refresh-task-info``
rewrites the card's ``image`` and ``vocabulary`` facts from its recorded training data
with this version's code (for a checkpoint trained before the caption parser learnt view,
age and sex).
Rebuild the inference traces afterwards (``radsynth models export``).

    .venv/bin/python scripts/ship_model.py runs/ldm-cxr-128/model \
        src/radsynth/weights/cxr-128/ldm --float16
"""

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from radsynth.io.atomic import atomic_path
from radsynth.models.checkpoint import CARD, WEIGHTS
from radsynth.train.config import config_from_dict
from radsynth.train.data import select_records
from radsynth.train.tasks.common import image_fields


def _half(tensor: torch.Tensor) -> torch.Tensor:
    return (tensor.half() if tensor.is_floating_point() else tensor).contiguous()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="trained checkpoint folder (card.json + model.safetensors)")
    parser.add_argument("dest", type=Path, help="shipped folder, e.g. src/radsynth/weights/cxr-128/ldm")
    parser.add_argument("--float16", action="store_true", help="store floating-point tensors as float16")
    parser.add_argument(
        "--refresh-task-info", action="store_true", help="recompute image and vocabulary facts"
    )
    args = parser.parse_args()
    card = json.loads((args.source / CARD).read_text(encoding="utf-8"))
    if args.refresh_task_info:
        config = config_from_dict(card["config"]["train"])
        card["task_info"].update(image_fields(config, select_records(config.data)))
    card.setdefault("training", {})["weights_storage"] = "float16" if args.float16 else "float32"
    with atomic_path(args.dest) as tmp:
        tmp.mkdir()
        if args.float16:
            with safe_open(str(args.source / WEIGHTS), "pt") as f:
                metadata = f.metadata()
                tensors = {k: _half(f.get_tensor(k)) for k in f.keys()}  # noqa: SIM118 (a safetensors handle, not a dict)
            save_file(tensors, str(tmp / WEIGHTS), metadata=metadata)
        else:
            shutil.copyfile(args.source / WEIGHTS, tmp / WEIGHTS)
        (tmp / CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    size = (args.dest / WEIGHTS).stat().st_size / 1e6
    print(f"{args.source} -> {args.dest} ({size:.1f} MB, {card['training']['weights_storage']})")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
