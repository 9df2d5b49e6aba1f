"""The one training loop: every task, one process or many (``torchrun``), CPU or CUDA.

``train(config)`` runs ``config.steps`` steps of ``TASKS[config.task]``. Per step: the
batch of this process (a pure function of seed, step and rank), per-step seeding,
optional augmentation, the task's step under bf16 autocast, the EMA update; every
``log_every`` steps a line in ``log.jsonl`` (means over processes); every
``checkpoint_every`` steps and at the end a checkpoint (rank 0 writes). ``resume`` picks
up the newest checkpoint and continues bit for bit: same data order, same randomness,
same optimizer and EMA state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from radsynth.models.checkpoint import load_checkpoint, load_into, load_train_state, save_checkpoint
from radsynth.models.precision import fast_bf16
from radsynth.train import distributed
from radsynth.train.checkpoints import (
    FINAL,
    LOG,
    build_card,
    check_resumable,
    latest_resumable,
    prune,
    step_folder,
)
from radsynth.train.config import TrainConfig
from radsynth.train.data import ManifestDataset, TrainingData, collate, select_records, shift_augment
from radsynth.train.distributed import Runtime
from radsynth.train.ema import EMA
from radsynth.train.metrics import Meter, MetricLog, Progress
from radsynth.train.sampler import StepBatchSampler
from radsynth.train.seeds import seed_everything, seed_step
from radsynth.train.state import optimizer_from_flat, optimizer_to_flat
from radsynth.train.task import StepContext, Task
from radsynth.train.tasks import TASKS


@dataclass
class Run:
    """Everything one training run holds (built by :func:`prepare`)."""

    config: TrainConfig
    runtime: Runtime
    data: TrainingData
    task: Task
    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    ema: EMA | None
    step: int = 0
    wall_time_s: float = 0.0
    metrics: dict[str, float] | None = None
    bf16: bool = False

    @property
    def out(self) -> Path:
        return Path(self.config.out)

    def shipped(self) -> dict[str, nn.Module]:
        """The weights generation gets: the EMA where there is one."""
        shadow = self.ema.shadow if self.ema is not None else {}
        return {name: shadow.get(name, self.modules[name]) for name in self.task.shipped}


def train(
    config: TrainConfig, *, resume: bool = False, device: str | None = None, progress: bool = False
) -> Path:
    """Train ``config`` and return the folder of the final model (``<out>/model``)."""
    runtime = distributed.start(device)
    try:
        run = prepare(config, runtime, resume)
        start = run.step
        loop(run, progress)
        if start == config.steps:  # resumed at its last step (``--steps`` lowered to a checkpoint's)
            save(run, final=True)
    except BaseException:
        distributed.stop(runtime, failed=True)
        raise
    distributed.stop(runtime)
    return run.out / FINAL


def prepare(config: TrainConfig, runtime: Runtime, resume: bool) -> Run:
    """Data, task, modules on the device, optimizers, EMA; restored from a checkpoint on resume."""
    config.per_process_batch(runtime.world_size)  # fail before any work on an uneven split
    data = select_records(config.data)
    seed_everything(config.seed)  # the same initial weights on every process
    task = TASKS[config.task](config, data, runtime.device)
    modules = task.modules()
    for module in modules.values():
        module.to(runtime.device)
    optimizers = task.optimizers()
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
    ema_modules = {name: modules[name] for name in task.ema}
    ema = EMA(ema_modules, config.ema_decay) if config.ema_decay > 0 and ema_modules else None
    run = Run(config, runtime, data, task, modules, optimizers, ema)
    run.bf16 = config.amp and fast_bf16(runtime.device)  # amp asks; the hardware decides
    if resume:
        restore(run)
    return run


def restore(run: Run) -> None:
    """Load weights, EMA and optimizer state of the newest checkpoint into ``run``."""
    folder = latest_resumable(run.out)
    shipped, _ = load_checkpoint(folder, run.runtime.device)
    extra, meta = load_train_state(folder)
    check_resumable(run.config, meta.get("config", {}), folder)
    ema_names = set(run.ema.shadow) if run.ema is not None else set()
    raw: dict[str, dict[str, torch.Tensor]] = {}
    for name in run.modules:
        prefix = f"module.{name}."
        own = {k[len(prefix) :]: v for k, v in extra.items() if k.startswith(prefix)}
        raw[name] = own if (own or name in ema_names or name not in shipped) else shipped[name]
    load_into(run.modules, raw, strict=True, folder=folder)
    if run.ema is not None:
        load_into(run.ema.shadow, {n: shipped.get(n, {}) for n in run.ema.shadow}, folder=folder)
    for name, optimizer in run.optimizers.items():
        optimizer_from_flat(name, optimizer, extra, meta["optimizers"][name])
    run.step = int(meta["step"])
    run.wall_time_s = float(meta.get("wall_time_s", 0.0))
    run.metrics = meta.get("metrics")


def loop(run: Run, progress: bool) -> None:
    """Steps ``run.step .. config.steps - 1``, logging and checkpointing on the way."""
    config, runtime = run.config, run.runtime
    batch_size = config.per_process_batch(runtime.world_size)
    trained = {n: m for n, m in run.modules.items() if any(p.requires_grad for p in m.parameters())}
    for name, module in run.modules.items():
        module.train(name in trained)
    nets = {n: distributed.wrap(m, runtime) if n in trained else m for n, m in run.modules.items()}
    ctx = StepContext(nets, run.modules, run.optimizers, config.clip_grad, runtime.device)
    batches = iter(_loader(run, batch_size))
    meter = Meter()
    log = MetricLog(run.out / LOG, run.step if run.step else None, runtime.is_main)
    bar = Progress(config.steps, run.step, progress and runtime.is_main, config.model_id)
    started, window_start, window_steps = time.perf_counter(), time.perf_counter(), 0
    wall_before = run.wall_time_s
    try:
        while run.step < config.steps:
            logs = train_step(run, ctx, next(batches))
            meter.add(logs)
            run.step += 1
            window_steps += 1
            run.wall_time_s = wall_before + time.perf_counter() - started
            speed = config.batch_size * window_steps / max(time.perf_counter() - window_start, 1e-9)
            bar.update(run.step, float(logs["loss"]) if "loss" in logs else None, speed)
            if run.step % config.log_every == 0 or run.step == config.steps:
                run.metrics = _log(run, meter, log, speed)
                window_start, window_steps = time.perf_counter(), 0
            if run.step % config.checkpoint_every == 0 or run.step == config.steps:
                save(run, final=run.step == config.steps)
    finally:
        bar.close()


def train_step(run: Run, ctx: StepContext, batch: dict) -> dict[str, torch.Tensor | float]:
    """One step: seed, move, augment, the task's step under autocast, the EMA update."""
    config, runtime = run.config, run.runtime
    seed_step(config.seed, run.step, runtime.rank)
    batch["image"] = batch["image"].to(runtime.device, non_blocking=True)
    if config.data.augment:
        batch["image"] = shift_augment(batch["image"])
    _set_learning_rate(run)
    ctx.step = run.step
    with torch.autocast(runtime.device.type, dtype=torch.bfloat16, enabled=run.bf16):
        logs = dict(run.task.step(batch, ctx))
    if run.ema is not None:
        run.ema.update(run.step + 1)
    return logs


def save(run: Run, final: bool) -> None:
    """Checkpoint at ``run.step`` (rank 0 writes; every process checks the weights agree)."""
    metrics = dict(run.metrics or {})
    if run.runtime.distributed:
        metrics["ddp_max_weight_difference"] = distributed.max_weight_difference(
            run.modules, run.task.shipped, run.runtime
        )
    if not run.runtime.is_main:
        return
    shipped = run.shipped()
    card = build_card(
        run.config,
        run.data,
        run.task.card(shipped),
        run.step,
        run.wall_time_s,
        metrics,
        run.runtime.world_size,
    )
    card["training"]["bf16"] = run.bf16
    save_checkpoint(step_folder(run.out, run.step), shipped, card, train_state=_train_state(run, metrics))
    prune(run.out, run.config.keep_checkpoints)
    if final:
        save_checkpoint(run.out / FINAL, shipped, card)


def _train_state(run: Run, metrics: dict[str, float]) -> tuple[dict[str, torch.Tensor], dict]:
    """Raw weights not in the shipped file (EMA'd and unshipped modules) and optimizer state."""
    ema_names = set(run.ema.shadow) if run.ema is not None else set()
    tensors: dict[str, torch.Tensor] = {}
    for name, module in run.modules.items():
        if name in ema_names or name not in run.task.shipped:
            tensors.update({f"module.{name}.{k}": v for k, v in module.state_dict().items()})
    optimizers = {}
    for name, optimizer in run.optimizers.items():
        flat, meta = optimizer_to_flat(name, optimizer)
        tensors.update(flat)
        optimizers[name] = meta
    meta = {
        "step": run.step,
        "wall_time_s": run.wall_time_s,
        "world_size": run.runtime.world_size,
        "config": run.config.to_dict(),
        "optimizers": optimizers,
        "metrics": metrics,
    }
    return tensors, meta


def _log(run: Run, meter: Meter, log: MetricLog, speed: float) -> dict[str, float]:
    means = meter.means()
    meter.reset()
    values = torch.tensor(list(means.values()) + [speed], dtype=torch.float64)
    values = distributed.mean_over_processes(values, run.runtime).tolist()
    means = dict(zip(means, values[:-1], strict=True))
    lr = run.optimizers[next(iter(run.optimizers))].param_groups[0]["lr"] if run.optimizers else 0.0
    record = {
        "step": run.step,
        "time_s": round(run.wall_time_s, 3),
        "images_per_s": round(values[-1], 2),
        "lr": lr,
        **{k: round(v, 6) for k, v in means.items()},
    }
    log.write(record)
    return {**means, "images_per_s": record["images_per_s"]}


def _set_learning_rate(run: Run) -> None:
    warmup = run.config.warmup_steps
    factor = min(1.0, (run.step + 1) / warmup) if warmup else 1.0
    for optimizer in run.optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor


def _loader(run: Run, batch_size: int) -> DataLoader:
    config, runtime = run.config, run.runtime
    sampler = StepBatchSampler(
        len(run.data.records), batch_size, runtime.world_size, runtime.rank, config.seed, run.step
    )
    workers = config.data.workers
    return DataLoader(
        ManifestDataset(run.data, config.data.image_size, config.data.fit),
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=runtime.device.type == "cuda",
    )
