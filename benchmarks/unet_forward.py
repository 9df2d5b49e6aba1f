"""One guided UNet forward of the shipped LDM under per-step inference settings.

    .venv/bin/python benchmarks/unet_forward.py [--repeats 6]

Batch 32 (16 images x conditional + unconditional), fused attention on, interleaved
repeats, median seconds: MONAI's forward as built; with the text keys / values memoised
(``radsynth.sampling.inference.cached_context_projections``, what the pipeline does for a
whole run); and in channels-last memory format. Writes ``results/unet_forward.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from radsynth.bench.record import run_record
from radsynth.generate import load_pipeline
from radsynth.models.registry import checkpoint_folder
from radsynth.sampling.inference import cached_context_projections, fused_attention

RESULTS = Path(__file__).resolve().parent / "results" / "unet_forward.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    pipeline = load_pipeline("demo-ct-mr-64", "ldm")
    net = pipeline.generator.denoiser.network.eval()
    channels_last = copy.deepcopy(net).to(memory_format=torch.channels_last)
    context, _ = pipeline.generator.text_encoder.encode(["axial chest CT"] * 16 + [""] * 16)
    x, t = torch.randn(32, 4, 16, 16), torch.full((32,), 500.0)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    seconds: dict[str, list[float]] = {"as built": [], "text keys/values memoised": [], "channels-last": []}

    def timed(name: str, run) -> torch.Tensor:
        started = time.perf_counter()
        out = run()
        seconds[name].append(time.perf_counter() - started)
        return out

    outputs: dict[str, torch.Tensor] = {}
    with torch.inference_mode(), fused_attention([net, channels_last]):
        for _ in range(args.repeats + 1):  # the first round warms up and is dropped
            outputs["as built"] = timed("as built", lambda: net(x, t, context))
            with cached_context_projections([net]):
                net(x, t, context)  # a run's first step fills the memo; later steps reuse it
                outputs["text keys/values memoised"] = timed(
                    "text keys/values memoised", lambda: net(x, t, context)
                )
            outputs["channels-last"] = timed("channels-last", lambda: channels_last(x_cl, t, context))
    seconds = {k: v[1:] for k, v in seconds.items()}
    result = {
        "settings": run_record([checkpoint_folder("demo-ct-mr-64", "ldm")]),
        "batch": 32,
        "threads": torch.get_num_threads(),
        "median_s": {k: round(statistics.median(v), 4) for k, v in seconds.items()},
        "max_abs_difference_vs_as_built": {
            k: float((v - outputs["as built"]).abs().max()) for k, v in outputs.items()
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
