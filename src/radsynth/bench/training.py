"""Training speed: radsynth's LDM step (the one loop, ``radsynth.train``) against a plain
MONAI training step of the same network on the same batches.

The MONAI step is the latent-diffusion tutorial's, with the v-prediction target MONAI's
schedulers provide: the frozen autoencoder encodes the batch (``encode_stage_2_inputs``
times the scale factor, as ``LatentDiffusionInferer`` does), ``DiffusionInferer`` noises
it and runs the UNet, ``scheduler.get_velocity`` gives the target, then MSE, backward and
Adam. radsynth's step is ``radsynth.train.loop.train_step`` on the LDM task, which also
clips gradients, updates the EMA and drops 15 % of captions, but encodes every training
image once up front instead of every step (that one-time cost is reported beside it).
Both start from the same initial weights and see the same images and captions.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from radsynth.bench.measure import interleaved
from radsynth.bench.references import monai_scheduler
from radsynth.models.card import Card
from radsynth.train.config import config_from_dict
from radsynth.train.data import ManifestDataset, collate
from radsynth.train.distributed import Runtime
from radsynth.train.loop import Run, prepare, train_step
from radsynth.train.task import StepContext


def prepared_run(
    ldm_card: Card,
    vae_folder: Path,
    batch_size: int,
    device: torch.device,
    out: Path,
    manifest: str | None = None,
) -> tuple[Run, float]:
    """The recipe the shipped LDM was trained with (its card's ``config.train``) on the
    shipped VAE, ready to step, and the seconds spent preparing it (mostly encoding every
    training image once). ``manifest`` replaces the recipe's training data."""
    config = config_from_dict(ldm_card.section("train"))
    options = {**config.options, "vae": str(vae_folder)}
    data = dataclasses.replace(config.data, manifest=manifest or config.data.manifest)
    config = dataclasses.replace(config, batch_size=batch_size, options=options, out=str(out), data=data)
    start = time.perf_counter()
    run = prepare(config, Runtime(0, 1, 0, device), resume=False)
    return run, time.perf_counter() - start


def fixed_batches(run: Run, batch_size: int, count: int) -> list[dict[str, Any]]:
    """``count`` batches of consecutive training records, the same for both methods."""
    dataset = ManifestDataset(run.data, run.config.data.image_size, run.config.data.fit)
    return [collate([dataset[i * batch_size + j] for j in range(batch_size)]) for i in range(count)]


def radsynth_step(run: Run) -> Any:
    """A callable doing one step of the training loop on batch ``rep``."""
    for module in run.modules.values():
        module.train(any(p.requires_grad for p in module.parameters()))
    ctx = StepContext(run.modules, run.modules, run.optimizers, run.config.clip_grad, run.runtime.device)

    def step(batch: dict[str, Any]) -> float:
        logs = train_step(run, ctx, dict(batch))
        run.step += 1
        return float(logs["loss"])

    return step


def monai_step(run: Run) -> Any:
    """A callable doing one plain MONAI step on a copy of the same initial UNet."""
    from monai.inferers import DiffusionInferer

    task = run.task
    unet = copy.deepcopy(run.modules["unet"]).train()
    vae = run.modules["vae"]
    optimizer = torch.optim.Adam(unet.parameters(), lr=run.config.lr)
    scheduler = monai_scheduler("ddpm", task.schedule, task.schedule.num_train_timesteps)
    inferer = DiffusionInferer(scheduler)
    scale = task.vae_config.latent_scale
    device = run.runtime.device

    def step(batch: dict[str, Any]) -> float:
        images = batch["image"].to(device)
        context, _ = task.text.encode(batch["text"], run.modules)
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            z = vae.encode_stage_2_inputs(images) * scale  # (B, C, *latent)
        noise = torch.randn_like(z)
        timesteps = torch.randint(0, scheduler.num_train_timesteps, (z.shape[0],), device=device).long()
        prediction = inferer(
            inputs=z, diffusion_model=unet, noise=noise, timesteps=timesteps, condition=context
        )
        target = scheduler.get_velocity(z, noise, timesteps)
        loss = F.mse_loss(prediction.float(), target.float())
        loss.backward()
        optimizer.step()
        return float(loss)

    return step


def training_benchmark(
    ldm_card: Card,
    vae_folder: Path,
    batch_size: int,
    repeats: int,
    device: torch.device,
    manifest: str | None = None,
) -> dict[str, Any]:
    """Images/s of both training steps (median of ``repeats`` interleaved steps, after one
    warm-up step each) and radsynth's one-time preparation."""
    with tempfile.TemporaryDirectory() as out:
        run, prepare_s = prepared_run(ldm_card, vae_folder, batch_size, device, Path(out), manifest)
        batches = fixed_batches(run, batch_size, repeats + 1)
        steps = {"monai": monai_step(run), "radsynth": radsynth_step(run)}
        for step in steps.values():
            step(batches[0])  # warm-up
        timed = interleaved(
            {n: (lambda rep, s=s: s(batches[rep + 1])) for n, s in steps.items()}, repeats, device
        )
    result = {
        name: {
            "images_per_s": round(batch_size / t.median, 2),
            "seconds_per_step": [round(s, 3) for s in t.seconds],
            "peak_memory_mib": round(t.peak_mib),
            "losses": [round(x, 4) for x in t.outputs],
        }
        for name, t in timed.items()
    }
    result["radsynth"]["one_time_preparation_s"] = round(prepare_s, 1)
    result["radsynth"]["training_images_encoded_once"] = len(run.data.records)
    result["ratio"] = round(result["radsynth"]["images_per_s"] / result["monai"]["images_per_s"], 2)
    result["batch_size"] = batch_size
    return result
